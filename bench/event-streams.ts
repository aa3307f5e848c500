/**
 * Slow event-stream consumers benchmark: a real `ztp serve` process with S open
 * `GET /ztp/mng/events` streams whose clients never read, while N devices register (C at a time)
 * and a local manager takes the triggers.
 *
 * Prints the time of the N registrations, their latency (p50/p99/max), the slowest of the
 * `GET /metrics` probes sent every 100 ms during the run, the server's peak RSS, and how many
 * streams the server dropped. Run it with `--streams 0` for the figures without slow consumers.
 *
 *   npm run bench:events -- [--streams 64] [--devices 8000] [--concurrency 32]
 *                           [--profile <dir>] [-- <ztp serve flags>]
 *
 * `--profile` runs the server with `node --cpu-prof` and leaves the profile in <dir>.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { freePort, rssOf, sampleRss, startProc } from './lib.js';

const { values, positionals } = parseArgs({
  options: {
    streams: { type: 'string', default: '64' },
    devices: { type: 'string', default: '8000' },
    concurrency: { type: 'string', default: '32' },
    profile: { type: 'string' },
  },
  allowPositionals: true,
});
const S = Number(values.streams);
const N = Number(values.devices);
const C = Number(values.concurrency);

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (n: number) => `${n.toFixed(0)} ms`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-events-'));
  const manager = createServer((_req, res) => res.end('{"ok":true}'));
  manager.listen(0, '127.0.0.1');
  await once(manager, 'listening');
  const managerPort = (manager.address() as AddressInfo).port;
  const port = await freePort();
  const nodeArgs = values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : [];
  const server = await startProc(
    [
      ...nodeArgs,
      'bin/ztp.mjs',
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--database',
      join(dir, 'ztp.db'),
      '--manager-url',
      `http://127.0.0.1:${managerPort}`,
      '--log-level',
      'error',
      ...positionals,
    ],
    port,
    join(dir, 'server.log'),
  );
  const sockets: Socket[] = [];
  const agent = new Agent({ connections: C + 1, keepAliveTimeout: 10_000 });
  try {
    // Clients that send the request and never read: the kernel's buffers fill, then the server's.
    for (let i = 0; i < S; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      socket.pause();
      socket.write('GET /ztp/mng/events HTTP/1.1\r\nHost: bench\r\n\r\n');
      sockets.push(socket);
    }
    const streamsOpen = async () => {
      const res = await request(`${server.url}/ztp/mng/stats`, { dispatcher: agent });
      return ((await res.body.json()) as { eventStreams: number }).eventStreams;
    };
    while ((await streamsOpen()) < S) await new Promise((r) => setTimeout(r, 20));

    const metricsProbes: number[] = [];
    const probing = { on: true };
    const probe = (async () => {
      while (probing.on) {
        const t = performance.now();
        const res = await request(`${server.url}/metrics`, { dispatcher: agent });
        await res.body.text();
        metricsProbes.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const rss = sampleRss(server.pid);

    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const t = performance.now();
        const res = await request(`${server.url}/ztp/register/bench-${i}`, {
          method: 'PUT',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ip: `10.1.${(i >> 8) & 255}.${i & 255}`, name: `device ${i}` }),
        });
        await res.body.text();
        if (res.statusCode !== 201) throw new Error(`registration answered ${res.statusCode}`);
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: C }, worker));
    const elapsed = performance.now() - started;
    probing.on = false;
    await probe;
    const peakRss = rss.stop();

    const metrics = await (
      await request(`${server.url}/metrics`, { dispatcher: agent })
    ).body.text();
    const dropped = /^ztp_event_streams_dropped_total (\d+)/m.exec(metrics)?.[1] ?? '?';
    latencies.sort((a, b) => a - b);
    metricsProbes.sort((a, b) => a - b);
    console.log(
      `${S} non-reading streams, ${N} registrations (${C} concurrent): ${ms(elapsed)} ` +
        `(${((N / elapsed) * 1000).toFixed(0)}/s); latency p50 ${ms(pct(latencies, 50))}, ` +
        `p99 ${ms(pct(latencies, 99))}, max ${ms(latencies.at(-1) ?? NaN)}; ` +
        `/metrics max ${ms(metricsProbes.at(-1) ?? NaN)} of ${metricsProbes.length}; ` +
        `streams dropped ${dropped}; server peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB ` +
        `(now ${(rssOf(server.pid) / 2 ** 20).toFixed(0)} MiB)`,
    );
  } finally {
    for (const s of sockets) s.destroy();
    await agent.close();
    await server.stop();
    manager.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
