/**
 * Server-Sent Events fan-out of the EventBus (GET /ztp/mng/events).
 *
 * - Every event gets an id, increasing for the life of the process and across restarts: the
 *   first id of a process is its start time in milliseconds times 1000, so an id from an earlier
 *   process is always lower than the new process's ids.
 * - The last `ringSize` events are kept in a ring buffer. A client that reconnects with
 *   `Last-Event-ID: N` gets every event after N when N is still covered by the ring; when it is
 *   not (too old, from another process or replica, or unparsable) it gets one `resync` event:
 *   some events are lost, reload the state.
 * - A slow client costs O(1) per event and at most one socket high-water mark (16 KiB) of
 *   memory: once a write reports backpressure the client is marked lagging and skipped; when its
 *   socket drains it is caught up from the ring. A lagging client that falls more than the ring
 *   behind can no longer be caught up and is dropped (its connection is destroyed; it may
 *   reconnect and gets `resync`). Writing on regardless, as before, let a non-reading client's
 *   buffer grow to thousands of pending writes, each costing a writev entry per flush and an
 *   Error object when the connection was finally destroyed: seconds of a blocked event loop.
 * - At most `maxClients` streams are open at once; a comment line (`: ping`) every
 *   `heartbeatMs` keeps proxies from closing idle streams and detects dead peers.
 * - One bus listener for all clients, removed by close().
 */
import type { ServerResponse } from 'node:http';
import { ZtpError } from '../errors.js';
import type { EventBus, RegistryEvent } from './bus.js';
import { deviceSummary, reportEventData, triggerEventData } from './wire.js';

export interface StreamLimits {
  /** Events kept for Last-Event-ID resume. */
  ringSize: number;
  /** Concurrent streams. */
  maxClients: number;
  /** Interval of the `: ping` comment. */
  heartbeatMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  ringSize: 1024,
  maxClients: 64,
  heartbeatMs: 15_000,
};

/**
 * One event of the ring. Its wire text is built on first use (a client to send it to, or a
 * resume): with no stream open, nothing is serialised.
 */
class Frame {
  private serialised: string | undefined;

  constructor(
    readonly id: number,
    private readonly type: string,
    private data: unknown,
  ) {}

  get text(): string {
    if (this.serialised === undefined) {
      const data = typeof this.data === 'function' ? (this.data as () => unknown)() : this.data;
      this.serialised = `id: ${this.id}\nevent: ${this.type}\ndata: ${JSON.stringify(data)}\n\n`;
      this.data = undefined;
    }
    return this.serialised;
  }
}

export class TooManyStreamsError extends ZtpError {
  constructor(readonly limit: number) {
    super('rate_limited', `too many event streams are open (limit ${limit})`, {
      retryAfter: 5,
    });
  }
}

/** One open stream. */
interface Client {
  res: ServerResponse;
  /** Id of the last event written to it. */
  lastSentId: number;
  /** Its socket reported backpressure: nothing is written until it drains. */
  lagging: boolean;
}

/** The `data:` payload of one event. */
export function eventPayload(e: RegistryEvent): Record<string, unknown> {
  switch (e.type) {
    case 'registered':
      return { device: deviceSummary(e.device), created: e.created };
    case 'edited':
    case 'deleted':
      return { device: deviceSummary(e.device) };
    case 'trigger':
      return { trigger: triggerEventData(e.trigger) };
    case 'report':
      return { report: reportEventData(e.report) };
  }
}

export class EventStreamHub {
  readonly limits: StreamLimits;
  private readonly ring: (Frame | undefined)[];
  private ringStart = 0;
  private ringLength = 0;
  private nextId: number;
  private readonly clients = new Set<Client>();
  private readonly unsubscribe: () => void;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  /** Streams dropped because they did not keep up. */
  dropped = 0;

  constructor(bus: EventBus, limits: Partial<StreamLimits> = {}, now: () => number = Date.now) {
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...limits };
    this.ring = new Array<Frame | undefined>(this.limits.ringSize);
    this.nextId = now() * 1000;
    // The ring keeps the event without userdata (up to 64 KiB each); its payload (ISO timestamps,
    // JSON) is built only when a stream needs it.
    this.unsubscribe = bus.subscribe((e) => {
      const lean: RegistryEvent =
        e.type === 'trigger' || e.type === 'report'
          ? e
          : { ...e, device: { ...e.device, userdata: '' } };
      this.publish(e.type, () => eventPayload(lean));
    });
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Bytes written to the open streams that their sockets have not sent yet. */
  get unsentBytes(): number {
    let bytes = 0;
    for (const client of this.clients) bytes += client.res.writableLength;
    return bytes;
  }

  /** False when a new stream would exceed the limit (or the hub is closed). */
  hasRoom(): boolean {
    return !this.closed && this.clients.size < this.limits.maxClients;
  }

  /** Id of the latest event sent (first id − 1 before any). */
  get lastId(): number {
    return this.nextId - 1;
  }

  /**
   * Sends one event to every client and keeps it for resume. `data` (or what the function
   * returns) must not change afterwards: it is serialised when first needed.
   */
  publish(type: string, data: unknown): void {
    if (this.closed) return;
    const id = this.nextId++;
    const frame = new Frame(id, type, data);
    const size = this.limits.ringSize;
    if (size > 0) {
      if (this.ringLength < size) {
        this.ring[(this.ringStart + this.ringLength) % size] = frame;
        this.ringLength++;
      } else {
        this.ring[this.ringStart] = frame;
        this.ringStart = (this.ringStart + 1) % size;
      }
    }
    if (this.clients.size > 0) {
      const text = frame.text; // serialised once for every client
      for (const client of this.clients) {
        if (!client.lagging) this.send(client, text, id);
        else if (!this.canCatchUp(client)) this.drop(client);
      }
    }
  }

  /**
   * Starts a stream on `res` (headers included), replaying after `lastEventId` when given.
   * Throws TooManyStreamsError at the limit (before anything is written).
   */
  attach(res: ServerResponse, lastEventId: string | undefined): void {
    if (!this.hasRoom()) {
      throw new TooManyStreamsError(this.limits.maxClients);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    const client: Client = { res, lastSentId: this.lastId, lagging: false };
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
    res.on('drain', () => this.catchUp(client));
    this.send(client, `retry: 3000\n: connected; last id ${this.lastId}\n\n`, this.lastId);
    if (lastEventId !== undefined) this.replay(client, lastEventId);
    this.heartbeat ??= setInterval(() => this.ping(), this.limits.heartbeatMs).unref();
  }

  /** Ends every stream and stops listening to the bus. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const client of this.clients) client.res.end();
    this.clients.clear();
  }

  /** Id of the oldest event in the ring (the next id when it is empty). */
  private get oldestId(): number {
    return this.ringLength > 0 ? this.ring[this.ringStart]!.id : this.nextId;
  }

  private replay(client: Client, raw: string): void {
    const after = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!(after >= this.oldestId - 1 && after <= this.lastId)) {
      const reason = Number.isNaN(after) ? 'unknown event id' : 'events were missed';
      const resync = `id: ${this.lastId}\nevent: resync\ndata: ${JSON.stringify({ reason })}\n\n`;
      this.send(client, resync, this.lastId);
      return;
    }
    client.lastSentId = after;
    this.catchUp(client);
  }

  /** The events a lagging client has not been sent are all still in the ring. */
  private canCatchUp(client: Client): boolean {
    return client.lastSentId >= this.oldestId - 1;
  }

  /** Sends what a client missed from the ring, until its socket pushes back again. */
  private catchUp(client: Client): void {
    if (!this.clients.has(client)) return;
    client.lagging = false;
    if (!this.canCatchUp(client)) {
      this.drop(client);
      return;
    }
    const size = this.limits.ringSize;
    // Ids are consecutive: the next event's ring slot follows from its distance to the oldest.
    for (let id = client.lastSentId + 1; id <= this.lastId; id++) {
      const frame = this.ring[(this.ringStart + (id - this.oldestId)) % size]!;
      if (!this.send(client, frame.text, id)) return;
    }
  }

  private ping(): void {
    for (const client of this.clients) {
      if (!client.lagging) this.send(client, ': ping\n\n', client.lastSentId);
    }
    if (this.clients.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  /**
   * Writes to a client; a write that reports backpressure makes it lagging until 'drain'.
   * Returns whether the client takes more now.
   */
  private send(client: Client, text: string, id: number): boolean {
    const { res } = client;
    if (res.destroyed || res.writableEnded) return false;
    client.lastSentId = id;
    if (!res.write(text)) client.lagging = true;
    return !client.lagging;
  }

  /** The client fell too far behind to be caught up: close it (it may resume or resync). */
  private drop(client: Client): void {
    this.dropped++;
    this.clients.delete(client);
    client.res.destroy();
  }
}
