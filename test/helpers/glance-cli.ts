import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The real glanceclient (Debian's python3-glanceclient 4.1, installed by scripts/glance-dev)
 * against a Glance without Keystone: `--os-image-url` and any token. It runs with a fresh
 * HOME (glanceclient caches the image schema there) and with stdin *closed*: glanceclient
 * uploads a stdin that is not a terminal, so an open /dev/null would make every create an
 * active 0-byte image.
 */
export const GLANCE_CLI = '/usr/bin/glance';

export class GlanceCli {
  private readonly home = mkdtempSync(join(tmpdir(), 'vitrine-glancecli-'));

  constructor(private readonly url: string) {
    if (!existsSync(GLANCE_CLI)) throw new Error(`${GLANCE_CLI} is missing: scripts/glance-dev installs python3-glanceclient`);
  }

  /** Runs `glance <args>`; rejects with its output when it exits non-zero. */
  run(args: string[]): Promise<string> {
    const all = ['--os-image-api-version', '2', '--os-image-url', this.url, '--os-auth-token', 'x', ...args];
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: this.home, LANG: 'C.UTF-8', PYTHONWARNINGS: 'ignore', NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', 'exec "$0" "$@" <&-', GLANCE_CLI, ...all], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`glance ${args.join(' ')} exited ${code}\n${stderr}\n${stdout}`))));
    });
  }

  /** `glance image-show` (or any "Property | Value" table) as an object. */
  async show(id: string): Promise<Record<string, string>> {
    return parseTable(await this.run(['image-show', id]));
  }

  cleanup(): void {
    rmSync(this.home, { recursive: true, force: true });
  }
}

export function parseTable(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    const match = /^\|\s(.*?)\s*\|\s(.*?)\s*\|$/.exec(line);
    if (!match || match[1] === 'Property') continue;
    // Long values wrap onto rows with an empty key.
    if (match[1] === '' && last !== undefined) out[last] += match[2];
    else {
      last = match[1];
      out[last] = match[2];
    }
  }
  return out;
}
