import type { Readable } from 'node:stream';

/**
 * Pulls a Readable in pieces of at most N bytes, so that a write can cut the stream into
 * segments without copying it. It remembers the source's own error (a client that went
 * away), which a failed write reports rather than whatever the HTTP client made of it.
 */
export class ByteSource {
  private readonly chunks: AsyncIterator<unknown>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  /** The error the source itself raised, if it did. */
  error: unknown;

  constructor(private readonly source: Readable) {
    this.chunks = source[Symbol.asyncIterator]();
    // The iterator listens for errors only once read; until then (or after an early
    // failure) an error, an abort say, must not go unhandled.
    source.on('error', ignore);
  }

  /** Done with the source: its errors are the caller's again. */
  release(): void {
    this.source.off('error', ignore);
  }

  /** The next bytes, at most `max` of them; null at the end. */
  async next(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const out = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(out.length);
    return out;
  }

  /** Up to `size` bytes in one buffer (fewer only at the end). */
  async read(size: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let length = 0;
    while (length < size) {
      const part = await this.next(size - length);
      if (!part) break;
      parts.push(part);
      length += part.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, length);
  }

  /** True once the source has ended and every byte was taken. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }

  /** Stops reading: the source is destroyed (what a pipeline does to its source on failure). */
  async abandon(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.chunks.return?.().catch(() => undefined);
  }

  private async fill(): Promise<boolean> {
    while (this.pending.length === 0) {
      if (this.ended) return false;
      let item: IteratorResult<unknown>;
      try {
        item = await this.chunks.next();
      } catch (err) {
        this.error = err;
        this.ended = true;
        throw err;
      }
      if (item.done) {
        this.ended = true;
        return false;
      }
      const value = item.value;
      this.pending = Buffer.isBuffer(value) ? value : typeof value === 'string' ? Buffer.from(value) : Buffer.from(value as Uint8Array);
    }
    return true;
  }
}

function ignore(): void {}
