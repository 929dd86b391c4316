import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { fail } from '../../domain/errors';
import type { BlobStore, BlobWriteOptions, BlobWriteResult, ByteRange } from './port';

const LOCATION = /^[0-9a-f]{2}\/[0-9a-f-]{36}$/;

/**
 * Blobs as files under one folder: `<dir>/<2 hex>/<uuid>`. Writes go to `<dir>/.incomplete/`,
 * are fsynced, then renamed into place and the folder fsynced, so a crash at any point
 * leaves either a complete file or an incomplete one that the start-up sweep removes.
 */
export class FsBlobStore implements BlobStore {
  /** Partial writes sit in a folder of their own with no owner: only an exclusive sweep may clear them. */
  readonly sweepsWhileShared = false;
  private readonly incomplete: string;
  private ready: Promise<void> | undefined;

  constructor(readonly name: string, private readonly dir: string) {
    this.incomplete = join(dir, '.incomplete');
  }

  private prepare(): Promise<void> {
    this.ready ??= mkdir(this.incomplete, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.ready;
  }

  async write(source: Readable, options: BlobWriteOptions = {}): Promise<BlobWriteResult> {
    await this.prepare();
    const id = randomUUID();
    const location = `${id.slice(0, 2)}/${id}`;
    const temp = join(this.incomplete, id);
    try {
      // The stream owns its descriptor: `flush` fsyncs it before closing, and the pipeline
      // settles only once it is closed. (A shared FileHandle got closed twice on errors,
      // and EBADF masked the real cause.)
      const file = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true, highWaterMark: 1 << 20 });
      await pipeline(source, file, { signal: options.signal });
      const size = file.bytesWritten;
      const shard = join(this.dir, location.slice(0, 2));
      await mkdir(shard, { recursive: true, mode: 0o700 });
      await rename(temp, join(this.dir, location));
      await syncDir(shard);
      return { location, size };
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  async read(location: string, range?: ByteRange): Promise<Readable> {
    const path = this.path(location);
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') fail('NOT_FOUND', 'the blob\'s bytes are missing from the store');
      throw err;
    });
    // The stream owns the FileHandle and closes it; a raw fd would be closed twice (once more when the handle is collected).
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 1 << 20 });
  }

  /** As Glance's filesystem store shows its locations: the file's absolute path. */
  locationUrl(location: string): string {
    return pathToFileURL(resolve(this.dir, location)).href;
  }

  async stat(location: string): Promise<number | null> {
    if (!LOCATION.test(location)) return null;
    const s = await stat(this.path(location)).catch(() => null);
    return s ? s.size : null;
  }

  async delete(location: string): Promise<void> {
    await rm(this.path(location), { force: true });
  }

  async *list(): AsyncIterable<string> {
    const shards = await readdir(this.dir).catch(() => [] as string[]);
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const file of await readdir(join(this.dir, shard))) yield `${shard}/${file}`;
    }
  }

  async sweepIncomplete(): Promise<number> {
    await this.prepare();
    const leftovers = await readdir(this.incomplete);
    await Promise.all(leftovers.map((f) => rm(join(this.incomplete, f), { force: true })));
    return leftovers.length;
  }

  async ping(): Promise<void> {
    await this.prepare();
    await stat(this.dir);
  }

  private path(location: string): string {
    if (!LOCATION.test(location)) fail('NOT_FOUND', 'not a location of this blob store');
    return join(this.dir, location);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
