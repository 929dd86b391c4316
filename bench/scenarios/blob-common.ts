// Shared by the blob upload and download scenarios: a dedicated Vitrine (so its RSS
// growth is the data plane's alone), a bare loopback HTTP server for the network
// ceiling, and the ceilings measured on the same bytes in the same run: raw disk write
// (+fsync) and read, raw loopback HTTP both ways, md5 alone and sha512 alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BenchContext } from '../lib/context';
import type { Row } from '../lib/report';
import { ratio, summarize, type Summary } from '../lib/stats';
import { rssBytes, sleep, type Service } from '../lib/proc';
import { graphql, spawnVitrine } from '../targets/vitrine';

export const MiB = 1024 * 1024;

/** 1 GiB in full mode, 256 MiB in quick mode. */
export function blobSize(ctx: BenchContext): number {
  return (ctx.opts.quick ? 256 : 1024) * MiB;
}

/** `size` bytes from one reused 1 MiB buffer: the generator costs no memory and little CPU. */
export function source(size: number): Readable {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  let left = size;
  return new Readable({
    highWaterMark: 4 * MiB,
    read() {
      const n = Math.min(left, block.length);
      left -= n;
      this.push(n === 0 ? null : n === block.length ? block : block.subarray(0, n));
    },
  });
}

export function mibPerSecond(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const discard = () => new Writable({ write: (_c, _e, cb) => cb() });

export interface BlobVitrine {
  url: string;
  pid: number;
  headers: Record<string, string>;
  svc: Service;
  dataDir: string;
}

export async function startBlobVitrine(ctx: BenchContext, name: string, port: number): Promise<BlobVitrine> {
  const { svc, dataDir } = await spawnVitrine(ctx, name, port);
  const tokenFile = join(dataDir, 'admin-token');
  for (let i = 0; i < 100 && !existsSync(tokenFile); i++) await sleep(50);
  const headers = { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` };
  return { url: `http://127.0.0.1:${port}`, pid: svc.pid, headers, svc, dataDir };
}

export async function createQueuedImage(v: BlobVitrine): Promise<string> {
  const { data } = await graphql<{ createImage: { id: string } }>(v.url, v.headers, 'CreateImage', 'mutation CreateImage { createImage(input: {name: "bench-blob", diskFormat: "raw", containerFormat: "bare"}) { id } }');
  return data.createImage.id;
}

export async function deleteImage(v: BlobVitrine, id: string): Promise<void> {
  await graphql(v.url, v.headers, 'Delete', 'mutation Delete($id: ID!) { deleteArtifact(id: $id) { id } }', { id });
}

/** Streams `size` bytes as one PUT; resolves to the response status. */
export function putStream(url: string, headers: Record<string, string>, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', agent: false, headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    source(size).pipe(req);
  });
}

/** GETs `url`, discarding the body; resolves to the bytes received. */
export function getDiscard(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false, headers }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

/** Peak RSS growth (MiB) of `pid` above `before` while `work` runs, sampled every 50 ms. */
export async function rssGrowthDuring(pid: number, before: number, work: Promise<unknown>): Promise<number> {
  let peak = before;
  let done = false;
  void work.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    peak = Math.max(peak, rssBytes(pid) || 0);
    await sleep(50);
  }
  await work;
  return (peak - before) / MiB;
}

// ---- ceilings -----------------------------------------------------------------------------

// A bare node http server in its own process: PUT bodies are discarded, GET serves N bytes.
const LOOPBACK_SERVER = `
const http = require('node:http');
const block = Buffer.alloc(1 << 20, 7);
http.createServer((req, res) => {
  if (req.method === 'PUT') { req.resume(); req.on('end', () => res.end('ok')); return; }
  let left = Number(new URL(req.url, 'http://x').searchParams.get('n'));
  res.writeHead(200, { 'content-length': left });
  const more = () => { while (left > 0) { const n = Math.min(left, block.length); left -= n; if (!res.write(n === block.length ? block : block.subarray(0, n))) return res.once('drain', more); } res.end(); };
  more();
}).listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

export async function startLoopbackServer(port: number): Promise<{ url: string; stop: () => void }> {
  const child: ChildProcess = spawn(process.execPath, ['-e', LOOPBACK_SERVER, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`loopback server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

export async function rawDiskWriteMs(dir: string, size: number): Promise<number> {
  const file = join(dir, 'raw-ceiling.bin');
  const ms = await timed(() => pipeline(source(size), createWriteStream(file, { flush: true, highWaterMark: MiB })));
  return ms;
}

/** Reads the file rawDiskWriteMs left (page cache warm, as Vitrine's just-written blob is). */
export async function rawDiskReadMs(dir: string): Promise<number> {
  const file = join(dir, 'raw-ceiling.bin');
  return timed(() => pipeline(createReadStream(file, { highWaterMark: MiB }), discard()));
}

export function removeRawFile(dir: string): void {
  rmSync(join(dir, 'raw-ceiling.bin'), { force: true });
}

export async function hashMs(algorithm: 'md5' | 'sha512', size: number): Promise<number> {
  return timed(async () => {
    const h = createHash(algorithm);
    for await (const chunk of source(size)) h.update(chunk as Buffer);
    h.digest();
  });
}

/**
 * The rows of a stream scenario: Vitrine against the slowest of the ceilings measured in the
 * same run (the target), against each ceiling on its own, and the server's RSS growth.
 */
export function streamRows(
  scenario: string,
  operation: string,
  ceilings: [string, Summary][],
  samples: { vitrine: number[]; rss: number[] },
  targets: { ratio: number; rssMib: number },
): Row[] {
  const [slowestLabel, slowest] = ceilings.reduce((a, b) => (b[1].median < a[1].median ? b : a));
  const vitrine = summarize(samples.vitrine);
  const rss = summarize(samples.rss);
  const r = ratio(vitrine, slowest);
  const subject = { label: 'Vitrine data plane', value: vitrine };
  return [
    {
      scenario,
      metric: `${operation} vs the ${ceilings.length === 2 ? 'slower' : 'slowest'} ceiling`,
      unit: 'MiB/s',
      subject,
      baseline: { label: slowestLabel, value: slowest },
      ratio: r,
      target: { text: `>= ${targets.ratio}x`, met: r.median >= targets.ratio },
    },
    ...ceilings.map(([label, value]): Row => ({ scenario, metric: `ceiling: ${label}`, unit: 'MiB/s', subject, baseline: { label, value }, ratio: ratio(vitrine, value) })),
    { scenario, metric: `server RSS growth during a ${operation} (lower is better)`, unit: 'MiB', subject: { label: 'Vitrine', value: rss }, target: { text: `< ${targets.rssMib} MiB`, met: rss.median < targets.rssMib } },
  ];
}
