/** The enrollment store on an open database, by its engine (dynamic import: one driver loaded). */
import type { EngineDatabase } from '../db/open.js';
import type { EnrollmentStore } from './store.js';

export async function openEnrollmentStore(db: EngineDatabase): Promise<EnrollmentStore> {
  if (db.engine === 'sqlite') {
    const { SqliteEnrollmentStore } = await import('./store-sqlite.js');
    return new SqliteEnrollmentStore(db);
  }
  const { PostgresEnrollmentStore } = await import('./store-postgres.js');
  return new PostgresEnrollmentStore(db);
}
