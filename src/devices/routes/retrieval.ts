/** Retrieval API: the service manager looks a device's IP up (GET /ztp/check/{id}). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { installGuard } from '../../http/auth.js';
import { problems } from '../../http/schemas.js';
import { DeviceRecord, IdParams } from '../schemas.js';
import type { GroupOptions } from './registration.js';

export const retrievalApi: FastifyPluginAsyncTypebox<GroupOptions> = async (app, opts) => {
  installGuard(app, 'retrieval', opts.guard);
  const { service } = opts;

  app.get(
    '/ztp/check/:id',
    {
      schema: {
        tags: ['retrieval'],
        summary: "Look a device's record up",
        params: IdParams,
        response: { 200: DeviceRecord, ...problems(400, 401, 403, 404, 503) },
      },
    },
    (request) => service.check(request.params.id),
  );
};
