import { createHash, randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { PassThrough, Readable } from 'node:stream';
import { VitrineError } from '../../src/domain/errors';
import type { BlobStore } from '../../src/storage/blobs/port';
import { SwiftBlobStore, type SwiftBlobStoreOptions } from '../../src/storage/blobs/swift';
import { FaultProxy } from '../helpers/fault-proxy';
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
