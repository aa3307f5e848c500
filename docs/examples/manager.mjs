// A minimal service manager: verifies each ztp call, drops replays, acts on the rest.
// ZTP_MANAGER_SECRET=... PORT=9000 node manager.mjs
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const secret = process.env.ZTP_MANAGER_SECRET;
const seen = new Set(); // event ids acted on (a real manager keeps them for the replay window)

createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const sig = String(req.headers['ztp-signature'] ?? '');
    const t = /(?:^|,)t=(\d+)(?:,|$)/.exec(sig)?.[1];
    const mac = createHmac('sha256', secret).update(`${t}.${req.method} ${req.url}.`);
    const expected = mac.update(body).digest();
    const valid = [...sig.matchAll(/v1=([0-9a-f]{64})/g)].some(([, v]) =>
      timingSafeEqual(Buffer.from(v, 'hex'), expected),
    );
    const fresh = Math.abs(Date.now() / 1000 - Number(t)) <= 300; // the replay window
    if (!valid || !fresh) return res.writeHead(401).end();
    const id = String(req.headers['ztp-event-id']);
    const event = req.method === 'POST' ? JSON.parse(body) : null;
    const ip = event?.device.ip ?? new URL(req.url, 'http://x').searchParams.get('ip');
    // A forwarded progress report (--report-forward) says how provisioning went: no new run.
    const act = event?.type === 'report' ? `report ${event.report.type} from` : 'provision';
    if (!seen.has(id)) console.log(`${act} ${ip} (${event?.type ?? 'registered'}, event ${id})`);
    seen.add(id);
    res.writeHead(200).end();
  });
}).listen(Number(process.env.PORT ?? 9000), function () {
  console.log(`manager listening on port ${this.address().port}`);
});
