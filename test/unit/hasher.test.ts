import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashPool, type Digests } from '../../src/backends/native/hasher';

/**
 * The hashing tap: md5 and sha512 computed in worker threads from 1 MiB shared batches,
 * where each chunk is placed at its own word alignment (spans with gaps), must equal
 * node:crypto's digests of the same bytes, however the bytes are cut and wherever each
 * chunk sits in its ArrayBuffer, and must pass the bytes on unchanged.
 */

const MiB = 1 << 20;
let pool: HashPool;

beforeAll(() => {
  pool = new HashPool();
});

afterAll(async () => {
  await pool.close();
});

function expected(data: Buffer): Digests {
  return { md5: createHash('md5').update(data).digest('hex'), sha512: createHash('sha512').update(data).digest('hex') };
}

/** `data` cut at the given sizes (cycled), each piece a view at `skew(i)` bytes into a larger buffer of its own. */
function cut(data: Buffer, sizes: number[], skew: (i: number) => number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length], data.length - at);
    const offset = skew(i);
    const holder = Buffer.alloc(n + offset + 5, 0xee);
    data.copy(holder, offset, at, at + n);
    pieces.push(holder.subarray(offset, offset + n));
    at += n;
  }
  return pieces;
}

async function run(pieces: Buffer[]): Promise<{ digests: Digests; passed: Buffer }> {
  const tap = pool.tap();
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(Buffer.from(chunk));
      done();
    },
  });
  await pipeline(Readable.from(pieces, { objectMode: false }), tap, sink);
  return { digests: await tap.result(), passed: Buffer.concat(out) };
}

function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('HashingTap', () => {
  it.each([
    ['odd HTTP-like chunks, aligned starts', [65_531, 65_536, 1_000, 65_536, 7], () => 0],
    ['HTTP-like chunks at every skew', [65_536, 65_533], (i: number) => i % 8],
    ['tiny pieces', [1, 2, 3, 5, 7, 11], (i: number) => i % 3],
    ['pieces around the span threshold', [4_095, 4_096, 4_097, 3], (i: number) => (i * 5) % 8],
    ['whole batches and one byte more', [MiB, MiB + 1, MiB - 1], (i: number) => i % 2],
  ])('digests equal node:crypto: %s', async (_name, sizes, skew) => {
    const data = randomBytes(3 * MiB + 12_345);
    const { digests, passed } = await run(cut(data, sizes, skew));
    expect(digests).toEqual(expected(data));
    expect(passed.equals(data)).toBe(true);
  });

  it('digests equal node:crypto over random sizes and offsets, beyond the batch ring', async () => {
    const next = random(20261123);
    for (let round = 0; round < 3; round++) {
      const data = randomBytes(round === 0 ? 40 * MiB : Math.floor(next() * 4 * MiB));
      const sizes = Array.from({ length: 97 }, () => 1 + Math.floor(next() * (next() < 0.2 ? 300 : 150_000)));
      const { digests, passed } = await run(cut(data, sizes, () => Math.floor(next() * 16)));
      expect(digests).toEqual(expected(data));
      expect(passed.length).toBe(data.length);
    }
  });

  it('an empty stream has the digests of no bytes', async () => {
    const { digests } = await run([]);
    expect(digests).toEqual(expected(Buffer.alloc(0)));
  });

  it('a destroyed tap closes its worker sessions, and the pool goes on hashing correctly', async () => {
    const tap = pool.tap();
    const closed = new Promise<Error | undefined>((resolve) => {
      let error: Error | undefined;
      tap.on('error', (err) => (error = err));
      tap.on('close', () => resolve(error));
    });
    tap.write(randomBytes(3 * MiB + 3));
    tap.write(randomBytes(10_001));
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.openSessions).toBe(1);
    tap.destroy(new Error('client went away'));
    expect((await closed)?.message).toBe('client went away');
    expect(pool.openSessions).toBe(0);

    const data = randomBytes(2 * MiB + 99);
    const { digests } = await run(cut(data, [65_531], () => 3));
    expect(digests).toEqual(expected(data));
    expect(pool.openSessions).toBe(0);
  });

  it('uploads being hashed fail at once when a worker stops, and the next upload gets new workers', async () => {
    const own = new HashPool();
    try {
      const streaming = own.tap();
      const failed = new Promise<Error | undefined>((resolve) => {
        let error: Error | undefined;
        streaming.on('error', (err) => (error = err));
        streaming.on('close', () => resolve(error));
      });
      streaming.write(randomBytes(3 * MiB + 5));
      const ended = own.tap();
      ended.end(randomBytes(MiB + 1));
      ended.resume();
      await new Promise((resolve) => ended.once('end', resolve));
      await new Promise((resolve) => setImmediate(resolve));
      // Stopping the workers stands in for a crash: both kinds of waiter must be told.
      const digests = ended.result();
      await own.close();
      expect((await failed)?.message).toMatch(/checksum worker stopped/);
      await expect(digests).rejects.toMatchObject({ code: 'INTERNAL' });
      expect(own.openSessions).toBe(0);

      const data = randomBytes(MiB + 7);
      const tap = own.tap();
      const out = pipeline(Readable.from([data]), tap, new Writable({ write: (_c, _e, cb) => cb() }));
      await out;
      expect(await tap.result()).toEqual(expected(data));
    } finally {
      await own.close();
    }
  });
});
