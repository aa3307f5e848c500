/**
 * A real server with the operator features on a temporary SQLite store, listening on 127.0.0.1,
 * for the browser tests and the screenshot script. Triggers are enabled but no dispatcher runs:
 * trigger states are set through the store (setTriggerState), as a dispatcher would.
 */
import { existsSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../../src/app.js';
import { auditRoutes } from '../../src/audit/routes.js';
import { AuditService } from '../../src/audit/service.js';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.js';
import { DeviceService } from '../../src/devices/service.js';
import { ZtpError } from '../../src/errors.js';
import { EventBus } from '../../src/events/bus.js';
import type { StreamLimits } from '../../src/events/stream.js';
import type { Guard } from '../../src/http/auth.js';
import { operatorFeatures, type OperatorFeatures } from '../../src/operator.js';
import { reportRoutes } from '../../src/reports/routes.js';
import { ReportService } from '../../src/reports/service.js';
import { SqliteReportStore } from '../../src/reports/store-sqlite.js';
import type { TriggerState } from '../../src/triggers/outbox.js';
import type { StoreView } from '../storage/store-view.js';
import { tempSqliteStore } from '../helpers.js';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** The browser suites' skip reason: Debian's Chromium is not installed (false when it is). */
export const chromiumMissing: string | false = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install chromium)`;

/** Debian's Chromium, headless, driven by playwright-core (never a downloaded browser). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface ConsoleServer {
  app: FastifyInstance;
  url: string;
  store: StoreView;
  service: DeviceService;
  reports: ReportService;
  events: EventBus;
  operator: OperatorFeatures;
  /**
   * When set, the management API demands `Authorization: Bearer <token>`; the token
   * `manager-token` is then valid but of a role that may not manage (403).
   */
  auth: { token: string | undefined };
  setTriggerState(deviceId: string, state: Exclude<TriggerState, 'pending'>): Promise<void>;
  close(): Promise<void>;
}

export async function startConsoleServer(
  opts: { streamLimits?: Partial<StreamLimits>; historyLimit?: number } = {},
): Promise<ConsoleServer> {
  const { store, cleanup } = tempSqliteStore();
  const events = new EventBus();
  const auditStore = new SqliteAuditStore(store.database);
  const service = new DeviceService(store.stores, {
    triggersEnabled: true,
    historyLimit: opts.historyLimit ?? 20,
    events,
    audit: auditStore,
  });
  const audit = new AuditService(auditStore, {
    retentionMs: 0,
    resolveId: (id) => service.resolveId(id),
  });
  const reports = new ReportService(
    { db: store.database, reports: new SqliteReportStore(store.database) },
    service,
    { events },
  );
  const operator = operatorFeatures({
    service,
    reports,
    events,
    processMetrics: false,
    streamLimits: opts.streamLimits,
  });
  const auth: { token: string | undefined } = { token: undefined };
  const guard: Guard = async (request) => {
    if (auth.token === undefined) return undefined;
    if (request.headers.authorization === 'Bearer manager-token') {
      throw new ZtpError('forbidden', "role 'manager' may not use the management API");
    }
    if (request.headers.authorization !== `Bearer ${auth.token}`) {
      throw new ZtpError('unauthorized', 'a valid admin token is required');
    }
    return { role: 'admin', subject: 'test' };
  };
  const app = await buildApp({
    service,
    logger: false,
    guards: { management: guard },
    plugins: [reportRoutes(reports), auditRoutes(audit), operator.plugin],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  /** Completes the device's pending trigger with `state`, as the dispatcher would. */
  async function setTriggerState(deviceId: string, state: Exclude<TriggerState, 'pending'>) {
    const now = Date.now();
    const claimed = await store.claimTriggers(now + 1, 100_000, 60_000);
    for (const t of claimed) {
      if (t.deviceId !== deviceId) {
        // Give the others back untouched (as a retry due now, without an error).
        await store.completeTrigger(t, { kind: 'retry', at: now, nextAttemptAt: now, error: '' });
        continue;
      }
      const outcome =
        state === 'delivered'
          ? ({ kind: 'delivered', at: now } as const)
          : ({ kind: state, at: now, error: 'manager answered 500' } as const);
      await store.completeTrigger(t, outcome);
      const updated = await store.latestTrigger(deviceId);
      if (updated) events.emit({ type: 'trigger', trigger: updated });
    }
  }

  return {
    app,
    url,
    store,
    service,
    reports,
    events,
    operator,
    auth,
    setTriggerState,
    close: async () => {
      await app.close();
      await cleanup();
    },
  };
}

/** Registers `n` devices sw-00.. with ips 10.0.x.y, as devices would. */
export async function seed(server: ConsoleServer, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const role = ['core', 'edge', 'access', 'lab'][i % 4]!;
    await server.service.register(
      id,
      {
        ip: `10.0.${Math.floor(i / 50)}.${(i % 50) + 10}`,
        name: `sw-${role}-${String(i).padStart(2, '0')}`,
        userdata: `rack ${(i % 12) + 1}\nrole ${role}`,
      },
      `192.0.2.${(i % 200) + 1}`,
    );
    ids.push(id);
  }
  return ids;
}
