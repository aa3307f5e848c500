/** The enrollment suite on the in-memory fakes. */
import { MemoryEnrollmentStore } from '../fakes/memory-enrollment.js';
import { memoryStores } from '../fakes/memory-stores.js';
import { enrollmentSuite } from './enrollment-suite.js';

enrollmentSuite('memory', () => {
  const stores = memoryStores();
  return Promise.resolve({
    stores: { ...stores, enrollment: new MemoryEnrollmentStore(stores.tables) },
    close: () => stores.db.close(),
  });
});
