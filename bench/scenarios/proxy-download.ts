// Image download (GET /v2/images/{id}/file) through Vitrine in front of Glance
// against the same download straight to that Glance (issue 7: at least 0.9x):
// both read the very same Glance image (same file, page cache warm for both).
// Glance's own download is shown next to Vitrine's on its native store
// (informative: issue 4 sets a target for uploads only). Also the proxy's RSS
// growth during a download (it streams) and the CPU seconds per GiB.
import { blobSize } from './blob-common';
import { createImage, deleteImage, download, mibRow, rotated, rssRow, streamSides, StreamSamples, upload, type StreamSide } from './proxy-streams';
import type { Scenario } from './types';

const PROXY_TARGET = 0.9;

export const proxyDownloadScenario: Scenario = {
  name: 'proxy.download',
  description: 'GET /v2/images/{id}/file through Vitrine in front of Glance vs straight to Glance (same image); Glance\'s download vs Vitrine native',
  async run(ctx) {
    const size = blobSize(ctx);
    const sizeLabel = `${size / (1 << 20)} MiB`;
    const sides = await streamSides(ctx);
    // One image in Glance read by both the proxy and the direct side; one in the native store.
    const glanceImage = await createImage(sides.direct, `bench-download-${process.pid}`);
    const nativeImage = await createImage(sides.native, `bench-download-${process.pid}`);
    const samples = new StreamSamples();
    const proxyRss: number[] = [];
    try {
      await upload(sides.direct, glanceImage, size);
      await upload(sides.native, nativeImage, size);
      const plan: [StreamSide, string][] = [[sides.proxy, glanceImage], [sides.direct, glanceImage], [sides.native, nativeImage]];
      for (let round = 0; round < ctx.opts.rounds; round++) {
        for (const [side, id] of rotated(plan, round)) {
          const t = await download(side, id, size);
          samples.add(side, t);
          if (side === sides.proxy && t.rssMib !== undefined) proxyRss.push(t.rssMib);
        }
        ctx.log(`  download round ${round + 1}/${ctx.opts.rounds}: ${plan.map(([s]) => `${s.label} ${samples.last(s).toFixed(0)} MiB/s`).join(', ')}; proxy RSS +${proxyRss[round]?.toFixed(1)} MiB`);
      }
    } finally {
      await deleteImage(sides.direct, glanceImage);
      await deleteImage(sides.native, nativeImage);
    }
    return [
      mibRow(this.name, `GET ${sizeLabel} through the proxy vs straight to Glance (same image)`, samples.mib(sides.proxy), samples.mib(sides.direct), PROXY_TARGET),
      mibRow(this.name, `GET ${sizeLabel}: Vitrine native vs Glance's own download (informative)`, samples.mib(sides.native), samples.mib(sides.direct)),
      samples.cpuRow(this.name, 'CPU per GiB downloaded, through the proxy vs straight to Glance', sides.proxy, sides.direct),
      samples.cpuRow(this.name, 'CPU per GiB downloaded, Vitrine native vs Glance', sides.native, sides.direct),
      rssRow(this.name, `proxy RSS growth during a ${sizeLabel} GET (lower is better)`, sides.proxy.label, proxyRss),
    ];
  },
};
