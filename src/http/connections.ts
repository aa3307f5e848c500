/**
 * What the listener does per connection before a request reaches Fastify.
 *
 * Pipelining (RFC 9112 §9.3.2): node hands every pipelined request of a connection to the
 * handler at once, so a lookup written after a registration on the same connection used to run
 * before the registration had committed. A request that follows an unanswered state-changing one
 * (or is itself state-changing) now waits until the earlier responses are finished; safe requests
 * behind safe ones still run in parallel.
 *
 * Lingering close: an answer given before the request body was read (413 over the body limit)
 * closes the connection, and closing it with unread data makes the kernel send a reset: a client
 * that writes its whole body before reading (curl does not; many libraries do) got EPIPE instead
 * of the 413. The rest of the body is now read and dropped first, bounded in time and size, as
 * nginx does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** How long, and how much of an unread request body, a closing connection drains first. */
export interface LingerLimits {
  lingerTimeout: number;
  lingerBytes: number;
}

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

/** Wraps the request handler with the per-connection ordering and the lingering close. */
export function connectionHandler(next: RawHandler, linger: LingerLimits): RawHandler {
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
    // Before node's own 'finish' listener, which closes a `Connection: close` connection.
    res.prependOnceListener('finish', () => {
      if (!req.complete) drainBeforeClose(req, socket, linger);
    });
    if (behindOthers) res.once('socket', () => next(req, res));
    else next(req, res);
  };
}

/**
 * The response is finished but the request body is not all read: read and drop the rest, and if
 * node closes the connection meanwhile, send the answer and a FIN first and close only once the
 * body has arrived, `linger.lingerBytes` more were dropped, or `linger.lingerTimeout` passed.
 */
function drainBeforeClose(req: IncomingMessage, socket: Socket, linger: LingerLimits): void {
  let dropped = 0;
  // A reader keeps node from dumping the body itself, so its size can be bounded here.
  const drop = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > linger.lingerBytes) socket.destroy();
  };
  req.on('data', drop);
  let deadline: NodeJS.Timeout | undefined;
  // node calls destroySoon() right after 'finish' when the answer closes the connection.
  socket.destroySoon = () => {
    socket.end();
    deadline = setTimeout(() => socket.destroy(), linger.lingerTimeout);
  };
  const stop = () => {
    clearTimeout(deadline);
    req.off('data', drop);
    // Back to the prototype's destroySoon (end, then destroy once written).
    Reflect.deleteProperty(socket, 'destroySoon');
  };
  socket.once('close', stop);
  req.once('end', () => {
    const lingering = deadline !== undefined;
    stop();
    socket.off('close', stop);
    if (lingering) socket.destroySoon();
  });
}
