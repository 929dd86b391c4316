import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SIGNING_KEY_FILE = 'url-signing-key';

/**
 * The HMAC key of signed data-plane URLs: the configured one, or a random key created once
 * in `<dataDir>/url-signing-key` (0600, created exclusively) so signed URLs survive restarts.
 * Instances that share a data plane must share the key: configure `dataPlane.signingKey`.
 */
export async function ensureSigningKey(dataDir: string, configured: string | undefined): Promise<Buffer> {
  if (configured !== undefined) return Buffer.from(configured, 'utf8');
  const file = join(dataDir, SIGNING_KEY_FILE);
  const fresh = randomBytes(32).toString('base64url');
  try {
    await writeFile(file, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    return Buffer.from(fresh, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const key = (await readFile(file, 'utf8')).trim();
    if (key.length >= 32) return Buffer.from(key, 'utf8');
    // Another process created the file an instant ago and has not written it yet.
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} holds no usable key (expected at least 32 characters); delete it to create a new one`);
}
