/**
 * The SQLite database (better-sqlite3), the embedded default: the connection every SQLite
 * feature store uses, its migrations and its one group commit. No feature knowledge.
 *
 * Durability: WAL with synchronous=FULL, so a resolved write has been fsync'ed.
 * Throughput: writes are group-committed: every write that arrives within one event-loop turn
 * runs in one transaction (each inside its own SAVEPOINT, so one failing write cannot fail the
 * others), and all of them are answered after the single COMMIT. Reads are synchronous.
 *
 * With `fsyncOffLoop` (the server) the COMMIT itself does not fsync (synchronous=NORMAL): the
 * WAL file is fsync'ed on the libuv thread pool right after it, and the batch's promises resolve
 * only when that fsync has completed, so a resolved write is exactly as durable as with FULL
 * (FULL is "fsync the WAL at every commit"), but the event loop keeps serving requests while
 * the disk flushes. Batches committed while an fsync is in flight share the next one.
 */
import Database from 'better-sqlite3';
import { accessSync, closeSync, constants, existsSync, fsync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, StorageUnavailableError, ZtpError } from '../../errors.js';
import { startCheckpointer, type Checkpointer, type CheckpointerOptions } from '../checkpoint.js';
import { MIGRATIONS, requireCurrentSchema } from '../migrations.js';
import {
  stepFor,
  type Database as AnyDatabase,
  type SqliteStep,
  type Step,
  type StepResults,
} from '../unit-of-work.js';
import { WriteHealth } from '../write-health.js';

/** Longest wait of a lazy write for a batch started by another write (see write()). */
const LAZY_WRITE_MS = 5;

/**
 * Errors that say the database cannot be written at all (read-only file or mount, disk full, I/O
 * error), as opposed to one write's own failure or a busy lock: they make the database unready.
 */
const WRITE_FAILURE = /^SQLITE_(READONLY|FULL|IOERR|CANTOPEN|CORRUPT|NOTADB|PERM)/;

function isWriteFailure(e: unknown): boolean {
  return e instanceof Database.SqliteError && WRITE_FAILURE.test(e.code);
}

interface Pending {
  fn: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** False for trigger bookkeeping, which needs no fsync of its own (see write()). */
  durable: boolean;
}

export interface SqliteDatabaseOptions {
  /** Run automatic WAL checkpoints inside commits (the SQLite default). The server turns this off and checkpoints off the request path. */
  autoCheckpoint?: boolean;
  /**
   * Run WAL checkpoints in a worker thread on its own connection (db/checkpoint.ts) instead
   * of inside commits; implies `autoCheckpoint: false`. Stopped by close().
   */
  backgroundCheckpoint?: boolean | CheckpointerOptions;
  /**
   * Fsync the WAL on the libuv thread pool after each COMMIT instead of inside it (see the top
   * of this file); writes still resolve only after their fsync. The server turns this on.
   */
  fsyncOffLoop?: boolean;
  /**
   * The registry must exist already (`ztp export`): a missing file is refused instead of created,
   * and a file without the current ztp schema instead of migrated.
   */
  existing?: boolean;
  /**
   * The server's database: this process owns the file (an exclusive lock on `<path>-lock`, held
   * until close() or the process's death; a second owner fails to open), so whatever an owner
   * leaves in the file (a trigger lease) was left by a dead process: feature stores repair it on
   * open (onOwnerOpen()). Other connections (export, import) still read and write the file.
   */
  owner?: boolean;
  /**
   * Opens the connection (tests: e.g. read-only, as SQLite itself silently does for a file this
   * process may not write). Default: `new Database(path)`.
   */
  openConnection?: (path: string) => Database.Database;
  /** While writes fail, the interval of probe writes (default WRITE_PROBE_INTERVAL_MS). */
  writeProbeIntervalMs?: number;
}

/** The statements of the group commit itself. */
function controlStatements(db: Database.Database) {
  return {
    totalChanges: db.prepare<[], { n: number }>('SELECT total_changes() AS n'),
    savepoint: db.prepare('SAVEPOINT w'),
    release: db.prepare('RELEASE w'),
    rollbackTo: db.prepare('ROLLBACK TO w'),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
  };
}

/** How a write is committed (see write()). */
export type WriteKind = 'durable' | 'relaxed' | 'lazy';

export class SqliteDatabase implements AnyDatabase {
  readonly engine = 'sqlite' as const;
  /** The connection; replaced by reopen() after the database could not be written. */
  private db: Database.Database;
  /** Prepared statements of feature stores by SQL text, for the current connection. */
  private statements = new Map<string, Database.Statement>();
  private queue: Pending[] = [];
  private flushScheduled = false;
  /** Flushes a queue holding only lazy writes (see write()). */
  private lazyTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private control;
  /** total_changes() after the last committed batch that changed rows. */
  private lastTotalChanges = 0;
  /** backgroundCheckpoint: how to start the worker (started by the first commit, stopped when idle). */
  private checkpointerOptions: CheckpointerOptions | undefined;
  private worker: Checkpointer | undefined;
  private truncateScheduled = false;
  /** RESTART/TRUNCATE checkpoints run on this connection at the worker's request. */
  walTruncations = 0;
  /** fsyncOffLoop: an open descriptor of the WAL file (opened after the first commit). */
  private walFd: number | undefined;
  private readonly offLoop: boolean;
  private fsyncInFlight = false;
  /** fsyncOffLoop: batches committed but waiting for an fsync that started after their COMMIT. */
  private awaitingFsync: { ok: () => void; fail: (e: unknown) => void }[] = [];
  /** fsyncOffLoop: fsyncs of the WAL done so far. */
  walFsyncs = 0;
  /** owner: the connection that holds the owner lock. */
  private ownerLock: Database.Database | undefined;
  /** owner: repairs that could not run on open (the file was not writable); run by the next commit. */
  private repairsPending: (() => void)[] = [];
  /**
   * Why the last write could not commit, until one does: readiness (ping()) fails meanwhile,
   * the next write first reopens the connection, and a probe write runs every few seconds.
   */
  private readonly writeHealth: WriteHealth;
  private readonly openConnection: (path: string) => Database.Database;
  /** SQLite's automatic checkpoints are off (see SqliteDatabaseOptions.autoCheckpoint). */
  private autoCheckpointOff = false;

  constructor(
    readonly path: string,
    opts: SqliteDatabaseOptions = {},
  ) {
    if (opts.existing === true && path !== ':memory:' && !existsSync(path))
      throw new ConfigError(`no SQLite database at '${path}'; check --database`);
    this.openConnection =
      opts.openConnection ??
      // fileMustExist (export): a file removed since the check above is still not created.
      ((p) => new Database(p, { fileMustExist: opts.existing === true }));
    // A failure reschedules the probe (writeFailed); nobody waits for its answer.
    this.writeHealth = new WriteHealth(() => {
      this.write(() => probeWrite(this.db), 'relaxed').catch(() => undefined);
    }, opts.writeProbeIntervalMs);
    let opened: Database.Database | undefined;
    try {
      if (opts.owner === true && path !== ':memory:') this.ownerLock = takeOwnerLock(path);
      this.db = opened = this.openConnection(path);
      // Before any pragma: a file that is not a current ztp registry is left as it was.
      if (opts.existing === true) requireCurrentSchema(schemaVersion(this.db), `'${path}'`);
      const journal = this.db.pragma('journal_mode = WAL', { simple: true }) as string;
      // Off-loop fsync needs a WAL file to fsync (not ':memory:', nor a file system without WAL).
      this.offLoop = opts.fsyncOffLoop === true && journal.toLowerCase() === 'wal';
      const background = opts.backgroundCheckpoint ?? false;
      this.autoCheckpointOff = opts.autoCheckpoint === false || background !== false;
      this.configure(this.db);
      if (opts.existing !== true) migrate(this.db);
      // A WAL left with frames (a crash, or the migrations just applied): the first commit starts
      // the checkpoint worker even if it changes no row, as every commit did before.
      if ((statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0) > 0)
        this.lastTotalChanges = -1;
      if (background !== false) {
        this.checkpointerOptions = {
          ...(background === true ? {} : background),
          // Without the worker the WAL would grow forever: fall back to SQLite's own checkpoints.
          onError: () => {
            this.checkpointerOptions = undefined;
            this.autoCheckpointOff = false;
            if (!this.closed) this.db.pragma('wal_autocheckpoint = 1000');
          },
          onTruncateWanted: () => this.scheduleTruncate('RESTART'),
          // Nothing written for a while and all of it copied: an idle server keeps no worker
          // (a thread with its own V8 heap); the next commit starts it again.
          onIdle: () => {
            const idle = this.worker;
            this.worker = undefined;
            this.scheduleTruncate('TRUNCATE');
            void idle?.stop();
          },
        };
      }
    } catch (e) {
      opened?.close();
      this.ownerLock?.close();
      if (e instanceof ConfigError || e instanceof StorageUnavailableError) throw e;
      throw new StorageUnavailableError(
        `cannot open SQLite database '${path}': ${(e as Error).message}${unwritableReason(path)}`,
        e,
      );
    }
    this.control = controlStatements(this.db);
  }

  /** This process owns the file (SqliteDatabaseOptions.owner). */
  get owner(): boolean {
    return this.ownerLock !== undefined;
  }

  /**
   * Owner only: a repair of what a dead owner left behind (a feature store's, e.g. its leases),
   * run now, or, while the file cannot be written, inside the first commit that can.
   */
  onOwnerOpen(repair: () => void): void {
    if (!this.owner) return;
    try {
      repair();
    } catch (e) {
      // A file it cannot write (yet): serve reads, answer unready, repair with the first commit.
      if (!isWriteFailure(e)) throw asStoreError(e);
      this.repairsPending.push(repair);
      this.writeFailed(e);
    }
  }

  /** Per-connection settings (journal_mode=WAL is the file's, set once in the constructor). */
  private configure(db: Database.Database): void {
    db.pragma(this.offLoop ? 'synchronous = NORMAL' : 'synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    if (this.autoCheckpointOff) db.pragma('wal_autocheckpoint = 0');
  }

  /**
   * A prepared statement of the current connection, prepared once per SQL text. Feature stores
   * call this at each use, not once: a reopen (after a write failure) replaces the connection
   * and clears the cache.
   */
  statement<R = unknown>(sql: string): Database.Statement<unknown[], R> {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s as Database.Statement<unknown[], R>;
  }

  /** The current connection (tests and tools; stores use statement()). */
  get connection(): Database.Database {
    return this.db;
  }

  /** A step of the next group commit (see unit-of-work.ts). */
  step<T>(run: () => T): SqliteStep<T> {
    return { engine: 'sqlite', run };
  }

  /** Runs the steps in one savepoint of the next group commit (Transactor). */
  commit<const S extends readonly Step<unknown>[]>(
    _key: string,
    steps: S,
    kind: WriteKind = 'durable',
  ): Promise<StepResults<S>> {
    return this.write(() => steps.map((s) => stepFor('sqlite', s).run()) as StepResults<S>, kind);
  }

  // ---- group commit ------------------------------------------------------------------------

  /**
   * Runs `fn` inside the next group-committed transaction; resolves after COMMIT.
   *
   * `durable: false` is for the dispatcher's bookkeeping (claims, delivery outcomes): a batch
   * made only of such writes commits with synchronous=NORMAL, i.e. without an fsync of its own
   * on the event loop. WAL frames are appended in order, so the next fsync'ed commit (any
   * registration) makes them durable too; a crash before that can only undo a lease or an
   * outcome, and the trigger is then delivered again (at-least-once, same Idempotency-Key).
   * A batch holding any durable write is fsync'ed as a whole.
   *
   * `lazy` is relaxed and also waits up to LAZY_WRITE_MS for a batch that another write starts
   * (delivery outcomes of handed-over triggers: at one registration at a time they would
   * otherwise be a transaction of their own after each).
   */
  write<T>(fn: () => T, kind: WriteKind = 'durable'): Promise<T> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('storage is closed'));
    return new Promise<T>((resolve, reject) => {
      const durable = kind === 'durable';
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject, durable });
      if (this.flushScheduled) return;
      if (kind !== 'lazy') {
        this.flushScheduled = true; // flush() also clears a lazy timer still pending
        setImmediate(() => this.flush());
      } else {
        this.lazyTimer ??= setTimeout(() => {
          this.lazyTimer = undefined;
          if (!this.flushScheduled) this.flush();
        }, LAZY_WRITE_MS);
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    // The connection may be what fails (SQLite opens a file it may not write read-only, for
    // good): after a failed write, try a fresh one.
    if (this.writeHealth.failure !== undefined) this.reopen();
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    const s = this.control;
    let writeFailure: unknown;
    const relaxed = !batch.some((item) => item.durable);
    try {
      // exec, not a prepared statement: a prepared PRAGMA's first run can be a no-op.
      if (relaxed && !this.offLoop) this.db.exec('PRAGMA synchronous = NORMAL');
      s.begin.run();
      for (const repair of this.repairsPending) repair();
      for (const item of batch) {
        s.savepoint.run();
        try {
          outcomes.push({ ok: true, value: item.fn() });
          s.release.run();
        } catch (error) {
          s.rollbackTo.run();
          s.release.run();
          outcomes.push({ ok: false, error });
          if (isWriteFailure(error)) writeFailure = error;
        }
      }
      s.commit.run();
      this.repairsPending = [];
      // Every write runs a writing statement before it can succeed: one success (and the
      // commit) shows the database takes writes again.
      if (writeFailure !== undefined) this.writeFailed(writeFailure);
      else if (outcomes.some((o) => o.ok)) this.writeSucceeded();
      // Only a batch that changed rows wrote to the WAL: an empty claim or prune at start-up
      // does not start the checkpoint worker (a thread with its own V8 heap) on an idle server.
      const changes = s.totalChanges.get()!.n;
      if (changes !== this.lastTotalChanges) {
        this.lastTotalChanges = changes;
        this.ensureCheckpointer();
      }
    } catch (error) {
      if (this.db.inTransaction) {
        try {
          s.rollback.run();
        } catch {
          // The connection is unusable; every caller gets the 503 below.
        }
      }
      this.writeFailed(error);
      const failure = new StorageUnavailableError(
        'the write could not be committed; nothing was stored',
        error,
      );
      for (const item of batch) item.reject(failure);
      return;
    } finally {
      if (relaxed && !this.offLoop) this.restoreFullSync();
    }
    const settle = () => {
      batch.forEach((item, i) => {
        const o = outcomes[i]!;
        if (o.ok) item.resolve(o.value);
        else item.reject(asStoreError(o.error));
      });
    };
    if (!this.offLoop || relaxed) {
      settle();
      return;
    }
    this.awaitingFsync.push({
      ok: settle,
      fail: (error) => {
        this.writeFailed(error);
        const failure = new StorageUnavailableError(
          'the write was committed but could not be flushed to disk (fsync failed)',
          error,
        );
        for (const item of batch) item.reject(failure);
      },
    });
    this.startFsync();
  }

  /**
   * fsyncOffLoop: fsyncs the WAL for every batch committed so far, unless an fsync is already in
   * flight (it may have started before their COMMIT: they wait for the next one, started as soon
   * as it completes). One fsync thus covers every batch committed while the previous one ran.
   */
  private startFsync(): void {
    if (this.fsyncInFlight || this.awaitingFsync.length === 0) return;
    const group = this.awaitingFsync;
    this.awaitingFsync = [];
    let fd: number;
    try {
      // SQLite keeps the WAL file (same inode) for as long as this connection is open.
      fd = this.walFd ??= openSync(`${this.path}-wal`, 'r');
    } catch (e) {
      for (const g of group) g.fail(e);
      return;
    }
    this.fsyncInFlight = true;
    fsync(fd, (error) => {
      this.fsyncInFlight = false;
      this.walFsyncs++;
      for (const g of group) {
        if (error) g.fail(error);
        else g.ok();
      }
      this.startFsync();
    });
  }

  /** Readiness follows the last write's outcome; while it failed, probe writes look for recovery. */
  private writeFailed(error: unknown): void {
    if (!this.closed)
      this.writeHealth.failed(error instanceof Error ? error.message : String(error));
  }

  private writeSucceeded(): void {
    this.writeHealth.succeeded();
  }

  /**
   * Replaces the connection, between transactions, with none of its WAL fsyncs in flight (their
   * descriptor goes with it). On failure the old one stays, and the next write or probe retries.
   */
  private reopen(): void {
    if (this.closed || this.db.inTransaction || this.fsyncInFlight) return;
    if (this.awaitingFsync.length > 0) return;
    let fresh: Database.Database | undefined;
    let control: typeof this.control;
    try {
      fresh = this.openConnection(this.path);
      this.configure(fresh);
      control = controlStatements(fresh);
    } catch {
      fresh?.close();
      return;
    }
    const old = this.db;
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    this.db = fresh;
    this.control = control;
    this.statements = new Map();
    // total_changes() counts per connection: the next commit starts the checkpoint worker.
    this.lastTotalChanges = -1;
    try {
      old.close();
    } catch {
      // Already broken: nothing of it is needed any more.
    }
  }

  /** The background checkpoint worker while it runs (after a commit, until idle). */
  get checkpointer(): Checkpointer | undefined {
    return this.worker;
  }

  private ensureCheckpointer(): void {
    if (this.worker || !this.checkpointerOptions || this.closed) return;
    this.worker = startCheckpointer(this.path, this.checkpointerOptions);
  }

  private scheduleTruncate(mode: 'RESTART' | 'TRUNCATE'): void {
    if (this.truncateScheduled) return;
    this.truncateScheduled = true;
    // After the current batch's answers are written (they are resolved before this runs).
    setImmediate(() => this.truncateWal(mode));
  }

  /**
   * Between two transactions (see db/checkpoint.ts): RESTART under load, so that the next
   * commit writes the WAL from its beginning again (the file keeps its size: shrinking a large
   * file costs more than the checkpoint), TRUNCATE once idle (the file goes back to 0 bytes).
   * Never waits: if the worker's checkpoint holds a lock right now, the worker asks again later.
   */
  private truncateWal(mode: 'RESTART' | 'TRUNCATE'): void {
    this.truncateScheduled = false;
    if (this.closed || this.db.inTransaction) return;
    try {
      this.db.pragma('busy_timeout = 0');
      const [r] = this.db.pragma(`wal_checkpoint(${mode})`) as { busy: number }[];
      if (r?.busy === 0) this.walTruncations++;
    } catch {
      // SQLITE_BUSY: try again at the next request.
    } finally {
      this.db.pragma('busy_timeout = 5000');
    }
  }

  private restoreFullSync(): void {
    try {
      this.db.exec('PRAGMA synchronous = FULL');
    } catch {
      // Only fails on a broken connection, which answers every later write with a 503.
    }
  }

  /** Synchronous read with engine errors mapped to StorageUnavailableError. */
  read<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(this.readNow(fn));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  readNow<T>(fn: () => T): T {
    if (this.closed) throw new StorageUnavailableError('storage is closed');
    try {
      return fn();
    } catch (e) {
      throw asStoreError(e);
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Ready when the database answers and the last write committed (a file that became read-only,
   * a full disk: every write would answer 503). Never writes itself: while writes fail, a probe
   * write every WRITE_PROBE_INTERVAL_MS finds out when they can commit again.
   */
  ping(): Promise<void> {
    return this.read(() => {
      this.statement('SELECT 1').get();
      const { failure, intervalMs } = this.writeHealth;
      if (failure !== undefined)
        throw new StorageUnavailableError(
          `the database cannot be written (${failure}); retried every ${intervalMs} ms`,
        );
    });
  }

  /** Runs a WAL checkpoint; the server calls this off the request path (see db/checkpoint.ts). */
  checkpoint(mode: 'PASSIVE' | 'TRUNCATE' = 'PASSIVE'): void {
    this.db.pragma(`wal_checkpoint(${mode})`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.writeHealth.stop();
    // Let writes already queued commit before the connection goes.
    if (this.queue.length > 0) this.flush();
    this.closed = true;
    // ...and be flushed to disk (fsyncOffLoop) before the descriptor goes.
    while (this.fsyncInFlight || this.awaitingFsync.length > 0) {
      await new Promise((r) => setTimeout(r, 1));
    }
    if (this.walFd !== undefined) closeSync(this.walFd);
    await this.worker?.stop();
    await Promise.resolve();
    this.db.close();
    this.ownerLock?.close();
  }
}

/**
 * An exclusive lock that the kernel drops with the process (kill -9 included): SQLite's own
 * (POSIX) lock on a file of its own, in exclusive locking mode, taken by a write transaction and
 * kept until the connection closes. Not on the database file, whose checkpoint worker and
 * export/import connections must keep working.
 */
function takeOwnerLock(path: string): Database.Database {
  const lock = new Database(`${path}-lock`, { timeout: 0 });
  try {
    // No journal file left beside it: the lock file holds no data.
    lock.pragma('journal_mode = MEMORY');
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (e) {
    lock.close();
    const busy = /BUSY|LOCKED/.test(String((e as { code?: unknown }).code));
    throw new StorageUnavailableError(
      busy
        ? `SQLite database '${path}' is in use by another ztp server process (${path}-lock is locked)`
        : `cannot lock SQLite database '${path}': ${(e as Error).message}`,
      e,
    );
  }
  return lock;
}

/**
 * The readiness probe's write: the header's user_version (unused by ztp) set to what it is. Not
 * skipped by SQLite: it dirties page 1, so the commit appends a WAL frame like any write.
 */
function probeWrite(db: Database.Database): void {
  const version = Number(db.pragma('user_version', { simple: true }));
  db.pragma(`user_version = ${version}`);
}

export function asStoreError(e: unknown): Error {
  if (e instanceof ZtpError) return e;
  return new StorageUnavailableError('the storage engine failed; nothing was stored', e);
}

/** The applied ztp schema version, or undefined when the database has no ztp schema. */
function schemaVersion(db: Database.Database): number | undefined {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    .get();
  if (table === undefined) return undefined;
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as {
    v: number | null;
  };
  return row.v ?? undefined;
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const current =
    (db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null }).v ??
    0;
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sqlite);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(m.version);
    })();
  }
}

/**
 * Why SQLite could not open a file for writing, in words an operator can act on (SQLite itself
 * only says "unable to open database file"): typically a container volume owned by another user.
 */
function unwritableReason(path: string): string {
  if (path === ':memory:' || path === '') return '';
  const user = process.getuid ? ` by uid ${process.getuid()}` : '';
  const file = resolve(path);
  const dir = dirname(file);
  const writable = (p: string) => {
    try {
      accessSync(p, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  };
  // better-sqlite3 already says when the directory does not exist.
  if (!existsSync(dir)) return '';
  if (!writable(dir)) return ` (directory '${dir}' is not writable${user})`;
  if (existsSync(file) && !writable(file)) return ` (file '${file}' is not writable${user})`;
  return '';
}
