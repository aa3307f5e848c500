/**
 * Options of the device client (`ztp register` and dist/ztp-client.mjs). Every option is a flag
 * and an environment variable (flag wins); this table is the one place the client reads the
 * environment, and it produces `--help`. The POSIX sh client (shell-script.ts) accepts the same
 * names.
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../config.js';
import { ID_SOURCES, type IdSource } from './detect.js';

/** Exit codes, documented in --help and docs/devices.md. */
export const EXIT = {
  ok: 0,
  /** A bug or an unexpected local error. */
  internal: 1,
  usage: 2,
  identity: 3,
  rejected: 4,
  gaveUp: 5,
  untrusted: 6,
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

interface Spec {
  flag: string;
  env?: string;
  arg?: string;
  default?: string;
  help: string;
  boolean?: true;
}

export const CLIENT_OPTIONS: readonly Spec[] = [
  {
    flag: 'server',
    env: 'ZTP_SERVER',
    arg: 'URL',
    help: 'Server base URL (http or https). Required.',
  },
  {
    flag: 'id-source',
    env: 'ZTP_ID_SOURCE',
    arg: 'SRC',
    default: 'mac',
    help: 'Where the device id comes from: mac (the interface that routes to the server), machine-id, cpu (CPU serial), dmi-uuid.',
  },
  { flag: 'id', env: 'ZTP_ID', arg: 'ID', help: 'Use this device id instead of detecting one.' },
  {
    flag: 'ip',
    env: 'ZTP_IP',
    arg: 'IP',
    help: 'Address to register. Default: the local address used to reach the server.',
  },
  {
    flag: 'name',
    env: 'ZTP_NAME',
    arg: 'NAME',
    help: 'Device name. Sent only when given: otherwise the stored name is left as it is.',
  },
  {
    flag: 'userdata',
    env: 'ZTP_USERDATA',
    arg: 'TEXT',
    help: 'Free text, at most 64 KiB. Sent only when given (this or --userdata-file).',
  },
  {
    flag: 'userdata-file',
    env: 'ZTP_USERDATA_FILE',
    arg: 'PATH',
    help: 'Read userdata from a file (- for standard input).',
  },
  {
    flag: 'token',
    env: 'ZTP_TOKEN',
    arg: 'TOKEN',
    help: 'Bearer token sent as Authorization: Bearer TOKEN.',
  },
  {
    flag: 'token-file',
    env: 'ZTP_TOKEN_FILE',
    arg: 'PATH',
    help: 'Read the bearer token from a file (keeps it out of the process list).',
  },
  {
    flag: 'ca-file',
    env: 'ZTP_CA_FILE',
    arg: 'PATH',
    help: 'PEM CA certificate(s) to trust for an https server (private CA).',
  },
  {
    flag: 'cert-file',
    env: 'ZTP_CERT_FILE',
    arg: 'PATH',
    help: 'PEM client certificate for mutual TLS (with --key-file).',
  },
  {
    flag: 'key-file',
    env: 'ZTP_KEY_FILE',
    arg: 'PATH',
    help: 'PEM private key of --cert-file (unencrypted).',
  },
  {
    flag: 'wait',
    env: 'ZTP_WAIT',
    arg: 'DURATION',
    default: '5m',
    help: 'Keep retrying an unreachable or busy server (connection errors, timeouts, 408, 429, 5xx) this long, e.g. 90s, 5m, 1h; 0 = one attempt.',
  },
  {
    flag: 'timeout',
    env: 'ZTP_TIMEOUT',
    arg: 'DURATION',
    default: '10s',
    help: 'Timeout of one attempt (connect + answer), e.g. 10s; at least 100ms.',
  },
  { flag: 'json', boolean: true, help: 'Print the registered record as JSON.' },
  {
    flag: 'dry-run',
    boolean: true,
    help: 'Detect and print what would be sent; send nothing.',
  },
  { flag: 'quiet', boolean: true, help: 'Do not print retry progress on standard error.' },
  { flag: 'help', boolean: true, help: 'Show this help.' },
];

export const EXIT_CODE_HELP: readonly [number, string][] = [
  [EXIT.ok, 'registered (or, with --dry-run, detected and printed)'],
  [EXIT.internal, 'unexpected error (a bug)'],
  [
    EXIT.usage,
    'usage error: bad option, unreadable file, id/ip/name/userdata invalid or too large',
  ],
  [EXIT.identity, 'identity detection failed: the id source or the local address is unavailable'],
  [
    EXIT.rejected,
    'the server rejected the registration (4xx other than 408/429, a redirect, or a refused client certificate)',
  ],
  [EXIT.gaveUp, 'gave up waiting: the server stayed unreachable or busy for --wait'],
  [EXIT.untrusted, 'the server TLS certificate is not trusted (see --ca-file)'],
];

export function clientHelp(command: string): string {
  const opts = CLIENT_OPTIONS.map((o) => {
    const head = `  --${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
    const tail = [o.env ? `env ${o.env}` : '', o.default ? `default ${o.default}` : '']
      .filter(Boolean)
      .join(', ');
    return `${head}${tail ? `  (${tail})` : ''}\n      ${o.help}`;
  }).join('\n');
  const codes = EXIT_CODE_HELP.map(([c, m]) => `  ${c}  ${m}`).join('\n');
  return `Usage: ${command} --server URL [options]

Registers this device with a ztp server: PUT {server}/ztp/register/{id} with its ip, and its
name and userdata when given. Run it at every boot. Flags win over environment variables.

Options:
${opts}

Exit codes:
${codes}`;
}

export interface ClientOptions {
  server: URL;
  idSource: IdSource;
  id: string | undefined;
  ip: string | undefined;
  name: string | undefined;
  userdata: string | undefined;
  userdataFile: string | undefined;
  token: string | undefined;
  tokenFile: string | undefined;
  caFile: string | undefined;
  certFile: string | undefined;
  keyFile: string | undefined;
  waitMs: number;
  timeoutMs: number;
  json: boolean;
  dryRun: boolean;
  quiet: boolean;
  help: boolean;
}

/** Shortest --timeout: below it an attempt can hardly connect, let alone get an answer. */
export const MIN_CLIENT_TIMEOUT_MS = 100;

/** "500ms", "30s", "1.5s", "5m", "1h", "1d", or "0" → milliseconds; the same rule as `ztp serve`. */
export function parseDurationOption(flag: string, raw: string): number {
  try {
    return parseDuration(raw);
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

export function parseClientOptions(
  argv: string[],
  env: Record<string, string | undefined>,
): ClientOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(
        CLIENT_OPTIONS.map((o) => [o.flag, { type: o.boolean ? 'boolean' : 'string' }] as const),
      ),
    }).values;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const get = (flag: string): string | undefined => {
    const spec = CLIENT_OPTIONS.find((o) => o.flag === flag)!;
    const v = values[flag];
    if (typeof v === 'string') return v;
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : spec.default;
  };
  const flag = (name: string): boolean => values[name] === true;
  if (flag('help')) return { help: true } as ClientOptions;

  const serverText = get('server');
  if (serverText === undefined) throw new UsageError('--server URL (or ZTP_SERVER) is required');
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    throw new UsageError(`--server '${serverText}' is not a URL`);
  }
  if (server.protocol !== 'http:' && server.protocol !== 'https:') {
    throw new UsageError(`--server must be an http:// or https:// URL, got '${serverText}'`);
  }
  if (server.search !== '' || server.hash !== '' || server.username !== '') {
    throw new UsageError('--server must not contain credentials, a query or a fragment');
  }
  const idSource = get('id-source')!;
  if (!(ID_SOURCES as readonly string[]).includes(idSource)) {
    throw new UsageError(`--id-source must be one of ${ID_SOURCES.join(', ')}, got '${idSource}'`);
  }
  if (typeof values.id === 'string' && typeof values['id-source'] === 'string') {
    throw new UsageError('give either --id or --id-source, not both');
  }
  const userdata = get('userdata');
  const userdataFile = get('userdata-file');
  if (userdata !== undefined && userdataFile !== undefined) {
    throw new UsageError('give either --userdata or --userdata-file, not both');
  }
  const token = get('token');
  const tokenFile = get('token-file');
  if (token !== undefined && tokenFile !== undefined) {
    throw new UsageError('give either --token or --token-file, not both');
  }
  const certFile = get('cert-file');
  const keyFile = get('key-file');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError('give --cert-file and --key-file together');
  }
  if (server.protocol === 'http:' && (certFile !== undefined || get('ca-file') !== undefined)) {
    throw new UsageError('--ca-file, --cert-file and --key-file need an https:// --server');
  }
  const timeoutMs = parseDurationOption('timeout', get('timeout')!);
  if (timeoutMs < MIN_CLIENT_TIMEOUT_MS)
    throw new UsageError(`--timeout must be at least ${MIN_CLIENT_TIMEOUT_MS}ms`);
  return {
    server,
    idSource: idSource as IdSource,
    // A flag wins over the environment for the identity as a whole: --id-source beats ZTP_ID.
    id: typeof values['id-source'] === 'string' ? (values.id as string | undefined) : get('id'),
    ip: get('ip'),
    name: get('name'),
    userdata,
    userdataFile,
    token,
    tokenFile,
    caFile: get('ca-file'),
    certFile,
    keyFile,
    waitMs: parseDurationOption('wait', get('wait')!),
    timeoutMs,
    json: flag('json'),
    dryRun: flag('dry-run'),
    quiet: flag('quiet'),
    help: false,
  };
}
