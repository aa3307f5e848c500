// The architecture rules `npm run lint` enforces on src/ (docs/architecture.md):
//  cycles:  No import cycle between folders. Each top-level folder of src/ is one node, each file
//           at the top of src/ (app.ts, config.ts, ...) is one node; an import from one node into
//           another is an edge, and the graph of edges must have no cycle. Files inside one folder
//           may import each other freely.
//  engines: Each database engine loads only its own driver: nothing reachable by static imports
//           from a module that imports `pg` imports `better-sqlite3`, and the other way round.
//  layers:  HTTP -> services -> stores: no HTTP file (src/http/, a feature's routes.ts or
//           routes/ folder) imports src/storage/ at runtime, nor its Store type; type-only imports of the shared record types (Device, Trigger)
//           are fine.
// Static imports only: a dynamic import() is how a module loads something on demand, which is
// how a composition root (server.ts) picks one engine.
//
// Usage: node scripts/check-boundaries.mjs [--rule cycles|engines|layers]...   (default: every rule)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** The rules, by the name `--rule` and check({ rules }) take. */
export const RULES = ['cycles', 'engines', 'layers'];
const SRC = resolve(new URL('..', import.meta.url).pathname, 'src');
const DRIVERS = ['pg', 'better-sqlite3'];

/** @returns {string[]} */
function sources(dir, skip) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (path === skip) continue;
    if (statSync(path).isDirectory()) out.push(...sources(path, skip));
    else if (entry.endsWith('.ts')) out.push(path);
  }
  return out;
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm;

/** Static imports of a file: { local: resolved .ts paths, packages: bare specifiers }. */
export function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const local = [];
  const packages = [];
  for (const m of text.matchAll(IMPORT)) {
    const typeOnly = m[2] !== undefined;
    const spec = m[3] ?? m[4];
    if (spec.startsWith('.')) {
      local.push({
        path: resolve(dirname(file), spec).replace(/\.js$/, '.ts'),
        typeOnly,
        statement: m[0],
      });
    } else if (!typeOnly) {
      packages.push(
        spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0],
      );
    }
  }
  return { local, packages };
}

/** The graph node a file of `root` belongs to: `folder/` or `file.ts`. */
export function nodeOf(file, root = SRC) {
  const [first, second] = relative(root, file).split('/');
  return second === undefined ? first : `${first}/`;
}

/**
 * Checks the sources under `root` (default src/) against `rules` (default all).
 * @param {{ root?: string, rules?: readonly string[] }} [options]
 * @returns {string[]} one message per broken rule; empty when every rule holds
 */
export function check({ root = SRC, rules = RULES } = {}) {
  for (const rule of rules) if (!RULES.includes(rule)) throw new Error(`unknown rule '${rule}'`);
  // The browser bundle has its own rules (it may import only types from the server).
  const files = sources(root, join(root, 'console', 'static'));
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const problems = [];
  if (rules.includes('cycles')) problems.push(...folderCycles(root, graph));
  if (rules.includes('engines')) problems.push(...engineLeaks(root, graph));
  if (rules.includes('layers')) problems.push(...storesReachedFromHttp(root, graph));
  return problems;
}

/** Type-only imports count: they tie the folders' designs together too. */
function folderCycles(root, graph) {
  const problems = [];
  const edges = new Map();
  for (const [file, { local }] of graph) {
    for (const { path } of local) {
      const a = nodeOf(file, root);
      const b = nodeOf(path, root);
      if (a === b) continue;
      if (!edges.has(a)) edges.set(a, new Map());
      if (!edges.get(a).has(b))
        edges.get(a).set(b, `${relative(root, file)} -> ${relative(root, path)}`);
    }
  }
  const state = new Map();
  const stack = [];
  const visit = (n) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of (edges.get(n) ?? new Map()).keys()) {
      if (state.get(m) === 'open') {
        const cycle = stack.slice(stack.indexOf(m));
        const steps = [...cycle, m].slice(0, -1).map((x, i, all) => {
          const next = i + 1 < all.length ? all[i + 1] : m;
          return `  ${edges.get(x).get(next)}`;
        });
        problems.push(
          `import cycle between folders ${[...cycle, m].join(' -> ')}:\n${steps.join('\n')}`,
        );
      } else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...edges.keys()].sort()) if (!state.has(n)) visit(n);
  return problems;
}

/** Routes call services; a route holding the store (or its interface) skips them. */
/** The HTTP shell (src/http/) and every feature's routes (a `routes.ts` or a `routes/` folder). */
export function isHttpFile(file, root = SRC) {
  const parts = relative(root, file).split('/');
  return parts[0] === 'http' || parts.includes('routes') || parts.at(-1) === 'routes.ts';
}

function storesReachedFromHttp(root, graph) {
  const problems = [];
  for (const [file, { local }] of graph) {
    if (!isHttpFile(file, root)) continue;
    for (const { path, typeOnly, statement } of local) {
      if (nodeOf(path, root) !== 'storage/') continue;
      const what = typeOnly
        ? /\bStore\b/.test(statement)
          ? 'the Store type'
          : undefined
        : 'at runtime';
      if (what === undefined) continue;
      problems.push(
        `${relative(root, file)} imports ${relative(root, path)} (${what}): HTTP reaches storage through a service`,
      );
    }
  }
  return problems;
}

/** Over runtime imports only: a type-only import loads nothing. */
function engineLeaks(root, graph) {
  const problems = [];
  const reach = (start) => {
    const seen = new Set([start]);
    const todo = [start];
    const packages = new Map();
    while (todo.length > 0) {
      const f = todo.pop();
      const entry = graph.get(f);
      if (!entry) continue;
      for (const p of entry.packages) if (!packages.has(p)) packages.set(p, f);
      for (const { path, typeOnly } of entry.local) {
        if (!typeOnly && !seen.has(path)) {
          seen.add(path);
          todo.push(path);
        }
      }
    }
    return packages;
  };
  for (const [file, { packages }] of graph) {
    for (const driver of DRIVERS) {
      if (!packages.includes(driver)) continue;
      const loaded = reach(file);
      for (const other of DRIVERS) {
        if (other !== driver && loaded.has(other)) {
          problems.push(
            `${relative(root, file)} uses ${driver} but also loads ${other} (imported by ${relative(root, loaded.get(other))})`,
          );
        }
      }
    }
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rule: { type: 'string', multiple: true } } });
  const rules = values.rule ?? RULES;
  const unknown = rules.filter((r) => !RULES.includes(r));
  if (unknown.length > 0) {
    console.error(`unknown rule ${unknown.join(', ')}: the rules are ${RULES.join(', ')}`);
    process.exit(2);
  }
  const problems = check({ rules });
  for (const p of problems) console.error(p);
  if (problems.length > 0) {
    console.error(
      `\n${problems.length} architecture rule(s) broken (scripts/check-boundaries.mjs, rules: ${rules.join(', ')})`,
    );
    process.exit(1);
  }
}
