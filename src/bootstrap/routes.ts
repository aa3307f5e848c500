/**
 * GET /ztp/bootstrap/ lists the platforms, GET /ztp/bootstrap/{platform} serves what that
 * platform's boot environment fetches and runs (src/bootstrap/platforms.ts).
 *
 * Public like /ztp/client.sh: a device fetches its script before it has any credential. Two
 * things go through the registration guard (tokens, client certificates, rate limit), exactly as
 * the registration the script makes would: a `?token=` (so only a token the server accepts is
 * written into a script; a wrong one is a 401), and a fetch that registers the device because
 * it carries identity headers (src/bootstrap/identity-headers.ts) — ONIE, SONiC and Cumulus send
 * those on their own and cannot add a header, so `?token=` in the DHCP URL is their credential.
 *
 * That registering GET changes state on purpose (docs/api.md): such devices can only fetch.
 * HEAD never registers and checks no token.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { DeviceService } from '../devices/service.js';
import { ZtpError } from '../errors.js';
import { UnauthorizedError, type Guard, type GuardRequest, type Principal } from '../http/auth.js';
import { servedFrom } from './client-script.js';
import { problems } from '../http/schemas.js';
import { AmbiguousTokenError, queryToken } from '../security/device-token.js';
import { TOKEN_SYNTAX } from '../security/tokens.js';
import { identityFromHeaders, type HeaderIdentity } from './identity-headers.js';
import { bootstrapUrl, platformNamed, PLATFORMS } from './platforms.js';

export interface BootstrapOptions {
  service: DeviceService;
  /** The registration group's guard (undefined: registration is open). */
  guard?: Guard | undefined;
}

const PlatformView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  url: Type.String({ description: 'Absolute when the Host header was usable, else the path' }),
  contentType: Type.String(),
});

const Script = {
  description: 'The script (or, for sonic, the ZTP JSON)',
  content: {
    'text/x-shellscript': { schema: Type.String() },
    'text/x-python': { schema: Type.String() },
    'application/json': { schema: Type.String() },
  },
};

/**
 * Runs the registration guard for this fetch (it reads a `?token=` as it does on the registration
 * URL). Throws its 400/401/403/429 problem.
 */
async function authorise(
  guard: Guard,
  request: FastifyRequest,
  identity: HeaderIdentity | undefined,
): Promise<Principal | undefined> {
  const credentials: GuardRequest = {
    headers: request.headers,
    ip: request.ip,
    params: identity === undefined ? {} : { id: identity.id },
    raw: request.raw,
  };
  return guard(credentials, 'registration');
}

export const bootstrapApi: FastifyPluginAsyncTypebox<BootstrapOptions> = async (app, opts) => {
  const { service, guard } = opts;
  const names = PLATFORMS.map((p) => p.name);

  app.get(
    '/ztp/bootstrap/',
    {
      schema: {
        tags: ['registration'],
        summary: 'The platforms a bootstrap script is served for',
        response: { 200: Type.Object({ platforms: Type.Array(PlatformView) }) },
      },
    },
    async (request) => {
      const server = servedFrom(request);
      return {
        platforms: PLATFORMS.map((p) => ({
          name: p.name,
          description: p.description,
          url: bootstrapUrl(server, p.name),
          contentType: p.contentType,
        })),
      };
    },
  );

  app.get(
    '/ztp/bootstrap/:platform',
    {
      config: { changesState: true },
      schema: {
        tags: ['registration'],
        summary:
          "A platform's bootstrap script; a fetch with identity headers registers the device",
        description:
          `Platforms: ${names.join(', ')}. The script has this server's URL (and the \`?token=\`, when the server accepts it) filled in. ` +
          'A GET carrying ONIE-*, SONiC (SERIAL-NUMBER, BASE-MAC-ADDRESS, PRODUCT-NAME) or CUMULUS-* identity headers registers the device (id: its base MAC; ip: the source address) before the script is sent; HEAD never does.',
        params: Type.Object({ platform: Type.String() }),
        querystring: Type.Object({
          token: Type.Optional(Type.Unknown({ description: 'A device token' })),
        }),
        response: { 200: Script, ...problems(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const platform = platformNamed(request.params.platform);
      if (!platform)
        throw new ZtpError(
          'unknown_platform',
          `no bootstrap script for '${request.params.platform.slice(0, 64)}'; platforms: ${names.join(', ')}`,
          { platforms: names },
        );
      const server = servedFrom(request);
      if (server === '')
        throw new ZtpError(
          'invalid_url',
          "the Host header is not a host name or address that can be written into a script; fetch it by the server's name or address",
        );
      // Repeated (or given with Authorization too): 400 ambiguous_token, as on the registration URL.
      const token = queryToken(request.url);
      if (token !== undefined && request.headers.authorization !== undefined)
        throw new AmbiguousTokenError(
          'give the token either in ?token= or in the Authorization header, not both',
        );
      if (token !== undefined && !TOKEN_SYNTAX.test(token))
        throw new UnauthorizedError('?token= is not a well-formed token', true);
      // Checked on HEAD too, so that HEAD answers what GET would; only GET acts on them.
      const identity = identityFromHeaders(request.headers);
      if (request.method === 'GET') {
        let principal: Principal | undefined;
        if (guard && (token !== undefined || identity !== undefined)) {
          try {
            principal = await authorise(guard, request, identity);
          } catch (e) {
            if (e instanceof UnauthorizedError) void reply.header('www-authenticate', e.challenge);
            throw e;
          }
        }
        // The same registration as any (trigger, events, history); the serial number and the
        // other MACs become the device's aliases. A bound or enrollment token's scope applies
        // here as on the registration URL.
        if (identity !== undefined)
          await service.register(identity.id, { aliases: identity.aliases }, request.ip, principal);
      }
      return reply
        .type(platform.contentType)
        .header('cache-control', 'no-store')
        .send(platform.render({ server, token, deviceId: identity?.id }));
    },
  );
};
