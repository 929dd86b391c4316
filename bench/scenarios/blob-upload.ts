// Blob upload: Vitrine's data plane (PUT, md5 + sha512 while streaming, fsync, commit)
// against the ceilings of the same bytes on the same machine in the same run. The target
// compares with the slowest ceiling: Vitrine cannot beat whichever of disk, loopback or
// hashing limits it, and should lose little to it. RSS growth shows the constant memory.
import { summarize, type Summary } from '../lib/stats';
import { NotRunnable } from '../targets/vitrine';
import {
  streamRows, blobSize, createQueuedImage, deleteImage, hashMs, mibPerSecond, putStream, rawDiskWriteMs, removeRawFile, rssGrowthDuring, startBlobVitrine, startLoopbackServer,
} from './blob-common';
import type { Scenario } from './types';
import { rssBytes } from '../lib/proc';

const UPLOAD_TARGET = 0.8;
const RSS_TARGET_MIB = 64;

export const blobUploadScenario: Scenario = {
  name: 'blob.upload',
  description: 'data-plane PUT throughput vs raw disk write+fsync, raw loopback HTTP, md5 and sha512 alone; server RSS growth',
  async run(ctx) {
    const size = blobSize(ctx);
    const sizeLabel = `${size / (1 << 20)} MiB`;
    let v;
    try {
      v = await startBlobVitrine(ctx, 'vitrine-blob-up', ctx.opts.vitrinePort + 2);
    } catch (err) {
      if (!(err instanceof NotRunnable)) throw err;
      return [{ scenario: this.name, metric: `PUT ${sizeLabel}`, unit: 'MiB/s', skipped: `Vitrine not runnable: ${err.message}` }];
    }
    const loopback = await startLoopbackServer(ctx.opts.ceilingPort + 2);
    const samples = { vitrine: [] as number[], disk: [] as number[], loopback: [] as number[], md5: [] as number[], sha512: [] as number[], rss: [] as number[] };
    try {
      for (let round = 0; round < ctx.opts.rounds; round++) {
        const id = await createQueuedImage(v);
        const before = rssBytes(v.pid);
        const t0 = performance.now();
        const put = putStream(`${v.url}/v1/artifacts/${id}/blobs/image`, v.headers, size);
        samples.rss.push(await rssGrowthDuring(v.pid, before, put));
        const status = await put;
        if (status !== 200) throw new Error(`blob upload: HTTP ${status}`);
        samples.vitrine.push(mibPerSecond(size, performance.now() - t0));
        await deleteImage(v, id);

        samples.disk.push(mibPerSecond(size, await rawDiskWriteMs(ctx.workDir, size)));
        removeRawFile(ctx.workDir);
        const t1 = performance.now();
        if ((await putStream(`${loopback.url}/`, {}, size)) !== 200) throw new Error('loopback ceiling failed');
        samples.loopback.push(mibPerSecond(size, performance.now() - t1));
        samples.md5.push(mibPerSecond(size, await hashMs('md5', size)));
        samples.sha512.push(mibPerSecond(size, await hashMs('sha512', size)));
        ctx.log(`  blob upload round ${round + 1}: Vitrine ${samples.vitrine[round].toFixed(0)} MiB/s; disk ${samples.disk[round].toFixed(0)}, loopback ${samples.loopback[round].toFixed(0)}, md5 ${samples.md5[round].toFixed(0)}, sha512 ${samples.sha512[round].toFixed(0)} MiB/s; RSS +${samples.rss[round].toFixed(1)} MiB`);
      }
    } finally {
      loopback.stop();
      await v.svc.stop();
    }
    const ceilings: [string, Summary][] = [
      ['raw disk write + fsync', summarize(samples.disk)],
      ['raw loopback HTTP PUT', summarize(samples.loopback)],
      ['md5 alone', summarize(samples.md5)],
      ['sha512 alone', summarize(samples.sha512)],
    ];
    return streamRows(this.name, `PUT ${sizeLabel}`, ceilings, samples, { ratio: UPLOAD_TARGET, rssMib: RSS_TARGET_MIB });
  },
};
