/**
 * Opens the database named by --database: postgres:// URLs or a SQLite path. The engine is
 * loaded by a dynamic import(), so a process loads only the driver it uses. Returns the database
 * alone; each feature opens its stores on it (devices/stores.ts, triggers/stores.ts).
 */
import type { PostgresDatabase, PostgresOptions } from './postgres/database.js';
import type { SqliteDatabase } from './sqlite/database.js';

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

export interface OpenDatabaseOptions {
  /** SQLite: run WAL checkpoints and commit fsyncs off the request path (never inside a commit on the event loop). */
  background?: boolean;
  /**
   * SQLite: this process owns the file (the server; see SqliteDatabaseOptions.owner): a second
   * server on the same file fails to open, and what a dead owner left is repaired on open.
   */
  owner?: boolean;
  /** PostgreSQL: pool size, timeouts, connection-loss reporting. */
  postgres?: PostgresOptions;
  /**
   * The registry must exist already (commands that only read one, like `ztp export`): a missing
   * SQLite file, or a database without the current ztp schema, is refused with a ConfigError
   * instead of being created or migrated.
   */
  existing?: boolean;
}

export type EngineDatabase = SqliteDatabase | PostgresDatabase;

export async function openDatabase(
  database: string,
  opts: OpenDatabaseOptions = {},
): Promise<EngineDatabase> {
  if (isPostgresUrl(database)) {
    const { openPostgresDatabase } = await import('./postgres/database.js');
    return openPostgresDatabase(database, { ...opts.postgres, existing: opts.existing });
  }
  const { SqliteDatabase } = await import('./sqlite/database.js');
  const background = opts.background ?? false;
  return new SqliteDatabase(database, {
    backgroundCheckpoint: background,
    fsyncOffLoop: background,
    existing: opts.existing,
    owner: opts.owner ?? false,
  });
}
