/**
 * Trigger calls on a worker thread.
 *
 * An HTTP call to the manager (writing it, parsing the answer, timers, garbage) takes CPU time
 * that the event loop needs for the registrations that cause the calls. ThreadedSender moves
 * only the calls to a thread of their own (a ManagerClient there, one keep-alive pool); the
 * dispatcher, its claims and the outcomes it writes stay on the event loop, on the store's
 * single connection. At-least-once is unchanged: the outcome of a call is recorded by the
 * dispatcher, and a call lost with the thread comes back as an error result, which is retried.
 *
 * Calls made in one turn of the event loop go to the thread in one message, results come back
 * batched the same way. The thread (its own V8 heap, ~12 MB of RSS) starts with the first call
 * and stops once no call has been made for `idleMs`, so an idle server keeps none.
 *
 * The thread runs this very module (import.meta.url): under tsx (tests) that is the .ts source,
 * loaded through tsx's loader, in the bundle the chunk that holds it; the guard at the bottom
 * starts the thread's side only there.
 */
import { setMaxListeners } from 'node:events';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { TriggerSender } from './dispatcher.js';
import { ManagerClient, shutdownResult, type ManagerClientOptions } from './manager-client.js';
import type { ManagerCall, ManagerEventType } from './manager-call.js';
import type { AttemptResult } from './retry-policy.js';

const ROLE = 'ztp-trigger-sender';
const DEFAULT_IDLE_MS = 30_000;
const YOUNG_GENERATION_MB = 16;

/**
 * A ManagerCall flattened (a flat array clones faster than nested objects):
 * [call id, key, ip, type, at, device id, previous ip, name, userdata, aliases, report type,
 * report message] (the report's members null for a call that forwards none)
 */
type CallMessage = [
  number,
  string,
  string,
  ManagerEventType,
  number,
  string,
  string | null,
  string | null,
  string | null,
  string[],
  string | null,
  string | null,
];

function toMessage(id: number, c: ManagerCall): CallMessage {
  const d = c.device;
  const r = c.report;
  return [
    id,
    c.key,
    c.ip,
    c.type,
    c.at,
    d.id,
    d.previousIp,
    d.name,
    d.userdata,
    d.aliases,
    r?.type ?? null,
    r?.message ?? null,
  ];
}

function fromMessage(m: CallMessage): ManagerCall {
  const [, key, ip, type, at, id, previousIp, name, userdata, aliases, reportType, message] = m;
  const report = reportType === null ? null : { type: reportType, message: message ?? '' };
  return { key, ip, type, at, device: { id, ip, previousIp, name, userdata, aliases }, report };
}
type ToThread = { calls: CallMessage[] } | { abort: true } | { close: true };
interface FromThread {
  results: [number, AttemptResult][];
}

interface Thread {
  worker: Worker;
  /** Ids of the calls posted to it and not yet answered. */
  held: Set<number>;
}

interface SenderWorkerData {
  role: typeof ROLE;
  client: ManagerClientOptions;
}

export interface ThreadedSenderOptions extends ManagerClientOptions {
  /** Stop the thread after this long without a call (default 30 s). */
  idleMs?: number;
}

export class ThreadedSender implements TriggerSender {
  private thread: Thread | undefined;
  private readonly waiting = new Map<number, (r: AttemptResult) => void>();
  private outgoing: CallMessage[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly watched = new WeakSet<AbortSignal>();
  private closed = false;
  /** Threads started so far (tests read it). */
  threadsStarted = 0;

  constructor(private readonly opts: ThreadedSenderOptions) {}

  send(call: ManagerCall, signal?: AbortSignal): Promise<AttemptResult> {
    if (signal?.aborted) return Promise.resolve(shutdownResult());
    if (this.closed) {
      return Promise.resolve({ kind: 'error', error: 'the trigger sender is closed' });
    }
    if (signal && !this.watched.has(signal)) {
      this.watched.add(signal);
      signal.addEventListener('abort', () => this.post({ abort: true }), { once: true });
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const id = this.nextId++;
    // setImmediate, not a microtask: the answers to the registrations that made these calls are
    // written first (posting to the thread costs ~50 µs here), and a whole batch still goes in
    // one message, as its registrations resolve in one turn of the event loop.
    if (this.outgoing.length === 0) setImmediate(() => this.flush());
    this.outgoing.push(toMessage(id, call));
    return new Promise<AttemptResult>((resolve) => this.waiting.set(id, resolve));
  }

  /** Stops the thread; calls still out are aborted (error results). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    await this.stopThread();
  }

  private flush(): void {
    const calls = this.outgoing;
    this.outgoing = [];
    if (calls.length === 0) return;
    try {
      const thread = (this.thread ??= this.startThread());
      for (const [id] of calls) thread.held.add(id);
      thread.worker.postMessage({ calls } satisfies ToThread);
    } catch (e) {
      for (const [id] of calls) this.settle(id, { kind: 'error', error: threadError(e) });
    }
  }

  private post(message: ToThread): void {
    this.thread?.worker.postMessage(message);
  }

  private startThread(): Thread {
    const self = import.meta.url;
    const data: SenderWorkerData = { role: ROLE, client: clientOptions(this.opts) };
    // Under tsx the thread needs tsx's loader for the .ts source; the bundle needs nothing.
    const tsx = self.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : '';
    const source = `const { workerData } = require('node:worker_threads');
(workerData.tsx ? import(workerData.tsx).then((m) => m.register()) : Promise.resolve())
  .then(() => import(workerData.module));`;
    const worker = new Worker(source, {
      eval: true,
      workerData: { ...data, module: self, tsx },
      // Short-lived garbage only (requests, responses): 16 MB of young generation collect it
      // cheaply (with 4 MB scavenges took ~10% of the thread); without the old-generation cap
      // the heap sized itself from the machine's memory (RSS +50 MB under load), and with it a
      // leak becomes a restart.
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, maxOldGenerationSizeMb: 64 },
    });
    const thread: Thread = { worker, held: new Set() };
    this.threadsStarted++;
    worker.unref();
    worker.on('message', (m: FromThread) => {
      for (const [id, result] of m.results) {
        thread.held.delete(id);
        this.settle(id, result);
      }
      this.armIdleTimer();
    });
    const lost = (reason: string) => {
      if (this.thread === thread) this.thread = undefined;
      // Calls the thread still held are lost with it: error results, retried by the dispatcher.
      for (const id of thread.held) {
        this.settle(id, { kind: 'error', error: `trigger thread stopped: ${reason}` });
      }
      thread.held.clear();
    };
    worker.on('error', (e) => lost(threadError(e)));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    return thread;
  }

  private settle(id: number, result: AttemptResult): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(result);
  }

  private armIdleTimer(): void {
    if (this.waiting.size > 0 || this.idleTimer || this.closed) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.waiting.size === 0 && this.outgoing.length === 0) void this.stopThread();
    }, this.opts.idleMs ?? DEFAULT_IDLE_MS);
    this.idleTimer.unref();
  }

  /** Asks the thread to stop (calls it still holds are aborted) and waits for it to exit. */
  private async stopThread(): Promise<void> {
    const thread = this.thread;
    if (!thread) return;
    this.thread = undefined; // the next call starts a new thread
    const exited = new Promise<void>((resolve) => thread.worker.once('exit', () => resolve()));
    thread.worker.postMessage({ close: true } satisfies ToThread);
    await exited;
  }

  /** Kills the thread as a crash would (tests): the calls it held come back as errors. */
  async terminateThreadForTest(): Promise<void> {
    await this.thread?.worker.terminate();
  }

  /** Whether the thread runs now. */
  get running(): boolean {
    return this.thread !== undefined;
  }
}

function clientOptions(o: ManagerClientOptions): ManagerClientOptions {
  return {
    managerUrl: o.managerUrl,
    format: o.format,
    reportForwardUrl: o.reportForwardUrl,
    secrets: o.secrets ? [...o.secrets] : undefined,
    timeoutMs: o.timeoutMs,
    connections: o.connections,
  };
}

function threadError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The thread's side: calls in, results out, batched per turn of its event loop. */
function serveCalls(port: NonNullable<typeof parentPort>, data: SenderWorkerData): void {
  const client = new ManagerClient(data.client);
  // Aborted when the dispatcher stops (the calls in flight end as interrupted); calls sent after
  // that get a fresh one, so a sender outlives the dispatcher that stopped, as the inline one does.
  let inFlight = new AbortController();
  setMaxListeners(0, inFlight.signal); // one listener per call in flight
  let done: [number, AttemptResult][] = [];
  const report = (id: number, result: AttemptResult) => {
    if (done.length === 0) setImmediate(() => port.postMessage({ results: flushDone() }));
    done.push([id, result]);
  };
  const flushDone = (): FromThread['results'] => {
    const out = done;
    done = [];
    return out;
  };
  port.on('message', (m: ToThread) => {
    if ('calls' in m) {
      for (const message of m.calls) {
        const id = message[0];
        void client.send(fromMessage(message), inFlight.signal).then((r) => report(id, r));
      }
    } else if ('abort' in m) {
      inFlight.abort();
      inFlight = new AbortController();
      setMaxListeners(0, inFlight.signal);
    } else {
      inFlight.abort();
      void client.close().finally(() => port.close());
    }
  });
}

if (
  !isMainThread &&
  (workerData as Partial<SenderWorkerData> | null)?.role === ROLE &&
  parentPort
) {
  serveCalls(parentPort, workerData as SenderWorkerData);
}
