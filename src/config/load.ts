import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { TypeRegistry, type TypeSpec } from '../domain/builtin-types';
import { VitrineError } from '../domain/errors';
import { CONFIG_FILE_VAR, convertEnvValue, ENV_VARS, processEnvironment, type Environment } from './env';
import { ConfigSchema, QUOTA_NAME, type Config } from './schema';

/**
 * Configuration is assembled from layers, weakest first: the schema's defaults, a JSON
 * file (`--config PATH` or VITRINE_CONFIG), programmatic overrides (tests), then VITRINE_*
 * variables. It is parsed once, every bad key is reported in one CONFIG_INVALID error,
 * and the result is deep-frozen.
 */
export interface LoadConfigOptions {
  /** A JSON config file; VITRINE_CONFIG is used when omitted. */
  configPath?: string;
  /** Defaults to this process's VITRINE_* variables. */
  env?: Environment;
  /** A partial config applied over the file (used by tests and embedders). */
  overrides?: Record<string, unknown>;
}

type Path = readonly (string | number)[];
type Origins = Map<string, string>;

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? processEnvironment();
  const origins: Origins = new Map();
  let raw: Record<string, unknown> = {};

  const configPath = options.configPath ?? nonEmpty(env[CONFIG_FILE_VAR]);
  if (configPath !== undefined) {
    const file = resolve(configPath);
    raw = merge(raw, readConfigFile(file), [], origins, `config file ${file}`);
  }
  if (options.overrides) raw = merge(raw, options.overrides, [], origins, 'overrides');
  for (const [name, { path, as }] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value !== undefined) raw = merge(raw, nest(path, convertEnvValue(value, as)), [], origins, name);
  }

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw invalid(parsed.error.issues.flatMap((issue) => describeIssue(issue, raw, origins)));

  const config = { ...parsed.data, dataDir: resolve(parsed.data.dataDir) };
  config.database = { ...config.database, path: resolve(config.database.path) };
  config.blobs = { ...config.blobs, path: resolve(config.blobs.path) };
  const semantic = checkSemantics(config.artifactTypes as TypeSpec[], config.quotas, origins);
  if (semantic.length > 0) throw invalid(semantic);
  return deepFreeze(config) as Config;
}

/** Types and quotas can only be judged once their shapes are right: TypeRegistry decides. */
function checkSemantics(types: TypeSpec[], quotas: Record<string, number>, origins: Origins): string[] {
  let registry: TypeRegistry;
  try {
    registry = new TypeRegistry(types);
  } catch (err) {
    if (err instanceof VitrineError && err.code === 'CONFIG_INVALID') return [`artifactTypes: ${err.message}${from(['artifactTypes'], origins)}`];
    throw err;
  }
  return Object.keys(quotas).flatMap((name) => {
    const typeName = QUOTA_NAME.exec(name)?.[2];
    if (typeName === undefined || registry.find(typeName)) return [];
    return [`quotas.${name}: expected a known artifact type after ":" (${registry.all().map((t) => t.name).join(', ')}), got "${typeName}"${from(['quotas', name], origins)}`];
  });
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid([`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid([`config file ${file} is not valid JSON: ${(err as Error).message}`]);
  }
  if (!isPlainObject(value)) throw invalid([`config file ${file}: expected a JSON object at the top level, got ${describeValue(value, false)}`]);
  return value;
}

function invalid(problems: string[]): VitrineError {
  const heading = problems.length === 1 ? 'Invalid configuration:' : `Invalid configuration (${problems.length} problems):`;
  return new VitrineError('CONFIG_INVALID', [heading, ...problems.map((p) => `  - ${p}`)].join('\n'));
}

// ---- describing zod issues ----------------------------------------------------------------

function describeIssue(issue: z.core.$ZodIssue, raw: unknown, origins: Origins): string[] {
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => line([...path, key], issue.message, valueAt(raw, [...path, key]), origins));
  }
  if (issue.code === 'invalid_key') {
    const key = path[path.length - 1];
    const expected = issue.issues[0]?.message ?? 'a valid key';
    return [`${formatPath(path)}: ${expected} as the key, got ${JSON.stringify(key)}${from(path, origins)}`];
  }
  return [line(path, issue.message, valueAt(raw, path), origins)];
}

function line(path: Path, expected: string, value: unknown, origins: Origins): string {
  const secret = isSecretPath(path);
  // A cross-key check can fail on a value nobody set: show the default it took.
  if (value === undefined) value = valueAt(defaults(), path);
  return `${formatPath(path)}: ${expected}, got ${describeValue(value, secret)}${from(path, origins)}`;
}

/** Where the value at `path` came from: the layer that set it or its nearest ancestor. */
function from(path: Path, origins: Origins): string {
  for (let n = path.length; n >= 0; n--) {
    const origin = origins.get(pathKey(path.slice(0, n)));
    if (origin) return ` (from ${origin})`;
  }
  // An object value (e.g. under an unknown key) is recorded leaf by leaf.
  const inside = pathKey(path).slice(0, -1);
  const sources = [...new Set([...origins].filter(([k]) => k.startsWith(inside)).map(([, o]) => o))];
  return sources.length > 0 ? ` (from ${sources.join(', ')})` : ' (default)';
}

/** Under auth.*, only the non-secret fields of a token entry are shown (a misspelt key may hold a token). */
function isSecretPath(path: Path): boolean {
  const key = path.map(String).join('.');
  // Connection URLs and keys carry passwords; token values are credentials themselves.
  if (key === 'database.url' || key === 'events.url' || key === 'dataPlane.signingKey') return true;
  return path[0] === 'auth' && !(path[1] === 'tokens' && ['projectId', 'userId', 'roles'].includes(String(path[3])));
}

/** Secret values (tokens, URLs with passwords, keys) must never reach a log: they are described by type only. */
function describeValue(value: unknown, secret: boolean): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'an object';
  if (secret) return typeof value === 'string' ? `a string of ${value.length} characters` : `a ${typeof value}`;
  const shown = JSON.stringify(value);
  return shown.length > 80 ? `${shown.slice(0, 77)}..."` : shown;
}

function formatPath(path: Path): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : /^[A-Za-z_][\w:-]*$/.test(seg) ? (i === 0 ? seg : `.${seg}`) : `[${JSON.stringify(seg)}]`))
    .join('');
}

let defaultConfig: unknown;
function defaults(): unknown {
  defaultConfig ??= ConfigSchema.parse({});
  return defaultConfig;
}

// ---- layering -----------------------------------------------------------------------------

function pathKey(path: Path): string {
  return JSON.stringify(path);
}

function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function nest(path: readonly string[], value: unknown): Record<string, unknown> {
  return path.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), value as Record<string, unknown>);
}

/** Objects merge key by key; anything else (arrays included) replaces. Records who set what. */
function merge(base: Record<string, unknown>, layer: Record<string, unknown>, path: Path, origins: Origins, origin: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(layer)) {
    const here = [...path, key];
    if (isPlainObject(value)) {
      // Recurse even into new objects, so origins are recorded per leaf, not per subtree.
      const base = isPlainObject(out[key]) ? (out[key] as Record<string, unknown>) : {};
      if (base !== out[key]) origins.delete(pathKey(here));
      out[key] = merge(base, value, here, origins, origin);
    } else {
      out[key] = value;
      const key_ = pathKey(here);
      const descendants = `${key_.slice(0, -1)},`;
      for (const k of [...origins.keys()]) if (k.startsWith(descendants)) origins.delete(k);
      origins.set(key_, origin);
    }
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s !== undefined && s.trim() !== '' ? s : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
