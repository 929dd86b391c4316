import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { loadConfig } from '../../src/config/load';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * The whole app on the real PostgreSQL, reached through a TCP relay that the test can cut
 * (the one fault injected): losing the database makes /readyz report it unavailable, the
 * process survives the dropped connections, and readiness returns once the database does.
 */
const DATABASE_URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Relays TCP to the database while `up`; while down, drops every open and new connection. */
class Relay {
  private readonly sockets = new Set<Socket>();
  private up = true;
  readonly server: Server;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => {
      if (!this.up) return void client.destroy();
      const upstream = connect(this.target.port, this.target.host);
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => { this.sockets.delete(a); b.destroy(); });
        a.pipe(b);
      }
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('the app on PostgreSQL', () => {
  const schema = `vitrine_app_${randomBytes(6).toString('hex')}`;
  const target = new URL(DATABASE_URL);
  const relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
  let app: TestApp;

  beforeAll(async () => {
    const port = await relay.listen();
    const viaRelay = new URL(DATABASE_URL);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(port);
    app = await startTestApp({ database: { url: viaRelay.toString(), schema, poolSize: 2 } });
  });

  afterAll(async () => {
    await app?.close();
    await relay.close();
    const admin = new Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('migrates its schema at start and is ready', async () => {
    expect(app.config.database).toMatchObject({ driver: 'postgres', schema, poolSize: 2 });
    const ready = await app.http('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.dependencies.metadata).toEqual({ status: 'ok' });
  });

  it('reports not ready while the database is unreachable, and ready again when it is back', async () => {
    relay.cut();
    const down = await app.http('GET', '/readyz');
    expect(down.status).toBe(503);
    expect(down.body.dependencies.metadata).toEqual({ status: 'unavailable' });
    expect((await app.http('GET', '/healthz')).status).toBe(200);

    relay.restore();
    const back = await app.http('GET', '/readyz');
    expect(back.status).toBe(200);
  });
});

describe('database configuration', () => {
  it('keeps SQLite the default and switches to PostgreSQL when a URL is given (VITRINE_DATABASE_URL)', () => {
    expect(loadConfig({ env: { VITRINE_DATA_DIR: '/srv/v' } }).database).toEqual({ driver: 'sqlite', path: '/srv/v/vitrine.sqlite' });
    expect(loadConfig({ env: { VITRINE_DATA_DIR: '/srv/v', VITRINE_DATABASE_URL: 'postgres://vitrine@db:5432/vitrine' } }).database)
      .toEqual({ driver: 'postgres', path: '/srv/v/vitrine.sqlite', url: 'postgres://vitrine@db:5432/vitrine', poolSize: 10 });
  });

  it('names what is missing or wrong', () => {
    expect(() => loadConfig({ env: {}, overrides: { database: { driver: 'postgres' } } }))
      .toThrow('database.url: expected a postgres:// URL when database.driver is "postgres", got nothing');
    expect(() => loadConfig({ env: {}, overrides: { database: { driver: 'sqlite', url: 'postgres://db/x' } } }))
      .toThrow('database.driver: expected "postgres" when database.url is set (or remove the url), got "sqlite"');
    expect(() => loadConfig({ env: {}, overrides: { database: { driver: 'mysql' } } })).toThrow('database.driver: expected one of sqlite, postgres, got "mysql"');
    const bad = () => loadConfig({ env: {}, overrides: { database: { url: 'http://db/x', poolSize: 0, schema: 'Bad-Name' } } });
    expect(bad).toThrow('database.url: expected a postgres:// or postgresql:// URL, got a string of 11 characters');
    // A URL may carry a password: the message must never echo it.
    expect(() => loadConfig({ env: {}, overrides: { database: { url: 'mysql://u:hunter2@db/x' } } })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
    expect(bad).toThrow('database.schema: expected a schema name of lower-case letters, digits and _ (at most 63), got "Bad-Name"');
    expect(bad).toThrow('database.poolSize: expected an integer from 1 to 1000, got 0');
  });
});
