// Verifies a signed ztp manager call (Node.js, no dependencies).
// Usage: ZTP_MANAGER_SECRET=... node verify-signature.mjs SIGNATURE METHOD TARGET < body
// SIGNATURE is the ZTP-Signature header, TARGET the request's path and query as received.
// Prints valid or invalid; exit status 0 or 1.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';

export const REPLAY_WINDOW = 300; // seconds: refuse calls signed longer ago (or ahead) than this

/** body: a Buffer (the raw request body; empty for GET). */
export function verify(secret, header, method, target, body, now = Date.now() / 1000) {
  const fields = header.split(',').map((part) => part.split('='));
  const stamps = fields.filter(([k]) => k === 't').map(([, v]) => v);
  const signatures = fields.filter(([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/.test(v));
  if (stamps.length !== 1 || !/^\d+$/.test(stamps[0]) || signatures.length === 0) return false;
  if (Math.abs(now - Number(stamps[0])) > REPLAY_WINDOW) return false;
  const expected = createHmac('sha256', secret)
    .update(`${stamps[0]}.${method} ${target}.`)
    .update(body)
    .digest();
  return signatures.some(([, v]) => timingSafeEqual(Buffer.from(v, 'hex'), expected));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [header, method, target] = process.argv.slice(2);
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const ok = verify(process.env.ZTP_MANAGER_SECRET, header, method, target, Buffer.concat(chunks));
  console.log(ok ? 'valid' : 'invalid');
  process.exit(ok ? 0 : 1);
}
