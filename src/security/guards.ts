/**
 * The guards of the three API groups, built from the security configuration. One guard per
 * group runs as its onRequest hook (src/http/auth.ts), before the body is read:
 *
 * 1. client certificate from the configured CA, when required for the group → 403;
 * 2. `--bind-cert-to-id`: the certificate must name the device id being registered → 403;
 * 3. API tokens (when configured): `Authorization: Bearer <token>` (registration group: or
 *    `?token=<token>`) → 401 without, with an unknown or with an expired token, 403 when the
 *    token's role is not accepted by the group, 400 when the token is given twice. A bound or
 *    enrollment token yields a principal with its `scope`, which the registration enforces
 *    (src/token-grants/admission.ts: it needs the database). In the registration
 *    group a verified client certificate also authenticates a device (role `device`);
 * 4. registration rate limit per source address (when configured) → 429. Last, so that a request
 *    refused by 1–3 spends nothing: otherwise one host behind a site's NAT could use up, with
 *    requests that carry no credentials, the budget of every device of the site.
 *
 * With nothing configured no guard is installed: the seed's open API.
 */
import { normaliseId } from '../devices/identity.js';
import { ZtpError } from '../errors.js';
import {
  UnauthorizedError,
  type ApiGroup,
  type Guard,
  type GuardRequest,
  type Principal,
} from '../http/auth.js';
import { certDeviceIds, certSubject, clientCert, type ClientCert } from './certs.js';
import { AmbiguousTokenError, queryToken } from './device-token.js';
import { sourceKey, type RateLimiter } from './rate-limit.js';
import { TOKEN_SYNTAX, type Role, type TokenEntry, type TokenSet } from './tokens.js';

/** Which token roles each group accepts. */
export const GROUP_ROLES: Readonly<Record<ApiGroup, readonly Role[]>> = {
  registration: ['device', 'admin'],
  retrieval: ['manager', 'admin'],
  management: ['admin'],
};

export const API_GROUPS: readonly ApiGroup[] = ['registration', 'retrieval', 'management'];

export interface GuardPolicy {
  /** The current tokens (re-read on SIGHUP); undefined: token authentication is off. */
  tokens?: (() => TokenSet) | undefined;
  /** Groups that refuse a request without a verified client certificate. */
  requireClientCert?: readonly ApiGroup[];
  bindCertToId?: boolean;
  registerRateLimiter?: RateLimiter | undefined;
  /** The clock token expiry is checked against (tests inject one). */
  now?: () => number;
}

function forbidden(detail: string): ZtpError {
  return new ZtpError('forbidden', detail);
}

function verifiedCert(request: GuardRequest): ClientCert | undefined {
  const cert = clientCert(request);
  return cert?.authorized ? cert : undefined;
}

/**
 * The token a request presents: `Authorization: Bearer`, or (registration group only) `?token=`.
 * Both, or the query parameter twice: 400 `ambiguous_token`, never a guess.
 */
function presentedToken(request: GuardRequest, group: ApiGroup): string | undefined {
  const header = request.headers.authorization;
  const fromQuery = group === 'registration' ? queryToken(request.raw.url ?? '') : undefined;
  const hasHeader = header !== undefined && header !== '';
  if (fromQuery !== undefined) {
    if (hasHeader)
      throw new AmbiguousTokenError(
        'give the token once: either Authorization: Bearer or ?token=, not both',
      );
    if (!TOKEN_SYNTAX.test(fromQuery))
      throw new UnauthorizedError('the API token is not valid', true);
    return fromQuery;
  }
  if (!hasHeader) return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  if (!m || !TOKEN_SYNTAX.test(m[1]!))
    throw new UnauthorizedError('the Authorization header must be "Bearer <token>"', true);
  return m[1]!;
}

function scopeOf(entry: TokenEntry): Principal['scope'] {
  if (entry.bind !== undefined) return { kind: 'bound', id: entry.bind, name: entry.name };
  if (entry.enroll === true)
    return {
      kind: 'enroll',
      token: entry.hash.toString('hex'),
      name: entry.name,
      maxUses: entry.maxUses,
    };
  return undefined;
}

function tokenPrincipal(
  request: GuardRequest,
  group: ApiGroup,
  tokens: TokenSet,
  now: () => number,
): Principal {
  const token = presentedToken(request, group);
  if (token === undefined)
    throw new UnauthorizedError(
      group === 'registration'
        ? 'an API token is required for the registration API: send Authorization: Bearer <token>, or ?token=<token> where a device cannot send headers'
        : `an API token is required for the ${group} API: send Authorization: Bearer <token>`,
    );
  const entry = tokens.find(token);
  if (!entry) throw new UnauthorizedError('the API token is not valid', true);
  if (entry.expiresAt !== undefined && now() >= entry.expiresAt)
    throw new UnauthorizedError(
      `the API token '${entry.name}' expired at ${new Date(entry.expiresAt).toISOString()}; ask for a new one`,
      true,
    );
  if (!GROUP_ROLES[group].includes(entry.role))
    throw forbidden(
      `role '${entry.role}' may not use the ${group} API (allowed: ${GROUP_ROLES[group].join(', ')})`,
    );
  const scope = scopeOf(entry);
  return scope
    ? { role: entry.role, subject: entry.name, scope }
    : { role: entry.role, subject: entry.name };
}

function guardFor(group: ApiGroup, policy: GuardPolicy): Guard | undefined {
  const limiter = group === 'registration' ? policy.registerRateLimiter : undefined;
  const bind = group === 'registration' && policy.bindCertToId === true;
  const certRequired = bind || (policy.requireClientCert ?? []).includes(group);
  const tokens = policy.tokens;
  const now = policy.now ?? Date.now;
  if (!limiter && !certRequired && !tokens) return undefined;

  const authenticate = (request: GuardRequest): Principal | undefined => {
    const cert = verifiedCert(request);
    if (certRequired && !cert)
      throw forbidden(
        `the ${group} API needs a client certificate issued by the configured CA (mutual TLS)`,
      );
    if (bind && cert) {
      const { id } = request.params as { id?: string };
      const wanted = normaliseId(id ?? '');
      if (!certDeviceIds(cert).has(wanted))
        throw forbidden(`the client certificate does not name device '${wanted}'`);
    }
    if (tokens) {
      if (group === 'registration' && cert) return { role: 'device', subject: certSubject(cert) };
      return tokenPrincipal(request, group, tokens(), now);
    }
    return cert ? { role: 'device', subject: certSubject(cert) } : undefined;
  };

  return async (request) => {
    const principal = authenticate(request);
    if (limiter) {
      const taken = limiter.take(sourceKey(request.ip));
      if (!taken.ok) {
        const retryAfter = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
        throw new ZtpError(
          'rate_limited',
          `too many registrations from this address; retry in ${retryAfter} s`,
          { retryAfter },
        );
      }
    }
    return principal;
  };
}

/** One guard per group that has something to check; groups with nothing configured stay open. */
export function buildGuards(policy: GuardPolicy): Partial<Record<ApiGroup, Guard>> {
  const guards: Partial<Record<ApiGroup, Guard>> = {};
  for (const group of API_GROUPS) {
    const guard = guardFor(group, policy);
    if (guard) guards[group] = guard;
  }
  return guards;
}
