// npm pack's prepack/postpack: what a global install of the tarball reads.
//   strip:   package.json without the `prepare` script (it builds dist/ in a clone; the tarball
//            already holds dist/, and npm 11 flags a tarball's `prepare` as an unreviewed install
//            script).
//   restore: puts package.json back.
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const manifest = `${root}package.json`;
const saved = `${root}.package.json.prepack`;

function restore() {
  if (existsSync(saved)) renameSync(saved, manifest);
}

if (process.argv[2] === 'strip') {
  restore(); // a pack that failed half-way left its copy behind
  copyFileSync(manifest, saved);
  const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
  delete pkg.scripts.prepare;
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (process.argv[2] === 'restore') {
  restore();
} else {
  console.error('usage: pack-manifest.mjs strip|restore');
  process.exit(2);
}
