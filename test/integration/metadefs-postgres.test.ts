import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Metadefs on the real PostgreSQL (127.0.0.1:5432) with two Vitrine instances sharing one
 * schema, started together: the default catalog is written exactly once, and what one
 * instance writes the other serves (facade and GraphQL).
 */
const POSTGRES_URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `vitrine_metadefs_${randomBytes(5).toString('hex')}`;
let apps: TestApp[] = [];

async function admin(sql: string): Promise<unknown[]> {
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin(`CREATE SCHEMA ${schema}`);
  const started = await Promise.allSettled([0, 1].map(() => startTestApp({ database: { url: POSTGRES_URL, schema } })));
  apps = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  for (const s of started) if (s.status === 'rejected') throw s.reason;
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(apps.map((a) => a.close()));
  await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
});

it('seeds the default catalog once when instances start together', async () => {
  const seeds = await admin(`SELECT id FROM ${schema}.metadef_seeds`);
  expect(seeds).toHaveLength(1);
  for (const app of apps) {
    const res = await app.http('GET', '/v2/metadefs/resource_types', { headers: { 'x-auth-token': app.tokens.readerA } });
    expect(res.status).toBe(200);
    const names = res.body.resource_types.map((t: { name: string }) => t.name);
    expect(names).toContain('OS::Glance::Image');
    expect(new Set(names).size).toBe(names.length);
  }
});

it('serves from one instance what the other wrote', async () => {
  const [a, b] = apps;
  const created = await a.http('POST', '/v2/metadefs/namespaces', {
    headers: { 'x-auth-token': a.tokens.admin },
    body: { namespace: `pg-${schema}`, visibility: 'public', resource_type_associations: [{ name: 'OS::Nova::Flavor', prefix: 'pg:' }], properties: { x: { title: 'X', type: 'string' } } },
  });
  expect(created.status).toBe(201);
  const read = await b.gql('query($rt: String) { metadefNamespaces(resourceType: $rt) { namespace properties { name } } }', { rt: 'OS::Nova::Flavor' }, b.tokens.memberB);
  const mine = read.body.data.metadefNamespaces.find((n: { namespace: string }) => n.namespace === `pg-${schema}`);
  expect(mine.properties).toEqual([{ name: 'pg:x' }]);
  const removed = await b.gql('mutation($n: String!) { deleteMetadefNamespace(namespace: $n) }', { n: `pg-${schema}` });
  expect(removed.body.data.deleteMetadefNamespace).toBe(true);
  expect((await a.http('GET', `/v2/metadefs/namespaces/pg-${schema}`, { headers: { 'x-auth-token': a.tokens.admin } })).status).toBe(404);
  expect(await admin(`SELECT * FROM ${schema}.metadefs WHERE namespace = 'pg-${schema}'`)).toEqual([]);
});
