import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { freePort, parseKeyValues } from './glance';

/**
 * A real OpenStack Keystone (Debian's python3-keystone 22) for one test file, started with
 * scripts/keystone-dev on 127.0.0.1:<free port> in a fresh temp dir (SQLite, fernet tokens).
 * It holds projects admin, project-a, project-b and service; users admin, member-a
 * (member on project-a), reader-a (reader on project-a), member-b (member on project-b)
 * and the service user that validates tokens.
 *
 * A Keystone that cannot start is an error carrying keystone-dev's stderr, never a skip.
 *
 *   let keystone: RealKeystone;
 *   beforeAll(async () => { keystone = await startKeystone(); }, KEYSTONE_START_TIMEOUT_MS);
 *   afterAll(() => keystone?.stop());
 */
export const KEYSTONE_DEV = resolve(__dirname, '../../scripts/keystone-dev');

/** Enough for keystone-dev's apt-get install on a fresh machine, plus its own 120 s start timeout. */
export const KEYSTONE_START_TIMEOUT_MS = 15 * 60_000;

export type KeystoneUser = 'admin' | 'member-a' | 'reader-a' | 'member-b';
export type KeystoneProject = 'admin' | 'project-a' | 'project-b';

export interface RealKeystone {
  /** http://127.0.0.1:<port> (no /v3). */
  url: string;
  dir: string;
  /** Every KEY=VALUE line keystone-dev printed. */
  env: Readonly<Record<string, string>>;
  projectIds: Readonly<Record<KeystoneProject, string>>;
  /** `auth.keystone` for Vitrine's config (the service user); extra keys override. */
  authConfig(extra?: Record<string, unknown>): Record<string, unknown>;
  /** A project-scoped token (POST /v3/auth/tokens, password method): X-Subject-Token. */
  tokenFor(user: KeystoneUser, project: KeystoneProject): Promise<string>;
  /** Revokes a token (DELETE /v3/auth/tokens) as admin. */
  revoke(token: string): Promise<void>;
  /** keystone-dev down: stops the server, keeps the dir (start() brings it back). */
  pause(): Promise<void>;
  /** Starts it again after pause() (same DB and keys: earlier tokens stay valid). */
  resume(): Promise<void>;
  /** keystone-dev down --purge. Idempotent. */
  stop(): Promise<void>;
}

function keystoneDev(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(KEYSTONE_DEV, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024, env: { ...process.env, LANG: 'C.UTF-8' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolveRun({ code, stdout: String(stdout), stderr: String(stderr) + (error && code === null ? `\n(${error.message})` : '') });
    });
  });
}

/** Starts a fresh Keystone; `tokenExpirationSeconds` is Keystone's `[token] expiration`. */
export async function startKeystone(options: { tokenExpirationSeconds?: number; timeoutMs?: number } = {}): Promise<RealKeystone> {
  const dir = mkdtempSync(join(tmpdir(), 'vitrine-keystone-'));
  const timeoutMs = options.timeoutMs ?? KEYSTONE_START_TIMEOUT_MS - 30_000;
  const expiration = ['--token-expiration', String(options.tokenExpirationSeconds ?? 3600)];
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const upArgs = ['up', '--port', String(port), '--dir', dir, ...expiration];
    const up = await keystoneDev([...upArgs, '--fresh'], timeoutMs);
    const env = parseKeyValues(up.stdout);
    if (up.code === 0 && env.KEYSTONE_URL) return running(dir, env, upArgs, timeoutMs);
    lastError = `keystone-dev ${upArgs.join(' ')} --fresh exited ${up.code}:\n${up.stderr}\n${up.stdout}`;
    await keystoneDev(['down', '--dir', dir, '-q'], 60_000);
    if (!/already in use/.test(up.stderr)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`cannot start a real Keystone for the test:\n${lastError}`);
}

function running(dir: string, env: Record<string, string>, upArgs: string[], timeoutMs: number): RealKeystone {
  const url = env.KEYSTONE_URL;
  const passwords: Record<KeystoneUser, string> = { admin: env.KEYSTONE_ADMIN_PASSWORD, 'member-a': env.KEYSTONE_USER_PASSWORD, 'reader-a': env.KEYSTONE_USER_PASSWORD, 'member-b': env.KEYSTONE_USER_PASSWORD };
  let stopped = false;
  const tokenFor = async (user: KeystoneUser, project: KeystoneProject): Promise<string> => {
    const domain = { name: 'Default' };
    const res = await request(`${url}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, domain, password: passwords[user] } } }, scope: { project: { name: project, domain } } } }),
    });
    const text = await res.body.text();
    const token = res.headers['x-subject-token'];
    if (res.statusCode !== 201 || typeof token !== 'string') throw new Error(`Keystone refused a token for ${user} on ${project}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
    return token;
  };
  return {
    url,
    dir,
    env,
    projectIds: { admin: env.KEYSTONE_ADMIN_PROJECT_ID, 'project-a': env.KEYSTONE_PROJECT_A_ID, 'project-b': env.KEYSTONE_PROJECT_B_ID },
    authConfig: (extra = {}) => ({ url, serviceUser: env.KEYSTONE_SERVICE_USER, servicePassword: env.KEYSTONE_SERVICE_PASSWORD, serviceProject: env.KEYSTONE_SERVICE_PROJECT, ...extra }),
    tokenFor,
    async revoke(token) {
      const admin = await tokenFor('admin', 'admin');
      const res = await request(`${url}/v3/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': admin, 'x-subject-token': token } });
      await res.body.text();
      if (res.statusCode !== 204) throw new Error(`Keystone did not revoke the token: HTTP ${res.statusCode}`);
    },
    async pause() {
      const down = await keystoneDev(['down', '--dir', dir], 60_000);
      if (down.code !== 0) throw new Error(`keystone-dev down --dir ${dir} failed (exit ${down.code}):\n${down.stderr}`);
    },
    async resume() {
      const up = await keystoneDev(upArgs, timeoutMs);
      if (up.code !== 0) throw new Error(`keystone-dev ${upArgs.join(' ')} failed (exit ${up.code}):\n${up.stderr}`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const down = await keystoneDev(['down', '--dir', dir, '--purge'], 60_000);
      if (down.code !== 0) throw new Error(`keystone-dev down --dir ${dir} --purge failed (exit ${down.code}):\n${down.stderr}`);
    },
  };
}
