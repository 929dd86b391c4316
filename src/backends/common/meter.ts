import { Transform, type TransformCallback } from 'node:stream';

/**
 * The first stage of an upload: counts bytes, stops the stream the moment it passes its
 * cap (so nothing over a limit is ever stored), keeps the first bytes for format sniffing,
 * and reports progress at most once per interval. Memory stays constant: chunks pass on.
 */
export interface MeterOptions {
  /** Bytes allowed; one more fails the stream with `overCap()`. */
  cap: number;
  overCap: () => Error;
  /** How many leading bytes to keep in `head`. */
  headBytes: number;
  progressIntervalMs: number;
  onProgress: (bytes: number, elapsedMs: number) => void;
}

export class UploadMeter extends Transform {
  bytes = 0;
  private readonly headParts: Buffer[] = [];
  private headLength = 0;
  private readonly startedAt = performance.now();
  /** The first report comes one interval in: short uploads only report their outcome. */
  private lastProgressAt = this.startedAt;

  constructor(private readonly options: MeterOptions) {
    super({ highWaterMark: 1 << 20 });
  }

  /** The first `headBytes` bytes seen (fewer if the upload was shorter). */
  get head(): Buffer {
    return Buffer.concat(this.headParts, this.headLength);
  }

  get elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.options.cap) {
      done(this.options.overCap());
      return;
    }
    if (this.headLength < this.options.headBytes) {
      const part = chunk.subarray(0, this.options.headBytes - this.headLength);
      this.headParts.push(Buffer.from(part));
      this.headLength += part.length;
    }
    const now = performance.now();
    if (now - this.lastProgressAt >= this.options.progressIntervalMs) {
      this.lastProgressAt = now;
      this.options.onProgress(this.bytes, now - this.startedAt);
    }
    done(null, chunk);
  }
}
