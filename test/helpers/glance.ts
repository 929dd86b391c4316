import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * A real OpenStack Glance (Debian's python3-glance 25.1) for one test file, started with
 * scripts/glance-dev on 127.0.0.1:<free port> in a fresh temp dir. glance-dev installs the
 * packages when they are missing (CI runs on a fresh machine: allow minutes), runs Glance
 * without Keystone (a paste filter fills the identity headers: every request without its
 * own X-Project-Id / X-Roles is project GLANCE_PROJECT_ID with roles admin,member,reader,
 * whatever token it sends) and prints KEY=VALUE lines, parsed into `env`.
 *
 * A Glance that cannot start is an error carrying glance-dev's stderr, never a skip.
 *
 *   let glance: RealGlance;
 *   beforeAll(async () => { glance = await startGlance(); }, GLANCE_START_TIMEOUT_MS);
 *   afterAll(() => glance?.stop());
 */
export const GLANCE_DEV = resolve(__dirname, '../../scripts/glance-dev');

/** Enough for glance-dev's apt-get install on a fresh machine, plus its own 120 s start timeout. */
export const GLANCE_START_TIMEOUT_MS = 15 * 60_000;

export interface RealGlance {
  /** http://127.0.0.1:<port> (no /v2). */
  url: string;
  port: number;
  dir: string;
  /** Every KEY=VALUE line glance-dev printed (GLANCE_URL, GLANCE_PID, GLANCE_PROJECT_ID, ...). */
  env: Readonly<Record<string, string>>;
  /** The project that owns what unauthenticated-looking requests create (GLANCE_PROJECT_ID). */
  projectId: string;
  version: string;
  /** `glance-dev down --purge`: stops this Glance only and deletes its dir. Idempotent. */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolvePort(port) : reject(new Error('no free port'))));
    });
  });
}

function glanceDev(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(GLANCE_DEV, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, LANG: 'C.UTF-8' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolveRun({ code, stdout: String(stdout), stderr: String(stderr) + (error && code === null ? `\n(${error.message})` : '') });
    });
  });
}

/** KEY=VALUE lines (as printed by `glance-dev up`) as an object. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) out[match[1]] = match[2];
  }
  return out;
}

export interface StartGlanceOptions {
  timeoutMs?: number;
  /** glance-dev's --notifications: noop (default), log, or rabbit://user:pass@host:port/ for real oslo.messaging notifications. */
  notifications?: string;
  /** glance-dev's --keystone: a Keystone URL (no /v3); Glance then validates tokens with keystone-dev's service user. */
  keystone?: string;
  /** glance-dev's --show-locations: show_multiple_locations and show_image_direct_url on, and a read-only http store `web` for http(s) locations. */
  showLocations?: boolean;
}

export async function startGlance(options: StartGlanceOptions = {}): Promise<RealGlance> {
  const dir = mkdtempSync(join(tmpdir(), 'vitrine-glance-'));
  // A port can be taken between our probe and Glance's bind: try a few.
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const extra = [...(options.notifications ? ['--notifications', options.notifications] : []), ...(options.keystone ? ['--keystone', options.keystone] : []), ...(options.showLocations ? ['--show-locations'] : [])];
    const up = await glanceDev(['up', '--fresh', '--port', String(port), '--dir', dir, ...extra], options.timeoutMs ?? GLANCE_START_TIMEOUT_MS - 30_000);
    const env = parseKeyValues(up.stdout);
    if (up.code === 0 && env.GLANCE_URL) {
      let stopped = false;
      return {
        url: env.GLANCE_URL,
        port,
        dir,
        env,
        projectId: env.GLANCE_PROJECT_ID,
        version: env.GLANCE_VERSION,
        async stop() {
          if (stopped) return;
          stopped = true;
          const down = await glanceDev(['down', '--dir', dir, '--purge'], 60_000);
          if (down.code !== 0) throw new Error(`glance-dev down --dir ${dir} failed (exit ${down.code}):\n${down.stderr}`);
        },
      };
    }
    lastError = `glance-dev up --fresh --port ${port} --dir ${dir} ${extra.join(' ')} exited ${up.code}:\n${up.stderr}\n${up.stdout}`;
    // Stop whatever half-started, then retry only when the port was the problem.
    await glanceDev(['down', '--dir', dir, '-q'], 60_000);
    if (!/already in use/.test(up.stderr)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`cannot start a real Glance for the test:\n${lastError}`);
}
