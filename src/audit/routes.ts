/** The audit log's route (management guard): GET /ztp/mng/audit, oldest first, paged by seq. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { installGuard, type Guard } from '../http/auth.js';
import type { AppPlugin } from '../http/plugin.js';
import { problems } from '../http/schemas.js';
import type { AuditService } from './service.js';
import { AuditPage, auditEntryView } from './views.js';

export const AUDIT_PAGE_DEFAULT = 100;
export const AUDIT_PAGE_MAX = 1000;

const AuditQuery = Type.Object({
  device: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "A device's id or alias: that device's entries (a deleted device's, by the id it had)",
    }),
  ),
  // A string, checked here: the query conversion would truncate `1.5` to an integer.
  after: Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,15}$',
      'x-expected': 'a non-negative integer of at most 15 digits',
      description: 'An entry seq (a non-negative integer): return those after it',
    }),
  ),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: AUDIT_PAGE_MAX, default: AUDIT_PAGE_DEFAULT }),
  ),
});

const auditApi: FastifyPluginAsyncTypebox<{
  audit: AuditService;
  guard: Guard | undefined;
}> = async (app, { audit, guard }) => {
  installGuard(app, 'management', guard);

  app.get(
    '/ztp/mng/audit',
    {
      schema: {
        tags: ['management'],
        summary:
          'The audit log: every admin write (who, when, from where, the device before and after), oldest first',
        querystring: AuditQuery,
        response: { 200: AuditPage, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? AUDIT_PAGE_DEFAULT;
      const rows = await audit.list({
        device: request.query.device,
        after: request.query.after === undefined ? undefined : Number(request.query.after),
        limit: limit + 1,
      });
      const entries = rows.slice(0, limit).map(auditEntryView);
      return rows.length > limit ? { entries, next: entries.at(-1)!.seq } : { entries };
    },
  );
};

/** The audit route as an app plugin (AppOptions.plugins). */
export function auditRoutes(audit: AuditService): AppPlugin {
  return async (app, ctx) => {
    await app.register(auditApi, { audit, guard: ctx.guards.management });
  };
}
