import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

/**
 * Crash safety with the real server process: SIGKILL it in the middle of a large streaming
 * upload, start it again on the same data directory, and check that the start-up sweep
 * restored everything: the image is queued again, no partial bytes remain anywhere under
 * the blob folder, usage counts nothing, and a retried upload succeeds with its checksums.
 */
const ROOT = join(__dirname, '..', '..');
const TOKEN = 'crash-test-token-member-000000001';
const ADMIN = 'crash-test-token-admin-0000000002';

let dataDir: string;
let configPath: string;
let baseUrl: string;
let server: ChildProcess | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'vitrine-crash-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  configPath = join(dataDir, 'config.json');
  writeFileSync(configPath, JSON.stringify({
    host: '127.0.0.1',
    port,
    dataDir,
    logLevel: 'warn',
    auth: {
      tokens: [
        { token: TOKEN, projectId: 'project-a', userId: 'member-a', roles: ['member', 'reader'] },
        { token: ADMIN, projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] },
      ],
    },
  }));
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGKILL');
    await exited(server);
  }
  rmSync(dataDir, { recursive: true, force: true });
});

it('recovers from SIGKILL mid-upload: image queued, no bytes left, usage 0, retry succeeds', async () => {
  server = await startServer();
  const id = (await gql(`mutation { createImage(input: {name: "big", diskFormat: "raw", containerFormat: "bare"}) { id } }`)).createImage.id as string;

  // Announce 256 MiB, send 16 MiB, then kill the server while it waits for the rest.
  const url = new URL(`${baseUrl}/v1/artifacts/${id}/blobs/image`);
  const upload = httpRequest({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'content-length': String(256 << 20) } });
  upload.on('error', () => undefined);
  const chunk = Buffer.alloc(1 << 20, 0xab);
  for (let i = 0; i < 16; i++) {
    if (!upload.write(chunk)) await new Promise((r) => upload.once('drain', r));
  }
  await eventually(async () => (await imageOf(id)).status === 'SAVING' && partialBytes() > 0, 'the upload is streaming to disk');
  server.kill('SIGKILL');
  await exited(server);
  upload.destroy();
  expect(partialBytes()).toBeGreaterThan(0); // the crash did leave a partial write behind

  server = await startServer();
  expect(await imageOf(id)).toMatchObject({ status: 'QUEUED', size: null, checksum: null, data: null });
  expect(filesUnder(join(dataDir, 'blobs'))).toEqual([]);
  expect((await gql(`{ usage(projectId: "project-a") { totalBytes } }`, ADMIN)).usage.totalBytes).toBe(0);

  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  const md5 = createHash('md5').update(data).digest('hex');
  const sha512 = createHash('sha512').update(data).digest('hex');
  const retry = await request(url, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'x-expected-md5': md5, 'x-expected-sha512': sha512 }, body: data });
  expect(retry.statusCode).toBe(200);
  await retry.body.dump();
  expect(await imageOf(id)).toMatchObject({ status: 'ACTIVE', size: data.length, checksum: md5, osHashValue: sha512 });
  const got = await request(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(createHash('md5').update(Buffer.from(await got.body.arrayBuffer())).digest('hex')).toBe(md5);
  expect(filesUnder(join(dataDir, 'blobs'))).toHaveLength(1);
}, 120_000);

// ---- helpers -------------------------------------------------------------------------------

async function startServer(): Promise<ChildProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITRINE_')));
  // tsx as a loader of this very process: its CLI would fork a child that SIGKILL misses.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'main.ts'), 'serve', '--config', configPath], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await request(`${baseUrl}/healthz`);
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }, 'the server answers /healthz', 60_000);
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function gql(query: string, token = TOKEN): Promise<any> {
  const res = await request(`${baseUrl}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query }) });
  const body = (await res.body.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function imageOf(id: string): Promise<any> {
  return (await gql(`{ image(id: "${id}") { status size checksum osHashValue data { size } } }`)).image;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

function partialBytes(): number {
  const dir = join(dataDir, 'blobs', '.incomplete');
  try {
    return filesUnder(dir).reduce((n, f) => n + statSync(f).size, 0);
  } catch {
    return 0;
  }
}

async function eventually(check: () => Promise<boolean>, what: string, withinMs = 30_000): Promise<void> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
