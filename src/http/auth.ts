/**
 * Authentication seam. Each API group (registration, retrieval, management) is an encapsulated
 * plugin that runs the guard configured for it as an onRequest hook. A guard yields the caller's
 * principal (or answers 401/403 by throwing a ZtpError); routes never look at credentials, so
 * user management can replace the guards without touching them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ZtpError } from '../errors.js';

export type ApiGroup = 'registration' | 'retrieval' | 'management';

export interface Principal {
  role: string;
  subject: string;
  /** Which devices this credential may register; absent: any (src/security/guards.ts). */
  scope?: DeviceScope | undefined;
}

/**
 * A restricted device token (docs/security.md): `bound` registers one device (an id or alias);
 * `enroll` creates new devices and then registers only those it enrolled, up to `maxUses`.
 * `token` is the token's SHA-256 (hex), the key of its enrollments.
 */
export type DeviceScope =
  | { kind: 'bound'; id: string; name: string }
  | { kind: 'enroll'; token: string; name: string; maxUses: number | undefined };

/**
 * What a guard may look at: headers, source address, path parameters and the socket (client
 * certificate). Narrower than FastifyRequest so that a guard can be tested without Fastify.
 */
export type GuardRequest = Pick<FastifyRequest, 'headers' | 'ip' | 'params' | 'raw'>;

/** Resolves the principal for a request of a group, or throws a ZtpError (401/403). */
export type Guard = (request: GuardRequest, group: ApiGroup) => Promise<Principal | undefined>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** 401: no or invalid credentials. The response carries a `WWW-Authenticate: Bearer` challenge. */
export class UnauthorizedError extends ZtpError {
  readonly challenge: string;

  constructor(detail: string, invalidToken = false) {
    super('unauthorized', detail);
    this.challenge = invalidToken
      ? 'Bearer realm="ztp", error="invalid_token"'
      : 'Bearer realm="ztp"';
  }
}

export function installGuard(
  app: FastifyInstance,
  group: ApiGroup,
  guard: Guard | undefined,
): void {
  if (!guard) return;
  app.addHook('onRequest', async (request, reply) => {
    try {
      request.principal = await guard(request, group);
    } catch (e) {
      if (e instanceof UnauthorizedError) void reply.header('www-authenticate', e.challenge);
      throw e;
    }
  });
}
