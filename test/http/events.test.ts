/** GET /ztp/mng/events: Server-Sent Events over a real socket — ids, resume, limits, slow readers. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { EventBus } from '../../src/events/bus.js';
import { EventStreamHub } from '../../src/events/stream.js';
import { startConsoleServer, type ConsoleServer } from '../console/fixture.js';
import { eventually, TEST_ADMIN } from '../helpers.js';

interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

interface Stream {
  res: IncomingMessage;
  events: SseEvent[];
  comments: string[];
  closed: Promise<void>;
  close(): void;
}

/** Opens an SSE stream and parses it as it arrives. */
function openStream(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/ztp/mng/events`, { headers }, (res) => {
      const stream: Stream = {
        res,
        events: [],
        comments: [],
        closed: new Promise((r) => res.on('close', () => r())),
        close: () => req.destroy(),
      };
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const e: SseEvent = { id: undefined, event: 'message', data: '' };
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) e.id = line.slice(4);
            else if (line.startsWith('event: ')) e.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              e.data = line.slice(6);
              hasData = true;
            }
          }
          if (hasData) stream.events.push(e);
        }
      });
      res.on('error', () => undefined);
      resolve(stream);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The number an event of the fake stream carries (`data: N`). */
function eventNumber(frame: string): number {
  return Number(/^data: (\d+)$/m.exec(frame)?.[1]);
}

async function register(url: string, id: string, body: Record<string, string> = {}) {
  const res = await fetch(`${url}/ztp/register/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ip: '10.0.0.1', ...body }),
  });
  assert.ok(res.ok, `register ${id}: ${res.status}`);
}

describe('live events (SSE)', () => {
  let server: ConsoleServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('streams registered, trigger, edited and deleted events with increasing ids', async () => {
    server = await startConsoleServer();
    const s = await openStream(server.url);
    assert.equal(s.res.statusCode, 200);
    assert.match(s.res.headers['content-type'] ?? '', /^text\/event-stream/);
    await register(server.url, 'AA-BB-CC-00-00-01', { name: 'first' });
    await server.service.edit(
      'aa:bb:cc:00:00:01',
      { ip: '10.0.0.2', name: 'x', userdata: 'u' },
      TEST_ADMIN,
    );
    await server.service.delete('aa:bb:cc:00:00:01', TEST_ADMIN);
    await eventually(() => s.events.length >= 4, 3000, 'four events');
    assert.deepEqual(
      s.events.map((e) => e.event),
      ['registered', 'trigger', 'edited', 'deleted'],
    );
    const ids = s.events.map((e) => Number(e.id));
    assert.ok(
      ids.every((id, i) => i === 0 || id > ids[i - 1]!),
      `ids increase: ${ids.join()}`,
    );
    const registered = JSON.parse(s.events[0]!.data) as Record<string, unknown>;
    assert.deepEqual(registered.created, true);
    assert.equal((registered.device as { id: string; name: string }).id, 'aa:bb:cc:00:00:01');
    const trigger = JSON.parse(s.events[1]!.data) as { trigger: { state: string } };
    assert.equal(trigger.trigger.state, 'pending');
    // Events carry the record without its (possibly large) userdata.
    assert.equal('userdata' in (JSON.parse(s.events[2]!.data) as { device: object }).device, false);
    s.close();
  });

  it('a reconnect with Last-Event-ID gets exactly the events it missed, in order', async () => {
    server = await startConsoleServer();
    const first = await openStream(server.url);
    await register(server.url, 'dev-1');
    await eventually(() => first.events.length === 2, 3000, 'registered + trigger');
    const lastSeen = first.events.at(-1)!.id!;
    first.close();
    await first.closed;

    await register(server.url, 'dev-2');
    await register(server.url, 'dev-3');
    const second = await openStream(server.url, { 'last-event-id': lastSeen });
    await eventually(() => second.events.length >= 4, 3000, 'four replayed events');
    await register(server.url, 'dev-4');
    await eventually(() => second.events.length >= 6, 3000, 'two live events');
    const devices = second.events
      .filter((e) => e.event === 'registered')
      .map((e) => (JSON.parse(e.data) as { device: { id: string } }).device.id);
    assert.deepEqual(devices, ['dev-2', 'dev-3', 'dev-4']);
    const ids = second.events.map((e) => Number(e.id));
    assert.ok(ids[0]! > Number(lastSeen));
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
    second.close();

    // Up to date: nothing is replayed.
    const third = await openStream(server.url, { 'last-event-id': second.events.at(-1)!.id! });
    await eventually(() => third.comments.some((c) => c.startsWith('connected')), 3000, 'hello');
    assert.deepEqual(third.events, []);
    third.close();
  });

  it('sends resync when the Last-Event-ID is no longer in the buffer or unknown', async () => {
    server = await startConsoleServer({ streamLimits: { ringSize: 4 } });
    const s = await openStream(server.url);
    for (let i = 0; i < 5; i++) await register(server.url, `dev-${i}`);
    await eventually(() => s.events.length === 10, 3000, 'ten events');
    s.close();
    // The ring holds the last 4 events: resuming after the 2nd is impossible, after the 6th is fine.
    const old = await openStream(server.url, { 'last-event-id': s.events[1]!.id! });
    await eventually(() => old.events.length > 0, 3000, 'resync');
    assert.deepEqual(
      old.events.map((e) => e.event),
      ['resync'],
    );
    old.close();
    const recent = await openStream(server.url, { 'last-event-id': s.events[5]!.id! });
    await eventually(() => recent.events.length === 4, 3000, 'replay of four');
    assert.deepEqual(
      recent.events.map((e) => e.id),
      s.events.slice(6).map((e) => e.id),
    );
    recent.close();
    for (const bad of ['not-a-number', '1']) {
      const b = await openStream(server.url, { 'last-event-id': bad });
      await eventually(() => b.events.length > 0, 3000, 'resync');
      assert.equal(b.events[0]!.event, 'resync');
      b.close();
    }
  });

  it('keeps little for clients that never read, drops them, and keeps answering registrations', async (t) => {
    server = await startConsoleServer({ streamLimits: { ringSize: 8 } });
    const port = Number(new URL(server.url).port);
    const fast = await openStream(server.url);
    // Raw clients that send the request and then never read.
    const slow = Array.from({ length: 4 }, () => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('GET /ztp/mng/events HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.pause();
      return socket;
    });
    const slowClosed = slow.map((s) => new Promise<void>((r) => s.on('close', () => r())));
    const hub = server.operator.hub;
    await eventually(() => hub.clientCount === 5, 3000, 'five clients');

    const device = {
      id: 'big',
      ip: '10.0.0.1',
      name: 'n'.repeat(16 * 1024),
      userdata: '',
      firstSeen: 0,
      lastSeen: 0,
      updatedAt: 0,
      registrations: 1,
      lastSource: '',
      pinned: { name: false, userdata: false },
      reported: { name: null, userdata: null },
    };
    let sent = 0;
    let mostUnsent = 0;
    // Kernel socket buffers absorb a few MB first; 64 MB is far beyond them.
    for (let round = 0; round < 2000 && hub.dropped < slow.length; round++) {
      for (let i = 0; i < 2; i++) server.events.emit({ type: 'edited', device });
      sent += 2;
      mostUnsent = Math.max(mostUnsent, hub.unsentBytes);
      await eventually(() => fast.events.length === sent, 5000, 'fast reader keeps up');
    }
    t.diagnostic(`slow clients dropped after ${sent} events of 16 KiB; most unsent ${mostUnsent}`);
    assert.equal(hub.dropped, slow.length, 'every client that does not read is dropped');
    assert.equal(hub.clientCount, 1);
    // Per stream at most the socket's high-water mark (16 KiB) and the event that crossed it,
    // not a backlog (which used to grow to 1 MiB per stream before the drop).
    assert.ok(mostUnsent <= 5 * 48 * 1024, `unsent bytes stay small: ${mostUnsent}`);
    // Once they read again they find their connections closed by the server.
    for (const socket of slow) socket.resume();
    await Promise.all(slowClosed);

    for (let i = 0; i < 20; i++) await register(server.url, `dev-${i}`);
    await eventually(
      () => fast.events.filter((e) => e.event === 'registered').length === 20,
      3000,
      'the reading client sees every registration',
    );
    fast.close();
  });

  it('skips a client whose socket pushes back, catches it up on drain, drops it past the ring', () => {
    /** A response whose socket pushes back while `full` is set. */
    class FakeResponse extends EventEmitter {
      full = false;
      destroyed = false;
      writableEnded = false;
      writableLength = 0;
      readonly written: string[] = [];
      writeHead() {
        return this;
      }
      write(text: string): boolean {
        this.written.push(text);
        return !this.full;
      }
      end() {
        this.writableEnded = true;
      }
      destroy() {
        this.destroyed = true;
        this.emit('close');
      }
    }
    const hub = new EventStreamHub(new EventBus(), { ringSize: 4 }, () => 1);
    const res = new FakeResponse();
    hub.attach(res as unknown as ServerResponse, undefined);
    const eventsWritten = () => res.written.filter((w) => w.includes('event: n')).map(eventNumber);
    hub.publish('n', 1);
    res.full = true;
    hub.publish('n', 2); // written; its socket is now full
    hub.publish('n', 3);
    hub.publish('n', 4);
    assert.deepEqual(eventsWritten(), [1, 2], 'nothing is written while the socket pushes back');
    res.full = false;
    res.emit('drain');
    assert.deepEqual(eventsWritten(), [1, 2, 3, 4], 'caught up from the ring, in order');

    res.full = true;
    hub.publish('n', 5);
    for (let n = 6; n <= 9; n++) hub.publish('n', n); // the ring still holds 6..9
    assert.equal(hub.dropped, 0);
    hub.publish('n', 10); // 6 leaves the ring: the client can no longer be caught up
    assert.equal(hub.dropped, 1);
    assert.equal(res.destroyed, true);
    assert.equal(hub.clientCount, 0);
    assert.deepEqual(eventsWritten(), [1, 2, 3, 4, 5]);
    hub.close();
  });

  it('caps concurrent streams (429) and frees the slot when a client leaves; no listener leaks', async () => {
    server = await startConsoleServer({ streamLimits: { maxClients: 2 } });
    const listeners = server.events.listenerCount();
    const a = await openStream(server.url);
    const b = await openStream(server.url);
    const refused = await fetch(`${server.url}/ztp/mng/events`);
    assert.equal(refused.status, 429);
    assert.equal(((await refused.json()) as { code: string }).code, 'rate_limited');
    assert.ok(refused.headers.get('retry-after'));
    a.close();
    await eventually(() => server!.operator.hub.clientCount === 1, 3000, 'slot freed');
    const c = await openStream(server.url);
    assert.equal(c.res.statusCode, 200);
    for (let i = 0; i < 20; i++) {
      const s = await openStream(server.url, {});
      s.close();
      await s.closed;
    }
    await eventually(() => server!.operator.hub.clientCount === 2, 3000, 'b and c remain');
    assert.equal(server.events.listenerCount(), listeners, 'one bus listener for all streams');
    // Closing the app ends open streams instead of waiting for them forever.
    await server.close();
    server = undefined;
    await b.closed;
    await c.closed;
  });

  it('sends heartbeat comments on idle streams', async () => {
    server = await startConsoleServer({ streamLimits: { heartbeatMs: 50 } });
    const s = await openStream(server.url);
    await eventually(() => s.comments.includes('ping'), 3000, 'a ping comment');
    s.close();
  });
});
