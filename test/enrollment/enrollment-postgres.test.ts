/** The enrollment suite on PostgreSQL (see test/pg-helpers.ts for how to run it). */
import { after } from 'node:test';
import { openStores } from '../../src/stores.js';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import { enrollmentSuite } from './enrollment-suite.js';

const db = await createTestDatabase('enrollment');

if (!db) {
  skippedPgSuite('enrollment on PostgreSQL');
} else {
  after(() => db.drop());
  enrollmentSuite('PostgreSQL', async () => {
    await db.reset();
    const stores = await openStores(db.url);
    await db.query('TRUNCATE enrollment_pending, enrollment_rejected');
    return { stores, close: () => stores.db.close() };
  });
}
