#!/usr/bin/env node
// The published entry point: the CLI is bundled into dist/ by `npm run build`, which `npm ci`
// runs (the `prepare` script).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.mjs', import.meta.url);
if (!existsSync(cli)) {
  console.error('ztp: dist/ is missing; run `npm ci` (or `npm run build`) in the ztp folder first');
  process.exit(1);
}
await import(cli.href);
