// A local service manager for the benchmark: answers GET /api/exec?ip= with 200 and counts the
// calls. GET /stats -> {"calls":N}. POST /down makes it answer 503 (an outage), POST /up ends it.
//   node bench/manager.mjs <port>
import { createServer } from 'node:http';

let calls = 0;
let down = false;
const server = createServer((req, res) => {
  const url = req.url ?? '';
  if (url.startsWith('/api/exec')) {
    if (down) {
      res.writeHead(503).end();
      return;
    }
    calls++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  } else if (url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ calls }));
  } else if (url === '/down' || url === '/up') {
    down = url === '/down';
    res.writeHead(204).end();
  } else {
    res.writeHead(404).end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log('manager listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
