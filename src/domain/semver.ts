import { fail, VitrineError } from './errors';

/**
 * Semantic versions as Glare stores them: coerced leniently from what users type
 * ("1" → 1.0.0, "1.2.3.4" → 1.2.3+4, "1.2-rc1" → 1.2.0-rc1), and encoded so that SQL
 * can compare and sort them: `prefix` packs major/minor/patch and a release flag into one
 * integer (releases sort above their prereleases), `suffix` holds the prerelease so that
 * plain byte order follows semver precedence: numeric identifiers zero-padded behind a "0"
 * marker, alphanumeric ones behind a "1" (numeric ranks lower), joined by a space, which
 * sorts below every identifier character (so "alpha" < "alpha.1" < "alpha-x").
 */
export interface Version {
  major: number;
  minor: number;
  patch: number;
  prerelease: string[];
  build: string[];
}

export interface EncodedVersion {
  canonical: string;
  prefix: number;
  suffix: string;
  meta: string;
}

const MAX_COMPONENT = 65535;
const NUMERIC_PAD = 6;
const IDENT = /^[0-9A-Za-z-]+$/;

export function parseVersion(input: string): Version {
  const raw = input.trim();
  if (raw.length === 0 || raw.length > 255) fail('VERSION_INVALID', 'version must be 1 to 255 characters');
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/.exec(raw);
  if (!m) fail('VERSION_INVALID', `${JSON.stringify(raw.slice(0, 64))} is not a semantic version (expected e.g. 1.2.3 or 1.2.0-rc1)`);
  const [major, minor, patch] = [m[1], m[2] ?? '0', m[3] ?? '0'].map(Number);
  for (const c of [major, minor, patch]) {
    if (c > MAX_COMPONENT) fail('VERSION_INVALID', `version components must be at most ${MAX_COMPONENT}`);
  }
  const prerelease = m[5] ? m[5].split('.') : [];
  const build = [...(m[4] ? [String(Number(m[4]))] : []), ...(m[6] ? m[6].split('.') : [])];
  for (const id of [...prerelease, ...build]) {
    if (!IDENT.test(id)) fail('VERSION_INVALID', `version identifier ${JSON.stringify(id)} is empty or has invalid characters`);
  }
  for (const id of prerelease) {
    if (/^\d+$/.test(id) && id.length > NUMERIC_PAD) fail('VERSION_INVALID', `numeric prerelease identifiers may have at most ${NUMERIC_PAD} digits`);
  }
  return { major, minor, patch, prerelease: prerelease.map(normalizeNumeric), build };
}

function normalizeNumeric(id: string): string {
  return /^\d+$/.test(id) ? String(Number(id)) : id;
}

export function formatVersion(v: Version): string {
  let s = `${v.major}.${v.minor}.${v.patch}`;
  if (v.prerelease.length) s += `-${v.prerelease.join('.')}`;
  if (v.build.length) s += `+${v.build.join('.')}`;
  return s;
}

export function encodeVersion(input: string | Version): EncodedVersion {
  const v = typeof input === 'string' ? parseVersion(input) : input;
  const release = v.prerelease.length === 0 ? 1 : 0;
  // major << 33 | minor << 17 | patch << 1 | release, kept below 2^53 so it is exact in JS and SQL.
  const prefix = ((v.major * 2 ** 16 + v.minor) * 2 ** 16 + v.patch) * 2 + release;
  const suffix = v.prerelease.map((id) => (/^\d+$/.test(id) ? `0${id.padStart(NUMERIC_PAD, '0')}` : `1${id}`)).join(' ');
  return { canonical: formatVersion(v), prefix, suffix, meta: v.build.join('.') };
}

/** Canonical string of a user-supplied version, or VERSION_INVALID. */
export function canonicalVersion(input: string): string {
  return encodeVersion(input).canonical;
}

/** Semver precedence (build metadata ignored). */
export function compareVersions(a: string, b: string): number {
  const ea = encodeVersion(a);
  const eb = encodeVersion(b);
  if (ea.prefix !== eb.prefix) return ea.prefix < eb.prefix ? -1 : 1;
  return ea.suffix < eb.suffix ? -1 : ea.suffix > eb.suffix ? 1 : 0;
}

export type VersionComparator = { op: 'eq' | 'gt' | 'gte' | 'lt' | 'lte'; version: string };

/**
 * A semver range ("^1.2", "~1.4.0", ">=1.0.0 <2.0.0", "1.x", "1.2.3 - 1.4", "a || b") as an
 * OR of ANDs of comparators, so a store can evaluate it with indexed comparisons.
 * Unlike npm's rules, prereleases are not excluded specially: a range is an interval.
 */
export function parseVersionRange(input: string): VersionComparator[][] {
  const raw = input.trim();
  if (raw.length === 0 || raw.length > 255) fail('VERSION_INVALID', 'a version range must be 1 to 255 characters');
  try {
    return raw.split('||').map((alternative) => parseRangeSet(alternative.trim()));
  } catch (err) {
    if (err instanceof VitrineError) throw err;
    throw new VitrineError('VERSION_INVALID', `${JSON.stringify(raw.slice(0, 64))} is not a version range`);
  }
}

function parseRangeSet(set: string): VersionComparator[] {
  if (set === '' || set === '*' || set === 'x') return [{ op: 'gte', version: '0.0.0-0' }];
  const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(set);
  if (hyphen) return [...partialBound('>=', hyphen[1]), ...partialBound('<=', hyphen[2])];
  const out: VersionComparator[] = [];
  for (const token of set.split(/\s+/)) {
    const m = /^(\^|~|>=|<=|>|<|=)?\s*(.+)$/.exec(token);
    if (!m) throw new Error('bad comparator');
    out.push(...expand(m[1] ?? '', m[2]));
  }
  return out;
}

interface Partial { parts: (number | undefined)[]; pre: string; }

function parsePartial(text: string): Partial {
  const m = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.exec(text);
  if (!m) throw new VitrineError('VERSION_INVALID', `${JSON.stringify(text.slice(0, 64))} is not a version in a range`);
  const num = (s?: string) => (s === undefined || /^[xX*]$/.test(s) ? undefined : Number(s));
  const parts = [num(m[1]), num(m[2]), num(m[3])];
  // "1.x.3" means "1.x": nothing after a wildcard counts.
  const firstWild = parts.findIndex((p) => p === undefined);
  if (firstWild >= 0) for (let i = firstWild; i < 3; i++) parts[i] = undefined;
  return { parts, pre: firstWild >= 0 ? '' : m[4] ?? '' };
}

function v(parts: number[], pre = ''): string {
  return `${parts[0] ?? 0}.${parts[1] ?? 0}.${parts[2] ?? 0}${pre}`;
}

/** Smallest version above every version matching the partial (e.g. 1.2 → 1.3.0-0). */
function ceiling(parts: (number | undefined)[]): string | undefined {
  const fixed = parts.filter((p): p is number => p !== undefined);
  if (fixed.length === 0) return undefined;
  const bumped = [...fixed];
  bumped[bumped.length - 1] += 1;
  return v(bumped, '-0');
}

function partialBound(op: '>=' | '<=', text: string): VersionComparator[] {
  const p = parsePartial(text);
  const complete = p.parts.every((x) => x !== undefined);
  if (op === '>=') return [{ op: 'gte', version: complete ? v(p.parts as number[], p.pre) : v(p.parts.map((x) => x ?? 0), '-0') }];
  if (complete) return [{ op: 'lte', version: v(p.parts as number[], p.pre) }];
  const ceil = ceiling(p.parts);
  return ceil ? [{ op: 'lt', version: ceil }] : [{ op: 'gte', version: '0.0.0-0' }];
}

function expand(operator: string, text: string): VersionComparator[] {
  const p = parsePartial(text);
  const [maj, min, pat] = p.parts;
  const complete = maj !== undefined && min !== undefined && pat !== undefined;
  const low = v(p.parts.map((x) => x ?? 0), p.pre || (complete ? '' : '-0'));
  switch (operator) {
    case '^': {
      if (maj === undefined) return [{ op: 'gte', version: '0.0.0-0' }];
      let upper: string;
      if (maj > 0 || min === undefined) upper = v([maj + 1, 0, 0], '-0');
      else if (min > 0 || pat === undefined) upper = v([0, min + 1, 0], '-0');
      else upper = v([0, 0, pat + 1], '-0');
      return [{ op: 'gte', version: low }, { op: 'lt', version: upper }];
    }
    case '~': {
      if (maj === undefined) return [{ op: 'gte', version: '0.0.0-0' }];
      const upper = min === undefined ? v([maj + 1, 0, 0], '-0') : v([maj, min + 1, 0], '-0');
      return [{ op: 'gte', version: low }, { op: 'lt', version: upper }];
    }
    case '>':
      if (complete) return [{ op: 'gt', version: low }];
      return ceiling(p.parts) ? [{ op: 'gte', version: ceiling(p.parts)! }] : [{ op: 'lt', version: '0.0.0-0' }];
    case '>=':
      return [{ op: 'gte', version: low }];
    case '<':
      return [{ op: 'lt', version: low }];
    case '<=':
      return partialBound('<=', text);
    default: {
      if (complete) return [{ op: 'eq', version: low }];
      const ceil = ceiling(p.parts);
      return ceil ? [{ op: 'gte', version: low }, { op: 'lt', version: ceil }] : [{ op: 'gte', version: '0.0.0-0' }];
    }
  }
}
