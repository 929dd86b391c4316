#!/usr/bin/env node
// Enforces the import zones of docs/DESIGN ("dependencies point inward") and reports
// import cycles between files under src/. Exits 1 with one line per violation.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Paths are relative to the repository root, with forward slashes. */
const isPort = (p) => /^src\/(storage|events)\/(.+\/)?port\.ts$/.test(p) || p === 'src/backends/port.ts';
const under = (dir) => (p) => p === `${dir}.ts` || p.startsWith(`${dir}/`);

const domain = under('src/domain');
const edgeAllowed = [domain, (p) => p === 'src/backends/port.ts', (p) => p === 'src/events/port.ts', isPort, under('src/graphql'), under('src/http'), under('src/observability'), under('src/config')];

/**
 * Each zone: which source files it covers, which src files it may import, and whether it
 * may import npm packages (node builtins are always allowed).
 */
const ZONES = [
  { name: 'domain', covers: domain, allows: [domain], packages: false, rule: 'src/domain imports only src/domain and node builtins' },
  { name: 'storage', covers: under('src/storage'), allows: [domain, under('src/storage')], packages: true, rule: 'src/storage imports only src/domain and src/storage' },
  { name: 'events', covers: under('src/events'), allows: [domain, under('src/events'), isPort], packages: true, rule: 'src/events imports only src/domain, src/events and storage ports' },
  {
    name: 'backends',
    covers: under('src/backends'),
    allows: [domain, under('src/backends'), isPort],
    packages: true,
    rule: 'src/backends imports only src/domain, src/backends, and the storage and events ports (port.ts)',
  },
  { name: 'graphql', covers: under('src/graphql'), allows: edgeAllowed, packages: true, rule: 'src/graphql (an edge) imports only domain, ports, graphql, http, observability and config, never concrete adapters' },
  { name: 'http', covers: under('src/http'), allows: edgeAllowed, packages: true, rule: 'src/http (an edge) imports only domain, ports, graphql, http, observability and config, never concrete adapters' },
  { name: 'config', covers: under('src/config'), allows: [domain, under('src/config')], packages: true, rule: 'src/config imports only src/domain and src/config' },
  { name: 'observability', covers: under('src/observability'), allows: [under('src/observability'), under('src/config'), domain], packages: true, rule: 'src/observability imports only src/observability, src/config and src/domain' },
  // The composition root and the CLI may name concrete adapters.
  { name: 'app', covers: (p) => under('src/app')(p) || p === 'src/main.ts', allows: [() => true], packages: true, rule: '' },
];

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function sourceFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Static imports, re-exports, `import x = require()`, require() and dynamic import() with literal specifiers. */
function specifiers(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const found = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bexport\s+(?:type\s+)?(?:\*|\{[^}]*\})(?:\s+as\s+\w+)?\s*from\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]);
  return [...new Set(found)];
}

function resolveLocal(fromFile, spec) {
  const base = resolve(dirname(fromFile), spec);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

const rel = (abs) => relative(ROOT, abs).split(sep).join('/');

const violations = [];
const graph = new Map();
const files = sourceFiles(SRC);

for (const file of files) {
  const from = rel(file);
  const zone = ZONES.find((z) => z.covers(from));
  const edges = [];
  graph.set(from, edges);
  for (const spec of specifiers(readFileSync(file, 'utf8'))) {
    if (spec.startsWith('.')) {
      const target = resolveLocal(file, spec);
      if (!target) {
        violations.push(`${from}: cannot resolve ${JSON.stringify(spec)}`);
        continue;
      }
      const to = rel(target);
      if (!to.startsWith('src/')) {
        violations.push(`${from}: imports ${to} from outside src/`);
        continue;
      }
      edges.push(to);
      if (zone && !zone.allows.some((ok) => ok(to))) violations.push(`${from} → ${to}: ${zone.rule}`);
    } else if (!BUILTINS.has(spec) && zone && !zone.packages) {
      violations.push(`${from} → package ${JSON.stringify(spec)}: ${zone.rule}`);
    }
  }
  if (!zone) violations.push(`${from}: not in any import zone (add its folder to scripts/check-imports.mjs)`);
}

// Cycles: Tarjan's strongly connected components; each component of 2+ files (or a
// self-import) is one cycle to break.
let index = 0;
const stack = [];
const meta = new Map();
const cycles = [];
function strongConnect(v) {
  meta.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    if (!meta.has(w)) {
      strongConnect(w);
      meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).low);
    } else if (meta.get(w).onStack) {
      meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).index);
    }
  }
  if (meta.get(v).low === meta.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      meta.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
  }
}
for (const v of graph.keys()) if (!meta.has(v)) strongConnect(v);
for (const c of cycles) violations.push(`import cycle: ${c.join(' ↔ ')}`);

if (violations.length > 0) {
  console.error(`check-imports: ${violations.length} violation(s) in ${files.length} files:`);
  for (const v of violations) console.error(`  - ${v}`);
  console.error('See DESIGN.md (Layout, house rule 2): arrows point inward; only src/app and src/main.ts name concrete adapters.');
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, import zones respected, no cycles`);
