/** Management API: list, inspect, edit and delete devices; inspect and re-queue triggers. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { installGuard } from '../../http/auth.js';
import { problems } from '../../http/schemas.js';
import { TRIGGER_STATES } from '../../triggers/queries.js';
import { TriggerView, triggerView } from '../../triggers/views.js';
import type { DeviceQueries } from '../queries.js';
import {
  AliasBody,
  AliasParams,
  DeviceRecord,
  EditBody,
  HostList,
  IdParams,
  ListQuery,
  PatchBody,
} from '../schemas.js';
import { AliasView, DeviceDetailView, detailView, recordView } from '../views.js';
import { adminContext } from './admin-context.js';
import type { GroupOptions } from './registration.js';

/** Page size used when streaming the whole id list. */
const STREAM_CHUNK = 5000;

/**
 * Streams {"hosts":[...]} page by page so that a million ids never sit in memory at once.
 * The first page is read before the status line is sent, so an unreachable database still
 * answers 503; a failure later can only cut the connection (the JSON stays unterminated).
 */
async function streamHosts(queries: DeviceQueries): Promise<Readable> {
  const firstPage = await queries.listIds(undefined, STREAM_CHUNK);
  async function* generate(): AsyncGenerator<string> {
    let page = firstPage;
    let first = true;
    yield '{"hosts":[';
    while (page.length > 0) {
      let chunk = '';
      for (const id of page) {
        chunk += (first ? '' : ',') + JSON.stringify(id);
        first = false;
      }
      yield chunk;
      if (page.length < STREAM_CHUNK) break;
      page = await queries.listIds(page.at(-1), STREAM_CHUNK);
    }
    yield ']}';
  }
  return Readable.from(generate(), { objectMode: false });
}

export const managementApi: FastifyPluginAsyncTypebox<GroupOptions> = async (app, opts) => {
  installGuard(app, 'management', opts.guard);
  const { service } = opts;

  app.get(
    '/ztp/mng/list',
    {
      schema: {
        tags: ['management'],
        summary: 'All device ids, sorted',
        description:
          'Without `limit` the whole list is streamed. With `limit` (and `after`, the last id of the previous page) ' +
          'it is paged; `next` is present while more remain.',
        querystring: ListQuery,
        response: { 200: HostList, ...problems(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const { limit, after } = request.query;
      if (limit === undefined && after === undefined) {
        return reply
          .type('application/json; charset=utf-8')
          .send((await streamHosts(service.queries)) as never);
      }
      const size = limit ?? 1000;
      const ids = await service.queries.listIds(after, size + 1);
      const hosts = ids.slice(0, size);
      return ids.length > size ? { hosts, next: hosts.at(-1)! } : { hosts };
    },
  );

  app.get(
    '/ztp/mng/triggers',
    {
      schema: {
        tags: ['management'],
        summary: 'Manager triggers, oldest first, optionally by state',
        querystring: Type.Object({
          state: Type.Optional(Type.Union(TRIGGER_STATES.map((s) => Type.Literal(s)))),
          after: Type.Optional(
            Type.Integer({ minimum: 0, description: 'Trigger id: return those after it' }),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: {
          200: Type.Object({
            triggers: Type.Array(TriggerView),
            next: Type.Optional(Type.Integer()),
          }),
          ...problems(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const rows = await service.triggerQueries.list(
        request.query.state,
        request.query.after,
        limit + 1,
      );
      const now = Date.now();
      const triggers = rows.slice(0, limit).map((t) => triggerView(t, now));
      return rows.length > limit ? { triggers, next: triggers.at(-1)!.id } : { triggers };
    },
  );

  app.get(
    '/ztp/mng/:id',
    {
      schema: {
        tags: ['management'],
        summary:
          'Device detail (by primary id or alias): record, aliases, pins and reported values, first/last seen, registrations, source address, latest trigger, history',
        params: IdParams,
        response: { 200: DeviceDetailView, ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const { device, trigger, history, aliases } = await service.detail(request.params.id);
      return detailView(device, trigger, history, aliases);
    },
  );

  app.put(
    '/ztp/mng/:id',
    {
      schema: {
        tags: ['management'],
        summary:
          'Edit a device (never triggers the manager); members absent keep their value. Creates it (201) only with `--enrollment allowlist`',
        params: IdParams,
        body: EditBody,
        response: {
          200: DeviceRecord,
          201: DeviceRecord,
          ...problems(400, 401, 403, 404, 413, 415, 503),
        },
      },
    },
    async (request, reply) => {
      const { device, created } = await service.put(
        request.params.id,
        request.body,
        adminContext(request),
      );
      return reply.code(created ? 201 : 200).send(recordView(device));
    },
  );

  app.patch(
    '/ztp/mng/:id',
    {
      schema: {
        tags: ['management'],
        summary:
          'Partial edit (JSON merge patch): members present are set, null empties name/userdata or unpins',
        params: IdParams,
        body: PatchBody,
        response: { 200: DeviceRecord, ...problems(400, 401, 403, 404, 413, 415, 503) },
      },
    },
    async (request) =>
      recordView(await service.edit(request.params.id, request.body, adminContext(request))),
  );

  app.post(
    '/ztp/mng/:id/aliases',
    {
      schema: {
        tags: ['management'],
        summary: "Add an alias to a device; answers the device's aliases",
        params: IdParams,
        body: AliasBody,
        response: {
          201: Type.Object({ aliases: Type.Array(AliasView) }),
          ...problems(400, 401, 403, 404, 409, 413, 415, 503),
        },
      },
    },
    async (request, reply) =>
      reply.code(201).send({
        aliases: await service.addAliases(request.params.id, [request.body], adminContext(request)),
      }),
  );

  app.delete(
    '/ztp/mng/:id/aliases/:type/:value',
    {
      schema: {
        tags: ['management'],
        summary: 'Remove an alias of a device',
        params: AliasParams,
        response: { 204: Type.Null(), ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const { id, type, value } = request.params;
      await service.removeAlias(id, type, value, adminContext(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/ztp/mng/:id/delete',
    {
      // A GET that deletes: no automatic HEAD twin (HEAD must change nothing: 405, Allow: GET),
      // logged like a write and refused cross-site (src/security/cross-site.ts).
      exposeHeadRoute: false,
      config: { changesState: true },
      schema: {
        tags: ['management'],
        summary: 'Delete a device (the seed form); answers the removed record',
        params: IdParams,
        response: { 200: DeviceRecord, ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request) => recordView(await service.delete(request.params.id, adminContext(request))),
  );

  app.delete(
    '/ztp/mng/:id',
    {
      schema: {
        tags: ['management'],
        summary: 'Delete a device',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      await service.delete(request.params.id, adminContext(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/ztp/mng/:id/trigger',
    {
      schema: {
        tags: ['management'],
        summary:
          "Queue a trigger for the device's current ip now (re-provision, or retry a failed/dead one)",
        params: IdParams,
        response: { 202: TriggerView, ...problems(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(triggerView(await service.requeueTrigger(request.params.id, adminContext(request)))),
  );
};
