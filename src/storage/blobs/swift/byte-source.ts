import type { Readable } from 'node:stream';

/**
 * Pulls a Readable in pieces of at most N bytes, so that a write can cut the stream into
 * segments without copying it. It remembers the source's own error (a client that went
 * away), which a failed write reports rather than whatever the HTTP client made of it.
 *
 * Chunks are taken one 'data' event at a time, pausing in between. (A Readable's async
 * iterator calls `read()`, which joins every chunk buffered meanwhile into a new buffer:
 * a copy of each byte, and RSS growth, whenever Swift is slower than the client.)
 */
export class ByteSource {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  /** The error the source itself raised, if it did. */
  error: unknown;

  constructor(private readonly source: Readable) {
    source.pause();
    // Between reads nothing listens for errors: an abort meanwhile must not go unhandled.
    source.on('error', ignore);
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
  abandon(): void {
    this.ended = true;
    if (!this.source.destroyed) this.source.destroy();
  }

  /** Done with the source: its errors are the caller's again. */
  release(): void {
    this.source.off('error', ignore);
  }

  private async fill(): Promise<boolean> {
    while (this.pending.length === 0) {
      if (this.ended) return false;
      let chunk: Buffer | null;
      try {
        chunk = await this.chunk();
      } catch (err) {
        this.error = err;
        this.ended = true;
        throw err;
      }
      if (chunk === null) {
        this.ended = true;
        return false;
      }
      this.pending = chunk;
    }
    return true;
  }

  /** One chunk as the source pushed it; null at its end. */
  private chunk(): Promise<Buffer | null> {
    const s = this.source;
    if (s.errored) return Promise.reject(s.errored);
    if (s.readableEnded) return Promise.resolve(null);
    if (s.destroyed) return Promise.reject(prematureClose());
    return new Promise((resolve, reject) => {
      const settle = () => {
        s.off('data', onData);
        s.off('end', onEnd);
        s.off('error', onError);
        s.off('close', onClose);
      };
      const onData = (value: unknown) => {
        s.pause();
        settle();
        resolve(Buffer.isBuffer(value) ? value : typeof value === 'string' ? Buffer.from(value) : Buffer.from(value as Uint8Array));
      };
      const onEnd = () => {
        settle();
        resolve(null);
      };
      const onError = (err: unknown) => {
        settle();
        reject(err);
      };
      const onClose = () => {
        settle();
        if (s.readableEnded) resolve(null);
        else reject(s.errored ?? prematureClose());
      };
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('error', onError);
      s.on('close', onClose);
      s.resume();
    });
  }
}

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

function ignore(): void {}
