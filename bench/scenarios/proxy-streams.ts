// Shared by proxy.upload and proxy.download: image data (PUT/GET
// /v2/images/{id}/file, the same client request on every side) through Vitrine
// in front of Glance, straight to that Glance, and through a Vitrine on its own
// native store (SQLite + filesystem, a dedicated process, no seeding). The same
// bytes on every side (1 GiB, 256 MiB with --quick), one stream at a time,
// sides alternating within each round.
import type { BenchContext } from '../lib/context';
import { requestJson } from '../lib/http';
import { groupCpuSeconds, processCpuSeconds, rssBytes } from '../lib/proc';
import type { Row } from '../lib/report';
import { fmt, ratio, summarize, sumRounds } from '../lib/stats';
import type { GlanceProxyTarget } from '../targets/glance-proxy';
import { readToken, spawnVitrine } from '../targets/vitrine';
import { getDiscard, mibPerSecond, putStream, rssGrowthDuring } from './blob-common';

/** One side of a stream comparison: where `/v2/images` is and how to authenticate. */
export interface StreamSide {
  label: string;
  url: string;
  headers: Record<string, string>;
  /** The process whose RSS growth is reported (Vitrine sides only). */
  pid?: number;
  /** Readers of the CPU seconds used so far by the processes serving this side, by name. */
  cpu: Record<string, () => number>;
}

export interface StreamSides {
  proxy: StreamSide;
  direct: StreamSide;
  native: StreamSide;
  glance: GlanceProxyTarget['glance'];
  /** Stops the native Vitrine (the proxy and Glance are the run's). */
  stop(): Promise<void>;
}

/** Starts (once per run) the native Vitrine and returns the three sides. */
export function streamSides(ctx: BenchContext): Promise<StreamSides> {
  return ctx.once('proxy-stream-sides', async () => {
    const p = await ctx.glanceProxy();
    const port = ctx.opts.vitrinePort + 6;
    const { svc, dataDir } = await spawnVitrine(ctx, 'vitrine-native-streams', port);
    const token = await readToken(dataDir);
    const glanceCpu = () => groupCpuSeconds(p.glance.pid);
    return {
      proxy: { label: 'Vitrine /v2 -> Glance', url: p.url, headers: p.facadeHeaders, pid: p.pid, cpu: { vitrine: () => processCpuSeconds(p.pid), glance: glanceCpu } },
      direct: { label: 'Glance direct', url: p.glance.url, headers: p.identity, cpu: { glance: glanceCpu } },
      native: { label: 'Vitrine native /v2', url: `http://127.0.0.1:${port}`, headers: { 'x-auth-token': token, accept: 'application/json' }, pid: svc.pid, cpu: { vitrine: () => processCpuSeconds(svc.pid) } },
      glance: p.glance,
      stop: () => svc.stop(),
    };
  });
}

/** A queued raw/bare image on `side`, ready for data. */
export async function createImage(side: StreamSide, name: string): Promise<string> {
  const res = await requestJson<{ id: string }>(`${side.url}/v2/images`, { method: 'POST', headers: side.headers, body: { name, disk_format: 'raw', container_format: 'bare' } });
  if (res.status !== 201) throw new Error(`${side.label}: create image: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  return res.body.id;
}

export async function deleteImage(side: StreamSide, id: string): Promise<void> {
  const res = await requestJson(`${side.url}/v2/images/${id}`, { method: 'DELETE', headers: side.headers });
  if (res.status !== 204) throw new Error(`${side.label}: delete image ${id}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
}

export async function imageOn(side: StreamSide, id: string): Promise<{ status: string; size: number | null; checksum: string | null }> {
  const res = await requestJson<{ status: string; size: number | null; checksum: string | null }>(`${side.url}/v2/images/${id}`, { headers: side.headers });
  if (res.status !== 200) throw new Error(`${side.label}: show image ${id}: HTTP ${res.status}`);
  return res.body;
}

export interface Transfer {
  mibPerSecond: number;
  /** Peak RSS growth of side.pid during the transfer (MiB), when there is a pid. */
  rssMib?: number;
  /** CPU seconds per GiB moved, of each process serving the side. */
  cpuPerGiB: Record<string, number>;
}

/** Runs a transfer of `size` bytes, timing it and sampling the side's RSS and CPU. */
async function transfer(side: StreamSide, size: number, start: () => Promise<number>, check: (result: number) => void): Promise<Transfer> {
  const cpu = Object.entries(side.cpu);
  const cpu0 = cpu.map(([, read]) => read());
  const before = side.pid ? rssBytes(side.pid) : 0;
  const t0 = performance.now();
  const work = start();
  const rssMib = side.pid ? await rssGrowthDuring(side.pid, before, work) : undefined;
  check(await work);
  const ms = performance.now() - t0;
  const gib = size / (1 << 30);
  return { mibPerSecond: mibPerSecond(size, ms), rssMib, cpuPerGiB: Object.fromEntries(cpu.map(([name, read], i) => [name, (read() - cpu0[i]) / gib])) };
}

/** PUTs `size` bytes as one request (Content-Length known, as glanceclient sends it). */
export function upload(side: StreamSide, id: string, size: number): Promise<Transfer> {
  return transfer(side, size, () => putStream(`${side.url}/v2/images/${id}/file`, side.headers, size), (status) => {
    if (status !== 204) throw new Error(`${side.label}: upload: HTTP ${status}`);
  });
}

/** GETs the image's data, discarding it; checks that every byte arrived. */
export function download(side: StreamSide, id: string, size: number): Promise<Transfer> {
  return transfer(side, size, () => getDiscard(`${side.url}/v2/images/${id}/file`, side.headers), (got) => {
    if (got !== size) throw new Error(`${side.label}: download: ${got} of ${size} bytes`);
  });
}

/** A throughput comparison row over per-round MiB/s samples. */
export function mibRow(scenario: string, metric: string, subject: [string, number[]], baseline: [string, number[]], atLeast?: number): Row {
  const [s, b] = [summarize(subject[1]), summarize(baseline[1])];
  const r = ratio(s, b);
  return {
    scenario,
    metric,
    unit: 'MiB/s',
    subject: { label: subject[0], value: s },
    baseline: { label: baseline[0], value: b },
    ratio: r,
    target: atLeast === undefined ? undefined : { text: `>= ${atLeast}x`, met: r.median >= atLeast },
  };
}

export function rssRow(scenario: string, metric: string, label: string, samples: number[]): Row {
  return { scenario, metric, unit: 'MiB', subject: { label, value: summarize(samples) } };
}

/** The sides in a different order each round (rotated), so that no side always runs first. */
export function rotated<T>(sides: readonly T[], round: number): T[] {
  const k = round % sides.length;
  return [...sides.slice(k), ...sides.slice(0, k)];
}

/**
 * Per-round results of every side of a stream scenario: throughput, and the
 * CPU seconds per GiB of each process serving it.
 */
export class StreamSamples {
  private readonly speed = new Map<StreamSide, number[]>();
  private readonly cpu = new Map<StreamSide, Record<string, number[]>>();

  add(side: StreamSide, t: Transfer): void {
    if (!this.speed.has(side)) {
      this.speed.set(side, []);
      this.cpu.set(side, {});
    }
    this.speed.get(side)!.push(t.mibPerSecond);
    const cpu = this.cpu.get(side)!;
    for (const [name, v] of Object.entries(t.cpuPerGiB)) (cpu[name] ??= []).push(v);
  }

  mib(side: StreamSide): [string, number[]] {
    return [side.label, this.speed.get(side) ?? []];
  }

  /** Last round's MiB/s of a side, for the log. */
  last(side: StreamSide): number {
    return this.speed.get(side)?.at(-1) ?? NaN;
  }

  /** CPU seconds per GiB: every process serving `subject` against every process serving `baseline`. */
  cpuRow(scenario: string, metric: string, subject: StreamSide, baseline: StreamSide): Row {
    const side = (x: StreamSide) => {
      const parts = Object.entries(this.cpu.get(x) ?? {});
      const total = summarize(sumRounds(parts.map(([, v]) => v)));
      return { label: `${x.label} (${parts.map(([name, v]) => `${name} ${fmt(summarize(v).median)}`).join(' + ')})`, value: total };
    };
    const [s, b] = [side(subject), side(baseline)];
    return { scenario, metric: `${metric} (lower is better)`, unit: 'CPU s/GiB', subject: s, baseline: b, ratio: ratio(s.value, b.value) };
  }
}
