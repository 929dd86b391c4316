// Image upload (PUT /v2/images/{id}/file) through Vitrine in front of Glance
// against the same upload straight to that Glance (issue 7: at least 0.9x), and
// Glance's own upload next to Vitrine's on its native store (issue 4: Vitrine at
// least 1.3x Glance's upload). Each round creates a queued image on each side,
// uploads the same bytes, checks the result, and deletes it, so the stores
// never fill up. Also the proxy's RSS growth during an upload (it streams) and
// the CPU seconds per GiB of every process involved.
import { blobSize } from './blob-common';
import { createImage, deleteImage, imageOn, mibRow, rotated, rssRow, streamSides, StreamSamples, upload, type StreamSide } from './proxy-streams';
import type { Scenario } from './types';

const PROXY_TARGET = 0.9;
const NATIVE_VS_GLANCE_TARGET = 1.3;

export const proxyUploadScenario: Scenario = {
  name: 'proxy.upload',
  description: 'PUT /v2/images/{id}/file through Vitrine in front of Glance vs straight to Glance; Glance\'s upload vs Vitrine native',
  async run(ctx) {
    const size = blobSize(ctx);
    const sizeLabel = `${size / (1 << 20)} MiB`;
    const sides = await streamSides(ctx);
    const order: StreamSide[] = [sides.proxy, sides.direct, sides.native];
    const samples = new StreamSamples();
    const proxyRss: number[] = [];
    for (let round = 0; round < ctx.opts.rounds; round++) {
      const checksums: string[] = [];
      for (const side of rotated(order, round)) {
        const id = await createImage(side, `bench-upload-${process.pid}-${round}`);
        try {
          const t = await upload(side, id, size);
          const after = await imageOn(side, id);
          if (after.status !== 'active' || after.size !== size || !after.checksum) throw new Error(`${side.label}: after upload the image is ${after.status}, ${after.size} bytes`);
          checksums.push(after.checksum);
          samples.add(side, t);
          if (side === sides.proxy && t.rssMib !== undefined) proxyRss.push(t.rssMib);
        } finally {
          await deleteImage(side, id);
        }
      }
      // Same bytes everywhere: a different checksum means a side stored something else.
      if (new Set(checksums).size !== 1) throw new Error(`proxy.upload: checksums differ between sides: ${checksums.join(', ')}`);
      ctx.log(`  upload round ${round + 1}/${ctx.opts.rounds}: ${order.map((s) => `${s.label} ${samples.last(s).toFixed(0)} MiB/s`).join(', ')}; proxy RSS +${proxyRss[round]?.toFixed(1)} MiB`);
    }
    return [
      mibRow(this.name, `PUT ${sizeLabel} through the proxy vs straight to Glance`, samples.mib(sides.proxy), samples.mib(sides.direct), PROXY_TARGET),
      mibRow(this.name, `PUT ${sizeLabel}: Vitrine native vs Glance's own upload`, samples.mib(sides.native), samples.mib(sides.direct), NATIVE_VS_GLANCE_TARGET),
      samples.cpuRow(this.name, 'CPU per GiB uploaded, through the proxy vs straight to Glance', sides.proxy, sides.direct),
      samples.cpuRow(this.name, 'CPU per GiB uploaded, Vitrine native vs Glance', sides.native, sides.direct),
      rssRow(this.name, `proxy RSS growth during a ${sizeLabel} PUT (lower is better)`, sides.proxy.label, proxyRss),
    ];
  },
};
