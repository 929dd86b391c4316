import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobStore } from '../../src/storage/blobs/port';
import { FsBlobStore } from '../../src/storage/blobs/fs';
import { blobStoreContract } from './blob-store.contract';

/** The contract on a fresh folder per test, plus what only the filesystem layout shows. */
const dirs = new Map<BlobStore, string>();

blobStoreContract(
  'FsBlobStore',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitrine-blobs-'));
    const store = new FsBlobStore('fs', dir);
    dirs.set(store, dir);
    return store;
  },
  (store) => {
    rmSync(dirs.get(store)!, { recursive: true, force: true });
    dirs.delete(store);
  },
);

describe('FsBlobStore specifics', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-blobs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('removes partial files a crashed process left in .incomplete', async () => {
    mkdirSync(join(dir, '.incomplete'), { recursive: true });
    writeFileSync(join(dir, '.incomplete', 'a'), 'partial');
    writeFileSync(join(dir, '.incomplete', 'b'), 'partial');
    const store = new FsBlobStore('fs', dir);
    expect(await store.sweepIncomplete()).toBe(2);
    expect(readdirSync(join(dir, '.incomplete'))).toEqual([]);
  });

  it('keeps files under <2 hex>/<uuid> and lists nothing else', async () => {
    const store = new FsBlobStore('fs', dir);
    const { location } = await store.write(Readable.from([Buffer.from('x')]));
    expect(location).toMatch(/^[0-9a-f]{2}\/[0-9a-f-]{36}$/);
    expect(existsSync(join(dir, location))).toBe(true);
    writeFileSync(join(dir, 'stray.txt'), 'not a blob');
    const listed: string[] = [];
    for await (const l of store.list()) listed.push(l);
    expect(listed).toEqual([location]);
  });
});
