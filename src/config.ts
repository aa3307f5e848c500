/**
 * The one place that reads the environment. Every server option is declared once in
 * SERVE_OPTIONS (flag, environment variable, default, help); `ztp serve --help` and the
 * configuration table of docs/operations.md are both generated from it (test/config.test.ts
 * keeps that table in sync).
 * Precedence: command-line flag, then environment variable, then default.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';
import { parseManagerUrl, parseReportForwardUrl } from './triggers/manager-url.js';
import { parseSecrets, type ManagerSecrets } from './triggers/signature.js';

type Kind =
  'string' | 'integer' | 'duration' | 'boolean' | 'level' | 'url' | 'enum' | 'rate' | 'secret';

export interface OptionSpec {
  /** camelCase key in ServeConfig */
  key: keyof ServeConfig;
  flag: string;
  env: string;
  kind: Kind;
  default: string | undefined;
  help: string;
  /** for kind 'enum' */
  choices?: readonly string[];
  /** Inclusive bounds: of the integer, or of a duration in milliseconds. */
  min?: number;
  max?: number;
  /**
   * Only from the environment (a secret: a flag's value is visible to every user in `ps`).
   * `flag` then only names it in messages.
   */
  envOnly?: boolean;
}

export interface ServeConfig {
  host: string;
  port: number;
  database: string;
  databasePoolSize: number;
  databaseStatementTimeout: number;
  databaseConnectTimeout: number;
  managerUrl: string | undefined;
  managerFormat: 'get' | 'json';
  reportForward: string | undefined;
  triggerOn: 'every-registration' | 'ip-change';
  managerSecretFile: string | undefined;
  managerSecret: ManagerSecrets | undefined;
  logLevel: string;
  historyLimit: number;
  bodyLimit: number;
  triggerTimeout: number;
  triggerInitialBackoff: number;
  triggerMaxBackoff: number;
  triggerMaxAge: number;
  triggerConcurrency: number;
  triggerLease: number;
  triggerPollInterval: number;
  triggerRetention: number;
  auditRetention: number;
  triggerSender: 'thread' | 'inline';
  triggerHandOver: 'on' | 'off';
  instanceId: string | undefined;
  shutdownGrace: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsClientCa: string | undefined;
  requireClientCert: 'none' | 'register' | 'all';
  bindCertToId: boolean;
  tokensFile: string | undefined;
  tokens: string | undefined;
  registerRateLimit: RateLimit | undefined;
  trustProxy: string | undefined;
  enrollment: 'open' | 'allowlist' | 'approve';
  enrollmentRules: string | undefined;
  headersTimeout: number;
  requestTimeout: number;
  idleTimeout: number;
  keepAliveTimeout: number;
}

/** `N/window`: at most N requests per window per source address (token bucket). */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Shortest trigger call timeout: below it a call can hardly connect, let alone get an answer. */
export const MIN_TRIGGER_TIMEOUT_MS = 100;

export const SERVE_OPTIONS: readonly OptionSpec[] = [
  {
    key: 'host',
    flag: 'host',
    env: 'ZTP_HOST',
    kind: 'string',
    default: '0.0.0.0',
    help: 'Address to listen on.',
  },
  {
    key: 'port',
    flag: 'port',
    env: 'ZTP_PORT',
    kind: 'integer',
    default: '8080',
    min: 0,
    max: 65535,
    help: 'TCP port to listen on (0 picks a free one).',
  },
  {
    key: 'database',
    flag: 'database',
    env: 'ZTP_DATABASE',
    kind: 'string',
    default: './ztp.db',
    help: 'SQLite file path, or a postgres:// URL.',
  },
  {
    key: 'databasePoolSize',
    flag: 'database-pool-size',
    env: 'ZTP_DATABASE_POOL_SIZE',
    kind: 'integer',
    default: '10',
    min: 2,
    max: 200,
    help: 'PostgreSQL: connections per server process (half of them at most commit write batches).',
  },
  {
    key: 'databaseStatementTimeout',
    flag: 'database-statement-timeout',
    env: 'ZTP_DATABASE_STATEMENT_TIMEOUT',
    kind: 'duration',
    default: '5s',
    min: 100,
    help: 'PostgreSQL: longest a statement may run (server-side statement_timeout); the request then fails with 503.',
  },
  {
    key: 'databaseConnectTimeout',
    flag: 'database-connect-timeout',
    env: 'ZTP_DATABASE_CONNECT_TIMEOUT',
    kind: 'duration',
    default: '5s',
    min: 100,
    help: 'PostgreSQL: longest wait for a connection (new, or free in the pool); the request then fails with 503.',
  },
  {
    key: 'managerUrl',
    flag: 'manager-url',
    env: 'ZTP_MANAGER_URL',
    kind: 'url',
    default: undefined,
    help: 'Service manager URL; after each registration the server calls GET {url}/api/exec?ip={ip}. Or a template with {ip}, {id}, {name}, {previous_ip} in its path or query, called as written with the values percent-encoded. Unset: no triggers.',
  },
  {
    key: 'managerFormat',
    flag: 'manager-format',
    env: 'ZTP_MANAGER_FORMAT',
    kind: 'enum',
    choices: ['get', 'json'],
    default: 'get',
    help: "get: GET the URL (the seed's call). json: POST a JSON event (event_id, type, at, device) to the URL, nothing appended.",
  },
  {
    key: 'reportForward',
    flag: 'report-forward',
    env: 'ZTP_REPORT_FORWARD',
    kind: 'url',
    default: undefined,
    help: "Forward every accepted progress report to the manager: POST a JSON event (type report) to this URL, on --manager-url's origin, with the same placeholders; queued with the report and delivered like a trigger (retries, signature). Needs --manager-url. Unset: reports are not forwarded.",
  },
  {
    key: 'triggerOn',
    flag: 'trigger-on',
    env: 'ZTP_TRIGGER_ON',
    kind: 'enum',
    choices: ['every-registration', 'ip-change'],
    default: 'every-registration',
    help: 'every-registration: every registration queues a call (the seed). ip-change: a registration of a known device whose ip is the one last delivered to the manager queues none (its history still records it).',
  },
  {
    key: 'managerSecretFile',
    flag: 'manager-secret-file',
    env: 'ZTP_MANAGER_SECRET_FILE',
    kind: 'string',
    default: undefined,
    help: 'File with the secret that signs every manager call (ZTP-Signature header), one per line; two during a rotation (both sign). Read at start.',
  },
  {
    key: 'managerSecret',
    flag: 'manager-secret',
    env: 'ZTP_MANAGER_SECRET',
    kind: 'secret',
    envOnly: true,
    default: undefined,
    help: 'Environment only (never a flag): the signing secret(s) instead of a file, separated by a comma or a newline.',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'ZTP_LOG_LEVEL',
    kind: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    help: 'Log level. At info: one JSON line per write, error (status >= 400) or slow (>= 1 s) request; successful reads are logged at debug.',
  },
  {
    key: 'historyLimit',
    flag: 'history-limit',
    env: 'ZTP_HISTORY_LIMIT',
    kind: 'integer',
    default: '20',
    min: 0,
    max: 1000,
    help: 'Registrations kept per device in its history (time, ip, source).',
  },
  {
    key: 'bodyLimit',
    flag: 'body-limit',
    env: 'ZTP_BODY_LIMIT',
    kind: 'integer',
    default: '81920',
    min: 1024,
    max: 10485760,
    help: 'Largest request body in bytes (413 beyond it).',
  },
  {
    key: 'triggerTimeout',
    flag: 'trigger-timeout',
    env: 'ZTP_TRIGGER_TIMEOUT',
    kind: 'duration',
    default: '10s',
    min: MIN_TRIGGER_TIMEOUT_MS,
    help: 'Connect + response timeout of one trigger call.',
  },
  {
    key: 'triggerInitialBackoff',
    flag: 'trigger-initial-backoff',
    env: 'ZTP_TRIGGER_INITIAL_BACKOFF',
    kind: 'duration',
    default: '1s',
    min: 10,
    help: 'Delay ceiling before the first retry; doubles each attempt (full jitter).',
  },
  {
    key: 'triggerMaxBackoff',
    flag: 'trigger-max-backoff',
    env: 'ZTP_TRIGGER_MAX_BACKOFF',
    kind: 'duration',
    default: '5m',
    min: 10,
    help: 'Largest delay between two attempts.',
  },
  {
    key: 'triggerMaxAge',
    flag: 'trigger-max-age',
    env: 'ZTP_TRIGGER_MAX_AGE',
    kind: 'duration',
    default: '24h',
    min: 60_000,
    help: 'A trigger still undelivered this long after its registration is marked dead.',
  },
  {
    key: 'triggerConcurrency',
    flag: 'trigger-concurrency',
    env: 'ZTP_TRIGGER_CONCURRENCY',
    kind: 'integer',
    default: '64',
    min: 1,
    max: 4096,
    help: 'Trigger calls in flight at once (per server process).',
  },
  {
    key: 'triggerLease',
    flag: 'trigger-lease',
    env: 'ZTP_TRIGGER_LEASE',
    kind: 'duration',
    default: '60s',
    min: 2 * MIN_TRIGGER_TIMEOUT_MS,
    help: 'How long a claimed trigger is reserved for its dispatcher; after that another claims it (crash recovery).',
  },
  {
    key: 'triggerPollInterval',
    flag: 'trigger-poll-interval',
    env: 'ZTP_TRIGGER_POLL_INTERVAL',
    kind: 'duration',
    default: '1s',
    min: 10,
    help: 'Longest sleep of an idle dispatcher (it is also woken by local registrations).',
  },
  {
    key: 'triggerSender',
    flag: 'trigger-sender',
    env: 'ZTP_TRIGGER_SENDER',
    kind: 'enum',
    choices: ['thread', 'inline'],
    default: 'thread',
    help: "Where the manager calls are made: thread (a worker thread of their own, so they do not take the request handlers' event loop) or inline (the server's own event loop: the simple path, one thread to debug).",
  },
  {
    key: 'triggerHandOver',
    flag: 'trigger-hand-over',
    env: 'ZTP_TRIGGER_HAND_OVER',
    kind: 'enum',
    choices: ['on', 'off'],
    default: 'on',
    help: "on: a registration's new trigger is leased to this process in the registration's own transaction and sent at once, without a claim query. off: the dispatcher claims it like any other (the simple path, one more query per trigger).",
  },
  {
    key: 'triggerRetention',
    flag: 'trigger-retention',
    env: 'ZTP_TRIGGER_RETENTION',
    kind: 'duration',
    default: '7d',
    min: 60_000,
    help: 'Finished (delivered/failed/dead) triggers older than this are pruned; the latest per device is kept.',
  },
  {
    key: 'auditRetention',
    flag: 'audit-retention',
    env: 'ZTP_AUDIT_RETENTION',
    kind: 'duration',
    default: '365d',
    min: 0,
    help: 'Audit log entries (GET /ztp/mng/audit) older than this are pruned, at start and hourly; 0 keeps them forever.',
  },
  {
    key: 'instanceId',
    flag: 'instance-id',
    env: 'ZTP_INSTANCE_ID',
    kind: 'string',
    default: undefined,
    help: "PostgreSQL: this replica's name, the same across its restarts and unique among live replicas; a restart releases its dead predecessor's trigger leases at once. Default: hostname and listen address, if --port is not 0.",
  },
  {
    key: 'shutdownGrace',
    flag: 'shutdown-grace',
    env: 'ZTP_SHUTDOWN_GRACE',
    kind: 'duration',
    default: '5s',
    min: 0,
    help: 'On SIGTERM/SIGINT: how long to wait for in-flight requests and trigger calls.',
  },
  // Security (see docs/security.md).
  {
    key: 'tlsCert',
    flag: 'tls-cert',
    env: 'ZTP_TLS_CERT',
    kind: 'string',
    default: undefined,
    help: 'PEM certificate (chain) file: serve HTTPS. Needs --tls-key. Re-read on SIGHUP.',
  },
  {
    key: 'tlsKey',
    flag: 'tls-key',
    env: 'ZTP_TLS_KEY',
    kind: 'string',
    default: undefined,
    help: 'PEM private key file of --tls-cert. Re-read on SIGHUP.',
  },
  {
    key: 'tlsClientCa',
    flag: 'tls-client-ca',
    env: 'ZTP_TLS_CLIENT_CA',
    kind: 'string',
    default: undefined,
    help: 'PEM CA file: ask clients for a certificate issued by it (mutual TLS). Re-read on SIGHUP.',
  },
  {
    key: 'requireClientCert',
    flag: 'require-client-cert',
    env: 'ZTP_REQUIRE_CLIENT_CERT',
    kind: 'enum',
    choices: ['none', 'register', 'all'],
    default: 'none',
    help: 'Which API groups refuse (403) a request without a client certificate from --tls-client-ca: none, register (registration), all (registration, retrieval, management).',
  },
  {
    key: 'bindCertToId',
    flag: 'bind-cert-to-id',
    env: 'ZTP_BIND_CERT_TO_ID',
    kind: 'boolean',
    default: 'false',
    help: "A registration succeeds only when the client certificate's subject CN or a SAN equals the device id (after MAC normalisation). Implies a client certificate for registration.",
  },
  {
    key: 'tokensFile',
    flag: 'tokens-file',
    env: 'ZTP_TOKENS_FILE',
    kind: 'string',
    default: undefined,
    help: 'API tokens file: one role:name:sha256hex per line (# comments); roles device, manager, admin. Re-read on SIGHUP. See `ztp token create`.',
  },
  {
    key: 'enrollment',
    flag: 'enrollment',
    env: 'ZTP_ENROLLMENT',
    kind: 'enum',
    choices: ['open', 'allowlist', 'approve'],
    default: 'open',
    help: 'Which unknown devices may register (docs/enrollment.md). open: any. allowlist: only devices an admin created (PUT /ztp/mng/{id}, ztp import --csv) or a rule accepts; others get 403. approve: an unknown device waits as pending (202, no trigger) until an admin approves it or a rule accepts it.',
  },
  {
    key: 'enrollmentRules',
    flag: 'enrollment-rules',
    env: 'ZTP_ENROLLMENT_RULES',
    kind: 'string',
    default: undefined,
    help: 'Enrollment rules file (mac-prefix, serial, serial-pattern, source CIDR; one per line): unknown devices it matches are accepted without an admin in allowlist and approve modes. Re-read on SIGHUP; a bad file is refused, naming its line.',
  },
  {
    key: 'tokens',
    flag: 'tokens',
    env: 'ZTP_TOKENS',
    kind: 'string',
    default: undefined,
    help: 'More API tokens in the tokens-file format, separated by commas or newlines. No tokens at all: the API is open.',
  },
  {
    key: 'registerRateLimit',
    flag: 'register-rate-limit',
    env: 'ZTP_REGISTER_RATE_LIMIT',
    kind: 'rate',
    default: undefined,
    help: 'Registrations allowed per source address (IPv6: per /64), as N/window, e.g. 60/1m; beyond it 429 with Retry-After. Unset: no limit.',
  },
  {
    key: 'trustProxy',
    flag: 'trust-proxy',
    env: 'ZTP_TRUST_PROXY',
    kind: 'string',
    default: undefined,
    help: 'Reverse proxies to believe, as CIDR[,CIDR...] (e.g. 10.0.0.0/8,fd00::/8). From these peers only, X-Forwarded-For / Forwarded give the source address (default ip, lastSource, rate-limit key) and X-Forwarded-Proto/-Host the public URL in served scripts; from anyone else the headers are ignored. Unset: trust no proxy.',
  },
  {
    key: 'headersTimeout',
    flag: 'headers-timeout',
    env: 'ZTP_HEADERS_TIMEOUT',
    kind: 'duration',
    default: '10s',
    min: 1000,
    help: 'A client must send its complete request headers within this time (slow-client protection).',
  },
  {
    key: 'requestTimeout',
    flag: 'request-timeout',
    env: 'ZTP_REQUEST_TIMEOUT',
    kind: 'duration',
    default: '30s',
    min: 1000,
    help: 'A client must send its complete request (headers and body) within this time.',
  },
  {
    key: 'idleTimeout',
    flag: 'idle-timeout',
    env: 'ZTP_IDLE_TIMEOUT',
    kind: 'duration',
    default: '120s',
    min: 1000,
    help: 'A connection with no traffic in either direction for this long is closed.',
  },
  {
    key: 'keepAliveTimeout',
    flag: 'keep-alive-timeout',
    env: 'ZTP_KEEP_ALIVE_TIMEOUT',
    kind: 'duration',
    default: '72s',
    min: 1000,
    help: 'How long an idle keep-alive connection is kept open between requests (above common load-balancer idle timeouts).',
  },
];

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration with its unit: `250ms`, `10s`, `1.5s`, `5m`, `24h`, `7d`; `0` needs none.
 * A bare number is refused: it once meant milliseconds here and seconds in `ztp register`.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^0+(?:\.0+)?$/.test(trimmed)) return 0;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) {
    throw new ConfigError(
      `'${text}' has no unit: write e.g. ${trimmed}s for seconds or ${trimmed}ms for milliseconds (units: ms, s, m, h, d)`,
    );
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(trimmed);
  if (!m) throw new ConfigError(`'${text}' is not a duration (use e.g. 500ms, 10s, 5m, 24h, 7d)`);
  const ms = Number(m[1]) * (UNITS[m[2]!] ?? 1);
  if (!Number.isFinite(ms) || ms > 2 ** 31 * 1000)
    throw new ConfigError(`duration '${text}' is too large`);
  return Math.round(ms);
}

/** A duration for messages and docs: `100ms`, `10s`, `1m`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function convert(spec: OptionSpec, raw: string, source: string): unknown {
  const where = spec.envOnly ? source : `${source} (${spec.flag})`;
  switch (spec.kind) {
    case 'secret':
      return parseSecrets(raw, where, 'comma-or-line'); // its messages never repeat the value
    case 'integer': {
      if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${where}: '${raw}' is not an integer`);
      const n = Number(raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`${where}: ${n} is outside ${spec.min}..${spec.max}`);
      }
      return n;
    }
    case 'duration': {
      let ms: number;
      try {
        ms = parseDuration(raw);
      } catch (e) {
        throw new ConfigError(`${where}: ${(e as Error).message}`);
      }
      if (spec.min !== undefined && ms < spec.min)
        throw new ConfigError(
          `${where}: '${raw}' is less than the minimum ${formatDuration(spec.min)}`,
        );
      return ms;
    }
    case 'boolean':
      if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
      if (['0', 'false', 'no', 'off', ''].includes(raw.toLowerCase())) return false;
      throw new ConfigError(`${where}: '${raw}' is not a boolean`);
    case 'enum':
    case 'level':
      if (!spec.choices?.includes(raw))
        throw new ConfigError(`${where}: '${raw}' is not one of ${spec.choices?.join(', ')}`);
      return raw;
    case 'url':
      // Checked for the chosen --manager-format once every option is read (checkCombinations).
      parseManagerUrl(raw, 'json', where);
      return raw;
    case 'rate':
      return parseRate(raw, where);
    case 'string':
      return raw;
  }
}

/** Parses `N/window` (`60/1m`, `5/10s`; a bare `N` means per second). */
export function parseRate(raw: string, where = 'rate'): RateLimit {
  const m = /^\s*(\d{1,9})\s*(?:\/\s*(\S+))?\s*$/.exec(raw);
  if (!m) throw new ConfigError(`${where}: '${raw}' is not N/window (e.g. 60/1m)`);
  const limit = Number(m[1]);
  let windowMs: number;
  try {
    windowMs = m[2] === undefined ? 1000 : parseDuration(/^\d/.test(m[2]) ? m[2] : `1${m[2]}`);
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  if (limit < 1 || windowMs < 1)
    throw new ConfigError(`${where}: '${raw}' must allow at least 1 request per window`);
  return { limit, windowMs };
}

/** No space: it ends the instance id in a lease token (src/triggers/outbox-postgres.ts). */
const INSTANCE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Options that only make sense together. */
function checkCombinations(c: ServeConfig): void {
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined))
    throw new ConfigError('--tls-cert and --tls-key must be given together');
  const needsCa = c.requireClientCert !== 'none' || c.bindCertToId;
  if (c.tlsClientCa !== undefined && c.tlsCert === undefined)
    throw new ConfigError('--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)');
  if (needsCa && c.tlsClientCa === undefined)
    throw new ConfigError(
      '--require-client-cert and --bind-cert-to-id need --tls-client-ca (the CA that issues device certificates)',
    );
  if (c.instanceId !== undefined && !INSTANCE_ID.test(c.instanceId))
    throw new ConfigError(
      '--instance-id: 1 to 128 letters, digits and . _ : - (lease tokens carry it)',
    );
  if (c.managerUrl !== undefined) {
    const manager = parseManagerUrl(c.managerUrl, c.managerFormat);
    if (c.reportForward !== undefined) parseReportForwardUrl(c.reportForward, manager);
  } else if (c.reportForward !== undefined)
    throw new ConfigError(
      '--report-forward needs --manager-url: reports are forwarded to the manager by the trigger dispatcher',
    );
  if (c.managerSecretFile !== undefined && c.managerSecret !== undefined)
    throw new ConfigError(
      'give the manager secret once: --manager-secret-file (ZTP_MANAGER_SECRET_FILE) or ZTP_MANAGER_SECRET, not both',
    );
  if (c.managerUrl === undefined && (c.managerSecretFile ?? c.managerSecret) !== undefined)
    throw new ConfigError('a manager secret needs --manager-url (the calls it signs)');
  if (c.requestTimeout > 0 && c.headersTimeout > c.requestTimeout)
    throw new ConfigError('--headers-timeout must not be longer than --request-timeout');
}

export type Env = Record<string, string | undefined>;

/** Resolves options from argv (flags), then env, then defaults. Throws ConfigError on any bad value. */
export function resolveOptions(
  specs: readonly OptionSpec[],
  argv: string[],
  env: Env,
): Record<string, unknown> {
  let values: Record<string, string | boolean | undefined>;
  for (const s of specs) {
    // Said before parseArgs, whose message would not say why; never repeating the value.
    if (s.envOnly && argv.some((a) => a === `--${s.flag}` || a.startsWith(`--${s.flag}=`)))
      throw new ConfigError(
        `--${s.flag} is not a flag (its value would be visible in ps): set ${s.env}${s.kind === 'secret' ? ' or use --manager-secret-file' : ''}`,
      );
  }
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        specs
          .filter((s) => !s.envOnly)
          .map((s) => [
            s.flag,
            { type: s.kind === 'boolean' ? ('boolean' as const) : ('string' as const) },
          ]),
      ),
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const out: Record<string, unknown> = {};
  for (const s of specs) {
    const flag = values[s.flag];
    const fromEnv = env[s.env];
    if (typeof flag === 'boolean') out[s.key] = flag;
    else if (flag !== undefined) out[s.key] = convert(s, flag, `--${s.flag}`);
    else if (fromEnv !== undefined && fromEnv !== '') out[s.key] = convert(s, fromEnv, s.env);
    else out[s.key] = s.default === undefined ? undefined : convert(s, s.default, 'default');
  }
  return out;
}

export function loadServeConfig(argv: string[], env: Env = process.env): ServeConfig {
  const config = resolveOptions(SERVE_OPTIONS, argv, env) as unknown as ServeConfig;
  checkCombinations(config);
  return config;
}

/** Options of `ztp export` / `ztp import`: the database and its connection settings, as for serve. */
export const TRANSFER_OPTIONS: readonly OptionSpec[] = SERVE_OPTIONS.filter((s) =>
  ['database', 'databaseStatementTimeout', 'databaseConnectTimeout'].includes(s.key),
);

export type TransferConfig = Pick<
  ServeConfig,
  'database' | 'databaseStatementTimeout' | 'databaseConnectTimeout'
>;

export function loadTransferConfig(argv: string[], env: Env = process.env): TransferConfig {
  return resolveOptions(TRANSFER_OPTIONS, argv, env) as unknown as TransferConfig;
}

/** An option's help, with a duration's minimum. */
function helpText(s: OptionSpec): string {
  if (s.kind !== 'duration' || s.min === undefined || s.min === 0) return s.help;
  return `${s.help} At least ${formatDuration(s.min)}.`;
}

/** Help text for a list of options, used by `--help`. */
export function optionsHelp(specs: readonly OptionSpec[]): string {
  return specs
    .map((s) => {
      const value = s.kind === 'boolean' ? '' : ' <value>';
      const def = s.default === undefined ? '' : ` (default: ${s.default})`;
      if (s.envOnly) return `  env ${s.env}\n      ${helpText(s)}`;
      return `  --${s.flag}${value}\n      ${helpText(s)}${def}\n      env: ${s.env}`;
    })
    .join('\n');
}

/** The configuration table of docs/operations.md for a list of options. */
export function optionsTable(specs: readonly OptionSpec[]): string {
  const rows = specs.map(
    (s) =>
      `| ${s.envOnly ? '—' : `\`--${s.flag}\``} | \`${s.env}\` | ${s.default === undefined ? '—' : `\`${s.default}\``} | ${helpText(s)} |`,
  );
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
