/** The audit suite on the memory fakes: the same contract, atomicity included. */
import { memoryStores } from '../fakes/memory-stores.js';
import { MemoryAuditStore } from '../fakes/memory-audit.js';
import { MemoryEnrollmentStore } from '../fakes/memory-enrollment.js';
import { auditSuite } from './audit-suite.js';

auditSuite('memory', () => {
  const stores = memoryStores();
  return Promise.resolve({
    stores: {
      ...stores,
      enrollment: new MemoryEnrollmentStore(stores.tables),
      audit: new MemoryAuditStore(stores.tables),
    },
    close: () => stores.db.close(),
  });
});
