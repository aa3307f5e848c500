/**
 * The real app, store, manager client and dispatcher wired as in src/server.ts, against a real
 * local HTTP manager, with short timings so that retries happen within milliseconds.
 */
import type { Trigger } from '../../src/triggers/outbox.js';
import { Dispatcher, type DispatcherOptions } from '../../src/triggers/dispatcher.js';
import { basicCall } from '../../src/triggers/manager-call.js';
import type { ManagerClientOptions } from '../../src/triggers/manager-client.js';
import { openTriggerSender, type ClosableTriggerSender } from '../../src/triggers/sender.js';
import { eventually, json, testApp, type TestApp } from '../helpers.js';
import { Signal } from '../signal.js';
import { FakeManager } from './fake-manager.js';

/** Polls until `check` gives a value (not undefined/null/false); throws after `ms`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  ms = 5000,
  what = 'condition',
): Promise<T> {
  return (await eventually(check, ms, what)) as T;
}

export const quiet = { debug: noop, info: noop, warn: noop, error: noop };
function noop(): void {
  // discard
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

export interface TriggerView {
  id: number;
  deviceId: string;
  ip: string;
  state: string;
  attempts: number;
  createdAt: string;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
  inFlight: boolean;
}

export interface Harness {
  manager: FakeManager;
  t: TestApp;
  dispatcher: Dispatcher;
  client: ClosableTriggerSender;
  logs: LogLine[];
  /** Trigger objects of every 'trigger' event, in order. */
  events: Trigger[];
  /**
   * The `nth` trigger event (counting from 1) that `match` accepts (a test, or members to equal),
   * once it is published: a dispatcher's outcome is in the outbox by then.
   */
  published(match: TriggerMatch, nth?: number, ms?: number): Promise<Trigger>;
  /** The first log line whose message starts with `msg`, once it is logged. */
  logged(msg: string, ms?: number): Promise<LogLine>;
  /** PUT /ztp/register/{id}; returns the status. */
  register(id: string, ip: string): Promise<number>;
  /** GET /ztp/mng/{id} → trigger member. */
  trigger(id: string): Promise<TriggerView | null>;
  close(): Promise<void>;
}

export type TriggerMatch =
  Partial<Pick<Trigger, 'deviceId' | 'ip' | 'state'>> | ((event: Trigger) => boolean);

/** A failed attempt of the device's trigger, rescheduled (not the enqueue's pending event). */
export const retried =
  (deviceId: string) =>
  (e: Trigger): boolean =>
    e.deviceId === deviceId && e.state === 'pending' && e.lastError !== null;

export type HarnessOptions = Partial<
  Omit<DispatcherOptions, 'outbox' | 'sender' | 'events' | 'logger'>
> & {
  /** Do not start the dispatcher (the test starts it). */
  idle?: boolean;
  /** Manager base URL (default: the fake manager's). */
  managerUrl?: (manager: FakeManager) => string;
  /** Start the fake manager (default true); when false it refuses connections until started. */
  managerUp?: boolean;
  /** The call's form (--manager-format, secrets). */
  client?: Pick<ManagerClientOptions, 'format' | 'secrets'>;
};

/**
 * The sender the harness delivers through (--trigger-sender): `inline` by default; the same
 * suite runs again on the sender thread (dispatcher-thread.test.ts sets it before loading it).
 */
let senderKind: 'inline' | 'thread' = 'inline';
export function useSender(kind: 'inline' | 'thread'): void {
  senderKind = kind;
}

/** The trigger paths a suite runs over (--trigger-hand-over): the default and the simple one. */
export const HAND_OVER_MODES = [
  { name: 'hand-over on', handOver: true },
  { name: 'hand-over off', handOver: false },
] as const;

export async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const manager = new FakeManager();
  await manager.start();
  if (opts.managerUp === false) await manager.stop();
  const ref: { dispatcher?: Dispatcher } = {};
  const t = await testApp({
    service: { triggersEnabled: true, dispatcher: () => ref.dispatcher },
  });
  const timeoutMs = opts.timeoutMs ?? 2000;
  const client = await openTriggerSender(senderKind, {
    ...opts.client,
    managerUrl: opts.managerUrl?.(manager) ?? manager.url,
    timeoutMs,
    connections: opts.concurrency ?? 8,
  });
  if (senderKind === 'thread' && opts.managerUp !== false) {
    // A running server's thread is up while calls flow; starting it (under tsx, on a busy
    // machine: seconds) is not part of any delivery these tests time, so start it first.
    await client.send(basicCall({ key: 'warm-up', ip: '192.0.2.1' }));
    manager.calls.length = 0;
  }
  const changed = new Signal();
  const logs: LogLine[] = [];
  const log =
    (level: LogLine['level']) =>
    (obj: object, msg: string): void => {
      logs.push({ level, obj: obj as Record<string, unknown>, msg });
      changed.notify();
    };
  const events: Trigger[] = [];
  t.events.subscribe((e) => {
    if (e.type !== 'trigger') return;
    events.push(e.trigger);
    changed.notify();
  });
  const { client: _client, ...dispatcherOpts } = opts;
  const d = new Dispatcher({
    outbox: t.store.stores.outbox,
    sender: client,
    events: t.events,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    concurrency: 8,
    timeoutMs,
    leaseMs: 2 * timeoutMs,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    maxAgeMs: 60_000,
    pollIntervalMs: 25,
    retentionMs: 86_400_000,
    gaugeIntervalMs: 10,
    ...dispatcherOpts,
  });
  ref.dispatcher = d;
  if (!opts.idle) d.start();
  return {
    manager,
    t,
    dispatcher: d,
    client,
    logs,
    events,
    published(match, nth = 1, ms = 5000) {
      const accepts =
        typeof match === 'function'
          ? match
          : (e: Trigger) =>
              Object.entries(match).every(([k, v]) => e[k as keyof typeof match] === v);
      const matches = () => events.filter(accepts);
      return changed.until(
        () => matches()[nth - 1],
        () =>
          `trigger event #${nth} with ${typeof match === 'function' ? match.toString() : JSON.stringify(match)} ` +
          `(${matches().length} so far; all: ${events.map((e) => `${e.deviceId} ${e.ip} ${e.state}`).join(', ')})`,
        ms,
      );
    },
    logged(msg, ms = 5000) {
      return changed.until(
        () => logs.find((l) => l.msg.startsWith(msg)),
        `the log line "${msg}…"`,
        ms,
      );
    },
    async register(id, ip) {
      const res = await t.app.inject({
        method: 'PUT',
        url: `/ztp/register/${id}`,
        payload: { ip },
      });
      return res.statusCode;
    },
    async trigger(id) {
      const res = await t.app.inject({ method: 'GET', url: `/ztp/mng/${id}` });
      return json<{ trigger: TriggerView | null }>(res).trigger;
    },
    async close() {
      await d.stop(0);
      await client.close();
      await manager.stop();
      await t.close();
    },
  };
}
