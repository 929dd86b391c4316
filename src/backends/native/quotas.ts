import type { TypeRegistry } from '../../domain/builtin-types';
import { fail } from '../../domain/errors';

/**
 * Glare's quotas: max_artifact_number and max_uploaded_data, each global or per type
 * (`name:type`), -1 meaning unlimited. Project overrides replace configured defaults.
 */
const QUOTA_NAME = /^(max_artifact_number|max_uploaded_data)(?::([a-z][a-z0-9_]*))?$/;

export function effectiveQuotas(defaults: Readonly<Record<string, number>>, overrides: Record<string, number>): Record<string, number> {
  return { ...defaults, ...overrides };
}

/** The limit to enforce, or undefined when unlimited or unset. */
export function quotaLimit(quotas: Record<string, number>, name: string): number | undefined {
  const v = quotas[name];
  return v === undefined || v < 0 ? undefined : v;
}

export function validateQuotas(types: TypeRegistry, quotas: { name: string; value: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { name, value } of quotas) {
    const m = QUOTA_NAME.exec(name);
    if (!m) fail('BAD_INPUT', `quota name ${JSON.stringify(name.slice(0, 80))} must be max_artifact_number or max_uploaded_data, optionally followed by :<type>`);
    if (m[2] !== undefined) types.get(m[2]);
    if (!Number.isSafeInteger(value) || value < -1) fail('BAD_INPUT', `quota ${name} must be an integer ≥ -1 (-1 is unlimited), got ${value}`);
    if (name in out) fail('BAD_INPUT', `quota ${name} is given twice`);
    out[name] = value;
  }
  return out;
}

export function isQuotaName(name: string): boolean {
  return QUOTA_NAME.test(name);
}
