/**
 * The report store on an open database, by its engine: the engine's module is loaded by a
 * dynamic import(), so a process loads only the driver it uses.
 */
import type { EngineDatabase } from '../db/open.js';
import type { ReportStore } from './store.js';

export async function openReportStore(db: EngineDatabase): Promise<ReportStore> {
  if (db.engine === 'sqlite') {
    const { SqliteReportStore } = await import('./store-sqlite.js');
    return new SqliteReportStore(db);
  }
  const { PostgresReportStore } = await import('./store-postgres.js');
  return new PostgresReportStore(db);
}
