/**
 * The device client: `ztp register` and the single-file dist/ztp-client.mjs. Finds the device id
 * and the local address it reaches the server from, then PUTs /ztp/register/{id}, waiting for a
 * server that is not up yet. Imports node builtins and small pure modules only (never the
 * server's), so it starts fast and bundles into one file.
 */
import { open, readFile, realpath } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { normaliseId, normaliseIp, USERDATA_MAX_BYTES, validateName } from '../devices/identity.js';
import {
  DetectionError,
  detectFileId,
  detectMac,
  sourceAddressFor,
  TRANSIENT_NETWORK_CODES,
  type DetectionSources,
  type Identity,
} from './detect.js';
import { isProgressType, PROGRESS_TYPES, REPORT_MESSAGE_MAX_BYTES } from '../reports/progress.js';
import { attempt, type AttemptSpec, type Outcome } from './http.js';
import { clientHelp, EXIT, parseClientOptions, UsageError, type ClientOptions } from './options.js';
import { realRetryDeps, withRetry, type RetryDeps } from './retry.js';

export const CLIENT_VERSION = '0.1.0';

export interface ClientDeps {
  env: Record<string, string | undefined>;
  sources: DetectionSources;
  sourceAddressFor(host: string, port: number): Promise<string>;
  attempt(spec: AttemptSpec): Promise<Outcome>;
  retry: RetryDeps;
  readStdin(limit: number): Promise<Buffer>;
  out(line: string): void;
  err(line: string): void;
  command: string;
}

async function readCpuid(leaf: number): Promise<Buffer> {
  const fh = await open('/dev/cpu/0/cpuid', 'r');
  try {
    const buf = Buffer.alloc(16);
    await fh.read(buf, 0, 16, leaf);
    return buf;
  } finally {
    await fh.close();
  }
}

async function readStdin(limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    chunks.push(b);
    size += b.length;
    if (size > limit) break;
  }
  return Buffer.concat(chunks);
}

export function defaultDeps(command = 'ztp register'): ClientDeps {
  const err = (line: string) => process.stderr.write(`${line}\n`);
  return {
    env: process.env,
    sources: { readFile: (p) => readFile(p, 'utf8'), networkInterfaces, readCpuid },
    sourceAddressFor,
    attempt,
    retry: realRetryDeps((line) => err(`${command}: ${line}`)),
    readStdin,
    out: (line) => process.stdout.write(`${line}\n`),
    err,
    command,
  };
}

/** Reads at most limit+1 bytes of a file, so an oversized file is refused without loading it. */
async function readLimited(path: string, limit: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(limit + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, size, buf.length - size, null);
      if (bytesRead === 0 || (size += bytesRead) === buf.length) break;
    }
    return buf.subarray(0, size);
  } finally {
    await fh.close();
  }
}

function fileError(what: string, path: string, e: unknown): UsageError {
  const code = (e as { code?: string }).code;
  return new UsageError(`cannot read ${what} ${path}: ${code ?? String(e)}`);
}

/** The userdata to send, or undefined when none was given (then none is sent). */
async function loadUserdata(opts: ClientOptions, deps: ClientDeps): Promise<string | undefined> {
  if (opts.userdataFile === undefined) {
    const text = opts.userdata;
    if (text === undefined) return undefined;
    if (Buffer.byteLength(text) > USERDATA_MAX_BYTES) {
      throw new UsageError(`--userdata is larger than ${USERDATA_MAX_BYTES} bytes`);
    }
    return text;
  }
  let bytes: Buffer;
  try {
    bytes =
      opts.userdataFile === '-'
        ? await deps.readStdin(USERDATA_MAX_BYTES)
        : await readLimited(opts.userdataFile, USERDATA_MAX_BYTES);
  } catch (e) {
    throw fileError('--userdata-file', opts.userdataFile, e);
  }
  if (bytes.length > USERDATA_MAX_BYTES) {
    throw new UsageError(
      `--userdata-file ${opts.userdataFile} is larger than ${USERDATA_MAX_BYTES} bytes (64 KiB)`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`--userdata-file ${opts.userdataFile} is not valid UTF-8 text`);
  }
}

async function loadToken(opts: ClientOptions): Promise<string | undefined> {
  let token = opts.token;
  if (opts.tokenFile !== undefined) {
    try {
      token = (await readFile(opts.tokenFile, 'utf8')).trim();
    } catch (e) {
      throw fileError('--token-file', opts.tokenFile, e);
    }
  }
  if (token !== undefined && (token === '' || !/^[\x21-\x7e]+$/.test(token))) {
    throw new UsageError('the token must be non-empty printable ASCII without spaces');
  }
  return token;
}

/** A PEM file's text; `marker` is what it must contain (e.g. "CERTIFICATE"). */
async function loadPem(
  flag: string,
  path: string | undefined,
  marker: RegExp,
  what: string,
): Promise<string | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fileError(`--${flag}`, path, e);
  }
  if (!marker.test(text)) throw new UsageError(`--${flag} ${path} holds no PEM ${what}`);
  return text;
}

function usage(flag: string, fn: () => string): string {
  try {
    return fn();
  } catch (e) {
    throw new UsageError(`--${flag}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A facts-gathering failure that is worth waiting out (the network is not up yet). */
function transient(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) {
    return `network not ready: ${e instanceof Error ? e.message : code}`;
  }
  return undefined;
}

/** What `ztp report` sends instead of a registration. */
export interface ReportRequest {
  type: string;
  message: string | undefined;
}

const REPORT_USAGE = (command: string) => `Usage: ${command} TYPE [MESSAGE] --server URL [options]

Reports this device's provisioning progress: POST {server}/ztp/report/{id} with TYPE, one of
RFC 8572's progress types (${PROGRESS_TYPES.join(', ')}), and an optional MESSAGE of at most ${REPORT_MESSAGE_MAX_BYTES} bytes.
The device must be registered. The options are those of 'ztp register' (--server, --id, --token, ...).
`;

/** `ztp report TYPE [MESSAGE] [options]`: the register client's options and identity. */
export async function reportMain(
  argv: string[],
  deps: ClientDeps = defaultDeps('ztp report'),
): Promise<number> {
  const positional: string[] = [];
  while (positional.length < 2 && argv[0] !== undefined && !argv[0].startsWith('-'))
    positional.push(argv.shift()!);
  const usageFail = (message: string) => {
    deps.err(`${deps.command}: ${message}\nRun '${deps.command} --help' for the options.`);
    return EXIT.usage;
  };
  if (argv.includes('--help') || argv.includes('-h')) {
    deps.out(REPORT_USAGE(deps.command) + '\n' + clientHelp(deps.command));
    return EXIT.ok;
  }
  const [type, message] = positional;
  if (type === undefined) return usageFail('TYPE is required (e.g. bootstrap-complete)');
  if (!isProgressType(type))
    return usageFail(`'${type}' is not an RFC 8572 progress type (${PROGRESS_TYPES.join(', ')})`);
  if (message !== undefined && Buffer.byteLength(message) > REPORT_MESSAGE_MAX_BYTES)
    return usageFail(`MESSAGE is larger than ${REPORT_MESSAGE_MAX_BYTES} bytes`);
  return main(argv, deps, { type, message });
}

export async function main(
  argv: string[],
  deps: ClientDeps = defaultDeps(),
  report?: ReportRequest,
): Promise<number> {
  const fail = (code: number, message: string): number => {
    deps.err(`${deps.command}: ${message}`);
    return code;
  };
  const what = report ? 'report' : 'registration';
  let opts: ClientOptions;
  let token: string | undefined;
  let ca: string | undefined;
  let cert: string | undefined;
  let key: string | undefined;
  let userdata: string | undefined;
  let name: string | undefined;
  let fixedIp: string | undefined;
  let fixedId: Identity | undefined;
  try {
    opts = parseClientOptions(argv, deps.env);
    if (opts.help) {
      deps.out(clientHelp(deps.command));
      return EXIT.ok;
    }
    token = await loadToken(opts);
    ca = await loadPem('ca-file', opts.caFile, /-----BEGIN CERTIFICATE-----/, 'certificate');
    cert = await loadPem('cert-file', opts.certFile, /-----BEGIN CERTIFICATE-----/, 'certificate');
    key = await loadPem(
      'key-file',
      opts.keyFile,
      /-----BEGIN (EC |RSA )?PRIVATE KEY-----/,
      'private key',
    );
    userdata = await loadUserdata(opts, deps);
    // Name and userdata are the operator's unless the device is told to send them: a boot must
    // not overwrite what an admin wrote, so there is no default (not even the hostname).
    const givenName = opts.name;
    name = givenName === undefined ? undefined : usage('name', () => validateName(givenName));
    fixedIp = opts.ip === undefined ? undefined : usage('ip', () => normaliseIp(opts.ip!));
    if (opts.id !== undefined) {
      const given = opts.id;
      fixedId = { id: usage('id', () => normaliseId(given)), how: 'given with --id' };
    }
  } catch (e) {
    if (e instanceof UsageError) {
      return fail(EXIT.usage, `${e.message}\nRun '${deps.command} --help' for the options.`);
    }
    throw e;
  }

  // Ids that do not depend on the network are found once, before waiting for anything.
  if (fixedId === undefined && opts.idSource !== 'mac') {
    try {
      fixedId = await detectFileId(opts.idSource, deps.sources);
    } catch (e) {
      if (e instanceof DetectionError) {
        return fail(EXIT.identity, `cannot find the ${opts.idSource} id: ${e.message}`);
      }
      throw e;
    }
  }

  const server = opts.server;
  const port = Number(server.port) || (server.protocol === 'https:' ? 443 : 80);
  const base = server.href.replace(/\/+$/, '');
  let identityError: DetectionError | undefined;
  let lastRequest: { url: URL; body: string; identity: Identity } | undefined;

  // Each attempt re-detects the source address (and so the MAC): at boot the network may come
  // up, or DHCP may change the address, while we wait.
  const oneAttempt = async (timeoutMs: number): Promise<Outcome> => {
    let ip = fixedIp;
    let identity = fixedId;
    if (ip === undefined || identity === undefined) {
      let source: string;
      try {
        source = await deps.sourceAddressFor(server.hostname, port);
      } catch (e) {
        const why = transient(e);
        if (why !== undefined) return { kind: 'retry', reason: why };
        identityError = new DetectionError(
          `cannot find the local address used to reach ${server.hostname}: ${e instanceof Error ? e.message : String(e)}`,
        );
        return { kind: 'rejected', status: 0, detail: identityError.message };
      }
      ip ??= normaliseIp(source);
      if (identity === undefined) {
        try {
          identity = await detectMac(source, deps.sources);
        } catch (e) {
          if (!(e instanceof DetectionError)) throw e;
          identityError = e;
          return { kind: 'rejected', status: 0, detail: e.message };
        }
      }
    }
    const url = new URL(`${base}/ztp/${report ? 'report' : 'register'}/${identity.id}`);
    const body = report
      ? JSON.stringify({
          type: report.type,
          ...(report.message === undefined ? {} : { message: report.message }),
        })
      : JSON.stringify({
          ip,
          ...(name === undefined ? {} : { name }),
          ...(userdata === undefined ? {} : { userdata }),
        });
    lastRequest = { url, body, identity };
    if (opts.dryRun) {
      // Only lastRequest is printed for a dry run; the record just ends the retry loop.
      return {
        kind: 'ok',
        created: false,
        record: { id: identity.id, ip, name: name ?? '', userdata: userdata ?? '' },
      };
    }
    return deps.attempt({
      url,
      body,
      token,
      ca,
      cert,
      key,
      timeoutMs,
      userAgent: `ztp-client/${CLIENT_VERSION} node/${process.versions.node}`,
      ...(report ? { method: 'POST', expect: 'report' } : {}),
    });
  };

  const retryDeps: RetryDeps = opts.quiet ? { ...deps.retry, log: () => undefined } : deps.retry;
  const final = await withRetry(
    oneAttempt,
    { waitMs: opts.waitMs, timeoutMs: opts.timeoutMs },
    retryDeps,
  );

  if (identityError !== undefined) {
    return fail(EXIT.identity, `cannot find the device id: ${identityError.message}`);
  }
  switch (final.kind) {
    case 'ok': {
      if (opts.dryRun) {
        const req = lastRequest!;
        if (opts.json) {
          deps.out(
            JSON.stringify({
              method: report ? 'POST' : 'PUT',
              url: req.url.href,
              authorization: token === undefined ? null : 'Bearer ***',
              body: JSON.parse(req.body) as unknown,
              id: req.identity.id,
              idFrom: req.identity.how,
            }),
          );
        } else {
          deps.out(`${report ? 'POST' : 'PUT'} ${req.url.href}`);
          if (token !== undefined) deps.out('authorization: Bearer ***');
          deps.out(req.body);
          deps.out(`(dry run: nothing sent; id is the ${req.identity.how})`);
        }
        return EXIT.ok;
      }
      if (report) {
        const id = lastRequest!.identity.id;
        deps.out(
          opts.json
            ? JSON.stringify({ id, type: report.type, message: report.message ?? '' })
            : `reported ${report.type} for ${id}`,
        );
        return EXIT.ok;
      }
      const r = final.record;
      deps.out(
        opts.json
          ? JSON.stringify(r)
          : `registered ${r.id} as ${r.ip} (${final.created ? 'created' : 'updated'})`,
      );
      return EXIT.ok;
    }
    case 'rejected':
      return fail(
        EXIT.rejected,
        final.status === 0
          ? `the server rejected the ${what}: ${final.detail}`
          : `the server rejected the ${what} (${final.status}${final.code ? ` ${final.code}` : ''}): ${final.detail}`,
      );
    case 'untrusted':
      return fail(
        EXIT.untrusted,
        `cannot trust ${server.origin}: ${final.reason}${ca === undefined ? ' (a private CA needs --ca-file)' : ''}`,
      );
    case 'gave-up':
      return fail(
        EXIT.gaveUp,
        `gave up after ${(final.elapsedMs / 1000).toFixed(1)}s and ${final.attempts} attempt${final.attempts === 1 ? '' : 's'}: ${server.origin} did not accept the ${what} (last error: ${final.reason})`,
      );
  }
}

/** Run when this file is the program (dist/ztp-client.mjs, or src/client/main.ts via tsx). */
async function isEntryPoint(): Promise<boolean> {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return (await realpath(script)) === (await realpath(fileURLToPath(import.meta.url)));
  } catch {
    return false;
  }
}

void isEntryPoint().then(async (entry) => {
  if (!entry) return;
  const argv = process.argv.slice(2);
  const reporting = argv[0] === 'report';
  const deps = defaultDeps(reporting ? 'ztp-client report' : 'ztp-client');
  try {
    process.exitCode = reporting ? await reportMain(argv.slice(1), deps) : await main(argv, deps);
  } catch (e) {
    deps.err(`ztp-client: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = EXIT.internal;
  }
});
