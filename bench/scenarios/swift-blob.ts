// Swift blob store: Vitrine's SwiftBlobStore writing and reading a blob against a direct
// PUT and GET of the same bytes to the same real Swift (scripts/swift-dev), in the same
// run, alternating round by round. The store adds what makes it safe: an md5 while
// sending (checked against Swift's ETag), a Static Large Object manifest above its
// buffer, If-None-Match. Both sides run in this process, one stream each; the store's
// RSS growth during a write shows the constant memory, and the CPU time this process
// spends per GiB (which, unlike throughput, does not depend on the machine's load)
// shows the cost of the md5: on a small machine it competes with Swift's own CPU.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SwiftBlobStore } from '../../src/storage/blobs/swift';
import type { BenchContext } from '../lib/context';
import { onCleanup, rssBytes, runSync } from '../lib/proc';
import type { Row } from '../lib/report';
import { ratio, summarize } from '../lib/stats';
import { parseEnvLines } from '../targets/glance';
import { blobSize, getDiscard, mibPerSecond, putStream, rssGrowthDuring, source } from './blob-common';
import type { Scenario } from './types';

const TARGET = 0.8;
const RSS_TARGET_MIB = 64;

interface DevSwift {
  authUrl: string;
  user: string;
  key: string;
  stop: () => void;
}

/** `swift-dev up` on free ports in the run's work dir; stopped (and purged) at cleanup. */
function startSwift(ctx: BenchContext): DevSwift {
  const script = join(ctx.opts.repoRoot, 'scripts', 'swift-dev');
  const dir = join(ctx.workDir, 'swift');
  const down = (): void => {
    try {
      runSync(script, ['down', '--dir', dir, '--purge', '-q'], { timeoutMs: 60_000 });
    } catch (err) {
      process.stderr.write(`bench: swift-dev down --dir ${dir} failed: ${String(err)}\n`);
    }
  };
  const remove = onCleanup(down);
  const env = parseEnvLines(runSync(script, ['up', '--port', '0', '--backend-base', '0', '--dir', dir], { timeoutMs: 900_000 }));
  return {
    authUrl: env.SWIFT_AUTH_URL,
    user: env.SWIFT_USER,
    key: env.SWIFT_KEY,
    stop: () => {
      remove();
      down();
    },
  };
}

async function token(swift: DevSwift): Promise<{ headers: Record<string, string>; storageUrl: string }> {
  const res = await fetch(swift.authUrl, { headers: { 'x-auth-user': swift.user, 'x-auth-key': swift.key } });
  await res.arrayBuffer();
  return { headers: { 'x-auth-token': res.headers.get('x-auth-token') ?? '' }, storageUrl: res.headers.get('x-storage-url') ?? '' };
}

function throughputRow(scenario: string, metric: string, subject: number[], baseline: number[], baselineLabel: string): Row {
  const s = summarize(subject);
  const b = summarize(baseline);
  const r = ratio(s, b);
  return {
    scenario,
    metric,
    unit: 'MiB/s',
    subject: { label: 'SwiftBlobStore', value: s },
    baseline: { label: baselineLabel, value: b },
    ratio: r,
    target: { text: `>= ${TARGET}x`, met: r.median >= TARGET },
  };
}

export const swiftBlobScenario: Scenario = {
  name: 'swift.blob',
  description: 'SwiftBlobStore write/read throughput vs a direct PUT/GET of the same bytes to the same real Swift; RSS growth during a write',
  async run(ctx) {
    const size = blobSize(ctx);
    const sizeLabel = `${size / (1 << 20)} MiB`;
    const swift = startSwift(ctx);
    const container = `bench-${randomUUID()}`;
    const store = new SwiftBlobStore('swift', { auth: { url: swift.authUrl, user: swift.user, key: swift.key }, container });
    const samples = { storeWrite: [] as number[], storeRead: [] as number[], directPut: [] as number[], directGet: [] as number[], rss: [] as number[], storeCpu: [] as number[], directCpu: [] as number[] };
    const gib = size / (1 << 30);
    const cpuSeconds = (since: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / 1e6;
    };
    try {
      await store.ping();
      const direct = await token(swift);
      const directUrl = `${direct.storageUrl}/${container}/direct`;
      for (let round = 0; round < ctx.opts.rounds; round++) {
        const before = rssBytes(process.pid);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const writing = store.write(source(size));
        samples.rss.push(await rssGrowthDuring(process.pid, before, writing));
        const { location, size: written } = await writing;
        if (written !== size) throw new Error(`SwiftBlobStore wrote ${written} bytes of ${size}`);
        samples.storeWrite.push(mibPerSecond(size, performance.now() - t0));
        samples.storeCpu.push(cpuSeconds(c0) / gib);

        const t1 = performance.now();
        let read = 0;
        await pipeline(await store.read(location), new Writable({ write: (chunk: Buffer, _e, cb) => ((read += chunk.length), cb()) }));
        if (read !== size) throw new Error(`SwiftBlobStore read ${read} bytes of ${size}`);
        samples.storeRead.push(mibPerSecond(size, performance.now() - t1));
        await store.delete(location);

        const c2 = process.cpuUsage();
        const t2 = performance.now();
        const status = await putStream(directUrl, direct.headers, size);
        if (status !== 201) throw new Error(`direct PUT: HTTP ${status}`);
        samples.directPut.push(mibPerSecond(size, performance.now() - t2));
        samples.directCpu.push(cpuSeconds(c2) / gib);
        const t3 = performance.now();
        if ((await getDiscard(directUrl, direct.headers)) !== size) throw new Error('direct GET: short body');
        samples.directGet.push(mibPerSecond(size, performance.now() - t3));
        await fetch(directUrl, { method: 'DELETE', headers: direct.headers }).then((r) => r.arrayBuffer());

        ctx.log(
          `  swift blob round ${round + 1}: store write ${samples.storeWrite[round].toFixed(0)} vs direct PUT ${samples.directPut[round].toFixed(0)} MiB/s; ` +
            `store read ${samples.storeRead[round].toFixed(0)} vs direct GET ${samples.directGet[round].toFixed(0)} MiB/s; RSS +${samples.rss[round].toFixed(1)} MiB`,
        );
      }
    } finally {
      await store.close();
      swift.stop();
    }
    const rss = summarize(samples.rss);
    const storeCpu = summarize(samples.storeCpu);
    const directCpu = summarize(samples.directCpu);
    return [
      throughputRow(this.name, `write ${sizeLabel}`, samples.storeWrite, samples.directPut, 'direct Swift PUT'),
      throughputRow(this.name, `read ${sizeLabel}`, samples.storeRead, samples.directGet, 'direct Swift GET'),
      {
        scenario: this.name,
        metric: 'client CPU per GiB written (lower is better)',
        unit: 's',
        subject: { label: 'SwiftBlobStore', value: storeCpu },
        baseline: { label: 'direct Swift PUT', value: directCpu },
        ratio: ratio(storeCpu, directCpu),
      },
      { scenario: this.name, metric: `process RSS growth during a ${sizeLabel} write (lower is better)`, unit: 'MiB', subject: { label: 'SwiftBlobStore', value: rss }, target: { text: `< ${RSS_TARGET_MIB} MiB`, met: rss.median < RSS_TARGET_MIB } },
    ];
  },
};
