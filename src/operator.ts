/**
 * Wires the operator features into an app: the console page (public), the console's data and
 * the live event stream (management guard), and /metrics (management guard).
 *
 *   const operator = operatorFeatures({ service, events });
 *   await buildApp({ service, plugins: [operator.plugin] });
 *
 * It combines http/ routes with metrics/, which itself builds on http/, so it lives above both.
 */
import type { DeviceService } from './devices/service.js';
import type { ReportService } from './reports/service.js';
import type { EventBus } from './events/bus.js';
import { EventStreamHub, type StreamLimits } from './events/stream.js';
import { consolePage } from './console/page.js';
import { liveApi } from './console/routes.js';
import type { AppPlugin } from './http/plugin.js';
import { Metrics, type MetricsOptions } from './metrics/metrics.js';

export interface OperatorOptions {
  service: DeviceService;
  /** Progress reports: the console's status column (none: no column data). */
  reports?: ReportService | undefined;
  events: EventBus;
  streamLimits?: Partial<StreamLimits>;
  /** Collect process_* / nodejs_* metrics (default true; tests turn it off). */
  processMetrics?: boolean;
  /** Where the built console is (default: the package's dist/console). */
  consoleDir?: string;
  /** The local trigger dispatcher, if any (for ztp_manager_circuit_open). */
  dispatcher?: MetricsOptions['dispatcher'];
}

export interface OperatorFeatures {
  hub: EventStreamHub;
  metrics: Metrics;
  plugin: AppPlugin;
}

export function operatorFeatures(opts: OperatorOptions): OperatorFeatures {
  const hub = new EventStreamHub(opts.events, opts.streamLimits);
  const metrics = new Metrics({
    devices: opts.service.queries,
    triggers: opts.service.triggerQueries,
    events: opts.events,
    hub,
    processMetrics: opts.processMetrics,
    dispatcher: opts.dispatcher,
  });
  return {
    hub,
    metrics,
    plugin: async (app, ctx) => {
      const guard = ctx.guards.management;
      await metrics.install(app, guard, ctx.onAnswer);
      await app.register(liveApi, { service: opts.service, reports: opts.reports, hub, guard });
      await consolePage(app, { dir: opts.consoleDir });
    },
  };
}
