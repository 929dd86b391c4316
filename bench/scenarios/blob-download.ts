// Blob download: Vitrine's data plane GET of a stored blob against the slower of a raw
// read of a file of the same size on the same disk and a bare loopback HTTP GET of the
// same number of bytes. RSS growth shows the download streams.
import { rssBytes } from '../lib/proc';
import { summarize, type Summary } from '../lib/stats';
import { NotRunnable } from '../targets/vitrine';
import { streamRows, blobSize, createQueuedImage, getDiscard, mibPerSecond, putStream, rawDiskReadMs, rawDiskWriteMs, removeRawFile, rssGrowthDuring, startBlobVitrine, startLoopbackServer } from './blob-common';
import type { Scenario } from './types';

const DOWNLOAD_TARGET = 0.8;
const RSS_TARGET_MIB = 64;

export const blobDownloadScenario: Scenario = {
  name: 'blob.download',
  description: 'data-plane GET throughput vs the slower of raw disk read and raw loopback HTTP GET; server RSS growth',
  async run(ctx) {
    const size = blobSize(ctx);
    const sizeLabel = `${size / (1 << 20)} MiB`;
    let v;
    try {
      v = await startBlobVitrine(ctx, 'vitrine-blob-down', ctx.opts.vitrinePort + 3);
    } catch (err) {
      if (!(err instanceof NotRunnable)) throw err;
      return [{ scenario: this.name, metric: `GET ${sizeLabel}`, unit: 'MiB/s', skipped: `Vitrine not runnable: ${err.message}` }];
    }
    const loopback = await startLoopbackServer(ctx.opts.ceilingPort + 3);
    const samples = { vitrine: [] as number[], disk: [] as number[], loopback: [] as number[], rss: [] as number[] };
    try {
      const id = await createQueuedImage(v);
      const status = await putStream(`${v.url}/v1/artifacts/${id}/blobs/image`, v.headers, size);
      if (status !== 200) throw new Error(`blob upload for the download bench: HTTP ${status}`);
      await rawDiskWriteMs(ctx.workDir, size);
      for (let round = 0; round < ctx.opts.rounds; round++) {
        const before = rssBytes(v.pid);
        const t0 = performance.now();
        const get = getDiscard(`${v.url}/v1/artifacts/${id}/blobs/image`, v.headers);
        samples.rss.push(await rssGrowthDuring(v.pid, before, get));
        if ((await get) !== size) throw new Error('blob download: short body');
        samples.vitrine.push(mibPerSecond(size, performance.now() - t0));
        samples.disk.push(mibPerSecond(size, await rawDiskReadMs(ctx.workDir)));
        const t1 = performance.now();
        if ((await getDiscard(`${loopback.url}/?n=${size}`, {})) !== size) throw new Error('loopback ceiling: short body');
        samples.loopback.push(mibPerSecond(size, performance.now() - t1));
        ctx.log(`  blob download round ${round + 1}: Vitrine ${samples.vitrine[round].toFixed(0)} MiB/s; disk read ${samples.disk[round].toFixed(0)}, loopback ${samples.loopback[round].toFixed(0)} MiB/s; RSS +${samples.rss[round].toFixed(1)} MiB`);
      }
    } finally {
      removeRawFile(ctx.workDir);
      loopback.stop();
      await v.svc.stop();
    }
    const ceilings: [string, Summary][] = [
      ['raw disk read (page cache warm)', summarize(samples.disk)],
      ['raw loopback HTTP GET', summarize(samples.loopback)],
    ];
    return streamRows(this.name, `GET ${sizeLabel}`, ceilings, samples, { ratio: DOWNLOAD_TARGET, rssMib: RSS_TARGET_MIB });
  },
};
