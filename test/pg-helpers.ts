/**
 * PostgreSQL test fixtures. The suites run against the server named by ZTP_TEST_DATABASE_URL
 * (e.g. postgres://postgres@127.0.0.1:5432/test); each test file creates its own database
 * (ztp_test_<label>_<random>) and drops it at the end, so files run in parallel.
 *
 * Without ZTP_TEST_DATABASE_URL the PostgreSQL suites are skipped with a message saying how to
 * run them — except under CI=true, where a missing or unreachable server fails the file.
 */
import { randomBytes } from 'node:crypto';
import { describe } from 'node:test';
import pg from 'pg';
import {
  openPostgresStore,
  type PostgresStoreOptions as PostgresOptions,
} from './storage/store-view.js';
import type { OpenedStore } from './storage/store-suite.js';

export const PG_SKIP_MESSAGE =
  'PostgreSQL suites skipped: set ZTP_TEST_DATABASE_URL=postgres://user@host:5432/db to run them';

export interface PgTestDatabase {
  /** URL of the fresh database. */
  url: string;
  /** A short-lived admin query on the fresh database. */
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Empties every table (between tests). */
  reset(): Promise<void>;
  /** Opens a store on the fresh, emptied database (for storeSuite/apiSuite). */
  openStore(opts?: PostgresOptions): Promise<OpenedStore>;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.href;
}

async function adminQuery(url: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/**
 * Advisory lock (in the base database) that keeps the PostgreSQL restart test from restarting
 * the server under other test files: each file holds it shared while it runs; the restart test
 * takes it exclusively (waiting for them) and keeps it through the restart.
 */
const RESTART_LOCK = 0x7a747052;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retries `fn` while the server is briefly away (e.g. restarted by the restart test). */
async function retrying<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(250);
    }
  }
}

/** A session holding the restart lock (shared or exclusive) until released. */
async function holdRestartLock(url: string, mode: 'shared' | 'exclusive') {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(
      mode === 'shared' ? 'SELECT pg_advisory_lock_shared($1)' : 'SELECT pg_advisory_lock($1)',
      [RESTART_LOCK],
    );
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
  return { release: () => client.end().catch(() => undefined) };
}

/**
 * Waits until no other test file uses the server, then holds it for a restart (the lock dies
 * with the server; release() it if the restart does not happen); files starting meanwhile wait
 * until it is back.
 */
export async function lockForRestart(): Promise<{ release: () => Promise<void> }> {
  const base = process.env.ZTP_TEST_DATABASE_URL;
  if (!base) throw new Error('ZTP_TEST_DATABASE_URL is not set');
  return holdRestartLock(base, 'exclusive');
}

/**
 * Creates a fresh database for one test file, or returns undefined (suite skipped) when no
 * server is configured. Throws under CI=true when none is configured or it does not answer.
 * `restarts: true` is for the one file that restarts the server (it must not hold the lock).
 */
export async function createTestDatabase(
  label: string,
  opts: { restarts?: boolean } = {},
): Promise<PgTestDatabase | undefined> {
  const base = process.env.ZTP_TEST_DATABASE_URL;
  const ci = process.env.CI === 'true';
  if (!base) {
    if (ci)
      throw new Error(
        'CI=true but ZTP_TEST_DATABASE_URL is not set: the PostgreSQL suites must run in CI',
      );
    console.log(PG_SKIP_MESSAGE);
    return undefined;
  }
  const name = `ztp_test_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  let lock: { release: () => Promise<void> } | undefined;
  try {
    // Unreachable at first try: fail (or skip) at once; dropped by a restart while waiting: retry.
    await adminQuery(base, 'SELECT 1');
    await retrying(async () => {
      if (!opts.restarts) lock = await holdRestartLock(base, 'shared');
      await adminQuery(base, `CREATE DATABASE ${name}`);
    });
  } catch (e) {
    await lock?.release();
    const why = `PostgreSQL at ZTP_TEST_DATABASE_URL is not usable: ${(e as Error).message}`;
    if (ci) throw new Error(why);
    console.log(`${why}; ${PG_SKIP_MESSAGE}`);
    return undefined;
  }
  const url = withDatabase(base, name);
  const query = (text: string, values: unknown[] = []) => adminQuery(url, text, values);
  const reset = async () => {
    await query(
      // Every table of the schema but its version, whichever features added them.
      `DO $$ DECLARE tables text;
       BEGIN
         SELECT string_agg(quote_ident(tablename), ', ') INTO tables FROM pg_tables
           WHERE schemaname = current_schema() AND tablename <> 'schema_version';
         IF tables IS NOT NULL THEN
           EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY';
         END IF;
         IF to_regclass('aliases') IS NOT NULL THEN
           TRUNCATE aliases;
         END IF;
       END $$`,
    );
  };
  return {
    url,
    query,
    reset,
    openStore: async (storeOpts?: PostgresOptions) => {
      await reset();
      const store = await openPostgresStore(url, storeOpts);
      return { store, cleanup: () => store.close() };
    },
    drop: async () => {
      await retrying(() => adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      await lock?.release();
    },
  };
}

/** A visible skipped block when PostgreSQL is not configured. */
export function skippedPgSuite(name: string): void {
  describe(name, { skip: PG_SKIP_MESSAGE }, () => undefined);
}
