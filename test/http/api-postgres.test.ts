/** The whole HTTP API suite against PostgreSQL (see test/pg-helpers.ts for how to run it). */
import { after } from 'node:test';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import { apiSuite } from './api-suite.js';

const db = await createTestDatabase('api');

if (!db) {
  skippedPgSuite('HTTP API on PostgreSQL');
} else {
  after(() => db.drop());
  apiSuite('postgres', () => db.openStore());
}
