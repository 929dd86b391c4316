import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenConfig } from '../config/schema';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * With no tokens configured, Vitrine still starts secured: the first start creates a random
 * admin token in `<dataDir>/admin-token` (0600, created exclusively so two starting
 * processes cannot both write one) and shows it once; later starts read it silently.
 */
export async function ensureAdminToken(dataDir: string, announce: (text: string) => void): Promise<TokenConfig> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  const fresh = randomBytes(32).toString('base64url');
  let token: string;
  try {
    await writeFile(file, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    token = fresh;
    announce(`Vitrine admin token (stored in ${file}, shown only this once):\n  ${token}\n`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    token = await readExisting(file);
  }
  return { token, projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] };
}

/** Another process may have created the file an instant ago and not yet written it. */
async function readExisting(file: string): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length >= 16) return token;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} holds no usable token (expected at least 16 characters); delete it to create a new one`);
}
