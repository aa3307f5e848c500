/**
 * A real HTTP service manager on 127.0.0.1 for trigger tests. It records every call and answers
 * according to `mode`; it can be stopped (connection refused) and restarted on the same port.
 * Tests await its calls (called(), callFor()) rather than poll for them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Signal } from '../signal.js';

export interface ManagerCall {
  /** Raw request target, e.g. /api/exec?ip=2001%3Adb8%3A%3A1 */
  url: string;
  path: string;
  /** Decoded `ip` query parameter. */
  ip: string | null;
  key: string | undefined;
  at: number;
}

export type Mode =
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Accepts the request and never answers. */
  | { kind: 'blackhole' };

export class FakeManager {
  calls: ManagerCall[] = [];
  mode: Mode = { kind: 'status', status: 200 };
  /** Called for every request, after it is recorded (e.g. to switch mode). */
  onCall: ((call: ManagerCall) => void) | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly arrived = new Signal();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listens (on the previous port when restarted). */
  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops listening and cuts every connection: calls are refused until start(). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Resolves with the calls once `n` have arrived (counted in `calls`, which a test may reset). */
  called(n: number, ms = 5000): Promise<ManagerCall[]> {
    return this.arrived.until(
      () => this.calls.length >= n && this.calls,
      () => `${n} manager call(s) (${this.calls.length} arrived)`,
      ms,
    );
  }

  /** The first call (arrived or arriving) for the ip. */
  callFor(ip: string, ms = 5000): Promise<ManagerCall> {
    return this.arrived.until(
      () => this.calls.find((c) => c.ip === ip),
      () => `a manager call for ${ip} (calls for: ${this.calls.map((c) => c.ip).join(', ')})`,
      ms,
    );
  }

  /** Calls per idempotency key. */
  keys(): string[] {
    return this.calls.map((c) => c.key ?? '');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const parsed = new URL(req.url ?? '/', 'http://x');
    const key = req.headers['idempotency-key'];
    const call: ManagerCall = {
      url: req.url ?? '',
      path: parsed.pathname,
      ip: parsed.searchParams.get('ip'),
      key: Array.isArray(key) ? key[0] : key,
      at: Date.now(),
    };
    this.calls.push(call);
    const mode = this.mode;
    this.onCall?.(call);
    if (mode.kind !== 'blackhole') {
      res.writeHead(mode.status, mode.headers ?? {});
      res.end(mode.body ?? '');
    }
    this.arrived.notify();
  }
}

/** A port nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const m = await new FakeManager().start();
  const port = m.port;
  await m.stop();
  return port;
}
