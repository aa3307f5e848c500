/**
 * Registration API: devices announce themselves at boot (PUT or POST /ztp/register/{id}; POST
 * because BusyBox wget, uclient-fetch before 2022 and cloud-init can send nothing else).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { installGuard, type Guard } from '../../http/auth.js';
import { HeldRecord } from '../admission.js';
import { problems } from '../../http/schemas.js';
import { DeviceRecord, IdParams, RegisterBody } from '../schemas.js';
import type { DeviceService } from '../service.js';
import { recordView } from '../views.js';
import { installRegistrationBodies, REGISTRATION_MEDIA_TYPES } from './registration-body.js';

export interface GroupOptions {
  service: DeviceService;
  guard?: Guard | undefined;
}

export const registrationApi: FastifyPluginAsyncTypebox<GroupOptions> = async (app, opts) => {
  installGuard(app, 'registration', opts.guard);
  installRegistrationBodies(app);
  const { service } = opts;

  app.route({
    method: ['PUT', 'POST'],
    url: '/ztp/register/:id',
    // Callback style: the registration hot path gets no promise per request for it.
    preValidation: (request, _reply, done) => {
      // A device may register with no body at all: every member is optional.
      if ((request.body as RegisterBody | undefined) === undefined) request.body = {};
      done();
    },
    schema: {
      tags: ['registration'],
      summary: 'Register a device (upsert by id) and queue a trigger to the service manager',
      description:
        'Called by the device at every boot; PUT and POST do the same. `ip` omitted: the request source address is recorded. ' +
        'The body may be JSON, a form (`application/x-www-form-urlencoded`: `ip`, `name`, `userdata`; `hostname` is the name when `name` is absent), ' +
        'a JSON object sent as `text/plain`, `application/octet-stream` or without a Content-Type, or empty. ' +
        'Answers 201 the first time, 200 after; 202 when it is held for approval (`--enrollment approve`, docs/enrollment.md). A 2xx means the record (and its trigger) is committed to disk.',
      consumes: [...REGISTRATION_MEDIA_TYPES],
      params: IdParams,
      body: RegisterBody,
      response: {
        200: DeviceRecord,
        201: DeviceRecord,
        202: HeldRecord,
        ...problems(400, 401, 403, 413, 415, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const result = await service.register(
        request.params.id,
        request.body,
        request.ip,
        request.principal,
      );
      // --enrollment approve: an unknown device waits for an admin (src/enrollment/).
      if ('held' in result) return reply.code(202).send(result.held);
      return reply.code(result.created ? 201 : 200).send(recordView(result.device));
    },
  });
};
