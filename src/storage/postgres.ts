/**
 * PostgreSQL store (pg): several stateless `ztp serve` replicas on one database.
 *
 * Same contract and the same group commit as the SQLite store: every write that arrives within
 * one event-loop turn runs in one transaction on one pooled connection, and all of them are
 * answered after the single COMMIT. Registrations and trigger outcomes are SQL text with their
 * values inlined, so a batch made only of them goes to the server in one round trip per 64
 * writes, BEGIN and COMMIT included. If any statement of it fails, that transaction is rolled back and the batch
 * runs again write by write, each write inside its own SAVEPOINT, so one failing write cannot
 * fail the others. A failed commit rejects the whole batch with StorageUnavailableError.
 *
 * Lock order: every write touches the rows of exactly one device (its device row, history rows
 * and triggers), and a batch runs its writes sorted by device id. Two transactions therefore
 * take row locks in the same global order, so batches of different replicas cannot deadlock.
 * A registration first upserts the device row (which serialises concurrent registrations of
 * that device across replicas), then — in a new statement, so with a fresh snapshot — records
 * history and coalesces into the device's waiting trigger.
 *
 * Claims run as one autocommit statement with `FOR UPDATE SKIP LOCKED`: dispatchers of several
 * replicas never wait on each other and never claim the same trigger, and a device's newer
 * trigger is only claimable once its older one is finished (per-device order).
 *
 * Failure: connection and statement timeouts make every call fail fast with
 * StorageUnavailableError (503) while the database is away; the pool reconnects on its own when
 * it is back. A lost connection never crashes the process. Passwords never reach messages.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  ConfigError,
  DeviceNotFoundError,
  InvalidInputError,
  StorageUnavailableError,
  ZtpError,
} from '../errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, requireCurrentSchema } from './migrations.js';
import {
  byDueTime,
  claimedTriggerFromRow,
  completionParams,
  deviceFromRow,
  deviceWithTriggerFromRow,
  triggerFromRow,
  type DeviceRow,
  type DeviceWithTriggerRow,
  type TriggerRow,
} from './rows.js';
import {
  COUNT_DEVICES_BY_TRIGGER_SQL,
  devicePageOrder,
  latestTriggerSql,
  latestTriggerStateSql,
  likePattern,
  PRUNABLE_TRIGGER,
  recentTriggersSql,
  withLatestTriggerSql,
} from './sql.js';
import { WriteHealth } from './write-health.js';
import type {
  ClaimedTrigger,
  Device,
  DeviceFields,
  DeviceQuery,
  DeviceWithLatestTrigger,
  HistoryEntry,
  RegisterOptions,
  RegisterResult,
  Registration,
  Store,
  Trigger,
  TriggerCounts,
  TriggerOutcome,
  TriggerState,
} from './store.js';

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
  /**
   * This replica's stable identity (the same across its restarts, different from every other
   * live replica's): its lease tokens carry it, so that releaseStaleLeases() can release the
   * leases of its own previous incarnation. Without it leases wait for --trigger-lease.
   */
  instanceId?: string;
}

export const POSTGRES_DEFAULTS = { poolSize: 10, statementTimeout: 5000, connectTimeout: 5000 };

/** Key of the advisory lock that serialises migrations of replicas starting together. */
const MIGRATION_LOCK = 0x7a7470; // 'ztp'

/**
 * SQLSTATEs that say the database takes no writes at all (a read-only database or standby,
 * revoked rights, a full disk, I/O errors), as opposed to one write's own failure: they make the
 * store unready.
 */
const WRITE_FAILURE_CODES = new Set(['25006', '42501', '53100', '58030']);

function isWriteFailure(e: unknown): boolean {
  return e instanceof pg.DatabaseError && WRITE_FAILURE_CODES.has(e.code ?? '');
}

/** Trigger ids per pruning statement. */
const PRUNE_WINDOW = 5000;

/** An older pending trigger of the same device (per-device order); uses triggers_device. */
const OLDER_PENDING = `SELECT 1 FROM triggers o
  WHERE o.device_id = t.device_id AND o.state = 'pending' AND o.id < t.id`;

type Queryable = Pick<pg.PoolClient, 'query'>;

interface Pending {
  /** Device id: a batch runs its writes in this order (see lock order above). */
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
  parse: (results: pg.QueryResult[]) => unknown;
}

/** A simple-protocol query of one or more statements: their results, one per statement. */
async function simpleQuery(client: Queryable, text: string): Promise<pg.QueryResult[]> {
  const r = (await client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
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
    let results: pg.QueryResult[];
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

export async function openPostgresStore(
  url: string,
  opts: PostgresOptions = {},
): Promise<PostgresStore> {
  const store = new PostgresStore(url, opts);
  try {
    if (opts.existing === true) await store.requireCurrentSchema();
    else await store.migrate();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
}

export class PostgresStore implements Store {
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
  /** Lease-token prefix: instance id and this process's incarnation (see leaseToken()). */
  private readonly instancePrefix: string | undefined;
  private readonly incarnationPrefix: string | undefined;

  constructor(
    private readonly url: string,
    opts: PostgresOptions = {},
  ) {
    const { password } = parseUrl(url);
    this.password = password;
    if (opts.instanceId !== undefined) {
      // A space never occurs in an instance id (config.ts), so no id is a prefix of another's.
      this.instancePrefix = `${opts.instanceId} `;
      this.incarnationPrefix = `${this.instancePrefix}${randomUUID()} `;
    }
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
  private unavailable(e: unknown, what: string): Error {
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
  private write<T>(key: string, fn: (c: Queryable) => Promise<T>): Promise<T> {
    return this.enqueue(key, { fn }) as Promise<T>;
  }

  /**
   * Runs `statements` (values inlined, so simple protocol) inside the next group-committed
   * transaction, sent together with the rest of the batch (runAtOnce) or at least in one round
   * trip with the savepoint commands around them (runOneByOne); resolves with `parse` of their
   * results after COMMIT. `parse` runs once the statements have taken effect, so it must not
   * throw (a failure belongs in the SQL).
   */
  private writeSql<T>(
    key: string,
    statements: string[],
    parse: (r: pg.QueryResult[]) => T,
  ): Promise<T> {
    const sql = statements.join(';\n');
    return this.enqueue(key, { sql, statements: statements.length, parse }) as Promise<T>;
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
  private async query<R extends pg.QueryResultRow>(
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

  // ---- devices -----------------------------------------------------------------------------

  /**
   * Statements of one simple-protocol text (values inlined as escaped literals; see writeSql),
   * each still a statement of its own, so the ones after the device upsert — which takes the
   * device's row lock — see what other transactions committed meanwhile.
   */
  async register(reg: Registration, opts: RegisterOptions): Promise<RegisterResult> {
    refuseNul(reg.id, reg.ip, reg.name, reg.userdata, reg.source);
    const id = lit(reg.id);
    const at = int(reg.at);
    const sql = [
      `INSERT INTO devices AS d (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
       VALUES (${id}, ${lit(reg.ip)}, ${lit(reg.name)}, ${lit(reg.userdata)}, ${at}, ${at}, ${at}, 1, ${lit(reg.source)})
       ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, name = EXCLUDED.name, userdata = EXCLUDED.userdata,
         last_seen = EXCLUDED.last_seen, updated_at = EXCLUDED.updated_at,
         registrations = d.registrations + 1, last_source = EXCLUDED.last_source
       RETURNING d.*, (d.xmax = 0) AS created`,
    ];
    if (opts.historyLimit > 0) {
      sql.push(
        `INSERT INTO history (device_id, seq, at, ip, source)
         SELECT id, registrations, ${at}, ${lit(reg.ip)}, ${lit(reg.source)} FROM devices WHERE id = ${id}
         ON CONFLICT (device_id, seq) DO UPDATE SET at = EXCLUDED.at, ip = EXCLUDED.ip, source = EXCLUDED.source`,
        `DELETE FROM history WHERE device_id = ${id}
           AND seq <= (SELECT registrations FROM devices WHERE id = ${id}) - ${int(opts.historyLimit)}`,
      );
    }
    if (opts.enqueueTrigger) sql.push(enqueueTriggerSql(id, lit(reg.ip), lit(randomUUID()), at));
    return await this.writeSql(reg.id, sql, (results) => {
      const row = results[0]!.rows[0] as DeviceRow & { created: boolean };
      const result: RegisterResult = { created: row.created, device: deviceFromRow(row) };
      if (opts.enqueueTrigger)
        result.trigger = triggerFromRow(results.at(-1)!.rows[0] as TriggerRow);
      return result;
    });
  }

  get(id: string): Promise<Device> {
    return this.query<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]).then(({ rows }) => {
      if (!rows[0]) throw new DeviceNotFoundError(id);
      return deviceFromRow(rows[0]);
    });
  }

  async edit(id: string, fields: DeviceFields, at: number): Promise<Device> {
    refuseNul(fields.ip, fields.name, fields.userdata);
    return await this.write(id, async (c) => {
      const { rows } = await c.query<DeviceRow>(
        'UPDATE devices SET ip = $2, name = $3, userdata = $4, updated_at = $5 WHERE id = $1 RETURNING *',
        [id, fields.ip, fields.name, fields.userdata, at],
      );
      if (!rows[0]) throw new DeviceNotFoundError(id);
      return deviceFromRow(rows[0]);
    });
  }

  delete(id: string): Promise<Device> {
    return this.write(id, async (c) => {
      const { rows } = await c.query<DeviceRow>(
        `WITH h AS (DELETE FROM history WHERE device_id = $1)
         DELETE FROM devices WHERE id = $1 RETURNING *`,
        [id],
      );
      if (!rows[0]) throw new DeviceNotFoundError(id);
      return deviceFromRow(rows[0]);
    });
  }

  async listIds(after: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.query<{ id: string }>(
      'SELECT id FROM devices WHERE id > $1 ORDER BY id LIMIT $2',
      [after ?? '', limit],
    );
    return rows.map((r) => r.id);
  }

  async queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (q.search) {
      params.push(likePattern(q.search));
      conditions.push(
        `(lower(id) LIKE $${params.length} ESCAPE '\\' OR lower(name) LIKE $${params.length} ESCAPE '\\' OR lower(ip) LIKE $${params.length} ESCAPE '\\')`,
      );
    }
    if (q.triggerState) {
      params.push(q.triggerState);
      conditions.push(latestTriggerStateSql(`$${params.length}`));
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const n = params.length;
    const page = `SELECT *, count(*) OVER () AS total FROM devices ${where}
       ORDER BY ${devicePageOrder(q)} LIMIT $${n + 1} OFFSET $${n + 2}`;
    const { rows } = await this.query<DeviceWithTriggerRow & { total: string }>(
      withLatestTriggerSql(page, devicePageOrder(q, 'page')),
      [...params, q.limit, q.offset],
    );
    let total = rows[0] ? Number(rows[0].total) : 0;
    if (!rows[0] && q.offset > 0) {
      const counted = await this.query<{ n: string }>(
        `SELECT count(*) AS n FROM devices ${where}`,
        params,
      );
      total = Number(counted.rows[0]!.n);
    }
    return { total, items: rows.map(deviceWithTriggerFromRow) };
  }

  async countDevices(): Promise<number> {
    const { rows } = await this.query<{ n: string }>('SELECT count(*) AS n FROM devices');
    return Number(rows[0]!.n);
  }

  async countSeenSince(since: number): Promise<number> {
    const { rows } = await this.query<{ n: string }>(
      'SELECT count(*) AS n FROM devices WHERE last_seen >= $1',
      [since],
    );
    return Number(rows[0]!.n);
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const { rows } = await this.query<{ at: string; ip: string; source: string }>(
      'SELECT at, ip, source FROM history WHERE device_id = $1 ORDER BY seq DESC',
      [id],
    );
    return rows.map((r) => ({ at: Number(r.at), ip: r.ip, source: r.source }));
  }

  async importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'> {
    refuseNul(device.id, device.ip, device.name, device.userdata, device.lastSource);
    return await this.write(device.id, async (c) => {
      const { rows } = await c.query<{ created: boolean }>(
        `INSERT INTO devices AS d (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, name = EXCLUDED.name, userdata = EXCLUDED.userdata,
           first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, updated_at = EXCLUDED.updated_at,
           registrations = EXCLUDED.registrations, last_source = EXCLUDED.last_source
         RETURNING (d.xmax = 0) AS created`,
        [
          device.id,
          device.ip,
          device.name,
          device.userdata,
          device.firstSeen,
          device.lastSeen,
          device.updatedAt,
          device.registrations,
          device.lastSource,
        ],
      );
      // Two statements: in one (a DELETE in a WITH), the INSERT would not see the deletion and
      // a replaced device's (device_id, seq) keys would collide with its old rows.
      await c.query('DELETE FROM history WHERE device_id = $1', [device.id]);
      // history is newest first; seq counts down from the registration count.
      await c.query(
        `INSERT INTO history (device_id, seq, at, ip, source)
         SELECT $1, s, a, i, src FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) AS h(s, a, i, src)`,
        [
          device.id,
          history.map((_, i) => device.registrations - i),
          history.map((h) => h.at),
          history.map((h) => h.ip),
          history.map((h) => h.source),
        ],
      );
      return rows[0]!.created ? 'created' : 'replaced';
    });
  }

  // ---- triggers ----------------------------------------------------------------------------

  requeueTrigger(id: string, at: number): Promise<Trigger> {
    return this.write(id, async (c) => {
      // FOR UPDATE: the same lock a registration takes, so the device's trigger rows are ours.
      const { rows } = await c.query<{ ip: string }>(
        'SELECT ip FROM devices WHERE id = $1 FOR UPDATE',
        [id],
      );
      if (!rows[0]) throw new DeviceNotFoundError(id);
      return enqueueTrigger(c, id, rows[0].ip, at);
    });
  }

  async claimTriggers(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    const { rows } = await this.query<TriggerRow>(
      `UPDATE triggers SET lease_until = $1, lease_token = $2, attempts = attempts + 1, updated_at = $3
       WHERE id IN (
         SELECT t.id FROM triggers t
         WHERE t.state = 'pending' AND t.next_attempt_at <= $3 AND (t.lease_until IS NULL OR t.lease_until < $3)
           AND NOT EXISTS (${OLDER_PENDING})
         ORDER BY t.next_attempt_at, t.id LIMIT $4
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [now + leaseMs, `${this.incarnationPrefix ?? ''}${randomUUID()}`, now, limit],
    );
    return rows.map(claimedTriggerFromRow).sort(byDueTime);
  }

  completeTrigger(trigger: ClaimedTrigger, outcome: TriggerOutcome): Promise<boolean> {
    const p = completionParams(trigger, outcome);
    // Inlined values: one round trip within the batch (writeSql), as for a registration.
    const sql = `UPDATE triggers SET state = ${lit(p.state)}, next_attempt_at = ${int(p.nextAttemptAt)},
        last_error = ${p.error === null ? 'NULL' : lit(p.error)},
        delivered_at = ${p.deliveredAt === null ? 'NULL' : int(p.deliveredAt)},
        lease_until = NULL, lease_token = NULL, updated_at = ${int(p.at)}
      WHERE id = ${int(p.id)} AND lease_token = ${lit(p.token)}`;
    return this.writeSql(trigger.deviceId, [sql], (results) => results[0]?.rowCount === 1);
  }

  /**
   * Leases whose token carries this instance id but not this process's incarnation were taken
   * by a previous run of this replica, which is dead: nobody will complete them.
   */
  async releaseStaleLeases(): Promise<number> {
    if (this.instancePrefix === undefined || this.incarnationPrefix === undefined) return 0;
    const { rowCount } = await this.query(
      `UPDATE triggers SET lease_until = NULL, lease_token = NULL
       WHERE state = 'pending' AND lease_token IS NOT NULL
         AND left(lease_token, length($1)) = $1 AND left(lease_token, length($2)) <> $2`,
      [this.instancePrefix, this.incarnationPrefix],
    );
    return rowCount ?? 0;
  }

  async latestTrigger(deviceId: string): Promise<Trigger | undefined> {
    const { rows } = await this.query<TriggerRow>(latestTriggerSql('$1'), [deviceId]);
    return rows[0] ? triggerFromRow(rows[0]) : undefined;
  }

  async recentTriggers(deviceId: string, limit: number): Promise<Trigger[]> {
    const { rows } = await this.query<TriggerRow>(recentTriggersSql('$1', '$2'), [deviceId, limit]);
    return rows.map(triggerFromRow);
  }

  async listTriggers(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    const { rows } = state
      ? await this.query<TriggerRow>(
          'SELECT * FROM triggers WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3',
          [state, afterId ?? 0, limit],
        )
      : await this.query<TriggerRow>('SELECT * FROM triggers WHERE id > $1 ORDER BY id LIMIT $2', [
          afterId ?? 0,
          limit,
        ]);
    return rows.map(triggerFromRow);
  }

  async countTriggers(): Promise<TriggerCounts> {
    const { rows } = await this.query<{ state: TriggerState; n: string }>(
      'SELECT state, count(*) AS n FROM triggers GROUP BY state',
    );
    const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
    for (const r of rows) counts[r.state] = Number(r.n);
    return counts;
  }

  async countDevicesByTrigger(): Promise<TriggerCounts> {
    const { rows } = await this.query<{ state: TriggerState; n: string }>(
      COUNT_DEVICES_BY_TRIGGER_SQL,
    );
    const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
    for (const r of rows) counts[r.state] = Number(r.n);
    return counts;
  }

  /**
   * Deletes in windows of PRUNE_WINDOW ids, each its own short autocommit statement, so pruning
   * a large table never runs into the statement timeout. Finished triggers only: no write of a
   * batch touches them, so pruning never waits on (or blocks) registrations.
   */
  async pruneTriggers(before: number): Promise<number> {
    const { rows } = await this.query<{ m: string | null }>('SELECT max(id) AS m FROM triggers');
    const max = Number(rows[0]?.m ?? 0);
    let deleted = 0;
    let after = 0;
    while (after < max) {
      const end = await this.query<{ id: string }>(
        `SELECT id FROM triggers WHERE id > $1 ORDER BY id LIMIT 1 OFFSET ${PRUNE_WINDOW - 1}`,
        [after],
      );
      const upto = end.rows[0] ? Number(end.rows[0].id) : max;
      const r = await this.query(
        `DELETE FROM triggers t WHERE t.id > $1 AND t.id <= $2 AND t.updated_at < $3 AND ${PRUNABLE_TRIGGER}`,
        [after, upto, before],
      );
      deleted += r.rowCount ?? 0;
      after = upto;
    }
    return deleted;
  }

  async countPendingTriggers(): Promise<number> {
    const { rows } = await this.query<{ n: string }>(
      "SELECT count(*) AS n FROM triggers WHERE state = 'pending'",
    );
    return Number(rows[0]!.n);
  }

  /** Earliest due time among triggers a claim could take now (not leased, not behind an older one). */
  async nextTriggerDue(): Promise<number | undefined> {
    const { rows } = await this.query<{ t: string }>(
      `SELECT t.next_attempt_at AS t FROM triggers t
       WHERE t.state = 'pending' AND t.lease_until IS NULL AND NOT EXISTS (${OLDER_PENDING})
       ORDER BY t.next_attempt_at, t.id LIMIT 1`,
    );
    return rows[0] ? Number(rows[0].t) : undefined;
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
    return `PostgresStore(${redactSecrets(this.url, this.password)})`;
  }
}

/**
 * Coalesces into the device's newest waiting trigger, or inserts a new one; either is made the
 * device's newest, linked to the one before (arguments are SQL literals). The lease condition is
 * repeated outside the subquery so that, if a dispatcher claimed the row meanwhile, the re-check
 * after the row lock skips it and a new trigger is inserted.
 */
function enqueueTriggerSql(deviceId: string, ip: string, key: string, at: string): string {
  const last = `SELECT last_trigger_id FROM devices WHERE id = ${deviceId}`;
  return `WITH c AS (
       UPDATE triggers SET ip = ${ip}, key = ${key}, attempts = 0, created_at = ${at}, next_attempt_at = ${at},
         last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = ${at},
         prev_id = CASE WHEN id IS NOT DISTINCT FROM (${last}) THEN prev_id ELSE (${last}) END
       WHERE id = (SELECT id FROM triggers WHERE device_id = ${deviceId} AND state = 'pending'
                     AND (lease_until IS NULL OR lease_until < ${at}) ORDER BY id DESC LIMIT 1)
         AND state = 'pending' AND (lease_until IS NULL OR lease_until < ${at})
       RETURNING *),
     i AS (
       INSERT INTO triggers (device_id, ip, key, state, attempts, created_at, next_attempt_at, updated_at, prev_id)
       SELECT ${deviceId}, ${ip}, ${key}, 'pending', 0, ${at}, ${at}, ${at}, (${last})
       WHERE NOT EXISTS (SELECT 1 FROM c)
       RETURNING *),
     l AS (UPDATE devices d SET last_trigger_id = n.id FROM (SELECT id FROM c UNION ALL SELECT id FROM i) n
       WHERE d.id = ${deviceId} AND d.last_trigger_id IS DISTINCT FROM n.id)
     SELECT * FROM c UNION ALL SELECT * FROM i`;
}

async function enqueueTrigger(
  c: Queryable,
  deviceId: string,
  ip: string,
  at: number,
): Promise<Trigger> {
  const { rows } = await c.query<TriggerRow>(
    enqueueTriggerSql(lit(deviceId), lit(ip), lit(randomUUID()), int(at)),
  );
  return triggerFromRow(rows[0]!);
}

/** A string as an SQL literal (standard_conforming_strings or not). */
function lit(value: string): string {
  return pg.escapeLiteral(value);
}

/** An integer as SQL text; anything else is a bug, never inlined. */
function int(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer: ${value}`);
  return String(value);
}

/** PostgreSQL text cannot hold NUL: refuse it as bad input (400), not as a storage failure. */
function refuseNul(...values: string[]): void {
  if (values.some((v) => v.includes('\u0000')))
    throw new InvalidInputError('invalid_body', 'text must not contain NUL (\\u0000) characters');
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
