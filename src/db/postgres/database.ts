/**
 * The PostgreSQL database (pg): the pool every PostgreSQL feature store uses, its migrations and
 * its one group commit, for several stateless `ztp serve` replicas on one database. No feature
 * knowledge.
 *
 * The same group commit as SQLite's: every write that arrives within
 * one event-loop turn runs in one transaction on one pooled connection, and all of them are
 * answered after the single COMMIT. Units given as statements (PgStatementsStep: registrations, trigger outcomes) are SQL text
 * with their values inlined, so a batch made only of them goes to the server in one round trip per 64
 * writes, BEGIN and COMMIT included. If any statement of it fails, that transaction is rolled back and the batch
 * runs again write by write, each write inside its own SAVEPOINT, so one failing write cannot
 * fail the others. A failed commit rejects the whole batch with StorageUnavailableError.
 *
 * Lock order: every unit of work touches the rows of exactly one device (its device row, history
 * rows and triggers), and a batch runs its units sorted by their key, the device id. Two transactions therefore
 * take row locks in the same global order, so batches of different replicas cannot deadlock.
 * A registration first upserts the device row (which serialises concurrent registrations of
 * that device across replicas), then — in a new statement, so with a fresh snapshot — records
 * history and coalesces into the device's waiting trigger.
 *
 * Failure: connection and statement timeouts make every call fail fast with
 * StorageUnavailableError (503) while the database is away; the pool reconnects on its own when
 * it is back. A lost connection never crashes the process. Passwords never reach messages.
 */
import pg from 'pg';
import { ConfigError, InvalidInputError, StorageUnavailableError, ZtpError } from '../../errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, requireCurrentSchema } from '../migrations.js';
import {
  stepFor,
  type Database,
  type PgQueryable,
  type PgResult,
  type Step,
  type StepResults,
} from '../unit-of-work.js';
import { WriteHealth } from '../write-health.js';

export interface PostgresOptions {
  /** Connections in the pool (per process). */
  poolSize?: number;
  /** Server-side statement timeout in ms; the client gives up 1 s later (dead network). */
  statementTimeout?: number;
  /** Longest wait for a connection (new or from the busy pool) in ms. */
  connectTimeout?: number;
  /** Told about connections lost while idle (the pool replaces them); must not throw. */
  onConnectionError?: (message: string) => void;
  /**
   * The registry must exist already (`ztp export`): a database without the current ztp schema
   * is refused instead of migrated.
   */
  existing?: boolean;
}

export const POSTGRES_DEFAULTS = { poolSize: 10, statementTimeout: 5000, connectTimeout: 5000 };

/** Key of the advisory lock that serialises migrations of replicas starting together. */
const MIGRATION_LOCK = 0x7a7470; // 'ztp'

/**
 * SQLSTATEs that say the database takes no writes at all (a read-only database or standby,
 * revoked rights, a full disk, I/O errors), as opposed to one write's own failure: they make the
 * database unready.
 */
const WRITE_FAILURE_CODES = new Set(['25006', '42501', '53100', '58030']);

function isWriteFailure(e: unknown): boolean {
  return e instanceof pg.DatabaseError && WRITE_FAILURE_CODES.has(e.code ?? '');
}

type Queryable = PgQueryable;

interface Pending {
  /** A device id: a batch runs its units in this order (see lock order above). */
  key: string;
  /**
   * The write: either a function of the connection, or (cheaper) its statements as one
   * simple-protocol text and a function of their results, which the batch sends in a single
   * round trip together with the savepoint commands around it.
   */
  run: { fn: (c: Queryable) => Promise<unknown> } | SqlWrite;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface SqlWrite {
  sql: string;
  /** How many statements `sql` holds: the batch hands `parse` exactly their results. */
  statements: number;
  parse: (results: PgResult[]) => unknown;
}

/** A simple-protocol query of one or more statements: their results, one per statement. */
async function simpleQuery(client: Queryable, text: string): Promise<PgResult[]> {
  const r = (await client.query(text)) as unknown as PgResult | PgResult[];
  return Array.isArray(r) ? r : [r];
}

/** How many commands a text of our own savepoint/transaction commands holds ('' has none). */
function commandCount(commands: string): number {
  return commands === '' ? 0 : commands.split(';').length;
}

/** Joins command texts, skipping empty ones. */
function commands(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('; ');
}

/** Replaces the password (and the whole userinfo of any URL) in a text. */
export function redactSecrets(text: string, password?: string): string {
  let out = text.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
  if (password) out = out.split(password).join('***');
  return out;
}

/** Parses and checks the URL without ever echoing it (Node's URL errors carry the input). */
function parseUrl(url: string): { password: string; database: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`database URL '${redactSecrets(url)}' is not a valid URL`);
  }
  try {
    const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
    return { password: decodeURIComponent(u.password), database };
  } catch {
    throw new ConfigError(`database URL '${redactSecrets(url)}' has a malformed %-escape`);
  }
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Writes per round trip of runAtOnce: the client gives up on a query after the statement timeout
 * plus one second (a lost network), so one query must stay far below that even when PostgreSQL
 * is slow; 64 registrations take ~60 ms here.
 */
const WRITES_PER_TRIP = 64;

/**
 * A batch of SQL-text writes in as few round trips as it takes: BEGIN, every write's statements
 * (WRITES_PER_TRIP per query), COMMIT. No savepoints: if anything fails, the whole transaction is
 * rolled back and undefined returned, and the batch runs again write by write (runOneByOne),
 * where the failure stays with its write. So a failing write goes through the database twice: a
 * write that fails by statement timeout is answered after up to twice that timeout.
 * Connection-level failures (no SQLSTATE) throw.
 */
async function runAtOnce(
  client: Queryable,
  items: (Pending & { run: SqlWrite })[],
): Promise<Outcome[] | undefined> {
  const outcomes: Outcome[] = [];
  for (let from = 0; from < items.length; from += WRITES_PER_TRIP) {
    const trip = items.slice(from, from + WRITES_PER_TRIP);
    const first = from === 0;
    const last = from + WRITES_PER_TRIP >= items.length;
    const text = [
      ...(first ? ['BEGIN'] : []),
      ...trip.map((i) => i.run.sql),
      ...(last ? ['COMMIT'] : []),
    ].join(';\n');
    let results: PgResult[];
    try {
      results = await simpleQuery(client, text);
    } catch (error) {
      if (!(error instanceof pg.DatabaseError)) throw error;
      await client.query('ROLLBACK');
      return undefined;
    }
    let at = first ? 1 : 0; // after BEGIN's result
    for (const i of trip) {
      outcomes.push({ ok: true, value: i.run.parse(results.slice(at, (at += i.run.statements))) });
    }
  }
  return outcomes;
}

/**
 * A batch write by write. A batch of one needs no savepoint: its failure is the transaction's.
 * Otherwise each write runs inside savepoint w, which is open between writes (a failed write
 * rolls back to it). `owed` holds the commands due before the next write's statements; a write
 * given as SQL text takes them, and its own closing commands, in the round trip of its
 * statements.
 */
async function runOneByOne(client: Queryable, items: Pending[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const single = items.length === 1;
  const close = single ? 'COMMIT' : 'RELEASE SAVEPOINT w; SAVEPOINT w';
  let owed = single ? 'BEGIN' : 'BEGIN; SAVEPOINT w';
  for (const item of items) {
    try {
      if ('sql' in item.run) {
        const lead = commandCount(owed);
        const text = commands(owed, item.run.sql, close);
        owed = '';
        const results = await simpleQuery(client, text);
        const value = item.run.parse(results.slice(lead, lead + item.run.statements));
        outcomes.push({ ok: true, value });
      } else {
        if (owed !== '') await client.query(owed);
        owed = '';
        outcomes.push({ ok: true, value: await item.run.fn(client) });
        owed = close;
      }
    } catch (error) {
      // Connection-level failures (no SQLSTATE) fail the whole batch (the caller).
      if (!(error instanceof ZtpError) && !(error instanceof pg.DatabaseError)) throw error;
      await client.query(single ? 'ROLLBACK' : 'ROLLBACK TO SAVEPOINT w');
      owed = '';
      outcomes.push({ ok: false, error });
    }
  }
  // Single: COMMIT went with the write's statements, or is owed after its function, or the
  // write failed and was rolled back (nothing owed).
  if (!single) await client.query(commands(owed, 'COMMIT'));
  else if (owed !== '') await client.query(owed);
  return outcomes;
}

export async function openPostgresDatabase(
  url: string,
  opts: PostgresOptions = {},
): Promise<PostgresDatabase> {
  const db = new PostgresDatabase(url, opts);
  try {
    if (opts.existing === true) await db.requireCurrentSchema();
    else await db.migrate();
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}

export class PostgresDatabase implements Database {
  readonly engine = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly password: string;
  private readonly statementTimeout: number;
  private readonly connectTimeout: number;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  private readonly maxBatches: number;
  private idle: (() => void)[] = [];
  private closed = false;
  /**
   * Why the last write batch could not write, until one does: readiness (ping()) fails
   * meanwhile, and a probe write runs every few seconds.
   */
  private readonly writeHealth = new WriteHealth(() => {
    // A real row update (WAL and all), of the newest schema_version row, through the batch path;
    // a failure reschedules the probe (writeFailed).
    this.write('', async (c) => {
      await c.query(
        'UPDATE schema_version SET version = version WHERE version = (SELECT max(version) FROM schema_version)',
      );
    }).catch(() => undefined);
  });
  private readonly connectedAt = new WeakMap<pg.PoolClient, number>();

  constructor(
    private readonly url: string,
    opts: PostgresOptions = {},
  ) {
    const { password } = parseUrl(url);
    this.password = password;
    const poolSize = opts.poolSize ?? POSTGRES_DEFAULTS.poolSize;
    this.statementTimeout = opts.statementTimeout ?? POSTGRES_DEFAULTS.statementTimeout;
    this.connectTimeout = opts.connectTimeout ?? POSTGRES_DEFAULTS.connectTimeout;
    // Leave connections for reads and claims while batches commit.
    this.maxBatches = Math.max(1, Math.floor(poolSize / 2));
    this.pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: this.connectTimeout,
      statement_timeout: this.statementTimeout,
      query_timeout: this.statementTimeout + 1000,
      // A replica that stops mid-transaction must not hold row locks for long.
      idle_in_transaction_session_timeout: Math.max(10_000, 2 * this.statementTimeout),
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'ztp',
    });
    const report = opts.onConnectionError ?? (() => undefined);
    // An idle connection that dies (database restarted) is removed by the pool, which then
    // emits 'error'; without a listener that would crash the process.
    this.pool.on('error', (err) => report(this.redact(err.message)));
    // A checked-out connection has no pool listener; its errors surface through its queries.
    this.pool.on('connect', (client) => {
      client.on('error', () => undefined);
      this.connectedAt.set(client, Date.now());
    });
  }

  private redact(text: string): string {
    return redactSecrets(text, this.password);
  }

  /** Maps an engine error to StorageUnavailableError with a redacted cause; domain errors pass. */
  unavailable(e: unknown, what: string): Error {
    if (e instanceof ZtpError) return e;
    const err = e as { message?: unknown; code?: unknown };
    const cause = new Error(this.redact(String(err.message ?? e)));
    if (typeof err.code === 'string') Object.assign(cause, { code: err.code });
    return new StorageUnavailableError(what, cause);
  }

  // ---- migrations --------------------------------------------------------------------------

  /** Applies pending migrations under an advisory lock (replicas may start together). */
  async migrate(): Promise<void> {
    // Its own connection, without the pool's timeouts: waiting for another replica's migration
    // (at the advisory lock) is expected.
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: this.connectTimeout,
      application_name: 'ztp-migrate',
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw this.unavailable(e, `cannot connect to PostgreSQL: ${this.redact(errText(e))}`);
    }
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        // Checked first: CREATE ... IF NOT EXISTS would need the CREATE privilege on every start.
        const exists = await client.query<{ t: string | null }>(
          "SELECT to_regclass('schema_version')::text AS t",
        );
        if (exists.rows[0]?.t == null)
          await client.query('CREATE TABLE schema_version (version INTEGER NOT NULL)');
        const { rows } = await client.query<{ v: number | null }>(
          'SELECT max(version) AS v FROM schema_version',
        );
        const current = rows[0]?.v ?? 0;
        if (current > LATEST_SCHEMA_VERSION) {
          throw new ConfigError(
            `the database schema is version ${current}, newer than this build (${LATEST_SCHEMA_VERSION}); upgrade ztp`,
          );
        }
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.postgres);
            await client.query('INSERT INTO schema_version (version) VALUES ($1)', [m.version]);
            await client.query('COMMIT');
          } catch (e) {
            await client.query('ROLLBACK');
            throw e;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw this.unavailable(e, `cannot migrate the PostgreSQL schema: ${this.redact(errText(e))}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Refuses a database without the current ztp schema; changes nothing (see `existing`). */
  async requireCurrentSchema(): Promise<void> {
    let version: number | undefined;
    try {
      const { rows } = await this.pool.query<{ t: string | null }>(
        "SELECT to_regclass('schema_version')::text AS t",
      );
      if (rows[0]?.t != null) {
        const applied = await this.pool.query<{ v: number | null }>(
          'SELECT max(version) AS v FROM schema_version',
        );
        version = applied.rows[0]?.v ?? undefined;
      }
    } catch (e) {
      throw this.unavailable(e, `cannot read the PostgreSQL schema: ${this.redact(errText(e))}`);
    }
    requireCurrentSchema(version, `the PostgreSQL database '${parseUrl(this.url).database}'`);
  }

  // ---- group commit ------------------------------------------------------------------------

  /** Runs `fn` inside the next group-committed transaction; resolves after COMMIT. */
  write<T>(key: string, fn: (c: PgQueryable) => Promise<T>): Promise<T> {
    return this.enqueue(key, { fn }) as Promise<T>;
  }

  /**
   * Runs `statements` (values inlined, so simple protocol) inside the next group-committed
   * transaction, sent together with the rest of the batch (runAtOnce) or at least in one round
   * trip with the savepoint commands around them (runOneByOne); resolves with `parse` of their
   * results after COMMIT. `parse` runs once the statements have taken effect, so it must not
   * throw (a failure belongs in the SQL).
   */
  writeSql<T>(key: string, statements: readonly string[], parse: (r: PgResult[]) => T): Promise<T> {
    const sql = statements.join(';\n');
    return this.enqueue(key, { sql, statements: statements.length, parse }) as Promise<T>;
  }

  /**
   * Runs the steps in one unit of the next group commit (Transactor). Steps given as statements
   * only are one statement text, so a registration keeps its single round trip; otherwise they
   * run one after the other on the batch's connection.
   */
  commit<const S extends readonly Step<unknown>[]>(key: string, steps: S): Promise<StepResults<S>> {
    let pgSteps;
    try {
      pgSteps = steps.map((s) => stepFor('postgres', s));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (pgSteps.every((s) => 'statements' in s)) {
      const all = pgSteps.flatMap((s) => s.statements);
      return this.writeSql(key, all, (results) => {
        let at = 0;
        return pgSteps.map((s) => s.parse(results.slice(at, (at += s.statements.length))));
      }) as Promise<StepResults<S>>;
    }
    return this.write(key, async (c) => {
      const out: unknown[] = [];
      for (const s of pgSteps) {
        if ('run' in s) out.push(await s.run(c));
        else out.push(s.parse(await simpleQuery(c, s.statements.join(';\n'))));
      }
      return out;
    }) as Promise<StepResults<S>>;
  }

  private enqueue(key: string, run: Pending['run']): Promise<unknown> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('storage is closed'));
    return new Promise<unknown>((resolve, reject) => {
      this.queue.push({ key, run, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Starts a batch with everything queued, unless the batch slots are all busy. */
  private flush(): void {
    if (this.queue.length === 0 || this.inFlight >= this.maxBatches) return;
    const batch = this.queue;
    this.queue = [];
    this.inFlight++;
    void this.runBatch(batch).finally(() => {
      this.inFlight--;
      this.flush();
      if (this.inFlight === 0 && this.queue.length === 0) {
        for (const done of this.idle.splice(0)) done();
      }
    });
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    // Stable sort: writes of one device keep their arrival order.
    const ordered = [...batch].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let client: pg.PoolClient;
    try {
      client = await this.writeConnection();
    } catch (e) {
      const failure = this.unavailable(
        e,
        'the database is unreachable; nothing was stored, retry later',
      );
      for (const item of ordered) item.reject(failure);
      return;
    }
    let outcomes: Outcome[] | undefined;
    try {
      const sqlOnly = ordered.every(
        (item): item is Pending & { run: SqlWrite } => 'sql' in item.run,
      );
      if (sqlOnly && ordered.length > 1) outcomes = await runAtOnce(client, ordered);
      outcomes ??= await runOneByOne(client, ordered);
    } catch (error) {
      // Destroy the connection: whatever state it is in, its transaction is abandoned.
      client.release(error instanceof Error ? error : new Error(String(error)));
      const failure = this.unavailable(
        error,
        'the write could not be committed; nothing was stored',
      );
      for (const item of ordered) item.reject(failure);
      return;
    }
    const refused = outcomes.find((o) => !o.ok && isWriteFailure(o.error));
    if (refused && !refused.ok) {
      // Its session may be what refuses (default_transaction_read_only): do not reuse it.
      client.release(new Error('the database refused a write'));
      this.writeFailed(refused.error);
    } else {
      client.release();
      if (outcomes.some((o) => o.ok)) this.writeSucceeded();
    }
    ordered.forEach((item, i) => {
      const o = outcomes[i]!;
      if (o.ok) item.resolve(o.value);
      else item.reject(this.unavailable(o.error, 'the write failed; nothing was stored'));
    });
  }

  /** A read (or an autocommit statement) on any pooled connection. */
  async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new StorageUnavailableError('storage is closed');
    try {
      return await this.pool.query<R>(text, values);
    } catch (e) {
      throw this.unavailable(e, 'the database is unreachable, retry later');
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * A pooled connection for a write batch. While writes fail, not a session that started while
   * the database was read-only (default_transaction_read_only: a session keeps the default it
   * started with even once it is lifted); a connection opened now reflects the current setting.
   */
  private async writeConnection(): Promise<pg.PoolClient> {
    if (this.writeHealth.failure === undefined) return this.pool.connect();
    const since = Date.now();
    for (;;) {
      const client = await this.pool.connect();
      if ((this.connectedAt.get(client) ?? 0) >= since) return client;
      let readOnly: boolean;
      try {
        const { rows } = await client.query<{ ro: string }>(
          "SELECT current_setting('default_transaction_read_only') AS ro",
        );
        readOnly = rows[0]?.ro === 'on';
      } catch (e) {
        client.release(e instanceof Error ? e : new Error(String(e)));
        throw e;
      }
      if (!readOnly) return client;
      client.release(new Error('a session opened while the database was read-only'));
    }
  }

  private writeFailed(error: unknown): void {
    if (!this.closed)
      this.writeHealth.failed(this.redact(error instanceof Error ? error.message : String(error)));
  }

  private writeSucceeded(): void {
    this.writeHealth.succeeded();
  }

  /**
   * Ready when the database answers and the last write batch could write. Never writes itself:
   * while writes fail, a probe write every WRITE_PROBE_INTERVAL_MS finds out when they can again.
   */
  async ping(): Promise<void> {
    await this.query('SELECT 1');
    const { failure, intervalMs } = this.writeHealth;
    if (failure !== undefined)
      throw new StorageUnavailableError(
        `the database takes no writes (${failure}); retried every ${intervalMs} ms`,
      );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let writes already queued commit before the connections go.
    this.flush();
    if (this.inFlight > 0 || this.queue.length > 0) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    this.closed = true;
    this.writeHealth.stop();
    await this.pool.end();
  }

  /** For logs: the URL with its password replaced. */
  toString(): string {
    return `PostgresDatabase(${redactSecrets(this.url, this.password)})`;
  }
}

/** A string as an SQL literal (standard_conforming_strings or not). */
export function lit(value: string): string {
  return pg.escapeLiteral(value);
}

/** An integer as SQL text; anything else is a bug, never inlined. */
export function int(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer: ${value}`);
  return String(value);
}

/** PostgreSQL text cannot hold NUL: refuse it as bad input (400), not as a storage failure. */
export function refuseNul(...values: string[]): void {
  if (values.some((v) => v.includes('\u0000')))
    throw new InvalidInputError('invalid_body', 'text must not contain NUL (\\u0000) characters');
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
