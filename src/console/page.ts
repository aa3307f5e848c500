/**
 * Serves the operator console: the static page built by scripts/build-console.mjs into
 * dist/console/ (index.html at `/`, assets under `/console/`). The page is public; everything it
 * shows comes from the management API, which the management guard protects.
 *
 * The files are read once at start (they are small) and sent with a strict security-header set:
 * the page may load only its own scripts and styles and talk only to this origin, and may not be
 * framed.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendProblem } from '../http/problem.js';

export const CONSOLE_SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-cache',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

/** dist/console of the package this file belongs to (works from src/ via tsx and from dist/). */
export function findConsoleDir(
  start = dirname(fileURLToPath(import.meta.url)),
): string | undefined {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'dist', 'console');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

interface Asset {
  type: string;
  body: Buffer;
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return assets;
}

export async function consolePage(
  app: FastifyInstance,
  opts: { dir?: string | undefined } = {},
): Promise<void> {
  const dir = opts.dir ?? findConsoleDir();
  const assets = dir ? load(dir) : new Map<string, Asset>();

  const send = (reply: FastifyReply, name: string) => {
    const asset = assets.get(name);
    if (!asset) {
      return sendProblem(
        reply,
        'route_not_found',
        name === 'index.html'
          ? 'the console is not built; run `npm run build`'
          : `no console asset ${name}`,
      );
    }
    return reply.headers(CONSOLE_SECURITY_HEADERS).type(asset.type).send(asset.body);
  };

  app.get('/', { schema: { hide: true } }, (_request, reply) => send(reply, 'index.html'));
  app.get<{ Params: { file: string } }>(
    '/console/:file',
    { schema: { hide: true } },
    (request, reply) => send(reply, request.params.file),
  );
}
