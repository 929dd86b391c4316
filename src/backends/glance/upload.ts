import { createHash, type Hash } from 'node:crypto';
import { finished, PassThrough, pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { fail, VitrineError } from '../../domain/errors';
import type { UploadMeta } from '../port';
import { UploadMeter } from '../common/meter';

/**
 * The body of an upload on its way to Glance, with constant memory: the shared meter (cap,
 * progress), then a check that holds back the last chunk until the end, so a body that is
 * shorter than announced or does not match its announced digests never completes upstream:
 * the request to Glance is broken off instead and Glance puts the image back to queued.
 * (Glance 25.1 does not verify x-openstack-image-size: ending the body early but cleanly
 * would store a truncated image.)
 */


class EndCheck extends Transform {
  private held: Buffer | undefined;
  private readonly md5: Hash | undefined;
  private readonly sha512: Hash | undefined;

  constructor(private readonly meta: UploadMeta, private readonly declared: number | undefined, private readonly count: () => number) {
    super({ highWaterMark: 1 << 20 });
    this.md5 = meta.expectedMd5 !== undefined ? createHash('md5') : undefined;
    this.sha512 = meta.expectedSha512 !== undefined ? createHash('sha512') : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.md5?.update(chunk);
    this.sha512?.update(chunk);
    const previous = this.held;
    this.held = chunk;
    done(null, previous);
  }

  override _flush(done: TransformCallback): void {
    const size = this.count();
    if (this.declared !== undefined && size !== this.declared) return done(new VitrineError('SIZE_MISMATCH', `received ${size} bytes, ${this.declared} were announced`, { received: size, expected: this.declared }));
    const md5 = this.md5?.digest('hex');
    if (md5 !== undefined && md5 !== this.meta.expectedMd5) return done(new VitrineError('CHECKSUM_MISMATCH', `the md5 of the received bytes is ${md5}, not ${this.meta.expectedMd5}`, { md5 }));
    const sha512 = this.sha512?.digest('hex');
    if (sha512 !== undefined && sha512 !== this.meta.expectedSha512) return done(new VitrineError('CHECKSUM_MISMATCH', 'the sha512 of the received bytes differs from the announced one', { sha512 }));
    done(null, this.held);
  }
}

/** The stream undici reads with 'data' events, once it has written the headers; `sent` tells whether body bytes went out. */
class Wire extends PassThrough {
  sent = false;

  constructor() {
    super({ highWaterMark: 1 << 16 });
    // Count only what a consumer takes: a listener of our own would start the flow by itself.
    const watch = (event: string | symbol) => {
      if (event !== 'data') return;
      this.off('newListener', watch);
      this.on('data', () => (this.sent = true));
    };
    this.on('newListener', watch);
  }
}

export interface OutgoingUpload {
  /** What to send to Glance. It never errors or ends early: on failure it just stops, until `abort()`. */
  stream: Readable;
  /** Resolves with the reason once our side fails (client gone, over the cap, size or digest mismatch). */
  failed: Promise<Error>;
  /** Whether body bytes went out to Glance (so Glance has, or soon will have, started on the upload). */
  sent(): boolean;
  /** Bytes read from the client so far. */
  bytes(): number;
  /** Why our side failed, if it did. */
  cause(): Error | undefined;
  /** Breaks off the request to Glance (undici then drops the connection). */
  abort(): void;
  /** Stops reading the client's body (which is never destroyed: its owner answers and drains it). */
  stop(): void;
}

/**
 * A failure does not break off the request to Glance at once: the caller first lets Glance
 * reach the upload (so that Glance is the one that rolls the image back), then aborts.
 * Breaking off at once would leave Glance working through what it had buffered, the image
 * `saving` for a while after the error was reported.
 */
export function outgoingUpload(body: Readable, meta: UploadMeta, declared: number | undefined, cap: number, run: {
  progressIntervalMs: number;
  onProgress: (bytes: number, elapsedMs: number) => void;
  signal?: AbortSignal;
}): OutgoingUpload {
  let cause: Error | undefined;
  let reportFailure!: (err: Error) => void;
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
  const fail = (err: Error) => {
    if (cause) return;
    cause = err;
    reportFailure(err);
  };
  const meter = new UploadMeter({
    cap,
    overCap: () => declared !== undefined
      ? new VitrineError('SIZE_MISMATCH', `the body is longer than the ${cap} bytes announced`)
      : new VitrineError('BLOB_TOO_LARGE', `the upload passed the largest size an image accepts (${cap} bytes)`, { limit: cap }),
    headBytes: 0,
    progressIntervalMs: run.progressIntervalMs,
    onProgress: run.onProgress,
  });
  const check = new EndCheck(meta, declared, () => meter.bytes);
  const wire = new Wire();
  const stop = () => {
    body.unpipe(meter);
    meter.destroy();
  };
  const clientGone = () => {
    fail(new VitrineError('BAD_INPUT', 'the client closed the connection before the upload finished'));
    stop();
  };
  // Piped, not pipelined: a failure must not destroy the client's request, whose answer is still due.
  body.pipe(meter);
  const unwatch = finished(body, (err) => {
    if (err) clientGone();
  });
  pipeline(meter, check, (err) => {
    if (err) fail(cause ?? err);
    unwatch();
    run.signal?.removeEventListener('abort', clientGone);
  });
  // Piped: an error upstream leaves the wire open (and idle), it only ends with a complete, verified body.
  check.pipe(wire);
  run.signal?.addEventListener('abort', clientGone, { once: true });
  return {
    stream: wire,
    failed,
    sent: () => wire.sent,
    bytes: () => meter.bytes,
    cause: () => cause,
    abort: () => wire.destroy(cause ?? new Error('upload aborted')),
    stop,
  };
}
