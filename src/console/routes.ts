/**
 * The console's data (management group, behind the management guard): a server-side paged,
 * searchable, sortable device table; fleet summary numbers; a device's recent triggers; and the
 * live event stream (Server-Sent Events).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeviceService } from '../devices/service.js';
import type { ReportService } from '../reports/service.js';
import { reportView } from '../reports/views.js';
import { TooManyStreamsError, type EventStreamHub } from '../events/stream.js';
import { deviceSummary } from '../events/wire.js';
import { iso } from '../time.js';
import { TRIGGER_STATES } from '../triggers/queries.js';
import { IdParams } from '../devices/schemas.js';
import { installGuard, type Guard } from '../http/auth.js';
import { problems } from '../http/schemas.js';
import { TriggerView, triggerView } from '../triggers/views.js';
import { ConsoleDevicePage, StatsView } from './views.js';

/** Largest device page of GET /ztp/mng/devices. */
export const DEVICE_PAGE_MAX = 500;
/** Most triggers returned by GET /ztp/mng/devices/{id}/triggers. */
export const DEVICE_TRIGGERS_MAX = 50;

export interface LiveOptions {
  service: DeviceService;
  /** Each row's latest progress report; without it every row's is null. */
  reports?: ReportService | undefined;
  hub: EventStreamHub;
  guard?: Guard | undefined;
}

export const DevicesQuery = Type.Object({
  search: Type.Optional(
    Type.String({
      maxLength: 128,
      description: 'Case-insensitive substring of id, name or ip',
    }),
  ),
  trigger: Type.Optional(
    Type.Union(
      TRIGGER_STATES.map((state) => Type.Literal(state)),
      { description: 'Only devices whose latest trigger is in this state' },
    ),
  ),
  sort: Type.Optional(
    Type.Union(
      [
        Type.Literal('id'),
        Type.Literal('name'),
        Type.Literal('ip'),
        Type.Literal('lastSeen'),
        Type.Literal('registrations'),
      ],
      { default: 'id' },
    ),
  ),
  order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: DEVICE_PAGE_MAX, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000_000, default: 0 })),
});

const HOUR = 3_600_000;

export const liveApi: FastifyPluginAsyncTypebox<LiveOptions> = async (app, opts) => {
  installGuard(app, 'management', opts.guard);
  const { service, hub } = opts;

  app.get(
    '/ztp/mng/devices',
    {
      schema: {
        tags: ['management'],
        summary:
          'Devices for the console: searched, filtered by trigger state, sorted, offset-paged',
        querystring: DevicesQuery,
        response: { 200: ConsoleDevicePage, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const page = await service.queries.page({
        search: q.search,
        triggerState: q.trigger,
        sort: q.sort ?? 'id',
        order: q.order ?? 'asc',
        limit,
        offset,
      });
      const now = Date.now();
      const reports = await opts.reports?.latest(page.items.map(({ device }) => device.id));
      return {
        total: page.total,
        offset,
        limit,
        items: page.items.map(({ device, latestTrigger }) => {
          const report = reports?.get(device.id);
          return {
            ...deviceSummary(device),
            trigger: latestTrigger ? triggerView(latestTrigger, now) : null,
            report: report ? reportView(report) : null,
          };
        }),
      };
    },
  );

  app.get(
    '/ztp/mng/stats',
    {
      schema: {
        tags: ['management'],
        summary:
          'Fleet summary: devices, registered in the last hour, devices by their latest trigger state',
        response: { 200: StatsView, ...problems(401, 403, 503) },
      },
    },
    async () => {
      const now = service.now();
      const fleet = await service.queries.fleet(now - HOUR);
      return {
        time: iso(now),
        devices: fleet.devices,
        registeredLastHour: fleet.registeredSince,
        triggersEnabled: service.triggersEnabled,
        triggers: fleet.byLatestTrigger,
        eventStreams: hub.clientCount,
      };
    },
  );

  app.get(
    '/ztp/mng/devices/:id/triggers',
    {
      schema: {
        tags: ['management'],
        summary: "A device's most recent manager triggers (newest first) with their attempts",
        params: IdParams,
        querystring: Type.Object({
          limit: Type.Optional(
            Type.Integer({ minimum: 1, maximum: DEVICE_TRIGGERS_MAX, default: 10 }),
          ),
        }),
        response: {
          200: Type.Object({ triggers: Type.Array(TriggerView) }),
          ...problems(400, 401, 403, 404, 503),
        },
      },
    },
    async (request) => {
      const rows = await service.queries.recentTriggers(
        request.params.id,
        request.query.limit ?? 10,
      );
      const now = Date.now();
      return { triggers: rows.map((t) => triggerView(t, now)) };
    },
  );

  app.get(
    '/ztp/mng/events',
    {
      schema: {
        tags: ['management'],
        summary: 'Live events (Server-Sent Events): registered, edited, deleted, trigger',
        description:
          'text/event-stream. Each event has an `id`; reconnect with `Last-Event-ID` to resume. ' +
          'A `resync` event means events were missed: reload the state. `: ping` comments every ' +
          '15 s. Slow readers are disconnected; at most 64 streams per server (429 beyond).',
        headers: Type.Object({
          'last-event-id': Type.Optional(Type.String({ maxLength: 64 })),
        }),
        response: {
          200: Type.String({ description: 'text/event-stream' }),
          ...problems(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      if (!hub.hasRoom()) throw new TooManyStreamsError(hub.limits.maxClients);
      // The stream belongs to the hub from here on; Fastify sends no reply of its own.
      reply.hijack();
      hub.attach(reply.raw, request.headers['last-event-id']);
      // Hijacked replies skip the per-request log line: log the stream's life instead.
      request.log.info({ remote: request.ip, streams: hub.clientCount }, 'event stream opened');
      reply.raw.on('close', () =>
        request.log.info(
          { remote: request.ip, ms: Math.round(reply.elapsedTime) },
          'event stream closed',
        ),
      );
    },
  );

  // Open streams would otherwise keep app.close() waiting forever.
  app.addHook('preClose', async () => hub.close());
};
