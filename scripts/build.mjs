// Builds dist/: the CLI (server + client paths, split so `ztp register` never loads the server)
// and the single-file device client dist/ztp-client.mjs that runs with plain `node`.
import { build } from 'esbuild';
import { existsSync, rmSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
// dist/ is overwritten, not wiped, so concurrent builds never pull files from under a running test.
// --clean (npm pack's prepack) wipes it first: the tarball must not carry chunks of older builds.
if (process.argv.includes('--clean')) rmSync(`${root}dist`, { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  logLevel: 'warning',
  outExtension: { '.js': '.mjs' },
};

await build({
  ...common,
  entryPoints: { cli: 'src/cli/main.ts' },
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  packages: 'external',
});

if (existsSync(`${root}src/client/main.ts`)) {
  await build({
    ...common,
    entryPoints: { 'ztp-client': 'src/client/main.ts' },
    outdir: 'dist',
    sourcemap: false,
    minify: true,
    banner: { js: '#!/usr/bin/env node' },
  });
}

if (existsSync(`${root}scripts/build-console.mjs`)) {
  await import('./build-console.mjs');
}
