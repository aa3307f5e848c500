/**
 * Enrollment admin API (management guard): pending devices, approve, reject, rejected ids.
 * Registered as an app plugin (src/server.ts), on its own encapsulated instance.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { installGuard, type Guard } from '../http/auth.js';
import type { AppPlugin } from '../http/plugin.js';
import { problems } from '../http/schemas.js';
import { DeviceRecord, IdParams, ListQuery } from '../devices/schemas.js';
import { recordView } from '../devices/views.js';
import { adminContext } from '../devices/routes/admin-context.js';
import type { EnrollmentService } from './service.js';
import { PendingList, pendingView, RejectedView, rejectedView } from './views.js';

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;

const PageQuery = Type.Object({
  after: ListQuery.properties.after,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PAGE_MAX, default: PAGE_DEFAULT })),
});

const enrollmentApi: FastifyPluginAsyncTypebox<{
  enrollment: EnrollmentService;
  guard: Guard | undefined;
}> = async (app, { enrollment, guard }) => {
  installGuard(app, 'management', guard);

  app.get(
    '/ztp/mng/pending',
    {
      schema: {
        tags: ['management'],
        summary:
          'Devices waiting for approval (`--enrollment approve`), by id, with the rule that accepts each',
        querystring: PageQuery,
        response: { 200: PendingList, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? PAGE_DEFAULT;
      const [rows, count] = await Promise.all([
        enrollment.listPending(request.query.after, limit + 1),
        enrollment.countPending(),
      ]);
      const pending = rows.slice(0, limit).map((p) => pendingView(p.device, p.rule));
      return rows.length > limit
        ? { pending, count, next: pending.at(-1)!.id }
        : { pending, count };
    },
  );

  app.get(
    '/ztp/mng/rejected',
    {
      schema: {
        tags: ['management'],
        summary: 'Rejected device ids (their registrations are refused), by id',
        querystring: PageQuery,
        response: {
          200: Type.Object({
            rejected: Type.Array(RejectedView),
            next: Type.Optional(Type.String()),
          }),
          ...problems(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? PAGE_DEFAULT;
      const rows = await enrollment.listRejected(request.query.after, limit + 1);
      const rejected = rows.slice(0, limit).map(rejectedView);
      return rows.length > limit ? { rejected, next: rejected.at(-1)!.id } : { rejected };
    },
  );

  app.post(
    '/ztp/mng/:id/approve',
    {
      schema: {
        tags: ['management'],
        summary:
          'Approve a pending device: it becomes a normal device and its trigger is queued for its latest ip',
        params: IdParams,
        response: { 200: DeviceRecord, ...problems(400, 401, 403, 409, 503) },
      },
    },
    async (request) =>
      recordView((await enrollment.approve(request.params.id, adminContext(request))).device),
  );

  app.post(
    '/ztp/mng/:id/reject',
    {
      schema: {
        tags: ['management'],
        summary:
          'Reject a pending device: it is removed and its registrations are refused (403 device_rejected) until lifted',
        params: IdParams,
        response: { 200: RejectedView, ...problems(400, 401, 403, 409, 503) },
      },
    },
    async (request) =>
      rejectedView(await enrollment.reject(request.params.id, adminContext(request))),
  );

  app.delete(
    '/ztp/mng/rejected/:id',
    {
      schema: {
        tags: ['management'],
        summary: "Lift a rejection: the device's next registration counts as an unknown device's",
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      await enrollment.lift(request.params.id, adminContext(request));
      return reply.code(204).send(null);
    },
  );
};

/** The enrollment routes as an app plugin (buildApp's `plugins`). */
export function enrollmentPlugin(enrollment: EnrollmentService): AppPlugin {
  return async (app, ctx) => {
    await app.register(enrollmentApi, { enrollment, guard: ctx.guards.management });
  };
}
