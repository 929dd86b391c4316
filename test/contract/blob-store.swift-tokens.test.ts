import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { SwiftBlobStore, type SwiftBlobStoreOptions } from '../../src/storage/blobs/swift';
import { startSwift, swiftToken, SWIFT_START_TIMEOUT_MS, type RealSwift } from '../helpers/swift';

/**
 * Token expiry on a real Swift whose tempauth tokens live 3 s (a Swift of its own, so that
 * the contract suite runs with long-lived tokens). A store renews a token whose lifetime
 * it was told before it runs out, and one whose lifetime it was not told (a preset token)
 * when Swift rejects it, or, before streaming a segment, when a probe is rejected.
 */
const TOKEN_LIFE_SECONDS = 3;
const MiB = 1024 * 1024;
let swift: RealSwift;
const stores: SwiftBlobStore[] = [];

beforeAll(async () => {
  swift = await startSwift({ tokenLife: TOKEN_LIFE_SECONDS });
}, SWIFT_START_TIMEOUT_MS);
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await swift?.stop();
});

function newStore(options: Partial<SwiftBlobStoreOptions>): SwiftBlobStore {
  const store = new SwiftBlobStore('swift', {
    auth: { url: swift.authUrl, user: swift.user, key: swift.key },
    container: `t-${randomUUID()}`,
    segmentBytes: MiB,
    bufferBytes: 16 * 1024,
    ...options,
  });
  stores.push(store);
  return store;
}

const bytesOf = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 11 + seed) & 0xff));
const readAll = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('keeps working across token expiry, with an announced lifetime and with a preset token', async () => {
  expect(swift.tokenLife).toBe(TOKEN_LIFE_SECONDS);
  // tempauth hands one user the same token while it lives: the stores start with this one.
  const { token, storageUrl } = await swiftToken(swift);
  const announced = newStore({});
  const container = `t-${randomUUID()}`;
  const preset = newStore({ storageUrl, token, container });
  const before = new Map<SwiftBlobStore, string>();
  for (const store of [announced, preset]) before.set(store, (await store.write(Readable.from([bytesOf(100)]))).location);

  await sleep((TOKEN_LIFE_SECONDS + 1) * 1000);
  const stale = await fetch(storageUrl, { method: 'HEAD', headers: { 'x-auth-token': token } });
  expect(stale.status).toBe(401);

  for (const store of [announced, preset]) {
    // First after expiry: a segmented (streamed) write, which cannot be sent twice.
    const big = await store.write(Readable.from([bytesOf(2 * MiB + 3, 2)]));
    expect(big.location).toMatch(/\.slo$/);
    expect(await store.stat(big.location)).toBe(2 * MiB + 3);
    expect((await readAll(await store.read(before.get(store)!))).equals(bytesOf(100))).toBe(true);
  }

  // A preset token whose first use after expiry is a plain request.
  const { token: second } = await swiftToken(swift);
  const late = newStore({ storageUrl, token: second, container });
  await sleep((TOKEN_LIFE_SECONDS + 1) * 1000);
  expect(await late.stat(before.get(preset)!)).toBe(100);
}, 60_000);
