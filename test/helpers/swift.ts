import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseKeyValues } from './glance';

/**
 * A real OpenStack Swift (Debian's swift 2.30: proxy, object, container and account
 * servers, tempauth) for one test file, started with scripts/swift-dev on free loopback
 * ports in a fresh temp dir. swift-dev installs the packages when they are missing (CI
 * runs on a fresh machine: allow minutes) and prints KEY=VALUE lines, parsed into `env`.
 *
 * A Swift that cannot start is an error carrying swift-dev's stderr, never a skip.
 *
 *   let swift: RealSwift;
 *   beforeAll(async () => { swift = await startSwift(); }, SWIFT_START_TIMEOUT_MS);
 *   afterAll(() => swift?.stop());
 */
export const SWIFT_DEV = resolve(__dirname, '../../scripts/swift-dev');

/** Enough for swift-dev's apt-get install on a fresh machine, plus its own start timeout. */
export const SWIFT_START_TIMEOUT_MS = 15 * 60_000;

export interface RealSwift {
  /** http://127.0.0.1:<port> (the proxy). */
  url: string;
  /** tempauth v1: GET with X-Auth-User / X-Auth-Key. */
  authUrl: string;
  /** `account:user`. */
  user: string;
  key: string;
  /** The account's URL, http://127.0.0.1:<port>/v1/AUTH_vitrine. */
  storageUrl: string;
  /** Seconds a tempauth token lives. */
  tokenLife: number;
  dir: string;
  /** Every KEY=VALUE line swift-dev printed (SWIFT_URL, SWIFT_PIDS, SWIFT_LOG, ...). */
  env: Readonly<Record<string, string>>;
  /** `swift-dev down --purge`: stops this Swift only and deletes its dir. Idempotent. */
  stop(): Promise<void>;
}

function swiftDev(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(SWIFT_DEV, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, LANG: 'C.UTF-8' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolveRun({ code, stdout: String(stdout), stderr: String(stderr) + (error && code === null ? `\n(${error.message})` : '') });
    });
  });
}

export async function startSwift(options: { tokenLife?: number; timeoutMs?: number } = {}): Promise<RealSwift> {
  const dir = mkdtempSync(join(tmpdir(), 'vitrine-swift-'));
  const args = ['up', '--port', '0', '--backend-base', '0', '--dir', dir, ...(options.tokenLife ? ['--token-life', String(options.tokenLife)] : [])];
  // Free ports are picked by swift-dev; another process may take one before a server
  // binds it: try a few times.
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const up = await swiftDev(args, options.timeoutMs ?? SWIFT_START_TIMEOUT_MS - 30_000);
    const env = parseKeyValues(up.stdout);
    if (up.code === 0 && env.SWIFT_STORAGE_URL) {
      let stopped = false;
      return {
        url: env.SWIFT_URL,
        authUrl: env.SWIFT_AUTH_URL,
        user: env.SWIFT_USER,
        key: env.SWIFT_KEY,
        storageUrl: env.SWIFT_STORAGE_URL,
        tokenLife: Number(env.SWIFT_TOKEN_LIFE),
        dir,
        env,
        async stop() {
          if (stopped) return;
          stopped = true;
          const down = await swiftDev(['down', '--dir', dir, '--purge'], 60_000);
          if (down.code !== 0) throw new Error(`swift-dev down --dir ${dir} failed (exit ${down.code}):\n${down.stderr}`);
        },
      };
    }
    lastError = `swift-dev ${args.join(' ')} exited ${up.code}:\n${up.stderr}\n${up.stdout}`;
    await swiftDev(['down', '--dir', dir, '-q'], 60_000);
    if (!/already in use|exited during startup/.test(up.stderr)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`cannot start a real Swift for the test:\n${lastError}`);
}

/** A tempauth token and the account URL, straight from Swift (for tests that talk to it directly). */
export async function swiftToken(swift: RealSwift): Promise<{ token: string; storageUrl: string }> {
  const res = await fetch(swift.authUrl, { headers: { 'x-auth-user': swift.user, 'x-auth-key': swift.key } });
  await res.arrayBuffer();
  const token = res.headers.get('x-auth-token');
  const storageUrl = res.headers.get('x-storage-url');
  if (res.status !== 200 || !token || !storageUrl) throw new Error(`tempauth answered ${res.status}`);
  return { token, storageUrl };
}
