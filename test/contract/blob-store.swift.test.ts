import { createHash, randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { PassThrough, Readable } from 'node:stream';
import { VitrineError } from '../../src/domain/errors';
import type { BlobStore } from '../../src/storage/blobs/port';
import { SwiftBlobStore, type SwiftBlobStoreOptions } from '../../src/storage/blobs/swift';
import { FaultProxy } from '../helpers/fault-proxy';
import { freePort } from '../helpers/glance';
import { startSwift, swiftToken, SWIFT_START_TIMEOUT_MS, type RealSwift } from '../helpers/swift';
import { blobStoreContract } from './blob-store.contract';

/**
 * The BlobStore contract on a real Swift (scripts/swift-dev), twice: with the defaults
 * (the contract's blobs are plain objects) and with 1 MiB segments and a 16 KiB buffer
 * (nearly every blob a Static Large Object). Then what only Swift shows: segments, ETag
 * checks, aborts and faults mid-write, the sweep, paging, tokens, temp URLs.
 */
const MiB = 1024 * 1024;
let swift: RealSwift;
const open = new Set<SwiftBlobStore>();

beforeAll(async () => {
  swift = await startSwift();
}, SWIFT_START_TIMEOUT_MS);
afterAll(async () => {
  await Promise.all([...open].map((s) => s.close()));
  await swift?.stop();
});

/** A store on a container of its own (unique per call). */
function newStore(options: Partial<SwiftBlobStoreOptions> = {}): SwiftBlobStore {
  const store = new SwiftBlobStore('swift', {
    auth: { url: swift.authUrl, user: swift.user, key: swift.key },
    container: `t-${randomUUID()}`,
    ...options,
  });
  open.add(store);
  return store;
}

async function closeStore(store: BlobStore): Promise<void> {
  open.delete(store as SwiftBlobStore);
  await (store as SwiftBlobStore).close();
}

blobStoreContract('SwiftBlobStore', async () => newStore(), closeStore);
blobStoreContract('SwiftBlobStore with 1 MiB segments', async () => newStore({ segmentBytes: MiB, bufferBytes: 16 * 1024 }), closeStore);

// ---- what only Swift shows ---------------------------------------------------------------

const bytesOf = (n: number, seed = 1) => {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const readAll = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};
const locations = async (store: BlobStore) => {
  const out: string[] = [];
  for await (const l of store.list()) out.push(l);
  return out.sort();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Straight to Swift with a token of its own: what is really stored. */
async function raw(path: string, init: RequestInit = {}): Promise<Response> {
  const { token, storageUrl } = await swiftToken(swift);
  return fetch(storageUrl + path, { ...init, headers: { ...(init.headers as Record<string, string>), 'x-auth-token': token } });
}
async function objectNames(container: string, query = ''): Promise<string[]> {
  const res = await raw(`/${container}?format=json${query}`);
  if (res.status === 404) return [];
  return ((await res.json()) as { name?: string }[]).flatMap((e) => (e.name === undefined ? [] : [e.name]));
}
/** The objects that are blobs (plain or manifests), and the segments of large ones. */
const blobNames = (container: string) => objectNames(container, '&delimiter=/');
const segmentNames = (container: string) => objectNames(container, '&prefix=.segments/');
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** A store plus the name of its container. */
function storeIn(options: Partial<SwiftBlobStoreOptions> = {}): { store: SwiftBlobStore; container: string } {
  const container = options.container ?? `t-${randomUUID()}`;
  return { store: newStore({ ...options, container }), container };
}

/**
 * An HTTP proxy in front of Swift that can lie about the ETag of what was PUT: the fault
 * that the store's md5 check exists for. Everything else passes through unchanged.
 */
async function startEtagLiar(): Promise<{ url: string; close: () => Promise<void> }> {
  const target = new URL(swift.url);
  const server: Server = createServer((req, res) => {
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers };
      if (req.method === 'PUT' && typeof headers.etag === 'string') headers.etag = headers.etag.replace(/[0-9a-f]{32}/, '0'.repeat(32));
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('SwiftBlobStore specifics', () => {
  it('stores a blob that fits the buffer as one plain object whose ETag is its md5', async () => {
    const { store, container } = storeIn();
    const bytes = bytesOf(100_000);
    const { location, size } = await store.write(Readable.from([bytes]));
    expect(location).toMatch(/^[0-9a-f-]{36}$/);
    expect(size).toBe(bytes.length);
    const head = await raw(`/${container}/${location}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe(md5(bytes));
    expect(head.headers.get('x-static-large-object')).toBeNull();
  });

  it('stores a larger blob as a Static Large Object of segmentBytes segments, reads ranges across them, and deletes them all', async () => {
    const { store, container } = storeIn({ segmentBytes: MiB, bufferBytes: 64 * 1024 });
    const bytes = bytesOf(5 * MiB + 123);
    const { location, size } = await store.write(Readable.from([bytes.subarray(0, 3 * MiB), bytes.subarray(3 * MiB)]));
    expect(location).toMatch(/^[0-9a-f-]{36}\.slo$/);
    expect(size).toBe(bytes.length);
    const id = location.replace(/\.slo$/, '');
    expect(await segmentNames(container)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `.segments/${id}/${String(i).padStart(8, '0')}`));
    const head = await raw(`/${container}/${location}`, { method: 'HEAD' });
    expect(head.headers.get('x-static-large-object')).toMatch(/true/i);
    expect(await store.stat(location)).toBe(bytes.length);
    expect(md5(await readAll(await store.read(location)))).toBe(md5(bytes));
    const across = await readAll(await store.read(location, { start: MiB - 10, end: 2 * MiB + 9 }));
    expect(across.equals(bytes.subarray(MiB - 10, 2 * MiB + 10))).toBe(true);
    const tail = await readAll(await store.read(location, { start: bytes.length - 5, end: bytes.length - 1 }));
    expect(tail.equals(bytes.subarray(bytes.length - 5))).toBe(true);
    expect(await locations(store)).toEqual([location]);

    await store.delete(location);
    expect(await blobNames(container)).toEqual([]);
    expect(await segmentNames(container)).toEqual([]);
    expect(await store.stat(location)).toBeNull();
  });

  it('refuses a blob above segmentBytes x maxSegments with BLOB_TOO_LARGE and leaves nothing', async () => {
    const { store, container } = storeIn({ segmentBytes: 64 * 1024, maxSegments: 3, bufferBytes: 1024 });
    expect(store.maxBlobBytes).toBe(3 * 64 * 1024);
    const ok = await store.write(Readable.from([bytesOf(3 * 64 * 1024)]));
    expect(await store.stat(ok.location)).toBe(3 * 64 * 1024);
    await expect(store.write(Readable.from([bytesOf(3 * 64 * 1024 + 1)]))).rejects.toMatchObject({ code: 'BLOB_TOO_LARGE', details: { store: 'swift', maxBytes: 3 * 64 * 1024 } });
    expect(await blobNames(container)).toEqual([ok.location]);
    expect((await segmentNames(container)).every((n) => n.startsWith(`.segments/${ok.location.replace(/\.slo$/, '')}/`))).toBe(true);
  });

  it('deletes the segments already stored when a write is aborted mid-way', async () => {
    const { store, container } = storeIn({ segmentBytes: MiB, bufferBytes: 16 * 1024 });
    const source = new PassThrough();
    const controller = new AbortController();
    const writing = store.write(source, { signal: controller.signal });
    const settled = writing.catch((err: unknown) => err);
    source.write(bytesOf(MiB));
    source.write(bytesOf(MiB, 2));
    source.write(bytesOf(MiB / 2, 3));
    await until('two segments are stored', async () => (await segmentNames(container)).length >= 2);
    controller.abort();
    expect(await settled).toMatchObject({ name: 'AbortError' });
    expect(await segmentNames(container)).toEqual([]);
    expect(await blobNames(container)).toEqual([]);
    expect(source.destroyed).toBe(true);
  });

  it('fails a write with UNAVAILABLE when Swift goes away mid-stream; the sweep removes what the failed clean-up left', async () => {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(new URL(swift.url).port) });
    try {
      const container = `t-${randomUUID()}`;
      const { store } = storeIn({
        auth: { url: proxy.urlFor(swift.authUrl), user: swift.user, key: swift.key },
        storageUrl: proxy.urlFor(swift.storageUrl),
        container,
        segmentBytes: MiB,
        bufferBytes: 16 * 1024,
      });
      const source = new PassThrough();
      const settled = store.write(source).catch((err: unknown) => err);
      source.write(bytesOf(MiB + 100));
      await until('the first segment is stored', async () => (await segmentNames(container)).length >= 1);
      proxy.cut();
      source.write(bytesOf(MiB));
      const err = (await settled) as VitrineError;
      expect(err).toBeInstanceOf(VitrineError);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', details: { store: 'swift' } });
      expect(err.message).toContain('"swift"');
      expect(`${err.message} ${JSON.stringify(err.details)}`).not.toContain(swift.key);
      proxy.restore();

      expect(await locations(store)).toEqual([]);
      expect((await segmentNames(container)).length).toBeGreaterThanOrEqual(1);
      const sweeper = newStore({ container, incompleteGraceMs: 0 });
      expect(await sweeper.sweepIncomplete()).toBe(1);
      expect(await segmentNames(container)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('fails a write whose stored ETag differs from the md5 sent, and deletes what it stored', async () => {
    const liar = await startEtagLiar();
    try {
      const container = `t-${randomUUID()}`;
      const { store } = storeIn({ storageUrl: `${liar.url}${new URL(swift.storageUrl).pathname}`, container, segmentBytes: MiB, bufferBytes: 16 * 1024 });
      for (const size of [1000, MiB + 1000]) {
        await expect(store.write(Readable.from([bytesOf(size)]))).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('ETag mismatch') });
      }
      expect(await blobNames(container)).toEqual([]);
      expect(await segmentNames(container)).toEqual([]);
    } finally {
      await liar.close();
    }
  });

  it('sweeps segments without a manifest once the newest is older than the grace period, never those of a stored blob', async () => {
    const { store, container } = storeIn({ segmentBytes: 64 * 1024, bufferBytes: 1024 });
    const kept = await store.write(Readable.from([bytesOf(200 * 1024)]));
    // What a process that died before writing its manifest leaves behind.
    const dead = randomUUID();
    for (const i of [1, 2]) expect((await raw(`/${container}/.segments/${dead}/0000000${i}`, { method: 'PUT', body: bytesOf(1000, i) })).status).toBe(201);

    expect(await newStore({ container, incompleteGraceMs: 3600_000 }).sweepIncomplete()).toBe(0);
    expect((await segmentNames(container)).filter((n) => n.includes(dead))).toHaveLength(2);
    expect(await newStore({ container, incompleteGraceMs: 0 }).sweepIncomplete()).toBe(1);
    expect((await segmentNames(container)).filter((n) => n.includes(dead))).toEqual([]);
    expect((await segmentNames(container)).length).toBe(4);
    expect((await readAll(await store.read(kept.location))).equals(bytesOf(200 * 1024))).toBe(true);
  });

  it('lists every location across pages of the container listing', async () => {
    const { store, container } = storeIn({ listPageSize: 2 });
    const written = await Promise.all([1, 2, 3, 4, 5].map((seed) => store.write(Readable.from([bytesOf(10, seed)]))));
    // Not a location: never listed.
    await raw(`/${container}/stray.txt`, { method: 'PUT', body: 'x' });
    expect(await locations(store)).toEqual(written.map((w) => w.location).sort());
  });

  it('gets a new token when Swift rejects the one it has, for small and segmented writes alike', async () => {
    const { store } = storeIn({ storageUrl: swift.storageUrl, token: 'AUTH_tk00000000000000000000000000000000', segmentBytes: MiB, bufferBytes: 16 * 1024 });
    await store.ping();
    const small = await store.write(Readable.from([bytesOf(100)]));
    expect((await readAll(await store.read(small.location))).equals(bytesOf(100))).toBe(true);
    const { store: streaming } = storeIn({ storageUrl: swift.storageUrl, token: 'AUTH_tk11111111111111111111111111111111', segmentBytes: MiB, bufferBytes: 16 * 1024 });
    const big = await streaming.write(Readable.from([bytesOf(2 * MiB + 5)]));
    expect(await streaming.stat(big.location)).toBe(2 * MiB + 5);
  });

  it('answers UNAVAILABLE for a rejected token without credentials, wrong credentials and an unreachable Swift, never naming a secret', async () => {
    const secretToken = 'AUTH_tk22222222222222222222222222222222';
    const nobody = await freePort();
    const cases: SwiftBlobStore[] = [
      newStore({ auth: undefined, storageUrl: swift.storageUrl, token: secretToken }),
      newStore({ auth: { url: swift.authUrl, user: swift.user, key: `${swift.key}-wrong` } }),
      newStore({ auth: { url: `http://127.0.0.1:${nobody}/auth/v1.0`, user: swift.user, key: swift.key } }),
    ];
    for (const store of cases) {
      const err = await store.ping().then(() => undefined, (e: unknown) => e as VitrineError);
      expect(err).toBeInstanceOf(VitrineError);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', details: { store: 'swift' } });
      const shown = `${err!.message} ${JSON.stringify(err!.details)} ${inspect(store, { depth: 5 })}`;
      for (const secret of [swift.key, secretToken]) expect(shown).not.toContain(secret);
    }
    await expect(cases[2].write(Readable.from([bytesOf(10)]))).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { cause: 'ECONNREFUSED' } });
  });

  it('answers a ping within pingTimeoutMs, with UNAVAILABLE, when Swift accepts connections but never answers', async () => {
    const held = new Set<Socket>();
    const silent = createNetServer((socket) => void held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const store = newStore({ auth: { url: `http://127.0.0.1:${port}/auth/v1.0`, user: swift.user, key: swift.key }, pingTimeoutMs: 300 });
    try {
      // Without its own deadline the ping would wait out the 120 s request timeout (and this test time out).
      await expect(store.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('did not answer within 300 ms') });
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
      await closeStore(store);
    }
  });

  it('signs temp URLs that read plain and segmented blobs without a token, until tampered with', async () => {
    const { store } = storeIn({ tempUrlKey: 'k'.repeat(32), segmentBytes: MiB, bufferBytes: 16 * 1024 });
    for (const bytes of [bytesOf(1000), bytesOf(MiB + 1000)]) {
      const { location } = await store.write(Readable.from([bytes]));
      const url = await store.tempUrl(location, 60);
      expect(url).not.toContain('k'.repeat(32));
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
      const tampered = url.replace(/temp_url_sig=([0-9a-f])/, (_m, c: string) => `temp_url_sig=${c === '0' ? '1' : '0'}`);
      expect((await fetch(tampered)).status).toBe(401);
    }
    await expect(newStore().tempUrl(randomUUID(), 60)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('refuses unusable options with CONFIG_INVALID naming the option', () => {
    const auth = { url: 'http://127.0.0.1:1/auth/v1.0', user: 'a:b', key: 'k' };
    const cases: [Partial<SwiftBlobStoreOptions>, string][] = [
      [{ auth: undefined }, 'auth'],
      [{ auth: undefined, storageUrl: 'http://127.0.0.1:1/v1/AUTH_x' }, 'auth'],
      [{ auth: { ...auth, url: 'ftp://x' } }, 'auth.url'],
      [{ container: 'a/b' }, 'container'],
            [{ segmentBytes: 6 * 1024 * MiB }, 'segmentBytes'],
      [{ segmentBytes: 1.5 }, 'segmentBytes'],
      [{ listPageSize: 0 }, 'listPageSize'],
      [{ tempUrlKey: 'short' }, 'tempUrlKey'],
    ];
    for (const [options, key] of cases) {
      let error: unknown;
      try {
        new SwiftBlobStore('swift', { auth, container: 'c', ...options });
      } catch (err) {
        error = err;
      }
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', details: { key } });
    }
  });
});
