// The bare node:http baseline the ratios are measured against: no framework, no
// validation, no logging, no history, no triggers. Same SQLite file, same pragmas as ztp
// (WAL, synchronous=FULL), same URLs, so the ratio is what the real server costs on top.
//   node bench/baseline.mjs <db> <port> <mode>
// mode: lookup  GET /ztp/check/{id} -> one SELECT
//       each    PUT /ztp/register/{id} -> one upsert, one COMMIT (fsync) per request, answer after it
//       group   PUT /ztp/register/{id} -> upserts of one event-loop turn in one COMMIT, answer after it
import Database from 'better-sqlite3';
import { createServer } from 'node:http';

const [path, portArg, mode] = process.argv.slice(2);
if (!path || !portArg || !['lookup', 'each', 'group'].includes(mode ?? '')) {
  console.error('usage: baseline.mjs <db> <port> <lookup|each|group>');
  process.exit(2);
}
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');

const get = db.prepare('SELECT id, ip, name, userdata FROM devices WHERE id = ?');
const upsert = db.prepare(
  `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
   VALUES (@id, @ip, @name, @userdata, @at, @at, @at, 1, '')
   ON CONFLICT (id) DO UPDATE SET ip = excluded.ip, name = excluded.name, userdata = excluded.userdata,
     last_seen = excluded.last_seen, updated_at = excluded.updated_at, registrations = registrations + 1`,
);
const begin = db.prepare('BEGIN IMMEDIATE');
const commit = db.prepare('COMMIT');

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(body);
}

function record(id, body) {
  const b = body.length > 0 ? JSON.parse(body) : {};
  return { id, ip: b.ip ?? '', name: b.name ?? '', userdata: b.userdata ?? '', at: Date.now() };
}

let queue = [];
function flush() {
  const batch = queue;
  queue = [];
  begin.run();
  for (const item of batch) upsert.run(item.rec);
  commit.run();
  for (const item of batch) send(item.res, 200, JSON.stringify(item.rec));
}

const server = createServer((req, res) => {
  const url = req.url ?? '';
  if (mode === 'lookup') {
    const row = get.get(decodeURIComponent(url.slice('/ztp/check/'.length)));
    if (row) send(res, 200, JSON.stringify(row));
    else send(res, 404, '{"code":"device_not_found"}');
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const rec = record(decodeURIComponent(url.slice('/ztp/register/'.length)), body);
    if (mode === 'each') {
      begin.run();
      upsert.run(rec);
      commit.run();
      send(res, 200, JSON.stringify(rec));
    } else {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ rec, res });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(portArg), '127.0.0.1', () => console.log('baseline listening'));
process.on('SIGTERM', () => server.close(() => (db.close(), process.exit(0))));
