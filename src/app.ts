/**
 * Builds the Fastify application from its dependencies; starts nothing. server.ts listens,
 * tests call buildApp() and use app.inject() or listen on port 0.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
} from 'node:http';
import {
  createServer as createHttpsServer,
  type ServerOptions as HttpsServerOptions,
} from 'node:https';
import { bootstrapApi } from './bootstrap/routes.js';
import type { DeviceService } from './devices/service.js';
import { clientScriptApi } from './bootstrap/client-script.js';
import { managementApi } from './devices/routes/management.js';
import { registrationApi } from './devices/routes/registration.js';
import { retrievalApi } from './devices/routes/retrieval.js';
import { opsApi } from './health/routes.js';
import type { ApiGroup, Guard } from './http/auth.js';
import { connectionHandler, type RawHandler } from './http/connections.js';
import { installJsonBodyParser } from './http/json-body.js';
import type { AnswerListener, AppPlugin, PluginContext } from './http/plugin.js';
import { frameworkError, installProblemHandlers } from './http/problem.js';
import { redactUrl } from './http/redact-url.js';
import { RouteMethods } from './http/route-methods.js';
import { validatorCompiler } from './http/validation.js';
import { refuseCrossSite } from './security/cross-site.js';
import { docsUiSecurity } from './security/headers.js';
import { checkBeforeHandshake } from './security/tls.js';
import { forwardingHeadersHook, type TrustProxy } from './security/trust-proxy.js';

export interface AppOptions {
  service: DeviceService;
  bodyLimit?: number;
  /** pino logger options, or false for none (tests). */
  logger?: FastifyServerOptions['logger'];
  /** Authentication per API group; none means open (the seed's behaviour). */
  guards?: Partial<Record<ApiGroup, Guard>>;
  /**
   * Extra plugins (console, metrics, events, client script) registered after the core API, on
   * the root instance; they get the guards so that they protect their routes like the groups.
   */
  plugins?: AppPlugin[];
  /**
   * `--trust-proxy`: the peers whose forwarding headers give `request.ip`, `.protocol` and
   * `.host` (src/security/trust-proxy.ts); undefined: the socket's peer, always.
   */
  trustProxy?: TrustProxy | undefined;
  /** TLS: passed to the Fastify factory, which creates an https server with it. */
  https?: HttpsServerOptions | undefined;
  /** Slow-client protection and header size; defaults in SERVER_LIMITS. */
  limits?: Partial<ServerLimits>;
  /**
   * App-wide hooks (audit, authentication, tracing), installed before any route is registered:
   * Fastify gives a route only the hooks its scope had when the route was added, so hooks added
   * later by a plugin would miss the API routes.
   */
  hooks?: (app: FastifyInstance) => void;
}

/** Connection limits of the listener (milliseconds, bytes); each is in the limits table of docs/api.md. */
export interface ServerLimits {
  /** Complete request headers must arrive within this (node `headersTimeout`). */
  headersTimeout: number;
  /** Complete request (headers + body) must arrive within this (`requestTimeout`). */
  requestTimeout: number;
  /** A socket idle this long in both directions is closed (Fastify `connectionTimeout`). */
  idleTimeout: number;
  /** Idle keep-alive connections are closed after this (`keepAliveTimeout`). */
  keepAliveTimeout: number;
  /** Largest request head (request line + headers), node `maxHeaderSize`; beyond it 431. */
  maxHeaderSize: number;
  /** A connection closed before its request body was read drains the rest this long at most, */
  lingerTimeout: number;
  /** and this many bytes at most (src/http/connections.ts). */
  lingerBytes: number;
}

export const SERVER_LIMITS: ServerLimits = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  idleTimeout: 120_000,
  keepAliveTimeout: 72_000,
  maxHeaderSize: 16 * 1024,
  lingerTimeout: 5000,
  lingerBytes: 16 * 1024 * 1024,
};

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The request id: the client's `X-Request-Id` when it is a sane token, a new UUID otherwise. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** A read that takes at least this long is logged at info like a write. */
export const SLOW_REQUEST_MS = 1000;
const DEBUG_LEVELS: ReadonlySet<string> = new Set(['debug', 'trace']);

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? 80 * 1024;
  const limits = { ...SERVER_LIMITS, ...opts.limits };
  const nodeServer = {
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    maxHeaderSize: limits.maxHeaderSize,
    // How often node checks the two timeouts above (its default, 30 s, would let a slow client
    // hold a connection up to 30 s past them).
    connectionsCheckingInterval: 1000,
  };
  // The server is created here rather than by Fastify for the per-connection ordering and
  // lingering close (src/http/connections.ts), which wrap Fastify's handler: every request still
  // goes through Fastify's one pipeline. https when TLS is configured (node's https options
  // include the http server options); the instance is typed as http either way, as Fastify
  // types it.
  const serverFactory = (fastify: RawHandler): HttpServer => {
    const handler = connectionHandler(fastify, limits);
    // With TLS, the slow-client limit for the headers also bounds the handshake.
    const server = (
      opts.https
        ? checkBeforeHandshake(
            createHttpsServer(
              { ...opts.https, ...nodeServer, handshakeTimeout: limits.headersTimeout },
              handler,
            ),
            limits.headersTimeout,
          )
        : createHttpServer(nodeServer, handler)
    ) as HttpServer;
    // What Fastify sets on a server it creates itself.
    server.keepAliveTimeout = limits.keepAliveTimeout;
    server.requestTimeout = limits.requestTimeout;
    server.setTimeout(limits.idleTimeout);
    return server;
  };
  const app = Fastify({
    serverFactory,
    // Fastify reads it only for the scheme of the address it logs and of listeningOrigin.
    ...(opts.https ? { https: true } : {}),
    connectionTimeout: limits.idleTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    requestTimeout: limits.requestTimeout,
    frameworkErrors: frameworkError,
    logger: opts.logger ?? false,
    bodyLimit,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    // Fastify's two lines per request are replaced by the single onResponse line below.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestIdOf,
    ...(opts.trustProxy ? { trustProxy: opts.trustProxy } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>();
  // TypeBox checks bodies exactly (no type coercion: {"name": 5} is a 400, not "5") and converts
  // only query strings and path parameters; each problem is worded as one sentence.
  app.setValidatorCompiler(validatorCompiler);

  // Every route's methods (for 405 + Allow) and the GET routes that change state (logged like
  // writes, refused cross-site). Registered first so that it sees every route.
  const routeMethods = new RouteMethods();
  const stateChangingGets = new Set<string>();
  app.addHook('onRoute', (route) => {
    routeMethods.add(route.method, route.url);
    if (route.config?.changesState === true) stateChangingGets.add(route.url);
  });

  installProblemHandlers(app, bodyLimit, routeMethods);
  // Only JSON bodies; anything else is a 415 problem rather than a silently mis-parsed string.
  app.removeContentTypeParser('text/plain');
  // JSON bodies: an empty one is {} (a registration may be empty), lone surrogates are refused.
  installJsonBodyParser(app);
  // Before any guard (the rate limit reads request.ip): a trusted proxy's headers are checked.
  if (opts.trustProxy) app.addHook('onRequest', forwardingHeadersHook(opts.trustProxy));
  // Before any guard: a browser's cross-site state change is refused whatever the credentials.
  app.addHook('onRequest', refuseCrossSite);

  app.decorateRequest('principal', undefined);
  // Callback-style hooks: these two run on every request, and an async hook costs a promise and
  // a microtask hop each time (see docs/performance.md).
  app.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', request.id);
    done(null, payload);
  });
  // One log line per request, written when the response is done (cheaper than Fastify's two).
  // At info: every write, every error (status >= 400) and every slow request. Successful reads
  // (the service manager's lookups, the console's polling) are the bulk of the traffic and carry
  // no state change: their line is at debug (docs/performance.md has the measured cost).
  // The request line has fixed keys and no nested object, so redaction (whose wildcard paths cost
  // ~3 µs a line here) can never change it: it is written by a child without redaction. Its
  // level is the server's (no route sets its own).
  const requestLines = app.log.child({}, { redact: { paths: [], censor: '[redacted]' } });
  const answerListeners: AnswerListener[] = [];
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    const status = reply.statusCode;
    const elapsed = reply.elapsedTime;
    const read = (method === 'GET' || method === 'HEAD') && !stateChangingGets.has(route);
    const quiet = read && status < 400 && elapsed < SLOW_REQUEST_MS;
    if (!quiet || DEBUG_LEVELS.has(requestLines.level)) {
      const url = redactUrl(request.raw.url ?? '');
      const line = {
        reqId: request.id,
        method,
        url: url.length > 256 ? `${url.slice(0, 256)}…` : url,
        status,
        ms: Math.round(elapsed * 100) / 100,
        remote: request.raw.socket.remoteAddress ?? '',
      };
      if (quiet) requestLines.debug(line, 'request');
      else requestLines.info(line, 'request');
    }
    for (const listener of answerListeners) listener(method, route, status, elapsed / 1000);
    done();
  });

  opts.hooks?.(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'ztp — zero-touch-provisioning registry',
        description:
          'Devices register at boot; the service manager looks them up and is triggered after each registration.',
        version: '1',
      },
      tags: [
        { name: 'registration', description: 'Called by devices' },
        { name: 'retrieval', description: 'Called by the service manager' },
        { name: 'management', description: 'Administration' },
        { name: 'operations', description: 'Probes' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', ...docsUiSecurity });
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  const group = { service: opts.service };
  await app.register(opsApi, { service: opts.service });
  await app.register(registrationApi, { ...group, guard: opts.guards?.registration });
  await app.register(retrievalApi, { ...group, guard: opts.guards?.retrieval });
  await app.register(managementApi, { ...group, guard: opts.guards?.management });
  await app.register(clientScriptApi);
  await app.register(bootstrapApi, { ...group, guard: opts.guards?.registration });
  const ctx: PluginContext = {
    guards: opts.guards ?? {},
    onAnswer: (listener) => answerListeners.push(listener),
  };
  for (const plugin of opts.plugins ?? []) await plugin(app, ctx);

  return app;
}
