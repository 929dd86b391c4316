import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { VitrineError } from '../../src/domain/errors';
import type { BlobStore } from '../../src/storage/blobs/port';

/**
 * The behaviour every BlobStore adapter must show (filesystem now, Swift and S3 later).
 * Each test gets a fresh, empty store from `makeStore`. "Leaves nothing" is judged through
 * the port alone: `list()` is empty and `sweepIncomplete()` finds no leftovers.
 */
export function blobStoreContract(name: string, makeStore: () => Promise<BlobStore>, cleanup?: (store: BlobStore) => Promise<void> | void): void {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;

    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await cleanup?.(store);
    });

    const data = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));
    const readAll = async (r: Readable) => {
      const parts: Buffer[] = [];
      for await (const c of r) parts.push(c as Buffer);
      return Buffer.concat(parts);
    };
    const locations = async () => {
      const out: string[] = [];
      for await (const l of store.list()) out.push(l);
      return out.sort();
    };

    it('answers pings and starts empty', async () => {
      await store.ping();
      expect(await locations()).toEqual([]);
      expect(await store.sweepIncomplete()).toBe(0);
    });

    it('writes a stream and reads it back whole, reporting the size', async () => {
      const bytes = data(3 * 1024 * 1024 + 17);
      const parts = [bytes.subarray(0, 1000), bytes.subarray(1000, 2_000_000), bytes.subarray(2_000_000)];
      const { location, size } = await store.write(Readable.from(parts));
      expect(size).toBe(bytes.length);
      expect(await store.stat(location)).toBe(bytes.length);
      const back = await readAll(await store.read(location));
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(await locations()).toEqual([location]);
    });

    it('writes an empty blob', async () => {
      const { location, size } = await store.write(Readable.from([]));
      expect(size).toBe(0);
      expect(await store.stat(location)).toBe(0);
      expect((await readAll(await store.read(location))).length).toBe(0);
    });

    it('reads inclusive ranges', async () => {
      const bytes = data(1000);
      const { location } = await store.write(Readable.from([bytes]));
      expect((await readAll(await store.read(location, { start: 10, end: 19 }))).equals(bytes.subarray(10, 20))).toBe(true);
      expect((await readAll(await store.read(location, { start: 999, end: 999 }))).equals(bytes.subarray(999))).toBe(true);
      expect((await readAll(await store.read(location, { start: 0, end: 999 }))).equals(bytes)).toBe(true);
    });

    it('gives every write its own location, concurrent ones included', async () => {
      const results = await Promise.all([1, 2, 3, 4, 5].map((seed) => store.write(Readable.from([data(50_000, seed)]))));
      expect(new Set(results.map((r) => r.location)).size).toBe(5);
      for (const [i, r] of results.entries()) expect((await readAll(await store.read(r.location))).equals(data(50_000, i + 1))).toBe(true);
      expect(await locations()).toEqual(results.map((r) => r.location).sort());
    });

    it('deletes, and deleting an absent location is fine', async () => {
      const { location } = await store.write(Readable.from([data(10)]));
      await store.delete(location);
      await store.delete(location);
      expect(await store.stat(location)).toBeNull();
      expect(await locations()).toEqual([]);
      await expect(store.read(location)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('answers NOT_FOUND / null for locations it never gave out', async () => {
      for (const bogus of ['00/00000000-0000-0000-0000-000000000000', '../../etc/passwd', '']) {
        expect(await store.stat(bogus)).toBeNull();
        await expect(store.read(bogus)).rejects.toBeInstanceOf(VitrineError);
      }
    });

    it('leaves nothing when the source errors half-way', async () => {
      async function* failing() {
        yield data(100_000);
        yield data(100_000, 2);
        throw new Error('client went away');
      }
      await expect(store.write(Readable.from(failing()))).rejects.toThrow('client went away');
      expect(await locations()).toEqual([]);
      expect(await store.sweepIncomplete()).toBe(0);
    });

    it('leaves nothing when the write is aborted through its signal', async () => {
      const source = new PassThrough();
      const controller = new AbortController();
      const writing = store.write(source, { signal: controller.signal });
      source.write(data(100_000));
      setImmediate(() => controller.abort());
      await expect(writing).rejects.toMatchObject({ name: 'AbortError' });
      expect(await locations()).toEqual([]);
      expect(await store.sweepIncomplete()).toBe(0);
    });

    it('sweeps the leftovers of a write that never finished, and only those', async () => {
      const kept = await store.write(Readable.from([data(10)]));
      // A write whose source never ends stands for a process that died mid-upload.
      const stuck = new PassThrough();
      const pending = store.write(stuck).catch(() => undefined);
      stuck.write(data(1000));
      await new Promise((r) => setTimeout(r, 50));
      stuck.destroy(new Error('dead'));
      await pending;
      expect(await store.sweepIncomplete()).toBe(0);
      expect(await locations()).toEqual([kept.location]);
    });
  });
}
