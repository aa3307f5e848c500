// The architecture rules `npm run lint` enforces on src/ (docs/architecture.md):
//  cycles:  No import cycle between folders. Each top-level folder of src/ is one node, each file
//           at the top of src/ (app.ts, config.ts, ...) is one node; an import from one node into
//           another is an edge, and the graph of edges must have no cycle. Files inside one folder
//           may import each other freely.
//  engines: Each database engine loads only its own driver: nothing reachable by static imports
//           from a module that imports `pg` imports `better-sqlite3`, and the other way round.
//  layers:  HTTP -> services -> stores: no HTTP module (a file under src/http/, or a file of a
//           feature folder that imports fastify: a route file) imports the database core (src/db/)
//           or a store module (store*.ts, stores.ts, outbox*.ts, read-model*.ts) at runtime, nor
//           takes a store or database type (…Store, …ReadModel, Database, Transactor);
//           type-only imports of the record types (Device, Trigger) are fine.
// Static imports only: a dynamic import() is how a module loads something on demand, which is
// how a composition root (server.ts) picks one engine.
//
// Usage: node scripts/check-boundaries.mjs [--rule cycles|engines|layers]...   (default: every rule)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
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
  const typePackages = [];
  for (const m of text.matchAll(IMPORT)) {
    const typeOnly = m[2] !== undefined;
    const spec = m[3] ?? m[4];
    if (spec.startsWith('.')) {
      local.push({
        path: resolve(dirname(file), spec).replace(/\.js$/, '.ts'),
        typeOnly,
        statement: m[0],
      });
    } else {
      const name = spec.startsWith('@')
        ? spec.split('/').slice(0, 2).join('/')
        : spec.split('/')[0];
      (typeOnly ? typePackages : packages).push(name);
    }
  }
  return { local, packages, typePackages };
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

/** A module of the storage side: the database core, or a feature's store or engine module. */
const STORE_MODULE = /^(store|stores|outbox|read-model)(-[a-z]+)?\.ts$/;
const STORE_TYPE = /\b(\w+Store|\w+ReadModel|Database|Transactor)\b/;

function isStoreModule(root, path) {
  return nodeOf(path, root) === 'db/' || STORE_MODULE.test(basename(path));
}

/** Routes call services; a route holding a store (or its interface) skips them. */
function storesReachedFromHttp(root, graph) {
  const problems = [];
  for (const [file, { local, packages, typePackages }] of graph) {
    // The composition roots at the top of src/ (server.ts, app.ts) wire stores into services.
    const node = nodeOf(file, root);
    const http =
      node === 'http/' ||
      (node.endsWith('/') && (packages.includes('fastify') || typePackages.includes('fastify')));
    if (!http) continue;
    for (const { path, typeOnly, statement } of local) {
      if (!isStoreModule(root, path)) continue;
      const type = typeOnly ? STORE_TYPE.exec(statement)?.[1] : undefined;
      const what = typeOnly ? (type === undefined ? undefined : `the ${type} type`) : 'at runtime';
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
