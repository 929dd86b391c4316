import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { VitrineError } from '../../domain/errors';

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
/**
 * V8 copies into a SharedArrayBuffer with relaxed atomic stores: a word at a time when the
 * source and target addresses are equally aligned, a byte at a time otherwise, about 7x
 * slower (0.3-0.6 CPU-s/GiB on the main thread, measured). HTTP body chunks each start
 * word-aligned, so after one of odd length every later chunk would be out of step. Instead
 * a chunk starts at the next offset that matches its alignment, leaving a gap of up to 7
 * bytes: a batch is a list of spans, and the workers hash the spans, not the gaps.
 */
const WORD = 8;
/** Pieces shorter than this are copied where they fall (slowly, but they are few bytes) rather than opening a span. */
const MIN_SPAN = 4096;
/**
 * Batches one upload may have in the workers at once. They are reused, never reallocated,
 * so an upload's hashing memory is bounded by RING × BATCH_BYTES whatever the garbage
 * collector does, and a source that outruns the workers waits.
 */
const RING = 16;

// Runs inside each worker: one hash per session id, acknowledging bytes as they are hashed.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
parentPort.on('message', (m) => {
  let h = sessions.get(m.id);
  if (m.op === 'update') {
    if (!h) sessions.set(m.id, (h = createHash(workerData.algorithm)));
    for (let i = 0; i < m.spans.length; i += 2) h.update(new Uint8Array(m.bytes, m.spans[i], m.spans[i + 1] - m.spans[i]));
    parentPort.postMessage({ op: 'ack', id: m.id });
  } else if (m.op === 'digest') {
    sessions.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: (h || createHash(workerData.algorithm)).digest('hex') });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
  }
});`;

interface WorkerMessage { op: 'ack' | 'digest' | 'failed'; id: number; hex?: string; error?: Error }

class HashWorker {
  private worker: Worker | undefined;
  private readonly listeners = new Map<number, (m: WorkerMessage) => void>();

  constructor(private readonly algorithm: HashAlgorithm) {}

  private get thread(): Worker {
    if (!this.worker) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithm: this.algorithm } });
      worker.unref();
      worker.on('message', (m: WorkerMessage) => this.listeners.get(m.id)?.(m));
      worker.on('error', (err) => this.lost(worker, err));
      worker.on('exit', (code) => this.lost(worker, new Error(`exit code ${code}`)));
      this.worker = worker;
    }
    return this.worker;
  }

  /**
   * A worker that crashed or was stopped takes its sessions with it: every upload it was
   * hashing fails at once instead of waiting forever, and the next upload starts a new one.
   */
  private lost(worker: Worker, cause: Error): void {
    if (this.worker === worker) this.worker = undefined;
    const sessions = [...this.listeners];
    this.listeners.clear();
    const error = new VitrineError('INTERNAL', `the ${this.algorithm} checksum worker stopped (${cause.message})`);
    for (const [id, fn] of sessions) fn({ op: 'failed', id, error });
  }

  /** Uploads this worker is listening for (for leak checks). */
  get sessions(): number {
    return this.listeners.size;
  }

  listen(id: number, fn: (m: WorkerMessage) => void): void {
    this.listeners.set(id, fn);
  }

  forget(id: number): void {
    this.listeners.delete(id);
  }

  /** Ends a session without its digest; a worker that is gone took the session with it (none is started for this). */
  drop(id: number): void {
    this.listeners.delete(id);
    this.worker?.postMessage({ op: 'drop', id });
  }

  post(message: { op: string; id: number; bytes?: SharedArrayBuffer; spans?: number[] }): void {
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

  /** Taps whose sessions are still open in a worker: 0 once every tap has its digests or was destroyed. */
  get openSessions(): number {
    return Math.max(...this.workers.map(([, w]) => w.sessions));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(([, w]) => w.close()));
  }
}

/** A reusable batch in shared memory that every worker reads; free again once all have acknowledged it. */
interface Batch {
  memory: SharedArrayBuffer;
  view: Buffer;
  pending: number;
  /** [start, end) offsets of the bytes to hash, in order; gaps between them are padding. */
  spans: number[];
}

export class HashingTap extends Transform {
  private current: Batch | undefined;
  /** The current batch's open span: its start, and its end where the next byte goes. */
  private spanStart = 0;
  private filled = 0;
  private allocated = 0;
  private readonly spare: Batch[] = [];
  /** Per worker, the batches it has not acknowledged yet, oldest first (a worker answers in order). */
  private readonly unacked: Batch[][];
  private waiting: (() => void) | undefined;
  private digests: Promise<Digests> | undefined;

  constructor(private readonly id: number, private readonly workers: readonly (readonly [HashAlgorithm, HashWorker])[]) {
    super({ highWaterMark: 1 << 20 });
    this.unacked = workers.map(() => []);
    workers.forEach(([, w], i) => {
      w.listen(id, (m) => {
        if (m.op === 'failed') {
          this.discardSession();
          this.destroy(m.error);
          return;
        }
        if (m.op !== 'ack') return;
        const batch = this.unacked[i].shift();
        if (batch && --batch.pending === 0) {
          this.spare.push(batch);
          this.continueCopying();
        }
      });
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.push(chunk);
    this.copyIn(chunk, 0, () => done());
  }

  override _flush(done: TransformCallback): void {
    this.send();
    done();
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    // A stream that ended normally keeps its session until result() asks for the digests.
    if (!this.digests && (err || !this.writableFinished)) this.discardSession();
    done(err);
  }

  /** Copies a chunk into batches (the one copy per byte), waiting for a free batch when all are in the workers. */
  private copyIn(chunk: Buffer, offset: number, done: () => void): void {
    while (offset < chunk.length) {
      const batch = this.current ?? this.takeBatch();
      if (!batch) {
        this.waiting = () => this.copyIn(chunk, offset, done);
        return;
      }
      this.current = batch;
      const gap = (chunk.byteOffset + offset - this.filled) & (WORD - 1);
      if (gap !== 0 && chunk.length - offset >= MIN_SPAN && this.filled + gap < BATCH_BYTES) {
        if (this.filled > this.spanStart) batch.spans.push(this.spanStart, this.filled);
        this.spanStart = this.filled += gap;
      }
      const copied = chunk.copy(batch.view, this.filled, offset);
      offset += copied;
      this.filled += copied;
      if (this.filled === BATCH_BYTES) this.send();
    }
    done();
  }

  private takeBatch(): Batch | undefined {
    const reused = this.spare.pop();
    if (reused || this.allocated >= RING) return reused;
    this.allocated++;
    const memory = new SharedArrayBuffer(BATCH_BYTES);
    return { memory, view: Buffer.from(memory), pending: 0, spans: [] };
  }

  private send(): void {
    const batch = this.current;
    if (!batch) return;
    if (this.filled > this.spanStart) batch.spans.push(this.spanStart, this.filled);
    this.current = undefined;
    this.spanStart = this.filled = 0;
    if (batch.spans.length === 0) {
      this.spare.push(batch);
      return;
    }
    const spans = batch.spans;
    batch.spans = [];
    batch.pending = this.workers.length;
    this.workers.forEach(([, w], i) => {
      this.unacked[i].push(batch);
      w.post({ op: 'update', id: this.id, bytes: batch.memory, spans });
    });
  }

  private continueCopying(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  /** The digests of every byte that passed, once the stream has ended. */
  result(): Promise<Digests> {
    this.digests ??= new Promise<Digests>((resolve, reject) => {
      this.send();
      const out: Partial<Digests> = {};
      let remaining = this.workers.length;
      for (const [algorithm, w] of this.workers) {
        w.listen(this.id, (m) => {
          if (m.op === 'failed') {
            this.discardSession();
            reject(m.error);
            return;
          }
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

  private discardSession(): void {
    for (const [, w] of this.workers) w.drop(this.id);
  }
}
