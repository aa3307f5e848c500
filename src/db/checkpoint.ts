/**
 * WAL checkpoints off the request path.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, on the
 * connection that committed: with better-sqlite3 that is the event loop, which then stalls for
 * the time it takes to copy the WAL into the database and fsync it (p99 spikes of 10+ ms). The
 * server therefore opens its connection with `wal_autocheckpoint=0` and runs checkpoints here, in
 * a worker thread on its own connection: PASSIVE every `intervalMs` (copies committed pages into
 * the database and fsyncs it without ever taking the writer's lock).
 *
 * Under continuous writes the WAL never gets a quiet moment to restart from its beginning, so
 * the file keeps growing. When it holds more than `truncateBytes` and the worker has copied
 * nearly all of it, the worker asks the owner of the writing connection (`onTruncateWanted`) to
 * run a RESTART checkpoint there, between two transactions: little is left to copy by then, and
 * the only writer never waits for a lock held by another connection. The next commit writes the
 * WAL from its beginning again, so the file stays at about `truncateBytes`; once the worker goes
 * idle the owner truncates it to zero.
 *
 * The worker (a thread with its own V8 heap, ~15 MB) only runs while there is something to do:
 * the store starts it at a commit and stops it once the WAL has been quiet for `idleMs`.
 *
 * The worker is created from a code string (`eval: true`) that loads better-sqlite3 through
 * `createRequire`, so it works the same under tsx and in the esbuild bundle.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Time between two PASSIVE checkpoints. */
  intervalMs?: number;
  /** WAL file size above which a TRUNCATE checkpoint is attempted. */
  truncateBytes?: number;
  /** Called when the worker fails (the caller falls back to automatic checkpoints). */
  onError?: (error: Error) => void;
  /** Called when the WAL is larger than `truncateBytes` and fully copied into the database. */
  onTruncateWanted?: () => void;
  /** Nothing new in the WAL for this long (and all of it copied): `onIdle` is called once. */
  idleMs?: number;
  /** See `idleMs`; the owner usually stops the worker then. */
  onIdle?: () => void;
}

export interface CheckpointStats {
  /** PASSIVE checkpoints run so far. */
  runs: number;
  /** Times the owner was asked to truncate the WAL. */
  truncateRequests: number;
  /** WAL frames not yet copied into the database after the last checkpoint. */
  lastLogFrames: number;
}

export interface Checkpointer {
  /** Asks the worker for one checkpoint now and resolves with its counters afterwards. */
  runNow(): Promise<CheckpointStats>;
  /** Stops the worker and closes its connection. */
  stop(): Promise<void>;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0');
const stats = { runs: 0, truncateRequests: 0, lastLogFrames: 0 };
const frameBytes = db.pragma('page_size', { simple: true }) + 24;
let lastLog = -1;
let quietSince = Date.now();
let idleSent = false;
function checkpoint() {
  const [r] = db.pragma('wal_checkpoint(PASSIVE)');
  stats.runs++;
  stats.lastLogFrames = r.log - r.checkpointed;
  if (r.log !== lastLog || r.log !== r.checkpointed) {
    lastLog = r.log;
    quietSince = Date.now();
  } else if (!idleSent && Date.now() - quietSince >= workerData.idleMs) {
    idleSent = true;
    parentPort.postMessage({ idle: true });
  }
  // r.log counts the frames written since the WAL last restarted from its beginning.
  if (r.busy === 0 && r.log - r.checkpointed < 256 && r.log * frameBytes > workerData.truncateBytes) {
    stats.truncateRequests++;
    parentPort.postMessage({ truncate: true });
  }
}
function tick() {
  try { checkpoint(); } catch (e) {
    // SQLITE_BUSY/LOCKED: another connection holds a lock right now; try again next tick.
    if (!/busy|locked/i.test(String(e && e.code))) throw e;
  }
}
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'run') { tick(); parentPort.postMessage({ stats }); }
  else if (m === 'stop') { clearInterval(timer); db.close(); parentPort.close(); }
});
parentPort.postMessage({ ready: true });
`;

/** Starts the checkpoint worker for the SQLite database at `path` (already in WAL mode). */
export function startCheckpointer(path: string, opts: CheckpointerOptions = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      path,
      driver,
      intervalMs: opts.intervalMs ?? 200,
      truncateBytes: opts.truncateBytes ?? 256 * 1024 * 1024,
      idleMs: opts.idleMs ?? 10_000,
    },
  });
  worker.unref();
  let stopped = false;
  let exited = false;
  const waiting: ((s: CheckpointStats) => void)[] = [];
  const exit = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  worker.on('message', (m: { stats?: CheckpointStats; truncate?: boolean; idle?: boolean }) => {
    if (m.idle) opts.onIdle?.();
    if (m.stats) {
      waiting.shift()?.(m.stats);
      if (waiting.length === 0) worker.unref();
    }
    if (m.truncate) opts.onTruncateWanted?.();
  });
  worker.on('error', (e) => {
    if (!stopped) opts.onError?.(e);
  });
  return {
    runNow: () =>
      new Promise<CheckpointStats>((resolve, reject) => {
        if (stopped || exited) {
          reject(new Error('checkpointer stopped'));
          return;
        }
        waiting.push(resolve);
        // Unreferenced while idle (it never keeps the process alive), referenced while awaited.
        worker.ref();
        worker.postMessage('run');
      }),
    stop: async () => {
      if (stopped) return exit;
      stopped = true;
      if (!exited) {
        worker.ref();
        worker.postMessage('stop');
      }
      await exit;
    },
  };
}
