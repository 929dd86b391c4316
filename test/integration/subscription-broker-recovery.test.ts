import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app';
import { FaultProxy } from '../helpers/fault-proxy';

/**
 * Two instances of the app sharing the real PostgreSQL and the real Redis or NATS, as a
 * scaled-out deployment does. Instance A reaches the broker through a proxy the test cuts:
 * events committed on instance B during the outage never reach A over the bus, yet A's
 * subscriber receives each of them once, in order, as soon as A's bus is back (from the
 * durable event log), before anything new happens.
 */
const DATABASE_URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BROKERS = [
  { driver: 'redis', url: process.env.VITRINE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  { driver: 'nats', url: process.env.VITRINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222' },
] as const;

/** Polls until `check` holds, within a bound: the app offers no event to await. */
async function eventually(check: () => boolean | Promise<boolean>, what: string, boundMs = 20_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(BROKERS)('a subscriber on an instance whose $driver connection drops', ({ url }) => {
  const schema = `vitrine_recovery_${randomBytes(6).toString('hex')}`;
  const channel = `vitrine.test.${randomBytes(6).toString('hex')}`;
  let proxy: FaultProxy;
  let a: TestApp;
  let b: TestApp;
  let ws: WebSocket | undefined;

  beforeAll(async () => {
    const target = new URL(url);
    proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port) });
    const database = { url: DATABASE_URL, schema, poolSize: 2 };
    a = await startTestApp({ database, events: { url: proxy.urlFor(url), channel } });
    b = await startTestApp({ database, events: { url, channel } });
  });

  afterAll(async () => {
    ws?.terminate();
    await a?.close();
    await b?.close();
    await proxy?.close();
    const admin = new PgClient({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('receives every event committed elsewhere during the outage once, in order, when the bus is back', async () => {
    const messages: any[] = [];
    ws = new WebSocket(`${a.baseUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    const socket = ws;
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'connection_init', payload: { token: a.tokens.memberA } }));
    await eventually(() => messages.some((m) => m.type === 'connection_ack'), 'acknowledged');
    const query = 'subscription($f: ArtifactEventFilter) { artifactEvents(filter: $f) { kind revision artifact { name } } }';
    socket.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query, variables: { f: { owners: ['project-a'] } } } }));
    socket.send(JSON.stringify({ id: 'barrier', type: 'subscribe', payload: { query: '{ viewer { projectId } }' } }));
    await eventually(() => messages.some((m) => m.id === 'barrier' && m.type === 'complete'), 'subscribed');
    const received = () => messages.filter((m) => m.id === 's' && m.type === 'next').map((m) => `${m.payload.data.artifactEvents.kind}:${m.payload.data.artifactEvents.revision}`);

    const gql = async (query: string, variables: Record<string, unknown>) => {
      const res = await b.gql(query, variables, b.tokens.memberA);
      if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
      return res.body.data;
    };
    const id = (await gql('mutation($input: CreateImageInput!) { createImage(input: $input) { id } }', { input: { name: 'recovery' } })).createImage.id as string;
    const tag = (t: string) => gql('mutation($id: ID!, $t: String!) { addTags(id: $id, tags: [$t]) { id } }', { id, t });
    await eventually(() => received().length === 1, 'delivered over the bus before the outage');

    proxy.cut();
    await eventually(async () => (await a.http('GET', '/readyz')).status === 503, "reporting the bus down on A");
    for (const t of ['during-1', 'during-2', 'during-3']) await tag(t);
    proxy.restore();
    // Nothing new is committed until A has caught up: only the log can bring these three.
    await eventually(() => received().length >= 4, 'caught up after the reconnection');
    await tag('after');
    await eventually(() => received().length >= 5, 'delivered over the bus after the outage');

    expect(received()).toEqual(['CREATED:1', 'UPDATED:2', 'UPDATED:3', 'UPDATED:4', 'UPDATED:5']);
    expect(messages.filter((m) => m.id === 's' && m.type !== 'next')).toEqual([]);
  });
});
