/**
 * Prometheus metrics (GET /metrics, text exposition format), on a registry of their own so that
 * several apps in one process (tests) never share counters.
 *
 * Counters move on events of this process (HTTP responses, EventBus events); gauges that need
 * the store (devices, triggers by state) are read on scrape. With several replicas, sum the
 * counters over replicas; the store gauges are the same on every replica.
 */
import type { FastifyInstance } from 'fastify';
import client from 'prom-client';
import type { EventBus, RegistryEvent } from '../events/bus.js';
import type { EventStreamHub } from '../events/stream.js';
import type { Guard } from '../http/auth.js';
import { installGuard } from '../http/auth.js';
import type { PluginContext } from '../http/plugin.js';
import type { DeviceQueries } from '../devices/queries.js';
import type { TriggerState } from '../triggers/outbox.js';
import { TRIGGER_STATES, type TriggerQueries } from '../triggers/queries.js';
import type { AttemptResult } from '../triggers/retry-policy.js';
import { HttpSeries } from './http-series.js';

export interface MetricsOptions {
  /** Read on each scrape for the device and trigger gauges. */
  devices: Pick<DeviceQueries, 'count' | 'countByLatestTrigger'>;
  triggers: Pick<TriggerQueries, 'countByState'>;
  events: EventBus;
  hub?: EventStreamHub | undefined;
  /** Collect process_* and nodejs_* metrics (default true). */
  processMetrics?: boolean;
  /** The local trigger dispatcher, if any: whether it sees the manager as down (circuit open). */
  dispatcher?: () => { stats(): { managerDown: boolean } } | undefined;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400];

export class Metrics {
  readonly registry = new client.Registry();
  private readonly unsubscribe: () => void;
  private readonly http = new HttpSeries(LATENCY_BUCKETS);
  private readonly registrations;
  private readonly triggerChanges;
  private readonly deliveryLag;
  private readonly callDuration;
  private readonly storageErrors;
  private readonly reports;
  private readonly scrapeErrors;
  private readonly storeUp;
  private readonly devices;
  private readonly triggersByState;
  private readonly pending;
  private readonly devicesByTrigger;

  constructor(private readonly opts: MetricsOptions) {
    const registers = [this.registry];
    const { hub } = opts;

    this.registrations = new client.Counter({
      name: 'ztp_registrations_total',
      help: 'Committed device registrations; result is created (new device) or updated',
      labelNames: ['result'] as const,
      registers,
    });
    this.triggerChanges = new client.Counter({
      name: 'ztp_triggers_total',
      help: 'Trigger state changes seen by this process: queued, delivered, retried, failed, dead',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.deliveryLag = new client.Histogram({
      name: 'ztp_trigger_delivery_lag_seconds',
      help: 'Time from a trigger being queued (its registration) to the manager accepting it',
      buckets: LAG_BUCKETS,
      registers,
    });
    this.callDuration = new client.Histogram({
      name: 'ztp_manager_call_duration_seconds',
      help: 'One call to the manager, sent to answered (or given up), by result: 2xx, 4xx, 5xx, other (1xx/3xx), timeout, error',
      labelNames: ['result'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.reports = new client.Counter({
      name: 'ztp_reports_total',
      help: "Devices' progress reports committed by this process, by RFC 8572 progress type (bootstrap-error: a provisioning failed)",
      labelNames: ['type'] as const,
      registers,
    });
    this.storageErrors = new client.Counter({
      name: 'ztp_storage_errors_total',
      help: 'Requests answered 503 storage_unavailable (the database failed or did not commit)',
      registers,
    });
    this.scrapeErrors = new client.Counter({
      name: 'ztp_metrics_scrape_errors_total',
      help: 'Scrapes in which the store could not be read (its gauges keep their last value)',
      registers,
    });
    this.storeUp = new client.Gauge({
      name: 'ztp_store_up',
      help: 'Whether the store answered the last scrape (1) or not (0)',
      registers,
    });
    this.devices = new client.Gauge({
      name: 'ztp_devices',
      help: 'Devices in the registry',
      registers,
    });
    this.triggersByState = new client.Gauge({
      name: 'ztp_triggers',
      help: 'Trigger rows in the store by state (finished ones until retention; see ztp_devices_by_trigger_state)',
      labelNames: ['state'] as const,
      registers,
    });
    this.pending = new client.Gauge({
      name: 'ztp_triggers_pending',
      help: 'Triggers waiting for delivery (same as ztp_triggers{state="pending"})',
      registers,
    });
    this.devicesByTrigger = new client.Gauge({
      name: 'ztp_devices_by_trigger_state',
      help: 'Devices by the state of their latest trigger (what the console summary shows)',
      labelNames: ['state'] as const,
      registers,
    });
    const { dispatcher } = opts;
    if (dispatcher) {
      new client.Gauge({
        name: 'ztp_manager_circuit_open',
        help: "1 while this process's dispatcher sees the manager as down (circuit open: one probe call at a time), else 0",
        registers,
        collect() {
          this.set(dispatcher()?.stats().managerDown ? 1 : 0);
        },
      });
    }
    if (hub) {
      new client.Gauge({
        name: 'ztp_event_streams',
        help: 'Open /ztp/mng/events streams',
        registers,
        collect() {
          this.set(hub.clientCount);
        },
      });
      new client.Counter({
        name: 'ztp_event_streams_dropped_total',
        help: 'Event streams disconnected because the client did not keep up',
        registers,
        collect() {
          this.reset();
          this.inc(hub.dropped);
        },
      });
    }
    for (const outcome of ['queued', 'delivered', 'retried', 'failed', 'dead']) {
      this.triggerChanges.inc({ outcome }, 0);
    }
    this.registrations.inc({ result: 'created' }, 0);
    this.registrations.inc({ result: 'updated' }, 0);
    if (opts.processMetrics !== false) {
      client.collectDefaultMetrics({ register: this.registry });
    }
    this.unsubscribe = opts.events.subscribe((e) => this.onEvent(e));
  }

  private onEvent(e: RegistryEvent): void {
    if (e.type === 'registered') {
      this.registrations.inc({ result: e.created ? 'created' : 'updated' });
    } else if (e.type === 'trigger') {
      const t = e.trigger;
      const outcome = triggerOutcome(t.state, t.attempts, t.lastError);
      this.triggerChanges.inc({ outcome });
      if (t.state === 'delivered' && t.deliveredAt !== null) {
        this.deliveryLag.observe(Math.max(0, t.deliveredAt - t.createdAt) / 1000);
      }
    } else if (e.type === 'report') {
      this.reports.inc({ type: e.report.type });
    }
  }

  /** A call of this process's dispatcher to the manager (DispatcherOptions.onCall). */
  observeManagerCall(seconds: number, result: AttemptResult): void {
    this.callDuration.observe({ result: callResult(result) }, seconds);
  }

  /** Reads the store gauges (once per scrape). */
  private async readStore(): Promise<void> {
    try {
      const [devices, triggers, byDevice] = await Promise.all([
        this.opts.devices.count(),
        this.opts.triggers.countByState(),
        this.opts.devices.countByLatestTrigger(),
      ]);
      this.devices.set(devices);
      for (const state of TRIGGER_STATES) {
        this.triggersByState.set({ state }, triggers[state]);
        this.devicesByTrigger.set({ state }, byDevice[state]);
      }
      this.pending.set(triggers.pending);
      this.storeUp.set(1);
    } catch {
      this.storeUp.set(0);
      this.scrapeErrors.inc();
    }
  }

  /** The exposition text, store gauges read now. */
  async text(): Promise<string> {
    await this.readStore();
    return (await this.registry.metrics()) + this.http.text(); // the first ends with a newline
  }

  /**
   * Adds the HTTP hooks to the root instance and GET /metrics behind `guard`; `onAnswer` reports
   * every answered request (src/app.ts).
   */
  async install(
    app: FastifyInstance,
    guard: Guard | undefined,
    onAnswer: PluginContext['onAnswer'],
  ): Promise<void> {
    // Callback-style hooks: they run on every request, and an async hook costs a promise and a
    // microtask hop each time.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (
        reply.statusCode === 503 &&
        typeof payload === 'string' &&
        payload.includes('"code":"storage_unavailable"')
      ) {
        this.storageErrors.inc();
      }
      done(null, payload);
    });
    onAnswer((method, route, status, seconds) => {
      this.http.observe(method, route, status, seconds);
    });
    app.addHook('onClose', async () => this.close());
    await app.register(async (scope) => {
      installGuard(scope, 'management', guard);
      scope.get(
        '/metrics',
        {
          schema: {
            tags: ['operations'],
            summary: 'Prometheus metrics (text exposition format 0.0.4)',
            produces: ['text/plain'],
            response: { 200: { type: 'string', description: 'Prometheus text format' } },
          },
        },
        async (_request, reply) => {
          return reply.type(this.registry.contentType).send(await this.text());
        },
      );
    });
  }

  close(): void {
    this.unsubscribe();
  }
}

/** What a trigger event means for the counters. */
export function triggerOutcome(
  state: TriggerState,
  attempts: number,
  lastError: string | null,
): string {
  if (state !== 'pending') return state;
  return attempts > 0 && lastError !== null ? 'retried' : 'queued';
}

/** The result label of a manager call. */
export function callResult(r: AttemptResult): string {
  if (r.kind !== 'response') return r.kind;
  if (r.status >= 200 && r.status < 300) return '2xx';
  if (r.status >= 400 && r.status < 500) return '4xx';
  if (r.status >= 500 && r.status < 600) return '5xx';
  return 'other';
}
