/**
 * The HTTP call that tells the service manager about a registration:
 * `GET {managerUrl}/api/exec?ip={ip}` with an `Idempotency-Key` header.
 *
 * One undici Agent (keep-alive pool of `connections` sockets) for the process. Every call is
 * bounded by `timeoutMs` as a whole (connect, headers and body), and each of undici's own
 * connect/headers/body timeouts is set to the same value. The response body is read and
 * discarded, at most MAX_BODY_BYTES of it; a longer body closes the connection instead.
 * Never throws: every failure is an AttemptResult.
 */
import { Agent, request } from 'undici';
import type { AttemptResult } from './retry-policy.js';

/** Largest response body read (and discarded) before the connection is dropped instead. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Characters of a non-2xx answer's body kept as the trigger's lastError detail. */
export const DETAIL_CHARS = 200;

export interface ManagerClientOptions {
  /** Validated base URL without a trailing slash (config.validateManagerUrl). */
  managerUrl: string;
  timeoutMs: number;
  /** Keep-alive sockets to the manager (the dispatcher's concurrency). */
  connections: number;
}

export interface TriggerCall {
  ip: string;
  key: string;
}

/** The URL of a trigger call, built only from the configured base URL and the stored ip. */
export function execUrl(managerUrl: string, ip: string): string {
  return `${managerUrl}/api/exec?ip=${encodeURIComponent(ip)}`;
}

export class ManagerClient {
  private readonly agent: Agent;

  constructor(private readonly opts: ManagerClientOptions) {
    this.agent = new Agent({
      connections: opts.connections,
      connect: { timeout: opts.timeoutMs },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
    });
  }

  /**
   * One attempt. `signal` aborts it early (shutdown); that is reported as an error result.
   *
   * One controller and one timer per call, cleared when the call ends: AbortSignal.timeout()
   * (+ AbortSignal.any) would keep a timer and its signals alive for the whole timeout after
   * the call returned, tens of thousands of them at thousands of deliveries per second.
   */
  async send(call: TriggerCall, signal?: AbortSignal): Promise<AttemptResult> {
    if (signal?.aborted) return { kind: 'error', error: 'aborted: the server is shutting down' };
    const controller = new AbortController();
    let timedOut = false as boolean; // set by the timer
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.opts.timeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await request(execUrl(this.opts.managerUrl, call.ip), {
        method: 'GET',
        dispatcher: this.agent,
        headers: { 'idempotency-key': call.key, 'user-agent': 'ztp-trigger' },
        signal: controller.signal,
      });
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const body = await drain(res.body, !ok);
      const retryAfter = res.headers['retry-after'];
      return {
        kind: 'response',
        status: res.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        detail: body,
      };
    } catch (e) {
      if (timedOut || isTimeout(e)) {
        return { kind: 'timeout', error: `timeout after ${this.opts.timeoutMs} ms` };
      }
      if (signal?.aborted) return { kind: 'error', error: 'aborted: the server is shutting down' };
      return { kind: 'error', error: errorText(e) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]+/g;

interface Body extends AsyncIterable<Buffer> {
  destroy(): unknown;
}

/** Reads and discards the body (bounded); returns the start of it when `keep` is set. */
async function drain(body: Body, keep: boolean): Promise<string> {
  let read = 0;
  let kept = '';
  for await (const chunk of body) {
    if (keep && kept.length < DETAIL_CHARS) kept += chunk.toString('utf8');
    read += chunk.length;
    if (read > MAX_BODY_BYTES) {
      body.destroy();
      break;
    }
  }
  return kept.slice(0, DETAIL_CHARS).replace(CONTROL_CHARS, ' ').trim();
}

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
