/**
 * SQLite store (better-sqlite3): the embedded default.
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
import { randomUUID } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, fsync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, DeviceNotFoundError, StorageUnavailableError, ZtpError } from '../errors.js';
import { startCheckpointer, type Checkpointer, type CheckpointerOptions } from './checkpoint.js';
import { MIGRATIONS, requireCurrentSchema } from './migrations.js';
import {
  byDueTime,
  claimedTriggerFromRow,
  completionParams,
  deviceFromRow,
  deviceWithTriggerFromRow,
  triggerFromRow,
  type DeviceRow,
  type DeviceWithTriggerRow,
  type Int,
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
  CompleteOptions,
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

/**
 * An older pending trigger of the same device (per-device order). INDEXED BY: without statistics
 * the planner would otherwise search triggers_state (every pending trigger) for each candidate,
 * which made claims O(pending^2) during a manager outage; the partial index keeps the check O(1)
 * for a device with thousands of retained finished triggers.
 */
const OLDER_PENDING = `SELECT 1 FROM triggers o INDEXED BY triggers_device_pending
  WHERE o.device_id = t.device_id AND o.state = 'pending' AND o.id < t.id`;

/** Longest wait of a lazy write for a batch started by another write (see write()). */
const LAZY_WRITE_MS = 5;

/**
 * Errors that say the database cannot be written at all (read-only file or mount, disk full, I/O
 * error), as opposed to one write's own failure or a busy lock: they make the store unready.
 */
const WRITE_FAILURE = /^SQLITE_(READONLY|FULL|IOERR|CANTOPEN|CORRUPT|NOTADB|PERM)/;

function isWriteFailure(e: unknown): boolean {
  return e instanceof Database.SqliteError && WRITE_FAILURE.test(e.code);
}

/** Trigger ids per pruning transaction. */
const PRUNE_WINDOW = 5000;

interface Pending {
  fn: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** False for trigger bookkeeping, which needs no fsync of its own (see write()). */
  durable: boolean;
}

export interface SqliteStoreOptions {
  /** Run automatic WAL checkpoints inside commits (the SQLite default). The server turns this off and checkpoints off the request path. */
  autoCheckpoint?: boolean;
  /**
   * Run WAL checkpoints in a worker thread on its own connection (storage/checkpoint.ts) instead
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
   * The server's store: this process owns the file (an exclusive lock on `<path>-lock`, held
   * until close() or the process's death; a second owner fails to open), so every trigger lease
   * found on open was left by a dead process and is released at once (see releaseDeadLeases()).
   * Other connections (export, import) still read and write the file as before.
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

export class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  /** The connection; replaced by reopen() after the database could not be written. */
  db: Database.Database;
  private queue: Pending[] = [];
  private flushScheduled = false;
  /** Flushes a queue holding only lazy writes (see write()). */
  private lazyTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private stmts;
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
  /** owner: leases of a dead process released on open. */
  releasedLeases = 0;
  /** owner: the dead owner's leases are still to be released (the file was not writable). */
  private deadLeasesPending = false;
  /**
   * Why the last write could not commit, until one does: readiness (ping()) fails meanwhile,
   * the next write first reopens the connection, and a probe write runs every few seconds.
   */
  private readonly writeHealth: WriteHealth;
  private readonly openConnection: (path: string) => Database.Database;
  /** SQLite's automatic checkpoints are off (see SqliteStoreOptions.autoCheckpoint). */
  private autoCheckpointOff = false;

  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
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
      if (this.ownerLock) {
        try {
          this.releasedLeases = releaseDeadLeases(this.db);
        } catch (e) {
          // A file it cannot write (yet): serve reads, answer unready, release with the first commit.
          if (!isWriteFailure(e)) throw e;
          this.deadLeasesPending = true;
          this.writeFailed(e);
        }
      }
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
    this.stmts = this.prepareStatements(this.db);
  }

  /** Per-connection settings (journal_mode=WAL is the file's, set once in the constructor). */
  private configure(db: Database.Database): void {
    db.pragma(this.offLoop ? 'synchronous = NORMAL' : 'synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    if (this.autoCheckpointOff) db.pragma('wal_autocheckpoint = 0');
  }

  private prepareStatements(db: Database.Database) {
    return {
      getDevice: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
      insertDevice: db.prepare<unknown[], DeviceRow>(
        `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
         VALUES (@id, @ip, @name, @userdata, @at, @at, @at, 1, @source) RETURNING *`,
      ),
      updateDeviceOnRegister: db.prepare<unknown[], DeviceRow>(
        `UPDATE devices SET ip = @ip, name = @name, userdata = @userdata, last_seen = @at, updated_at = @at,
           registrations = registrations + 1, last_source = @source WHERE id = @id RETURNING *`,
      ),
      editDevice: db.prepare(
        'UPDATE devices SET ip = @ip, name = @name, userdata = @userdata, updated_at = @at WHERE id = @id',
      ),
      deleteDevice: db.prepare('DELETE FROM devices WHERE id = ?'),
      deleteHistory: db.prepare('DELETE FROM history WHERE device_id = ?'),
      insertHistory: db.prepare(
        'INSERT OR REPLACE INTO history (device_id, seq, at, ip, source) VALUES (?, ?, ?, ?, ?)',
      ),
      trimHistory: db.prepare('DELETE FROM history WHERE device_id = ? AND seq <= ?'),
      history: db.prepare<[string], HistoryEntry>(
        'SELECT at, ip, source FROM history WHERE device_id = ? ORDER BY seq DESC',
      ),
      listIds: db.prepare<[string, number], { id: string }>(
        'SELECT id FROM devices WHERE id > ? ORDER BY id LIMIT ?',
      ),
      countDevices: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM devices'),
      countSeenSince: db.prepare<[number], { n: number }>(
        'SELECT count(*) AS n FROM devices WHERE last_seen >= ?',
      ),
      coalesceTrigger: db.prepare<unknown[], TriggerRow>(
        `UPDATE triggers SET ip = @ip, key = @key, attempts = 0, created_at = @at, next_attempt_at = @at,
           last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = @at,
           prev_id = CASE WHEN id IS @prevId THEN prev_id ELSE @prevId END
         WHERE id = (SELECT id FROM triggers INDEXED BY triggers_device_pending
                     WHERE device_id = @deviceId AND state = 'pending'
                       AND (lease_until IS NULL OR lease_until < @at) ORDER BY id DESC LIMIT 1)
         RETURNING *`,
      ),
      insertTrigger: db.prepare<unknown[], TriggerRow>(
        `INSERT INTO triggers (device_id, ip, key, state, attempts, created_at, next_attempt_at, updated_at, prev_id,
           lease_until, lease_token)
         VALUES (@deviceId, @ip, @key, 'pending', @attempts, @at, @at, @at, @prevId, @leaseUntil, @leaseToken)
         RETURNING *`,
      ),
      devicePending: db.prepare<[string], { one: number }>(
        `SELECT 1 AS one FROM triggers INDEXED BY triggers_device_pending
         WHERE device_id = ? AND state = 'pending' LIMIT 1`,
      ),
      unleasedPending: db.prepare<[], { one: number }>(
        `SELECT 1 AS one FROM triggers INDEXED BY triggers_due
         WHERE state = 'pending' AND lease_until IS NULL LIMIT 1`,
      ),
      setLastTrigger: db.prepare('UPDATE devices SET last_trigger_id = ? WHERE id = ?'),
      claimTriggers: db.prepare<unknown[], TriggerRow>(
        `UPDATE triggers SET lease_until = @leaseUntil, lease_token = @token, attempts = attempts + 1, updated_at = @now
         WHERE id IN (
           SELECT t.id FROM triggers t INDEXED BY triggers_due
           WHERE t.state = 'pending' AND t.next_attempt_at <= @now AND (t.lease_until IS NULL OR t.lease_until < @now)
             AND NOT EXISTS (${OLDER_PENDING})
           ORDER BY t.next_attempt_at, t.id LIMIT @limit)
         RETURNING *`,
      ),
      completeTrigger: db.prepare(
        `UPDATE triggers SET state = @state, next_attempt_at = @nextAttemptAt, last_error = @error,
           delivered_at = @deliveredAt, lease_until = NULL, lease_token = NULL, updated_at = @at
         WHERE id = @id AND lease_token = @token`,
      ),
      latestTrigger: db.prepare<[string], TriggerRow>(latestTriggerSql('?')),
      recentTriggers: db.prepare<[string, number], TriggerRow>(recentTriggersSql('?', '?')),
      listTriggers: db.prepare<[number, number], TriggerRow>(
        'SELECT * FROM triggers WHERE id > ? ORDER BY id LIMIT ?',
      ),
      listTriggersByState: db.prepare<[string, number, number], TriggerRow>(
        'SELECT * FROM triggers WHERE state = ? AND id > ? ORDER BY id LIMIT ?',
      ),
      countTriggers: db.prepare<[], { state: TriggerState; n: number }>(
        'SELECT state, count(*) AS n FROM triggers GROUP BY state',
      ),
      countDevicesByTrigger: db.prepare<[], { state: TriggerState; n: number }>(
        COUNT_DEVICES_BY_TRIGGER_SQL,
      ),
      // One window of ids at a time (see pruneTriggers); the latest trigger of an existing device is kept.
      pruneTriggers: db.prepare(
        `DELETE FROM triggers AS t WHERE t.id > @after AND t.id <= @upto AND t.updated_at < @before
           AND ${PRUNABLE_TRIGGER}`,
      ),
      pruneWindowEnd: db.prepare<[number], { id: number }>(
        `SELECT id FROM triggers WHERE id > ? ORDER BY id LIMIT 1 OFFSET ${PRUNE_WINDOW - 1}`,
      ),
      maxTriggerId: db.prepare<[], { m: number | null }>('SELECT max(id) AS m FROM triggers'),
      countPending: db.prepare<[], { n: number }>(
        "SELECT count(*) AS n FROM triggers INDEXED BY triggers_due WHERE state = 'pending'",
      ),
      nextDue: db.prepare<[], { t: number }>(
        `SELECT t.next_attempt_at AS t FROM triggers t INDEXED BY triggers_due
         WHERE t.state = 'pending' AND t.lease_until IS NULL AND NOT EXISTS (${OLDER_PENDING})
         ORDER BY t.next_attempt_at, t.id LIMIT 1`,
      ),
      totalChanges: db.prepare<[], { n: number }>('SELECT total_changes() AS n'),
      savepoint: db.prepare('SAVEPOINT w'),
      release: db.prepare('RELEASE w'),
      rollbackTo: db.prepare('ROLLBACK TO w'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
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
  private write<T>(fn: () => T, kind: 'durable' | 'relaxed' | 'lazy' = 'durable'): Promise<T> {
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
    const s = this.stmts;
    let writeFailure: unknown;
    const relaxed = !batch.some((item) => item.durable);
    try {
      // exec, not a prepared statement: a prepared PRAGMA's first run can be a no-op.
      if (relaxed && !this.offLoop) this.db.exec('PRAGMA synchronous = NORMAL');
      s.begin.run();
      if (this.deadLeasesPending) this.releasedLeases += releaseDeadLeases(this.db);
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
      this.deadLeasesPending = false;
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
    let stmts: typeof this.stmts;
    try {
      fresh = this.openConnection(this.path);
      this.configure(fresh);
      stmts = this.prepareStatements(fresh);
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
    this.stmts = stmts;
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
   * Between two transactions (see storage/checkpoint.ts): RESTART under load, so that the next
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
  private read<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(this.readNow(fn));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private readNow<T>(fn: () => T): T {
    if (this.closed) throw new StorageUnavailableError('storage is closed');
    try {
      return fn();
    } catch (e) {
      throw asStoreError(e);
    }
  }

  // ---- devices -----------------------------------------------------------------------------

  register(reg: Registration, opts: RegisterOptions): Promise<RegisterResult> {
    return this.write(() => {
      const s = this.stmts;
      const params = {
        id: reg.id,
        ip: reg.ip,
        name: reg.name,
        userdata: reg.userdata,
        at: reg.at,
        source: reg.source,
      };
      // One statement in the common case (a known device re-registers): the upsert returns the row.
      const updated = s.updateDeviceOnRegister.get(params);
      const created = updated === undefined;
      const row = updated ?? s.insertDevice.get(params)!;
      if (opts.historyLimit > 0) {
        const count = Number(row.registrations);
        s.insertHistory.run(reg.id, count, reg.at, reg.ip, reg.source);
        // History seq runs 1..registrations: nothing to trim until it exceeds the limit.
        if (count > opts.historyLimit) s.trimHistory.run(reg.id, count - opts.historyLimit);
      }
      const result: RegisterResult = { created, device: deviceFromRow(row) };
      if (opts.enqueueTrigger) {
        result.trigger = this.enqueueTrigger(
          reg.id,
          reg.ip,
          reg.at,
          row.last_trigger_id,
          opts.handOverLeaseMs,
        );
      }
      return result;
    });
  }

  /** `lastTriggerId`: the device row's last_trigger_id, read in the same transaction. */
  private enqueueTrigger(
    deviceId: string,
    ip: string,
    at: number,
    lastTriggerId: Int | null | undefined,
    handOverLeaseMs: number | undefined,
  ): Trigger | ClaimedTrigger {
    const prevId =
      lastTriggerId === undefined || lastTriggerId === null ? null : Number(lastTriggerId);
    const p = { deviceId, ip, at, key: randomUUID(), prevId };
    // A waiting trigger is normally the device's newest already (a newer one is only made while
    // it is leased); not so if it was left by a deleted device of the same id: then it becomes
    // this device's first (coalesceTrigger relinks it).
    const coalesced = this.stmts.coalesceTrigger.get(p);
    // Hand-over (RegisterOptions): leased at once, unless another trigger of the device is
    // pending (per-device order: that one goes first, and this one through a claim after it).
    const lease =
      coalesced === undefined &&
      handOverLeaseMs !== undefined &&
      this.stmts.devicePending.get(deviceId) === undefined;
    const row =
      coalesced ??
      this.stmts.insertTrigger.get({
        ...p,
        attempts: lease ? 1 : 0,
        leaseUntil: lease ? at + handOverLeaseMs : null,
        leaseToken: lease ? randomUUID() : null,
      })!;
    if (row.id !== prevId) this.stmts.setLastTrigger.run(row.id, deviceId);
    return lease ? claimedTriggerFromRow(row) : triggerFromRow(row);
  }

  get(id: string): Promise<Device> {
    return this.read(() => {
      const row = this.stmts.getDevice.get(id);
      if (!row) throw new DeviceNotFoundError(id);
      return deviceFromRow(row);
    });
  }

  edit(id: string, fields: DeviceFields, at: number): Promise<Device> {
    return this.write(() => {
      if (this.stmts.editDevice.run({ id, ...fields, at }).changes === 0)
        throw new DeviceNotFoundError(id);
      return deviceFromRow(this.stmts.getDevice.get(id)!);
    });
  }

  delete(id: string): Promise<Device> {
    return this.write(() => {
      const row = this.stmts.getDevice.get(id);
      if (!row) throw new DeviceNotFoundError(id);
      this.stmts.deleteDevice.run(id);
      this.stmts.deleteHistory.run(id);
      return deviceFromRow(row);
    });
  }

  listIds(after: string | undefined, limit: number): Promise<string[]> {
    return this.read(
      () => this.stmts.listIds.pluck().all(after ?? '', limit) as unknown as string[],
    );
  }

  queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    return this.read(() => {
      const conditions: string[] = [];
      const params: Record<string, string> = {};
      if (q.search) {
        conditions.push(
          "(lower(id) LIKE @p ESCAPE '\\' OR lower(name) LIKE @p ESCAPE '\\' OR ip LIKE @p ESCAPE '\\')",
        );
        params.p = likePattern(q.search);
      }
      if (q.triggerState) {
        conditions.push(latestTriggerStateSql('@state'));
        params.state = q.triggerState;
      }
      const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
      const total = (
        this.db.prepare(`SELECT count(*) AS n FROM devices ${where}`).get(params) as { n: number }
      ).n;
      const page = `SELECT * FROM devices ${where} ORDER BY ${devicePageOrder(q)} LIMIT @limit OFFSET @offset`;
      const rows = this.db
        .prepare(withLatestTriggerSql(page, devicePageOrder(q, 'page')))
        .all({ ...params, limit: q.limit, offset: q.offset }) as DeviceWithTriggerRow[];
      return { total, items: rows.map(deviceWithTriggerFromRow) };
    });
  }

  countDevices(): Promise<number> {
    return this.read(() => this.stmts.countDevices.get()!.n);
  }

  countSeenSince(since: number): Promise<number> {
    return this.read(() => this.stmts.countSeenSince.get(since)!.n);
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.read(() => this.stmts.history.all(id));
  }

  importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'> {
    return this.write(() => {
      // A replaced device keeps its triggers (as an upsert on PostgreSQL does).
      const lastTriggerId = this.stmts.getDevice.get(device.id)?.last_trigger_id ?? null;
      const existed = this.stmts.deleteDevice.run(device.id).changes > 0;
      this.stmts.deleteHistory.run(device.id);
      this.db
        .prepare(
          `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source, last_trigger_id)
           VALUES (@id, @ip, @name, @userdata, @firstSeen, @lastSeen, @updatedAt, @registrations, @lastSource, @lastTriggerId)`,
        )
        .run({ ...device, lastTriggerId });
      // history is newest first; seq counts down from the registration count.
      history.forEach((h, i) =>
        this.stmts.insertHistory.run(device.id, device.registrations - i, h.at, h.ip, h.source),
      );
      return existed ? 'replaced' : 'created';
    });
  }

  // ---- triggers ----------------------------------------------------------------------------

  requeueTrigger(id: string, at: number): Promise<Trigger> {
    return this.write(() => {
      const row = this.stmts.getDevice.get(id);
      if (!row) throw new DeviceNotFoundError(id);
      return this.enqueueTrigger(id, row.ip, at, row.last_trigger_id, undefined);
    });
  }

  claimTriggers(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    return this.write(
      () =>
        this.stmts.claimTriggers
          .all({ now, limit, leaseUntil: now + leaseMs, token: randomUUID() })
          .map(claimedTriggerFromRow)
          .sort(byDueTime),
      'relaxed',
    );
  }

  completeTrigger(
    trigger: ClaimedTrigger,
    outcome: TriggerOutcome,
    opts: CompleteOptions = {},
  ): Promise<boolean> {
    return this.write(
      () => this.stmts.completeTrigger.run(completionParams(trigger, outcome)).changes === 1,
      opts.lazy === true ? 'lazy' : 'relaxed',
    );
  }

  latestTrigger(deviceId: string): Promise<Trigger | undefined> {
    return this.read(() => {
      const row = this.stmts.latestTrigger.get(deviceId);
      return row ? triggerFromRow(row) : undefined;
    });
  }

  recentTriggers(deviceId: string, limit: number): Promise<Trigger[]> {
    return this.read(() => this.stmts.recentTriggers.all(deviceId, limit).map(triggerFromRow));
  }

  listTriggers(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.read(() =>
      (state
        ? this.stmts.listTriggersByState.all(state, afterId ?? 0, limit)
        : this.stmts.listTriggers.all(afterId ?? 0, limit)
      ).map(triggerFromRow),
    );
  }

  countTriggers(): Promise<TriggerCounts> {
    return this.read(() => {
      const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
      for (const r of this.stmts.countTriggers.all()) counts[r.state] = r.n;
      return counts;
    });
  }

  countDevicesByTrigger(): Promise<TriggerCounts> {
    return this.read(() => {
      const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
      for (const r of this.stmts.countDevicesByTrigger.all()) counts[r.state] = r.n;
      return counts;
    });
  }

  /**
   * Deletes in windows of PRUNE_WINDOW ids, each its own short write, so that pruning a large
   * table never holds the writer (and the registrations queued behind it) for long.
   */
  async pruneTriggers(before: number): Promise<number> {
    const max = (await this.read(() => this.stmts.maxTriggerId.get()!.m)) ?? 0;
    let deleted = 0;
    let after = 0;
    while (after < max) {
      const from = after;
      const upto = (await this.read(() => this.stmts.pruneWindowEnd.get(from)?.id)) ?? max;
      deleted += await this.write(
        () => this.stmts.pruneTriggers.run({ after: from, upto, before }).changes,
      );
      after = upto;
    }
    return deleted;
  }

  countPendingTriggers(): Promise<number> {
    return this.read(() => this.stmts.countPending.get()!.n);
  }

  nextTriggerDue(): Promise<number | undefined> {
    return this.read(() => this.stmts.nextDue.get()?.t);
  }

  hasUnleasedTriggers(): Promise<boolean> {
    return this.read(() => this.stmts.unleasedPending.get() !== undefined);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Ready when the database answers and the last write committed (a file that became read-only,
   * a full disk: every write would answer 503). Never writes itself: while writes fail, a probe
   * write every WRITE_PROBE_INTERVAL_MS finds out when they can commit again.
   */
  ping(): Promise<void> {
    return this.read(() => {
      this.db.prepare('SELECT 1').get();
      const { failure, intervalMs } = this.writeHealth;
      if (failure !== undefined)
        throw new StorageUnavailableError(
          `the database cannot be written (${failure}); retried every ${intervalMs} ms`,
        );
    });
  }

  /** Runs a WAL checkpoint; the server calls this off the request path (see storage/checkpoint.ts). */
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
 * Only the owner process leases triggers, and the lock says no other owner is alive: every lease
 * in the file belongs to a process that died. Released (still pending, due as they were), so a
 * restart delivers them at once instead of after --trigger-lease.
 */
function releaseDeadLeases(db: Database.Database): number {
  return db
    .prepare(
      `UPDATE triggers SET lease_until = NULL, lease_token = NULL
       WHERE state = 'pending' AND lease_until IS NOT NULL`,
    )
    .run().changes;
}

/**
 * The readiness probe's write: the header's user_version (unused by ztp) set to what it is. Not
 * skipped by SQLite: it dirties page 1, so the commit appends a WAL frame like any write.
 */
function probeWrite(db: Database.Database): void {
  const version = Number(db.pragma('user_version', { simple: true }));
  db.pragma(`user_version = ${version}`);
}

function asStoreError(e: unknown): Error {
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
