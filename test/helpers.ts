/** Shared test fixtures: real stores on temporary files, the real app, real processes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../src/app.js';
import { DeviceService, type ServiceOptions } from '../src/devices/service.js';
import { EventBus } from '../src/events/bus.js';
import { SqliteStore } from './storage/store-view.js';
import type { StoreView } from './storage/store-view.js';
import type { AdminContext } from '../src/devices/admin.js';

/** Who does the admin writes tests make through the services directly. */
export const TEST_ADMIN: AdminContext = { actor: 'test', source: '127.0.0.1', via: 'test' };

/** A fresh directory removed by the returned cleanup. */
export function tempDir(prefix = 'ztp-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A SQLite store on a temporary file. */
export function tempSqliteStore(): {
  store: SqliteStore;
  path: string;
  cleanup: () => Promise<void>;
} {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 'ztp.db');
  const store = new SqliteStore(path);
  return {
    store,
    path,
    cleanup: async () => {
      await store.close();
      cleanup();
    },
  };
}

export interface TestApp {
  app: FastifyInstance;
  service: DeviceService;
  store: StoreView;
  events: EventBus;
  close: () => Promise<void>;
}

/**
 * The real app on a given store (default: a temporary SQLite file). `closeStore` false leaves
 * the store open (when the caller owns it).
 */
export async function testApp(
  opts: {
    store?: StoreView;
    service?: Partial<ServiceOptions>;
    app?: Partial<AppOptions>;
    closeStore?: boolean;
  } = {},
): Promise<TestApp> {
  const owned = opts.store ? undefined : tempSqliteStore();
  const store = opts.store ?? owned!.store;
  const events = new EventBus();
  const service = new DeviceService(store.stores, {
    triggersEnabled: false,
    historyLimit: 20,
    events,
    ...opts.service,
  });
  const app = await buildApp({ service, logger: false, ...opts.app });
  return {
    app,
    service,
    store,
    events,
    close: async () => {
      await app.close();
      if (owned) await owned.cleanup();
      else if (opts.closeStore) await store.close();
    },
  };
}

/** JSON body of an inject() response. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- typed view of a test response
export function json<T = Record<string, unknown>>(res: { body: string }): T {
  return JSON.parse(res.body) as T;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 5000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await sleep(20);
  }
}
