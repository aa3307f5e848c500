/**
 * Authentication seam. Each API group (registration, retrieval, management) is an encapsulated
 * plugin that runs the guard configured for it as an onRequest hook. A guard yields the caller's
 * principal (or answers 401/403 by throwing a ZtpError); routes never look at credentials, so
 * user management can replace the guards without touching them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

export type ApiGroup = 'registration' | 'retrieval' | 'management';

export interface Principal {
  role: string;
  subject: string;
}

/** Resolves the principal for a request of a group, or throws a ZtpError (401/403). */
export type Guard = (request: FastifyRequest, group: ApiGroup) => Promise<Principal | undefined>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

export function installGuard(
  app: FastifyInstance,
  group: ApiGroup,
  guard: Guard | undefined,
): void {
  if (!guard) return;
  app.addHook('onRequest', async (request) => {
    request.principal = await guard(request, group);
  });
}
