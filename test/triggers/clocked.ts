/**
 * A dispatcher over the in-memory store, a scripted sender and node:test's mocked timers: time
 * moves only in advance(), so tests of retries, pauses and retention run in milliseconds and
 * never wait on the wall clock. The store and the sender settle in microtasks, so one turn of
 * the event loop (settle()) lets the dispatcher finish whatever the clock made due.
 */
import type { TestContext } from 'node:test';
import { EventBus } from '../../src/events/bus.js';
import type { Trigger } from '../../src/triggers/outbox.js';
import type { StoreView } from '../storage/store-view.js';
import {
  Dispatcher,
  type DispatcherOptions,
  type TriggerSender,
} from '../../src/triggers/dispatcher.js';
import type { AttemptResult } from '../../src/triggers/retry-policy.js';
import { MemoryStore } from '../storage/store-view.js';
import type { LogLine } from './setup.js';

export const T0 = 1_700_000_000_000;

export interface SentCall {
  /** The clock when the dispatcher made the call. */
  at: number;
  ip: string;
  key: string;
}

export interface Clocked {
  store: MemoryStore;
  dispatcher: Dispatcher;
  calls: SentCall[];
  logs: LogLine[];
  /** Trigger objects of every 'trigger' event, in order. */
  events: Trigger[];
  /** The manager: what it answers from now on (a promise holds each call until it settles). */
  manager: { answer: AttemptResult | Promise<AttemptResult> };
  now(): number;
  /** Registers a device (enqueuing its trigger) at the current time and wakes the dispatcher. */
  register(id: string, ip: string): Promise<void>;
  /** Lets every write, delivery and loop pass that is due now run to its end. */
  settle(): Promise<void>;
  /** Moves the clock on by `ms` in steps of `step`, settling after each. */
  advance(ms: number, step?: number): Promise<void>;
}

/** One turn of the event loop: every microtask chain (store, sender, dispatcher) has run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function clocked(
  t: TestContext,
  extra: Partial<DispatcherOptions> & { store?: StoreView } = {},
): Clocked {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  const memory = new MemoryStore();
  const calls: SentCall[] = [];
  const logs: LogLine[] = [];
  const events: Trigger[] = [];
  const bus = new EventBus();
  bus.subscribe((e) => {
    if (e.type === 'trigger') events.push(e.trigger);
  });
  const log =
    (level: LogLine['level']) =>
    (obj: object, msg: string): void => {
      logs.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const manager: Clocked['manager'] = { answer: { kind: 'response', status: 200 } };
  const sender: TriggerSender = {
    send: (call) => {
      calls.push({ at: Date.now(), ip: call.ip, key: call.key });
      return Promise.resolve(manager.answer);
    },
  };
  const dispatcher = new Dispatcher({
    outbox: (extra.store ?? memory).stores.outbox,
    sender,
    events: bus,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    concurrency: 8,
    timeoutMs: 1000,
    leaseMs: 60_000,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    maxAgeMs: 60_000,
    pollIntervalMs: 25,
    retentionMs: 86_400_000,
    gaugeIntervalMs: 10,
    random: () => 0.5,
    ...extra,
  });
  const settle = async () => {
    // A delivery's end wakes the loop, whose next pass may start another: a few turns.
    for (let i = 0; i < 3; i++) await turn();
  };
  t.after(() => dispatcher.stop(0));
  return {
    store: memory,
    dispatcher,
    calls,
    logs,
    events,
    manager,
    now: () => Date.now(),
    async register(id, ip) {
      await memory.register(
        { id, ip, name: '', userdata: '', source: '', at: Date.now() },
        { enqueueTrigger: true, historyLimit: 0 },
      );
      dispatcher.wake();
    },
    settle,
    async advance(ms, step = 10) {
      for (let moved = 0; moved < ms; moved += step) {
        t.mock.timers.tick(step);
        await settle();
      }
    },
  };
}
