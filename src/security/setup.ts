/**
 * Turns the security options of `ztp serve` into what the app needs: the guard of each API group,
 * the HTTPS listener options, start-up warnings, and the SIGHUP reload of certificates and tokens.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { ServeConfig } from '../config.js';
import type { ApiGroup, Guard } from '../http/auth.js';
import { buildGuards } from './guards.js';
import { RateLimiter } from './rate-limit.js';
import { httpsOptions, reloadTls, type TlsFiles } from './tls.js';
import { parseTokens, readTokensFile, TokenSet, type TokenEntry } from './tokens.js';
import { parseTrustProxy, type TrustProxy } from './trust-proxy.js';

export type SecurityConfig = Pick<
  ServeConfig,
  | 'tlsCert'
  | 'tlsKey'
  | 'tlsClientCa'
  | 'requireClientCert'
  | 'bindCertToId'
  | 'tokensFile'
  | 'tokens'
  | 'registerRateLimit'
  | 'trustProxy'
>;

/** Every security feature off: the seed's open API (the defaults of `ztp serve`). */
export const SECURITY_OFF: SecurityConfig = {
  tlsCert: undefined,
  tlsKey: undefined,
  tlsClientCa: undefined,
  requireClientCert: 'none',
  bindCertToId: false,
  tokensFile: undefined,
  tokens: undefined,
  registerRateLimit: undefined,
  trustProxy: undefined,
};

export interface Security {
  guards: Partial<Record<ApiGroup, Guard>>;
  /** HTTPS listener options; undefined: plain HTTP. */
  https: HttpsServerOptions | undefined;
  /** `--trust-proxy`: which peers' forwarding headers to believe; undefined: none. */
  trustProxy: TrustProxy | undefined;
  /** Messages to log at warn level once the logger exists. */
  warnings: string[];
  /** Number of configured tokens (0 with token authentication off). */
  tokenCount(): number;
  /** Re-reads certificate files and the tokens file; on any error keeps the old ones and logs. */
  reload(server: unknown, log: FastifyBaseLogger): void;
}

/** Reads every file now, so that a bad path or a malformed line stops start-up (ConfigError). */
export function setupSecurity(config: SecurityConfig): Security {
  const tls: TlsFiles | undefined =
    config.tlsCert !== undefined && config.tlsKey !== undefined
      ? { cert: config.tlsCert, key: config.tlsKey, ca: config.tlsClientCa }
      : undefined;
  const https = tls ? httpsOptions(tls) : undefined;
  const trustProxy =
    config.trustProxy === undefined ? undefined : parseTrustProxy(config.trustProxy);

  const fromEnv: TokenEntry[] =
    config.tokens === undefined ? [] : parseTokens(config.tokens, '--tokens (ZTP_TOKENS)', true);
  const load = (): TokenSet =>
    new TokenSet([
      ...(config.tokensFile === undefined ? [] : readTokensFile(config.tokensFile)),
      ...fromEnv,
    ]);
  const tokensOn = config.tokensFile !== undefined || config.tokens !== undefined;
  let tokens = load();

  const requireClientCert: ApiGroup[] =
    config.requireClientCert === 'all'
      ? ['registration', 'retrieval', 'management']
      : config.requireClientCert === 'register'
        ? ['registration']
        : [];
  const guards = buildGuards({
    tokens: tokensOn ? () => tokens : undefined,
    requireClientCert,
    bindCertToId: config.bindCertToId,
    registerRateLimiter: config.registerRateLimit
      ? new RateLimiter(config.registerRateLimit.limit, config.registerRateLimit.windowMs)
      : undefined,
  });

  const warnings: string[] = [];
  if (!tokensOn) {
    const certOnly = config.bindCertToId
      ? [...new Set<ApiGroup>(['registration', ...requireClientCert])]
      : requireClientCert;
    const open = (['registration', 'retrieval', 'management'] as const).filter(
      (g) => !certOnly.includes(g),
    );
    if (open.length > 0)
      warnings.push(
        `no API tokens configured (--tokens-file / ZTP_TOKENS): the ${open.join(', ')} API ${open.length > 1 ? 'groups are' : 'group is'} open to anyone who can reach this server`,
      );
  } else if (tokens.size === 0) {
    warnings.push(
      'token authentication is on but no token is configured: every API request gets 401',
    );
  }
  if (tokensOn && !https) {
    warnings.push(
      'API tokens travel in clear text over plain HTTP: serve HTTPS with --tls-cert/--tls-key',
    );
  }

  return {
    guards,
    https,
    trustProxy,
    warnings,
    tokenCount: () => (tokensOn ? tokens.size : 0),
    reload(server, log) {
      if (tls) {
        try {
          reloadTls(server as HttpsServer, tls);
          log.info({ cert: tls.cert }, 'TLS certificate reloaded');
        } catch (e) {
          log.error({ err: e }, 'TLS reload failed; the previous certificate stays in use');
        }
      }
      if (config.tokensFile !== undefined) {
        try {
          tokens = load();
          log.info({ count: tokens.size }, 'API tokens reloaded');
        } catch (e) {
          log.error({ err: e }, 'tokens file reload failed; the previous tokens stay in use');
        }
      }
    },
  };
}
