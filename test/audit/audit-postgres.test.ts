/** The audit suite on PostgreSQL (see test/pg-helpers.ts for how to run it). */
import { after } from 'node:test';
import { openStores } from '../../src/stores.js';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import { auditSuite } from './audit-suite.js';

const db = await createTestDatabase('audit');

if (!db) {
  skippedPgSuite('audit on PostgreSQL');
} else {
  after(() => db.drop());
  auditSuite('PostgreSQL', async () => {
    await db.reset();
    const stores = await openStores(db.url);
    await db.query('TRUNCATE enrollment_pending, enrollment_rejected, audit_log');
    return { stores, close: () => stores.db.close() };
  });
}
