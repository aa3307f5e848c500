/** The audit suite on SQLite. */
import { join } from 'node:path';
import { openStores } from '../../src/stores.js';
import { tempDir } from '../helpers.js';
import { auditSuite } from './audit-suite.js';

auditSuite('SQLite', async () => {
  const { dir, cleanup } = tempDir();
  const stores = await openStores(join(dir, 'ztp.db'));
  return {
    stores,
    close: async () => {
      await stores.db.close();
      cleanup();
    },
  };
});
