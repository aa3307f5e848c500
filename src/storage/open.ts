/** Chooses the storage engine from the --database value: postgres:// URLs or a SQLite path. */
import type { PostgresOptions } from './postgres.js';
import type { Store } from './store.js';

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

export interface OpenStoreOptions {
  /** SQLite: run WAL checkpoints and commit fsyncs off the request path (never inside a commit on the event loop). */
  background?: boolean;
  /**
   * SQLite: this process owns the file (the server; see SqliteStoreOptions.owner): a second
   * server on the same file fails to open, and leases of a dead owner are released on open.
   */
  owner?: boolean;
  /** PostgreSQL: pool size, timeouts, connection-loss reporting, instance id. */
  postgres?: PostgresOptions;
  /**
   * The registry must exist already (commands that only read one, like `ztp export`): a missing
   * SQLite file, or a database without the current ztp schema, is refused with a ConfigError
   * instead of being created or migrated.
   */
  existing?: boolean;
}

export async function openStore(database: string, opts: OpenStoreOptions = {}): Promise<Store> {
  if (isPostgresUrl(database)) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore(database, { ...opts.postgres, existing: opts.existing });
  }
  const { SqliteStore } = await import('./sqlite.js');
  const background = opts.background ?? false;
  return new SqliteStore(database, {
    backgroundCheckpoint: background,
    fsyncOffLoop: background,
    existing: opts.existing,
    owner: opts.owner ?? false,
  });
}
