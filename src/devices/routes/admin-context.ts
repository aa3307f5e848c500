/** Who does an admin write, from a request: the routes of every admin write share this. */
import type { FastifyRequest } from 'fastify';
import type { AdminContext } from '../admin.js';

/**
 * The guard's principal (a token's name, or the client certificate's name under mutual TLS
 * without tokens), `anonymous` when the management API needs no credential; the source as
 * `--trust-proxy` resolves it; the route (its pattern, not the id) as `via`.
 */
export function adminContext(request: FastifyRequest): AdminContext {
  return {
    actor: request.principal?.subject ?? 'anonymous',
    source: request.ip,
    via: `${request.method} ${request.routeOptions.url ?? request.url}`,
  };
}
