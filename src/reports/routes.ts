/**
 * Progress report routes: devices report (POST /ztp/report/{id}, the registration's guard and
 * bodies), operators read a device's reports (management guard).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { IdParams } from '../devices/schemas.js';
import {
  installRegistrationBodies,
  REGISTRATION_MEDIA_TYPES,
} from '../devices/routes/registration-body.js';
import { installGuard, type Guard } from '../http/auth.js';
import type { AppPlugin } from '../http/plugin.js';
import { problems } from '../http/schemas.js';
import { PROGRESS_TYPES, REPORT_HISTORY_LIMIT, REPORT_MESSAGE_MAX_BYTES } from './progress.js';
import type { ReportService } from './service.js';
import { ReportView, reportView } from './views.js';

// No enum or maxLength here: an unknown type and a long message get their own codes
// (unknown_progress_type, report_message_too_long), not the generic invalid_body.
export const ReportBody = Type.Object({
  type: Type.String({ description: `One of: ${PROGRESS_TYPES.join(', ')}` }),
  message: Type.Optional(
    Type.String({ description: `At most ${REPORT_MESSAGE_MAX_BYTES} bytes (UTF-8)` }),
  ),
});
export type ReportBody = Static<typeof ReportBody>;

/** A form's report members: `type` and `message`; others are ignored. */
export function reportFromForm(members: ReadonlyMap<string, string>): Record<string, string> {
  const body: Record<string, string> = {};
  for (const key of ['type', 'message']) {
    const value = members.get(key);
    if (value !== undefined) body[key] = value;
  }
  return body;
}

interface RouteOptions {
  reports: ReportService;
  guard?: Guard | undefined;
}

const deviceApi: FastifyPluginAsyncTypebox<RouteOptions> = async (app, opts) => {
  installGuard(app, 'registration', opts.guard);
  installRegistrationBodies(app, {
    fromForm: reportFromForm,
    what: 'a report body',
    formMembers: 'type, message',
  });
  app.post(
    '/ztp/report/:id',
    {
      schema: {
        tags: ['registration'],
        summary: "A device's progress report (RFC 8572 progress types)",
        description:
          'Called by a provisioning script as it goes: the type says where it is (`bootstrap-initiated` … `bootstrap-complete`, `bootstrap-error`), the optional message says more. ' +
          `The device must be registered (404 otherwise). Its latest ${REPORT_HISTORY_LIMIT} reports are kept. ` +
          'The body may be JSON or a form (`type`, `message`), like a registration. A 201 means the report is committed.',
        consumes: [...REGISTRATION_MEDIA_TYPES],
        params: IdParams,
        body: ReportBody,
        response: { 201: ReportView, ...problems(400, 401, 403, 404, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const report = await opts.reports.report(request.params.id, request.body);
      return reply.code(201).send(reportView(report));
    },
  );
};

const managementApi: FastifyPluginAsyncTypebox<RouteOptions> = async (app, opts) => {
  installGuard(app, 'management', opts.guard);
  app.get(
    '/ztp/mng/devices/:id/reports',
    {
      schema: {
        tags: ['management'],
        summary: "A device's progress reports, newest first",
        params: IdParams,
        querystring: Type.Object({
          limit: Type.Optional(
            Type.Integer({ minimum: 1, maximum: REPORT_HISTORY_LIMIT, default: 20 }),
          ),
        }),
        response: {
          200: Type.Object({ reports: Type.Array(ReportView) }),
          ...problems(400, 401, 403, 404, 503),
        },
      },
    },
    async (request) => {
      const rows = await opts.reports.recent(request.params.id, request.query.limit ?? 20);
      return { reports: rows.map(reportView) };
    },
  );
};

/** The report routes as an app plugin (AppOptions.plugins), with the groups' guards. */
export function reportRoutes(reports: ReportService): AppPlugin {
  return async (app, ctx) => {
    await app.register(deviceApi, { reports, guard: ctx.guards.registration });
    await app.register(managementApi, { reports, guard: ctx.guards.management });
  };
}
