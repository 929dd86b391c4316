/**
 * The only module that reads `process.env`. Environment variables are the last (strongest)
 * configuration layer; each one sets exactly one config key.
 */
export type Environment = Readonly<Record<string, string | undefined>>;

type Conversion = 'string' | 'integer' | 'boolean';

/** Variable → config key path and how its text becomes a value. */
export const ENV_VARS: Readonly<Record<string, { path: readonly string[]; as: Conversion }>> = {
  VITRINE_MODE: { path: ['mode'], as: 'string' },
  VITRINE_HOST: { path: ['host'], as: 'string' },
  VITRINE_PORT: { path: ['port'], as: 'integer' },
  VITRINE_DATA_DIR: { path: ['dataDir'], as: 'string' },
  VITRINE_LOG_LEVEL: { path: ['logLevel'], as: 'string' },
  VITRINE_DATABASE_PATH: { path: ['database', 'path'], as: 'string' },
  VITRINE_DATABASE_URL: { path: ['database', 'url'], as: 'string' },
  VITRINE_BLOB_DIR: { path: ['blobs', 'path'], as: 'string' },
  VITRINE_EVENTS_URL: { path: ['events', 'url'], as: 'string' },
  VITRINE_INTROSPECTION: { path: ['graphql', 'introspection'], as: 'boolean' },
  VITRINE_EXPLORER: { path: ['graphql', 'explorer'], as: 'boolean' },
};

/** Names the JSON config file when no --config flag is given. */
export const CONFIG_FILE_VAR = 'VITRINE_CONFIG';

/** The VITRINE_* variables of this process (nothing else is copied). */
export function processEnvironment(): Environment {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('VITRINE_') && value !== undefined) out[name] = value;
  }
  return Object.freeze(out);
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/**
 * Text that does not convert is passed on unchanged, so the schema reports it with the
 * expectation (`expected an integer …, got "abc"`) instead of a vaguer parse error here.
 */
export function convertEnvValue(raw: string, as: Conversion): unknown {
  const text = raw.trim();
  if (as === 'integer') return /^-?\d+$/.test(text) ? Number(text) : raw;
  if (as === 'boolean') {
    const lower = text.toLowerCase();
    return TRUE.has(lower) ? true : FALSE.has(lower) ? false : raw;
  }
  return raw;
}
