// CPU-seconds per GiB of one data-plane upload, per thread of the Vitrine process, read
// from /proc/PID/task/*/stat before and after each PUT. On a shared machine MiB/s moves with
// other processes' load; CPU per GiB barely does, so it is the way to compare two builds.
//
//   npm run build && node bench/tools/upload-cpu.mjs            # this checkout's dist/
//   ROOT=/path/to/other/checkout ROUNDS=5 MIB=256 PORT=19398 node bench/tools/upload-cpu.mjs
//
// Threads are grouped: main (the event loop), hash (threads almost all user time: the md5
// and sha512 workers), pool (almost all system time: libuv's file writes), other; client is
// this process (the load generator). Round 0 warms up and is left out of the median.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';

const root = resolve(process.env.ROOT || join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..'));
const port = Number(process.env.PORT || 19398);
const size = Number(process.env.MIB || 1024) * 2 ** 20;
const rounds = Number(process.env.ROUNDS || 3);
const TICKS_PER_SECOND = 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dataDir = mkdtempSync(join(tmpdir(), 'vitrine-upload-cpu-'));
const config = `${dataDir}.config.json`;
writeFileSync(config, JSON.stringify({ graphql: { maxCost: 20000 } }));
const server = spawn(process.execPath, [join(root, 'dist', 'main.js'), 'serve'], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, VITRINE_CONFIG: config, VITRINE_PORT: String(port), VITRINE_HOST: '127.0.0.1', VITRINE_DATA_DIR: dataDir, VITRINE_MODE: 'production', VITRINE_LOG_LEVEL: 'warn', NODE_ENV: 'production' },
});
const pid = server.pid;

function http(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    if (body instanceof Readable) body.pipe(req);
    else req.end(body);
  });
}

/** `n` bytes from one reused 1 MiB block, as the bench's source. */
function source(n) {
  const block = Buffer.alloc(2 ** 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  let left = n;
  return new Readable({
    highWaterMark: 4 * 2 ** 20,
    read() {
      const k = Math.min(left, block.length);
      left -= k;
      this.push(k === 0 ? null : k === block.length ? block : block.subarray(0, k));
    },
  });
}

/** tid → user and system ticks. */
function threads() {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { user: Number(f[11]), system: Number(f[12]) });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

function groups(before, after, gib) {
  const g = { main: 0, hash: 0, pool: 0, other: 0 };
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { user: 0, system: 0 };
    const user = (a.user - b.user) / TICKS_PER_SECOND / gib;
    const total = user + (a.system - b.system) / TICKS_PER_SECOND / gib;
    const group = Number(tid) === pid ? 'main' : total > 0.5 && user > 0.9 * total ? 'hash' : user < 0.2 * total ? 'pool' : 'other';
    g[group] += total;
  }
  return g;
}

try {
  for (let i = 0; ; i++) {
    const up = await http('GET', '/healthz', {}).then((r) => r.status === 200, () => false);
    if (up) break;
    if (i > 300) throw new Error('Vitrine did not answer /healthz within 30 s');
    await sleep(100);
  }
  const tokenFile = join(dataDir, 'admin-token');
  while (!existsSync(tokenFile)) await sleep(50);
  const headers = { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`, 'content-type': 'application/json' };
  const totals = [];
  const gib = size / 2 ** 30;
  for (let round = 0; round <= rounds; round++) {
    const created = await http('POST', '/graphql', headers, JSON.stringify({ query: 'mutation { createImage(input: {name: "upload-cpu", diskFormat: "raw", containerFormat: "bare"}) { id } }' }));
    const id = JSON.parse(created.text).data.createImage.id;
    const before = threads();
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    const put = await http('PUT', `/v1/artifacts/${id}/blobs/image`, { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) }, source(size));
    const ms = performance.now() - t0;
    const client = process.cpuUsage(client0);
    const g = groups(before, threads(), gib);
    if (put.status !== 200) throw new Error(`PUT: HTTP ${put.status} ${put.text}`);
    const server = g.main + g.hash + g.pool + g.other;
    const parts = Object.entries({ ...g, client: (client.user + client.system) / 1e6 / gib }).map(([k, v]) => `${k} ${v.toFixed(2)}`);
    console.log(`round ${round}${round === 0 ? ' (warm-up)' : ''}: ${(size / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s; server ${server.toFixed(2)} CPU-s/GiB [${parts.join(', ')}]`);
    if (round > 0) totals.push(server);
    await http('POST', '/graphql', headers, JSON.stringify({ query: `mutation { deleteArtifact(id: "${id}") { id } }` }));
  }
  totals.sort((a, b) => a - b);
  console.log(`median server CPU ${totals[Math.floor(totals.length / 2)].toFixed(2)} s/GiB; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} finally {
  server.kill('SIGTERM');
  if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(config, { force: true });
}
