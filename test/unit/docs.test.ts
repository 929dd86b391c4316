import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS } from '../../src/domain/errors';
import { TRANSITIONS } from '../../src/domain/lifecycle';

/** The reference docs list what the code defines; a new code or transition must be documented. */
const doc = (name: string) => readFileSync(join(__dirname, '..', '..', 'docs', name), 'utf8');

it('docs/errors.md lists every registered error code with its status', () => {
  const text = doc('errors.md');
  for (const [code, { status }] of Object.entries(ERRORS)) {
    expect(text).toContain(`| \`${code}\` | ${status} |`);
  }
});

it('docs/lifecycle.md lists every transition', () => {
  const text = doc('lifecycle.md');
  for (const t of TRANSITIONS) {
    expect(text).toContain(`| ${t.lifecycle} | \`${t.action}\` | ${t.from.join(', ')} | ${t.to} |`);
  }
});
