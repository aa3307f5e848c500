/** Registration API: devices announce themselves at boot (PUT /ztp/register/{id}). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { installGuard, type Guard } from '../../http/auth.js';
import { problems } from '../../http/schemas.js';
import { DeviceRecord, IdParams, RegisterBody } from '../schemas.js';
import type { DeviceService } from '../service.js';
import { recordView } from '../views.js';

export interface GroupOptions {
  service: DeviceService;
  guard?: Guard | undefined;
}

export const registrationApi: FastifyPluginAsyncTypebox<GroupOptions> = async (app, opts) => {
  installGuard(app, 'registration', opts.guard);
  const { service } = opts;

  app.put(
    '/ztp/register/:id',
    {
      // Callback style: the registration hot path gets no promise per request for it.
      preValidation: (request, _reply, done) => {
        // A device may PUT with no body at all: every member is optional.
        if ((request.body as RegisterBody | undefined) === undefined) request.body = {};
        done();
      },
      schema: {
        tags: ['registration'],
        summary: 'Register a device (upsert by id) and queue a trigger to the service manager',
        description:
          'Called by the device at every boot. `ip` omitted: the request source address is recorded. ' +
          'Answers 201 the first time, 200 after. A 2xx means the record (and its trigger) is committed to disk.',
        params: IdParams,
        body: RegisterBody,
        response: {
          200: DeviceRecord,
          201: DeviceRecord,
          ...problems(400, 401, 403, 413, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const result = await service.register(request.params.id, request.body, request.ip);
      return reply.code(result.created ? 201 : 200).send(recordView(result.device));
    },
  );
};
