/**
 * What the listener does per connection before a request reaches the fast lane or Fastify.
 *
 * Pipelining (RFC 9112 §9.3.2): node hands every pipelined request of a connection to the
 * handler at once, so a lookup written after a registration on the same connection used to run
 * before the registration had committed. A request that follows an unanswered state-changing one
 * (or is itself state-changing) now waits until the earlier responses are finished; safe requests
 * behind safe ones still run in parallel.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { RawHandler } from './fast-check.js';

/**
 * State-changing: every method but GET/HEAD, and the seed's `GET /ztp/mng/{id}/delete`. Decided
 * before routing, so any GET whose URL has `/delete` or a %-escape counts: over-counting only
 * costs a pipelined request its parallelism, never its order.
 */
export function mayChangeState(req: IncomingMessage): boolean {
  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD') return true;
  const url = req.url ?? '';
  return url.includes('/delete') || url.includes('%');
}

/** Wraps the request handler with the per-connection ordering. */
export function connectionHandler(next: RawHandler): RawHandler {
  const unansweredChanges = new WeakMap<Socket, number>();
  const answered = (socket: Socket) => {
    const left = (unansweredChanges.get(socket) ?? 1) - 1;
    if (left === 0) unansweredChanges.delete(socket);
    else unansweredChanges.set(socket, left);
  };
  return (req, res) => {
    const socket = req.socket;
    // node gives a response its socket only once every earlier response on the connection has
    // finished: without one, this request is pipelined behind unanswered ones.
    const behindOthers = res.socket === null;
    if (!mayChangeState(req)) {
      if (behindOthers && unansweredChanges.has(socket)) res.once('socket', () => next(req, res));
      else next(req, res);
      return;
    }
    unansweredChanges.set(socket, (unansweredChanges.get(socket) ?? 0) + 1);
    res.once('close', () => answered(socket));
    if (behindOthers) res.once('socket', () => next(req, res));
    else next(req, res);
  };
}
