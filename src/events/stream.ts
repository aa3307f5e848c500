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
 * - Memory per client is bounded: what the socket has not taken yet stays in Node's writable
 *   buffer, and a client whose buffer exceeds `clientBufferBytes` is dropped (its connection is
 *   destroyed; it may reconnect and resume).
 * - At most `maxClients` streams are open at once; a comment line (`: ping`) every
 *   `heartbeatMs` keeps proxies from closing idle streams and detects dead peers.
 * - One bus listener for all clients, removed by close().
 */
import type { ServerResponse } from 'node:http';
import { iso, triggerView } from '../http/schemas.js';
import type { Device, Trigger } from '../storage/store.js';
import type { EventBus, RegistryEvent } from './bus.js';

export interface StreamLimits {
  /** Events kept for Last-Event-ID resume. */
  ringSize: number;
  /** Concurrent streams. */
  maxClients: number;
  /** Unsent bytes allowed per client before it is dropped. */
  clientBufferBytes: number;
  /** Interval of the `: ping` comment. */
  heartbeatMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  ringSize: 1024,
  maxClients: 64,
  clientBufferBytes: 1024 * 1024,
  heartbeatMs: 15_000,
};

/** Device as carried by events: the record without userdata (which may be 64 KiB). */
export interface DeviceEventData {
  id: string;
  ip: string;
  name: string;
  firstSeen: string;
  lastSeen: string;
  registrations: number;
  lastSource: string;
}

export interface TriggerEventData {
  id: number;
  deviceId: string;
  ip: string;
  state: Trigger['state'];
  attempts: number;
  createdAt: string;
  lastError: string | null;
  deliveredAt: string | null;
}

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

export class TooManyStreamsError extends Error {
  constructor(readonly limit: number) {
    super(`too many event streams are open (limit ${limit})`);
  }
}

/** A device without its userdata (up to 64 KiB): for events and the console's table rows. */
export function deviceSummary(d: Device): DeviceEventData {
  return {
    id: d.id,
    ip: d.ip,
    name: d.name,
    firstSeen: iso(d.firstSeen),
    lastSeen: iso(d.lastSeen),
    registrations: d.registrations,
    lastSource: d.lastSource,
  };
}

function triggerData(t: Trigger): TriggerEventData {
  // The API's trigger view without its time-dependent members (an event is a fact, replayed later).
  const { nextAttemptAt: _next, inFlight: _inFlight, ...data } = triggerView(t);
  return data;
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
      return { trigger: triggerData(e.trigger) };
  }
}

export class EventStreamHub {
  readonly limits: StreamLimits;
  private readonly ring: (Frame | undefined)[];
  private ringStart = 0;
  private ringLength = 0;
  private nextId: number;
  private readonly clients = new Set<ServerResponse>();
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
        e.type === 'trigger' ? e : { ...e, device: { ...e.device, userdata: '' } };
      this.publish(e.type, () => eventPayload(lean));
    });
  }

  get clientCount(): number {
    return this.clients.size;
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
      const text = frame.text;
      for (const client of this.clients) this.write(client, text);
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
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    this.write(res, `retry: 3000\n: connected; last id ${this.lastId}\n\n`);
    if (lastEventId !== undefined) this.replay(res, lastEventId);
    this.heartbeat ??= setInterval(() => this.ping(), this.limits.heartbeatMs).unref();
  }

  /** Ends every stream and stops listening to the bus. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private replay(res: ServerResponse, raw: string): void {
    const size = this.limits.ringSize;
    const oldest = this.ringLength > 0 ? this.ring[this.ringStart]!.id : this.nextId;
    const after = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!(after >= oldest - 1 && after <= this.lastId)) {
      const reason = Number.isNaN(after) ? 'unknown event id' : 'events were missed';
      this.write(res, `id: ${this.lastId}\nevent: resync\ndata: ${JSON.stringify({ reason })}\n\n`);
      return;
    }
    for (let i = 0; i < this.ringLength; i++) {
      const frame = this.ring[(this.ringStart + i) % size]!;
      if (frame.id > after) this.write(res, frame.text);
    }
  }

  private ping(): void {
    for (const client of this.clients) this.write(client, ': ping\n\n');
    if (this.clients.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  private write(res: ServerResponse, text: string): void {
    if (res.destroyed || res.writableEnded) return;
    if (res.writableLength > this.limits.clientBufferBytes) {
      // The peer does not keep up: drop it rather than buffer without bound.
      this.dropped++;
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(text);
  }
}
