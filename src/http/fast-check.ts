/**
 * The lookup fast lane. `GET /ztp/check/{id}` is the hottest route (the service manager looks
 * every device up), and Fastify's per-request pipeline (routing, hook runners, the reply
 * machinery) costs more CPU than the lookup itself (docs/performance.md).
 *
 * The lane answers the common case — a plain id of a registered device, the retrieval guard
 * passed — straight from the node:http request event, with the bytes the Fastify route sends for
 * it (test/http/fast-check.test.ts compares them), the same request id, log line and metrics.
 * Everything else is handed to Fastify untouched: other routes and methods, query strings, ids
 * that need %-decoding, invalid or reserved ids, unknown devices, 401/403, storage errors and
 * requests during shutdown. So every error answer still comes from one place, and the Fastify
 * route stays the reference implementation (it also serves app.inject()).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normaliseId } from '../devices/identity.js';
import type { DeviceService } from '../devices/service.js';
import type { Device } from '../storage/store.js';
import type { Guard, GuardRequest } from './auth.js';
import { recordView } from './schemas.js';

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What the app does around every answer: request id, log line, metrics (src/app.ts). */
export interface AnswerHooks {
  requestId(req: IncomingMessage): string;
  /** Called once the response is written, like Fastify's onResponse hooks. */
  answered(
    req: IncomingMessage,
    reqId: string,
    route: string,
    status: number,
    elapsedMs: number,
  ): void;
  /** True once the server is shutting down (Fastify then answers 503 and closes). */
  closing(): boolean;
}

export interface FastCheckOptions {
  service: DeviceService;
  guard: Guard | undefined;
  hooks: AnswerHooks;
}

export const CHECK_ROUTE = '/ztp/check/:id';
const PREFIX = '/ztp/check/';
/** Ids the lane takes as they are: the device id alphabet, nothing to %-decode, no '/' or '?'. */
const PLAIN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface FastCheck {
  handler: RawHandler;
  /** How many requests the lane answered and handed to Fastify (tests, diagnostics). */
  readonly stats: { answered: number; passed: number };
}

/** Wraps Fastify's request handler `fallback` with the lane. */
export function fastCheck(opts: FastCheckOptions, fallback: RawHandler): FastCheck {
  const { service, guard, hooks } = opts;
  const stats = { answered: 0, passed: 0 };
  const lookupNow = guard === undefined ? service.lookupNow : undefined;
  const pass = (req: IncomingMessage, res: ServerResponse) => {
    stats.passed++;
    fallback(req, res);
  };

  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    body: string,
  ): void => {
    const reqId = hooks.requestId(req);
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'x-request-id': reqId,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
    stats.answered++;
    hooks.answered(req, reqId, CHECK_ROUTE, 200, performance.now() - started);
  };

  const handler: RawHandler = (req, res) => {
    const url = req.url ?? '';
    if (req.method !== 'GET' || !url.startsWith(PREFIX) || hooks.closing()) {
      pass(req, res);
      return;
    }
    const raw = url.slice(PREFIX.length);
    if (!PLAIN_ID.test(raw)) {
      pass(req, res);
      return;
    }
    const started = performance.now();
    if (lookupNow) {
      // Open retrieval API on a synchronous engine: answered within this event.
      let record;
      try {
        record = lookupNow(normaliseId(raw));
      } catch {
        pass(req, res); // invalid or reserved id, storage down
        return;
      }
      if (record) answer(req, res, started, JSON.stringify(record));
      else pass(req, res);
      return;
    }
    const lookup = () => service.get(raw);
    let found: Promise<Device>;
    try {
      found = guard ? guard(guardRequest(req, raw), 'retrieval').then(lookup) : lookup();
    } catch {
      pass(req, res); // normaliseId throws before the store is asked: invalid or reserved id
      return;
    }
    found.then(
      (device) => {
        if (res.destroyed) return; // the client went away while the store answered
        if (hooks.closing()) pass(req, res);
        else answer(req, res, started, JSON.stringify(recordView(device)));
      },
      // Not found, invalid, refused, storage down: Fastify answers it (with the problem document).
      () => pass(req, res),
    );
  };
  return { handler, stats };
}

function guardRequest(req: IncomingMessage, id: string): GuardRequest {
  return { headers: req.headers, ip: req.socket.remoteAddress ?? '', params: { id }, raw: req };
}
