// Builds the operator console into dist/console/: app.js (bundled from
// src/console/static/app.ts, no runtime dependencies, nothing from a CDN), index.html, style.css.
// Imported by scripts/build.mjs; runs on its own too.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const src = `${root}src/console/static`;
const out = `${root}dist/console`;
mkdirSync(out, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: { app: 'src/console/static/app.ts' },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) copyFileSync(`${src}/${file}`, `${out}/${file}`);
