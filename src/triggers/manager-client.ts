/**
 * The HTTP call that tells the service manager about a registration: by default the seed's
 * `GET {managerUrl}/api/exec?ip={ip}` with an `Idempotency-Key` header; a URL template, the json
 * form and signatures as configured (manager-url.ts, manager-call.ts, signature.ts).
 *
 * One undici Agent (keep-alive pool of `connections` sockets) for the process. Every call is
 * bounded by `timeoutMs` as a whole (connect, headers and body), and each of undici's own
 * connect/headers/body timeouts is set to the same value. The response body is read and
 * discarded, at most MAX_BODY_BYTES of it; a longer body closes the connection instead.
 * Never throws: every failure is an AttemptResult.
 */
import { Agent } from 'undici';
import {
  managerRequest,
  type CallForm,
  type ManagerCall,
  type ManagerRequest,
} from './manager-call.js';
import { parseManagerUrl, parseReportForwardUrl, type ManagerFormat } from './manager-url.js';
import type { AttemptResult } from './retry-policy.js';

export { execUrl } from './manager-url.js';

/** Largest response body read (and discarded) before the connection is dropped instead. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Characters of a non-2xx answer's body kept as the trigger's lastError detail. */
export const DETAIL_CHARS = 200;

export interface ManagerClientOptions {
  /** --manager-url as configured: a base URL or a template (parseManagerUrl). */
  managerUrl: string;
  /** --manager-format (default get). */
  format?: ManagerFormat | undefined;
  /** --report-forward: the URL (template) forwarded reports are POSTed to; undefined: off. */
  reportForwardUrl?: string | undefined;
  /** Signing secrets (none: unsigned). Plain strings: they cross to the sender thread. */
  secrets?: readonly string[] | undefined;
  timeoutMs: number;
  /** Keep-alive sockets to the manager (the dispatcher's concurrency). */
  connections: number;
}

export class ManagerClient {
  private readonly agent: Agent;
  private readonly origin: string;
  private readonly form: CallForm;

  constructor(private readonly opts: ManagerClientOptions) {
    this.agent = new Agent({
      connections: opts.connections,
      connect: { timeout: opts.timeoutMs },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
    });
    const format = opts.format ?? 'get';
    const target = parseManagerUrl(opts.managerUrl, format);
    this.origin = target.origin;
    const reportTarget =
      opts.reportForwardUrl === undefined
        ? undefined
        : parseReportForwardUrl(opts.reportForwardUrl, target);
    this.form = { target, reportTarget, format, secrets: opts.secrets ?? [] };
  }

  /**
   * One attempt. `signal` aborts it early (shutdown); that is reported as an error result.
   *
   * Through undici's dispatch() with a handler of its own rather than request(): no response
   * stream, no async iteration, no AbortController per call, which made a call cost about three
   * times as much CPU. One timer per call bounds it as a whole (connect, headers and body).
   */
  send(call: ManagerCall, signal?: AbortSignal): Promise<AttemptResult> {
    if (signal?.aborted) return Promise.resolve(shutdownResult());
    const { timeoutMs } = this.opts;
    let request: ManagerRequest;
    try {
      // Signed with the time of sending: a retry is signed anew.
      request = managerRequest(this.form, call, Math.floor(Date.now() / 1000));
    } catch (e) {
      return Promise.resolve({ kind: 'error', error: errorText(e) });
    }
    return new Promise<AttemptResult>((resolve) => {
      let done = false;
      let controller: { abort(reason: Error): void } | undefined;
      /** Why the call was cut short by us, if it was. */
      let cut: 'timeout' | 'shutdown' | undefined;
      let status = 0;
      let retryAfter: string | undefined;
      let keep = false;
      let kept = '';
      let read = 0;
      let tooLong = false;
      const finish = (result: AttemptResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const response = (): AttemptResult => ({
        kind: 'response',
        status,
        retryAfter,
        detail: kept.slice(0, DETAIL_CHARS).replace(CONTROL_CHARS, ' ').trim(),
      });
      const cutShort = (why: 'timeout' | 'shutdown') => {
        cut ??= why;
        // Not on a connection yet: answer now; onRequestStart aborts it when it gets one.
        if (controller) controller.abort(new Error(why));
        else finish(why === 'timeout' ? timeoutResult(timeoutMs) : shutdownResult());
      };
      const timer = setTimeout(() => cutShort('timeout'), timeoutMs);
      const onAbort = () => cutShort('shutdown');
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.agent.dispatch(
          {
            origin: this.origin,
            path: request.path,
            method: request.method,
            headers: request.headers,
            body: request.body,
          },
          {
            onRequestStart(c: { abort(reason: Error): void }) {
              controller = c;
              if (cut) c.abort(new Error(cut));
            },
            onResponseStart(_c: unknown, statusCode: number, headers: IncomingHeaders) {
              status = statusCode;
              keep = statusCode < 200 || statusCode >= 300;
              const value = headers['retry-after'];
              retryAfter = Array.isArray(value) ? value[0] : value;
            },
            onResponseData(c: { abort(reason: Error): void }, chunk: Buffer) {
              // The body is read and discarded, at most MAX_BODY_BYTES of it.
              if (keep && kept.length < DETAIL_CHARS) kept += chunk.toString('utf8');
              read += chunk.length;
              if (read > MAX_BODY_BYTES) {
                tooLong = true;
                c.abort(new Error('response body too long'));
              }
            },
            onResponseEnd() {
              finish(response());
            },
            onResponseError(_c: unknown, err: Error) {
              if (tooLong) finish(response());
              else if (cut === 'timeout' || isTimeout(err)) finish(timeoutResult(timeoutMs));
              else if (cut === 'shutdown') finish(shutdownResult());
              else finish({ kind: 'error', error: errorText(err) });
            },
          },
        );
      } catch (e) {
        finish({ kind: 'error', error: errorText(e) });
      }
    });
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

type IncomingHeaders = Record<string, string | string[] | undefined>;

function timeoutResult(timeoutMs: number): AttemptResult {
  return { kind: 'timeout', error: `timeout after ${timeoutMs} ms` };
}

/** The result of a call not made, or cut short, because the server is shutting down. */
export function shutdownResult(): AttemptResult {
  return { kind: 'error', error: 'aborted: the server is shutting down' };
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]+/g;

function isTimeout(e: unknown): boolean {
  const err = e as { code?: unknown; name?: unknown };
  return (
    err.name === 'TimeoutError' ||
    err.code === 'UND_ERR_CONNECT_TIMEOUT' ||
    err.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    err.code === 'UND_ERR_BODY_TIMEOUT'
  );
}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const code = (e as { code?: unknown }).code;
  const text =
    typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  return cause instanceof Error ? `${text} (${cause.message})` : text;
}
