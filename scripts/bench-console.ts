// Console data API at 100 000 devices (SQLite, temp file): median/max latency of device pages,
// searches, sorts, /ztp/mng/stats and /metrics. Prints numbers; asserts nothing.
// Usage: npx tsx scripts/bench-console.ts
import { startConsoleServer } from '../test/console/fixture.js';
const server = await startConsoleServer();
const N = 100_000;
let t0 = performance.now();
for (let b = 0; b < N; b += 2000) {
  await Promise.all(
    Array.from({ length: 2000 }, (_, k) => {
      const i = b + k;
      return server.store.register(
        {
          id: `dev-${String(i).padStart(6, '0')}`,
          ip: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
          name: `sw-${i % 97}-${i}`,
          userdata: '',
          source: '192.0.2.1',
          at: Date.now() - i * 1000,
        },
        { enqueueTrigger: true, historyLimit: 20 },
      );
    }),
  );
}
console.log(`seeded ${N} in ${Math.round(performance.now() - t0)} ms`);
for (const q of [
  'limit=50',
  'limit=50&offset=99950',
  'sort=lastSeen&order=desc&limit=50',
  'sort=name&limit=50&offset=50000',
  'search=sw-42-&limit=50',
  'search=10.1.2&limit=50',
  'search=nomatch&limit=50',
]) {
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    t0 = performance.now();
    const res = await fetch(`${server.url}/ztp/mng/devices?${q}`);
    await res.json();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`${q.padEnd(36)} median ${times[2]!.toFixed(1)} ms  max ${times[4]!.toFixed(1)} ms`);
}
for (const p of ['/ztp/mng/stats', '/metrics']) {
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    t0 = performance.now();
    await (await fetch(server.url + p)).text();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`${p.padEnd(36)} median ${times[2]!.toFixed(1)} ms`);
}
await server.close();
