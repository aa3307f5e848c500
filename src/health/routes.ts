/** Liveness and readiness probes (not behind authentication: load balancers call them). */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ZtpError } from '../errors.js';
import type { DeviceService } from '../devices/service.js';
import { problems } from '../http/schemas.js';

export const opsApi: FastifyPluginAsyncTypebox<{ service: DeviceService }> = async (
  app,
  { service },
) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the storage answers',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), storage: Type.String() }),
          ...problems(503),
        },
      },
    },
    async () => {
      let storage;
      try {
        storage = await service.checkStorage();
      } catch (e) {
        throw e instanceof ZtpError
          ? e
          : new ZtpError('storage_unavailable', 'storage is unavailable');
      }
      return { status: 'ready' as const, storage };
    },
  );
};
