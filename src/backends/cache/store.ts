import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as pipelineCallback, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CachedImageView } from '../port';

/**
 * The files of the image cache, on a local disk:
 *
 *   <dir>/data/<image id>        the bytes
 *   <dir>/data/<image id>.json   what they are (size, md5, sha512) and their use (hits, times)
 *   <dir>/incomplete/...         writes in progress, renamed into data/ once complete
 *   <dir>/queue/<image id>       an empty marker per image waiting for the prefetcher
 *
 * A write goes to incomplete/, is fsynced, has its md5 and length checked against what the
 * image says, and only then is renamed into data/, the description last: after a crash an
 * entry is either whole or absent (start-up drops data without a description, and
 * everything in incomplete/). An entry is served only while its size and checksum equal the
 * image's current ones, so a changed or re-imported image never gets old bytes.
 */
export interface Expected {
  size: number;
  md5: string;
  sha512: string | null;
}

interface Entry extends Expected {
  imageId: string;
  hits: number;
  /** ms since the epoch. */
  lastAccessed: number;
  lastModified: number;
}

const ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class CacheFiles {
  private readonly entries = new Map<string, Entry>();
  private readonly queued = new Set<string>();
  /** Images whose bytes are being written now: one writer each. */
  private readonly filling = new Set<string>();
  private bytes = 0;

  private constructor(
    private readonly dir: string,
    readonly maxBytes: number,
    /** @internal also CacheTee's. */
    readonly log: (message: string, err?: unknown) => void,
  ) {}

  /** Opens the cache folder, dropping leftovers of interrupted writes and incomplete entries. */
  static async open(dir: string, maxBytes: number, log: (message: string, err?: unknown) => void): Promise<CacheFiles> {
    const files = new CacheFiles(dir, maxBytes, log);
    await rm(files.path('incomplete'), { recursive: true, force: true });
    for (const sub of ['data', 'incomplete', 'queue']) await mkdir(files.path(sub), { recursive: true, mode: 0o700 });
    await files.load();
    return files;
  }

  private path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  private async load(): Promise<void> {
    const names = new Set(await readdir(this.path('data')));
    for (const name of names) {
      const id = name.endsWith('.json') ? name.slice(0, -5) : name;
      if (!ID_SHAPE.test(id)) {
        await rm(this.path('data', name), { force: true });
        continue;
      }
      if (name.endsWith('.json') || this.entries.has(id)) continue;
      const entry = await this.readEntry(id, names.has(`${id}.json`));
      if (entry) {
        this.entries.set(id, entry);
        this.bytes += entry.size;
      } else {
        await this.unlink(id);
      }
    }
    for (const name of names) {
      if (name.endsWith('.json') && !this.entries.has(name.slice(0, -5))) await rm(this.path('data', name), { force: true });
    }
    for (const name of (await readdir(this.path('queue'))).sort()) {
      if (ID_SHAPE.test(name) && !this.entries.has(name)) this.queued.add(name);
      else await rm(this.path('queue', name), { force: true });
    }
    await this.evict();
  }

  private async readEntry(id: string, described: boolean): Promise<Entry | null> {
    if (!described) return null;
    try {
      const entry = JSON.parse(await readFile(this.path('data', `${id}.json`), 'utf8')) as Entry;
      const { size } = await stat(this.path('data', id));
      if (entry.imageId !== id || entry.size !== size || typeof entry.md5 !== 'string') return null;
      return { ...entry, hits: Number(entry.hits) || 0 };
    } catch {
      return null;
    }
  }

  // ---- reading -------------------------------------------------------------------------

  list(): CachedImageView[] {
    return [...this.entries.values()]
      .sort((a, b) => (a.imageId < b.imageId ? -1 : 1))
      .map((e) => ({ imageId: e.imageId, hits: e.hits, lastAccessed: e.lastAccessed / 1000, lastModified: e.lastModified / 1000, size: e.size }));
  }

  has(imageId: string): boolean {
    return this.entries.has(imageId);
  }

  totalBytes(): number {
    return this.bytes;
  }

  /**
   * The cached bytes of an image if they are the image's current bytes; a stale entry (the
   * image's data changed) is dropped. Counts a hit. A whole read is hashed on its way out and
   * fails rather than end normally if the file no longer has the md5 it was written with.
   */
  async read(imageId: string, expected: Expected, span?: { start: number; end: number }): Promise<Readable | null> {
    const entry = this.entries.get(imageId);
    if (!entry) return null;
    if (!matches(entry, expected)) {
      await this.remove(imageId);
      return null;
    }
    let stream: Readable;
    try {
      // Opened before returning, so that a file evicted meanwhile is a miss, not a failed download.
      const handle = await open(this.path('data', imageId), 'r');
      stream = handle.createReadStream(span ? { start: span.start, end: span.end } : {});
    } catch {
      await this.remove(imageId);
      return null;
    }
    entry.hits += 1;
    entry.lastAccessed = Date.now();
    this.describe(entry, false).catch((err: unknown) => this.log('recording a cache hit failed', err));
    if (span) return stream;
    const check = new Verify(entry.md5, () => {
      this.log(`cached bytes of image ${imageId} no longer match their checksum; dropped from the cache`);
      void this.remove(imageId);
    });
    // pipeline: a reader that stops early closes the file too.
    return pipelineCallback(stream, check, () => undefined);
  }

  // ---- writing -------------------------------------------------------------------------

  /** Whether bytes of this size may be written now (not cached, not being written, not larger than the cache). */
  canFill(imageId: string, size: number): boolean {
    return !this.entries.has(imageId) && !this.filling.has(imageId) && size <= this.maxBytes;
  }

  /**
   * A pass-through that also writes what goes through it into the cache: on a download the
   * client's bytes fill the cache on the way. The cache entry appears only if every byte
   * went through and matches; a client that stops early or a disk error leave nothing (and
   * never disturb the client's stream). Null when the image cannot be filled now.
   */
  tee(imageId: string, expected: Expected): Transform | null {
    if (!this.canFill(imageId, expected.size)) return null;
    this.filling.add(imageId);
    return new CacheTee(this, imageId, expected);
  }

  /** Reads `source` to its end into the cache (the prefetcher). */
  async fill(imageId: string, expected: Expected, source: Readable): Promise<boolean> {
    const tee = this.tee(imageId, expected);
    if (!tee) {
      source.destroy();
      return this.entries.has(imageId);
    }
    const done = new Promise<boolean>((resolve) => tee.once('cached', resolve));
    await pipeline(source, tee, async (chunks: AsyncIterable<Buffer>) => {
      for await (const _chunk of chunks);
    });
    return done;
  }

  /** @internal CacheTee: a fresh file in incomplete/. */
  async begin(imageId: string): Promise<{ handle: FileHandle; path: string }> {
    const path = this.path('incomplete', `${imageId}.${randomBytes(6).toString('hex')}`);
    return { handle: await open(path, 'wx', 0o600), path };
  }

  /** @internal CacheTee: makes a verified file an entry (or drops it), then evicts to fit. */
  async commit(imageId: string, file: { handle: FileHandle; path: string } | null, result: { size: number; md5: string } | null, expected: Expected): Promise<boolean> {
    try {
      if (!file) return false;
      if (!result || result.size !== expected.size || result.md5 !== expected.md5) {
        await file.handle.close().catch(() => undefined);
        await rm(file.path, { force: true });
        if (result) this.log(`bytes read for image ${imageId} do not match its size and checksum; not cached`);
        return false;
      }
      await file.handle.sync();
      await file.handle.close();
      // Replacing an entry: the old one goes first, so its bytes are never counted twice.
      if (this.entries.has(imageId)) await this.remove(imageId);
      await rename(file.path, this.path('data', imageId));
      const now = Date.now();
      const entry: Entry = { imageId, size: expected.size, md5: expected.md5, sha512: expected.sha512, hits: 0, lastAccessed: now, lastModified: now };
      await this.describe(entry, true);
      await this.syncDir(this.path('data'));
      this.entries.set(imageId, entry);
      this.bytes += entry.size;
      await this.dequeue(imageId);
      await this.evict(imageId);
      return true;
    } catch (err) {
      this.log(`caching image ${imageId} failed`, err);
      await file?.handle.close().catch(() => undefined);
      if (file) await rm(file.path, { force: true });
      await this.unlink(imageId).catch(() => undefined);
      return false;
    } finally {
      this.filling.delete(imageId);
    }
  }

  /** Writes an entry's description (temp file + rename); `durable`: fsynced, for new entries. */
  private async describe(entry: Entry, durable: boolean): Promise<void> {
    const temp = this.path('incomplete', `${entry.imageId}.json.${randomBytes(6).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(entry));
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    if (!this.entries.has(entry.imageId) && !durable) return void (await rm(temp, { force: true }));
    await rename(temp, this.path('data', `${entry.imageId}.json`));
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Least recently used entries go until the cache fits its limit (`keep` stays). */
  private async evict(keep?: string): Promise<void> {
    while (this.bytes > this.maxBytes) {
      const victim = [...this.entries.values()].filter((e) => e.imageId !== keep).sort((a, b) => a.lastAccessed - b.lastAccessed)[0];
      if (!victim) return;
      await this.remove(victim.imageId);
    }
  }

  // ---- removing --------------------------------------------------------------------------

  /** Drops an image's cached bytes; a download reading them keeps its open file. */
  async remove(imageId: string): Promise<boolean> {
    const entry = this.entries.get(imageId);
    if (entry) {
      this.entries.delete(imageId);
      this.bytes -= entry.size;
    }
    await this.unlink(imageId);
    return entry !== undefined;
  }

  private async unlink(imageId: string): Promise<void> {
    // The description first: without it, what is left is dropped at the next start.
    await rm(this.path('data', `${imageId}.json`), { force: true });
    await rm(this.path('data', imageId), { force: true });
  }

  async clearCached(): Promise<number> {
    const ids = [...this.entries.keys()];
    for (const id of ids) await this.remove(id);
    return ids.length;
  }

  // ---- the queue -------------------------------------------------------------------------

  queuedIds(): string[] {
    return [...this.queued];
  }

  isQueued(imageId: string): boolean {
    return this.queued.has(imageId);
  }

  async enqueue(imageId: string): Promise<void> {
    if (this.queued.has(imageId)) return;
    await writeFile(this.path('queue', imageId), '', { mode: 0o600 });
    this.queued.add(imageId);
  }

  async dequeue(imageId: string): Promise<boolean> {
    const had = this.queued.delete(imageId);
    await rm(this.path('queue', imageId), { force: true });
    return had;
  }

  async clearQueue(): Promise<number> {
    const ids = [...this.queued];
    for (const id of ids) await this.dequeue(id);
    return ids.length;
  }
}

function matches(entry: Expected, expected: Expected): boolean {
  if (entry.size !== expected.size || entry.md5 !== expected.md5) return false;
  return entry.sha512 === null || expected.sha512 === null || entry.sha512 === expected.sha512;
}

/** Passes bytes on and writes them to an incomplete cache file; emits 'cached' (boolean) once settled. */
class CacheTee extends Transform {
  private file: Promise<{ handle: FileHandle; path: string } | null>;
  private readonly hash: Hash = createHash('md5');
  private size = 0;
  /** A disk error: the client's bytes keep flowing, the cache gives up on this copy. */
  private broken = false;
  private settled = false;

  constructor(
    private readonly files: CacheFiles,
    private readonly imageId: string,
    private readonly expected: Expected,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.file = files.begin(imageId).catch((err: unknown) => {
      this.broken = true;
      this.giveUp(err);
      return null;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    if (this.broken) return done(null, chunk);
    this.file
      .then((file) => (file && !this.broken ? file.handle.write(chunk) : undefined))
      .catch((err: unknown) => {
        this.broken = true;
        this.giveUp(err);
      })
      .finally(() => done(null, chunk));
  }

  override _flush(done: TransformCallback): void {
    // The reader gets its end at once; the fsync and rename happen behind it.
    done();
    const result = this.broken ? null : { size: this.size, md5: this.hash.digest('hex') };
    this.settle(result);
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.settle(null);
    done(err);
  }

  private settle(result: { size: number; md5: string } | null): void {
    if (this.settled) return;
    this.settled = true;
    void this.file.then((file) => this.files.commit(this.imageId, file, result, this.expected)).then((cached) => this.emit('cached', cached));
  }

  private giveUp(err: unknown): void {
    this.files.log(`writing image ${this.imageId} into the cache failed`, err);
  }
}

/** Checks a whole cached file's md5 as it is read; calls `onMismatch` and fails the stream if it differs. */
class Verify extends Transform {
  private readonly hash = createHash('md5');

  constructor(private readonly md5: string, private readonly onMismatch: () => void) {
    super({ highWaterMark: 1 << 20 });
  }

  /** The last chunk is held back until the digest is known: a reader never gets every byte of corrupt data. */
  private held: Buffer | null = null;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    done(null, previous ?? undefined);
  }

  override _flush(done: TransformCallback): void {
    if (this.hash.digest('hex') === this.md5) return done(null, this.held ?? undefined);
    this.onMismatch();
    done(new Error('the cached image data is corrupt'));
  }
}
