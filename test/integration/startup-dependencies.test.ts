import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createApp } from '../../src/app/compose';
import { loadConfig } from '../../src/config/load';

/**
 * A dependency that is missing at start-up stops the start with UNAVAILABLE, naming the
 * dependency and where it was looked for, never its credentials; nothing is left
 * listening. (Outages after start are /readyz's business: the *-readiness tests.)
 */
const DATABASE_URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECRET = 'hunter2-do-not-print';

let dir: string;
let closedPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-startup-'));
  // A port that was just free: connections to it are refused.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function startWith(name: string, overrides: Record<string, unknown>): Promise<{ code?: string; message: string }> {
  const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, name), port: 0, ...overrides } });
  try {
    const app = await createApp(config, { logger: pino({ level: 'silent' }), announce: () => undefined });
    await app.close();
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error(`${name}: Vitrine started although a dependency is missing`);
}

const postgresAt = (url: string) => new URL(url.replace(/^postgres(ql)?:/, 'http:'));

test.each([
  ['PostgreSQL that refuses connections', () => ({ database: { url: `postgres://vitrine:${SECRET}@127.0.0.1:${closedPort}/vitrine` } }), `the metadata store cannot reach PostgreSQL at 127.0.0.1:PORT/vitrine`],
  ['PostgreSQL without the named database', () => {
    const url = postgresAt(DATABASE_URL);
    return { database: { url: `postgres://${url.username}:${SECRET}@${url.host}/vitrine_missing_database` } };
  }, 'the metadata store cannot reach PostgreSQL at'],
  ['Redis that refuses connections', () => ({ events: { url: `redis://:${SECRET}@127.0.0.1:${closedPort}` } }), 'the event bus cannot reach Redis at redis://…@127.0.0.1:PORT'],
  ['NATS that refuses connections', () => ({ events: { url: `nats://vitrine:${SECRET}@127.0.0.1:${closedPort}` } }), 'the event bus cannot reach NATS at nats://…@127.0.0.1:PORT'],
  ['Swift whose auth endpoint refuses connections', () => ({
    blobs: { stores: { objects: { driver: 'swift', container: 'images', auth: { url: `http://127.0.0.1:${closedPort}/auth/v1.0`, user: 'test:tester', key: SECRET } } } },
  }), 'the Swift blob store "objects" is unreachable'],
])('%s: the start fails with UNAVAILABLE, naming it', async (name, overrides, expected) => {
  const error = await startWith(name.replace(/\W+/g, '-'), overrides());
  expect(error.code).toBe('UNAVAILABLE');
  expect(error.message).toContain(expected.replace('PORT', String(closedPort)));
  expect(error.message).not.toContain(SECRET);
});
