// The bare node:http baselines the ratios are measured against. Same SQLite file, same
// pragmas as ztp's defaults (WAL, synchronous=FULL), same URLs, so a ratio is what the real
// server costs on top of the least code that does the same work.
//   node bench/baseline.mjs <db> <port> <mode> [<manager url>]
// mode: lookup  GET /ztp/check/{id} -> one SELECT
//       each    PUT /ztp/register/{id} -> one upsert, one COMMIT (fsync) per request, answer after it
//       group   PUT /ztp/register/{id} -> upserts of one event-loop turn in one COMMIT, answer after it
//       equal   PUT /ztp/register/{id} -> everything a registration with a manager must do (below)
//
// equal, the equal-work baseline: the statements of ztp's SQLite register path (the register
// step of src/devices/store-sqlite.ts and the enqueue step of src/triggers/outbox-sqlite.ts), in the same order and with the same rows, so that only
// what ztp adds around them (framework, validation, logging, events, failure isolation) is left
// in the ratio. Per registration, group-committed with every write of the same event-loop turn:
//   - device update (or insert when new), RETURNING the row;
//   - history row, history trimmed to HISTORY_LIMIT (ztp's default);
//   - outbox: a waiting trigger of the device is coalesced, else a trigger row is inserted, leased
//     to this process as ztp's hand-over does (unless an older one of the device is pending),
//     linked to the device's previous trigger (prev_id), and the device to it (last_trigger_id);
//   - after COMMIT: the answer (201 new, 200 known), then GET {manager}/api/exec?ip= with its
//     Idempotency-Key over a keep-alive agent; a 2xx queues the delivered mark, which joins the
//     next batch (waiting up to MARK_WAIT_MS for one, as ztp's lazy outcome writes do).
// Left out, as not the work of a registration that succeeds: ztp's retries (a failed call stays
// pending here), claims of triggers queued behind an in-flight one, per-write SAVEPOINTs, and
// ztp's own speed-ups (fsync off the event loop, calls on a worker thread, checkpoints on a
// thread): the baseline is the plain way to do the work.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { Agent, createServer, get as httpGet } from 'node:http';

const MODES = ['lookup', 'each', 'group', 'equal'];
const [path, portArg, mode, managerUrl] = process.argv.slice(2);
if (!path || !portArg || !MODES.includes(mode ?? '') || (mode === 'equal') !== !!managerUrl) {
  console.error(
    'usage: baseline.mjs <db> <port> <lookup|each|group> | <db> <port> equal <manager url>',
  );
  process.exit(2);
}
/** ztp's default --history-limit. */
const HISTORY_LIMIT = 20;
/** ztp's default --trigger-lease: the hand-over lease written with the trigger. */
const LEASE_MS = 60_000;
/** ztp's default --trigger-concurrency: keep-alive sockets to the manager. */
const MANAGER_SOCKETS = 64;
/** How long a delivered mark waits for a batch that a registration starts (ztp's lazy write). */
const MARK_WAIT_MS = 5;

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

const equal = mode === 'equal' ? equalWork(managerUrl) : undefined;

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
    } else if (equal) {
      equal.register(rec, req.socket.remoteAddress ?? '', res);
    } else {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ rec, res });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(portArg), '127.0.0.1', () => console.log('baseline listening'));
process.on('SIGTERM', () =>
  server.close(() => {
    const exit = () => (db.close(), process.exit(0));
    if (equal) equal.drain(exit);
    else exit();
  }),
);

/** The equal-work mode (see the top of this file): its statements, batches and manager calls. */
function equalWork(manager) {
  // The statements below are ztp's (src/devices/store-sqlite.ts, src/triggers/outbox-sqlite.ts),
  // less what only other paths use.
  const updateDevice = db.prepare(
    `UPDATE devices SET ip = @ip, name = @name, userdata = @userdata, last_seen = @at, updated_at = @at,
       registrations = registrations + 1, last_source = @source WHERE id = @id RETURNING *`,
  );
  const insertDevice = db.prepare(
    `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
     VALUES (@id, @ip, @name, @userdata, @at, @at, @at, 1, @source) RETURNING *`,
  );
  const insertHistory = db.prepare(
    'INSERT OR REPLACE INTO history (device_id, seq, at, ip, source) VALUES (?, ?, ?, ?, ?)',
  );
  const trimHistory = db.prepare('DELETE FROM history WHERE device_id = ? AND seq <= ?');
  const coalesceTrigger = db.prepare(
    `UPDATE triggers SET ip = @ip, key = @key, attempts = 0, created_at = @at, next_attempt_at = @at,
       last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = @at,
       prev_id = CASE WHEN id IS @prevId THEN prev_id ELSE @prevId END
     WHERE id = (SELECT id FROM triggers INDEXED BY triggers_device_pending
                 WHERE device_id = @deviceId AND state = 'pending'
                   AND (lease_until IS NULL OR lease_until < @at) ORDER BY id DESC LIMIT 1)
     RETURNING *`,
  );
  const devicePending = db.prepare(
    `SELECT 1 AS one FROM triggers INDEXED BY triggers_device_pending
     WHERE device_id = ? AND state = 'pending' LIMIT 1`,
  );
  const insertTrigger = db.prepare(
    `INSERT INTO triggers (device_id, ip, key, state, attempts, created_at, next_attempt_at, updated_at, prev_id,
       lease_until, lease_token)
     VALUES (@deviceId, @ip, @key, 'pending', @attempts, @at, @at, @at, @prevId, @leaseUntil, @leaseToken)
     RETURNING *`,
  );
  const setLastTrigger = db.prepare('UPDATE devices SET last_trigger_id = ? WHERE id = ?');
  const markDelivered = db.prepare(
    `UPDATE triggers SET state = 'delivered', next_attempt_at = @nextAttemptAt, last_error = NULL,
       delivered_at = @at, lease_until = NULL, lease_token = NULL, updated_at = @at
     WHERE id = @id AND lease_token = @token`,
  );

  const base = new URL(manager);
  const agent = new Agent({ keepAlive: true, maxSockets: MANAGER_SOCKETS });

  /** Registrations and delivered marks of the next batch, in arrival order. */
  let writes = [];
  /** Manager calls not answered yet, and what to do once there are none (drain). */
  let callsInFlight = 0;
  let drained;
  let flushScheduled = false;
  let markTimer;

  function schedule(lazy) {
    if (flushScheduled) return;
    if (!lazy) {
      flushScheduled = true;
      setImmediate(flushBatch);
    } else {
      markTimer ??= setTimeout(flushBatch, MARK_WAIT_MS);
    }
  }

  function writeRegistration(w) {
    const { rec, source } = w;
    const params = { ...rec, ip: rec.ip || source, source };
    const updated = updateDevice.get(params);
    const row = updated ?? insertDevice.get(params);
    const count = row.registrations;
    insertHistory.run(rec.id, count, rec.at, params.ip, source);
    if (count > HISTORY_LIMIT) trimHistory.run(rec.id, count - HISTORY_LIMIT);
    const prevId = row.last_trigger_id ?? null;
    const p = { deviceId: rec.id, ip: params.ip, at: rec.at, key: randomUUID(), prevId };
    const coalesced = coalesceTrigger.get(p);
    const lease = coalesced === undefined && devicePending.get(rec.id) === undefined;
    const trigger =
      coalesced ??
      insertTrigger.get({
        ...p,
        attempts: lease ? 1 : 0,
        leaseUntil: lease ? rec.at + LEASE_MS : null,
        leaseToken: lease ? randomUUID() : null,
      });
    if (trigger.id !== prevId) setLastTrigger.run(trigger.id, rec.id);
    w.created = updated === undefined;
    w.device = row;
    w.trigger = trigger;
  }

  function flushBatch() {
    flushScheduled = false;
    clearTimeout(markTimer);
    markTimer = undefined;
    const batch = writes;
    writes = [];
    if (batch.length === 0) return;
    begin.run();
    for (const w of batch) {
      if (w.mark) markDelivered.run(w.mark);
      else writeRegistration(w);
    }
    commit.run();
    for (const w of batch) {
      if (w.mark) continue;
      const { id, ip, name, userdata } = w.device;
      send(w.res, w.created ? 201 : 200, JSON.stringify({ id, ip, name, userdata }));
      if (w.trigger.lease_token !== null) call(w.trigger);
    }
  }

  function call(trigger) {
    callsInFlight++;
    let settled = false;
    const callDone = () => {
      if (settled) return;
      settled = true;
      callsInFlight--;
      if (drained && callsInFlight === 0) drain(drained);
    };
    const path = `${base.pathname.replace(/\/+$/, '')}/api/exec?ip=${encodeURIComponent(trigger.ip)}`;
    const req = httpGet(
      {
        agent,
        host: base.hostname,
        port: base.port,
        path,
        headers: { 'idempotency-key': trigger.key },
      },
      (res) => {
        const ok = res.statusCode >= 200 && res.statusCode < 300;
        res.resume();
        res.on('end', () => {
          if (ok) {
            const at = Date.now();
            writes.push({
              mark: {
                id: trigger.id,
                token: trigger.lease_token,
                at,
                nextAttemptAt: trigger.next_attempt_at,
              },
            });
            schedule(true);
          }
          callDone();
        });
      },
    );
    // A failed call leaves the trigger pending (ztp would retry it): the bench's manager answers.
    req.on('error', callDone);
  }

  /** At shutdown: waits for the calls in flight, commits their marks, then calls `done`. */
  function drain(done) {
    drained = done;
    if (callsInFlight > 0) return;
    flushBatch();
    done();
  }

  return {
    register(rec, source, res) {
      writes.push({ rec, source, res });
      schedule(false);
    },
    drain,
  };
}
