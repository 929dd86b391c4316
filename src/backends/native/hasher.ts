import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';

/**
 * Checksums computed while bytes stream, off the event loop. md5 and sha512 each run in a
 * worker thread of their own: on one thread the two together run at about half the speed
 * of the slower one, which would make hashing the ceiling of every upload.
 */
export const HASH_ALGORITHMS = ['md5', 'sha512'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];
export type Digests = Record<HashAlgorithm, string>;

/** Bytes are handed to workers in batches of this size, to keep messages few. */
const BATCH_BYTES = 1 << 20;
/** A session stops reading its source while workers lag this far behind. */
const MAX_IN_FLIGHT = 16 << 20;

// Runs inside each worker: one hash per session id, acknowledging bytes as they are hashed.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
parentPort.on('message', (m) => {
  let h = sessions.get(m.id);
  if (m.op === 'update') {
    if (!h) sessions.set(m.id, (h = createHash(workerData.algorithm)));
    h.update(new Uint8Array(m.bytes));
    parentPort.postMessage({ op: 'ack', id: m.id, n: m.bytes.byteLength });
  } else if (m.op === 'digest') {
    sessions.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: (h || createHash(workerData.algorithm)).digest('hex') });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
  }
});`;

interface WorkerMessage { op: 'ack' | 'digest'; id: number; n?: number; hex?: string }

class HashWorker {
  private worker: Worker | undefined;
  private readonly listeners = new Map<number, (m: WorkerMessage) => void>();

  constructor(private readonly algorithm: HashAlgorithm) {}

  private get thread(): Worker {
    if (!this.worker) {
      this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithm: this.algorithm } });
      this.worker.unref();
      this.worker.on('message', (m: WorkerMessage) => this.listeners.get(m.id)?.(m));
    }
    return this.worker;
  }

  listen(id: number, fn: (m: WorkerMessage) => void): void {
    this.listeners.set(id, fn);
  }

  forget(id: number): void {
    this.listeners.delete(id);
  }

  post(message: { op: string; id: number; bytes?: SharedArrayBuffer }): void {
    this.thread.postMessage(message);
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

/** One pair of hash workers per process, shared by all uploads. */
export class HashPool {
  private readonly workers = HASH_ALGORITHMS.map((a) => [a, new HashWorker(a)] as const);
  private nextId = 1;

  /** A Transform that passes bytes through unchanged while hashing them. */
  tap(): HashingTap {
    return new HashingTap(this.nextId++, this.workers);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(([, w]) => w.close()));
  }
}

export class HashingTap extends Transform {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private inFlight = 0;
  private waiting: TransformCallback | undefined;
  private digests: Promise<Digests> | undefined;

  constructor(private readonly id: number, private readonly workers: readonly (readonly [HashAlgorithm, HashWorker])[]) {
    super({ highWaterMark: 1 << 20 });
    for (const [, w] of workers) {
      w.listen(id, (m) => {
        if (m.op !== 'ack') return;
        this.inFlight -= m.n!;
        this.resumeIfDrained();
      });
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= BATCH_BYTES) this.flushBatch();
    this.push(chunk);
    if (this.inFlight > MAX_IN_FLIGHT) this.waiting = done;
    else done();
  }

  override _flush(done: TransformCallback): void {
    this.flushBatch();
    done();
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    // A stream that ended normally keeps its session until result() asks for the digests.
    if (!this.digests && (err || !this.writableFinished)) this.discardSession();
    done(err);
  }

  /** The digests of every byte that passed, once the stream has ended. */
  result(): Promise<Digests> {
    this.digests ??= new Promise<Digests>((resolve) => {
      this.flushBatch();
      const out: Partial<Digests> = {};
      let remaining = this.workers.length;
      for (const [algorithm, w] of this.workers) {
        w.listen(this.id, (m) => {
          if (m.op !== 'digest') return;
          out[algorithm] = m.hex!;
          w.forget(this.id);
          if (--remaining === 0) resolve(out as Digests);
        });
        w.post({ op: 'digest', id: this.id });
      }
    });
    return this.digests;
  }

  /**
   * Copies the batch once into shared memory that every worker reads: one copy per byte
   * instead of one per worker, which matters at several hundred MiB/s on two cores.
   */
  private flushBatch(): void {
    if (this.batchBytes === 0) return;
    const shared = new SharedArrayBuffer(this.batchBytes);
    const view = Buffer.from(shared);
    let offset = 0;
    for (const chunk of this.batch) offset += chunk.copy(view, offset);
    this.batch = [];
    this.batchBytes = 0;
    for (const [, w] of this.workers) {
      this.inFlight += shared.byteLength;
      w.post({ op: 'update', id: this.id, bytes: shared });
    }
  }

  private resumeIfDrained(): void {
    if (this.waiting && this.inFlight <= MAX_IN_FLIGHT / 2) {
      const done = this.waiting;
      this.waiting = undefined;
      done();
    }
  }

  private discardSession(): void {
    for (const [, w] of this.workers) {
      w.post({ op: 'drop', id: this.id });
      w.forget(this.id);
    }
  }
}
