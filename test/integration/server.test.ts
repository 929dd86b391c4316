import { spawnSync } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { GraphQLError } from 'graphql';
import { request } from 'undici';
import { loadConfig } from '../../src/config/load';
import { VitrineError } from '../../src/domain/errors';
import { createErrorFormatter } from '../../src/graphql/errors';
import { registerHealthRoutes } from '../../src/http/health';
import type { Logger } from '../../src/observability/logger';
import { createMetrics } from '../../src/observability/metrics';
import { startTestApp, TEST_TOKENS, type GraphQLBody, type HttpResult, type TestApp } from '../helpers/app';

/**
 * The server as a whole, through real HTTP: probes, authentication, configuration errors,
 * the first-start admin token, and every GraphQL hardening limit with its error code.
 */
const ROOT = join(__dirname, '..', '..');
const SOME_ID = '6f1c0a8e-3b7d-4c2a-9e51-0d4b8a7c2f10';

function codes(res: HttpResult<GraphQLBody>): (string | undefined)[] {
  return (res.body.errors ?? []).map((e) => e.extensions?.code);
}

function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'vitrine-server-test-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

let dev: TestApp;
let prod: TestApp;

beforeAll(async () => {
  [dev, prod] = await Promise.all([startTestApp({ mode: 'development' }), startTestApp({ mode: 'production' })]);
});
afterAll(async () => {
  await Promise.all([dev?.close(), prod?.close()]);
});

describe('probes', () => {
  it('answers /healthz', async () => {
    const res = await dev.http('GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers /readyz with the status of each dependency', async () => {
    const res = await dev.http('GET', '/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', dependencies: { metadata: { status: 'ok' }, blobs: { status: 'ok' } } });
  });

  it('answers /readyz with 503 when a dependency does not answer its ping', async () => {
    // The one place a fault must be injected: a real SQLite file does not fail on demand.
    const app = Fastify();
    await registerHealthRoutes(app, {
      metrics: createMetrics(),
      checks: { metadata: async () => undefined, events: async () => Promise.reject(new Error('connection refused')) },
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await request(`${url}/readyz`).finally(() => app.close());
    expect(res.statusCode).toBe(503);
    expect(await res.body.json()).toEqual({ status: 'unavailable', dependencies: { metadata: { status: 'ok' }, events: { status: 'unavailable' } } });
  });

  it('exposes Prometheus metrics, including HTTP durations and GraphQL operations', async () => {
    await dev.gql('{ viewer { projectId } }');
    const res = await dev.http('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/vitrine_http_request_duration_seconds_count\{[^}]*route="\/graphql"[^}]*method="POST"[^}]*status="200"/);
    expect(res.text).toMatch(/vitrine_graphql_operations_total\{type="query",outcome="success"\} [1-9]/);
    expect(res.text).toContain('vitrine_process_cpu_seconds_total');
  });

  it('echoes a request id on every response', async () => {
    const res = await dev.http('GET', '/healthz', { headers: { 'x-request-id': 'trace-me-42' } });
    expect(res.headers['x-request-id']).toBe('trace-me-42');
    const generated = await dev.http('GET', '/healthz');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('authentication', () => {
  const query = { query: '{ viewer { projectId userId roles } }' };

  it('resolves the caller from Authorization: Bearer and from X-Auth-Token', async () => {
    const bearer = await dev.http('POST', '/graphql', { headers: { authorization: `Bearer ${dev.tokens.memberA}` }, body: query });
    expect(bearer.status).toBe(200);
    expect(bearer.body.data.viewer).toEqual({ projectId: 'project-a', userId: 'member-a', roles: ['member', 'reader'] });
    const keystone = await dev.http('POST', '/graphql', { headers: { 'x-auth-token': dev.tokens.readerA }, body: query });
    expect(keystone.status).toBe(200);
    expect(keystone.body.data.viewer).toEqual({ projectId: 'project-a', userId: 'reader-a', roles: ['reader'] });
  });

  it.each([
    ['no token', {}],
    ['an unknown bearer token', { authorization: 'Bearer not-a-token-anyone-was-given' }],
    ['an unknown X-Auth-Token', { 'x-auth-token': 'not-a-token-anyone-was-given' }],
    ['a non-bearer Authorization', { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` }],
  ])('refuses %s with 401 UNAUTHENTICATED', async (_what, headers: Record<string, string>) => {
    const res = await dev.http('POST', '/graphql', { headers, body: query });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.body.data).toBeUndefined();
  });
});

describe('configuration errors', () => {
  it('names the key, the expectation, the value and its source for a bad environment variable', () => {
    expect(() => loadConfig({ env: { VITRINE_PORT: 'abc' } })).toThrow('port: expected an integer from 0 to 65535, got "abc" (from VITRINE_PORT)');
    expect(() => loadConfig({ env: { VITRINE_MODE: 'staging' } })).toThrow('mode: expected one of development, production, got "staging" (from VITRINE_MODE)');
    expect(() => loadConfig({ env: { VITRINE_INTROSPECTION: 'maybe' } })).toThrow('graphql.introspection: expected true or false, got "maybe" (from VITRINE_INTROSPECTION)');
  });

  it('reports an unknown key in a config file, with the keys that are allowed', () =>
    withTempDir(async (dir) => {
      const file = join(dir, 'vitrine.json');
      writeFileSync(file, JSON.stringify({ graphql: { maxDepht: 3 } }));
      expect(() => loadConfig({ configPath: file, env: {} })).toThrow(
        `graphql.maxDepht: unknown key; expected one of: introspection, explorer, maxDepth, maxCost, maxAliases, maxDirectives, maxTokens, maxBatch, responseCache, got 3 (from config file ${file})`,
      );
    }));

  it('lists every bad key in one error, and lets the environment override the file', () =>
    withTempDir(async (dir) => {
      const file = join(dir, 'vitrine.json');
      writeFileSync(file, JSON.stringify({ port: 70000, paging: { maxPageSize: 0 }, auth: { tokens: [{ token: 'short-secret', projectId: 'p', userId: 'u', roles: [] }] } }));
      let message = '';
      try {
        loadConfig({ env: { VITRINE_CONFIG: file, VITRINE_HOST: '' } });
      } catch (err) {
        expect(err).toBeInstanceOf(VitrineError);
        expect((err as VitrineError).code).toBe('CONFIG_INVALID');
        message = (err as Error).message;
      }
      expect(message).toContain('Invalid configuration (5 problems):');
      expect(message).not.toContain('defaultPageSize');
      expect(message).toContain(`port: expected an integer from 0 to 65535, got 70000 (from config file ${file})`);
      expect(message).toContain(`paging.maxPageSize: expected an integer ≥ 1, got 0 (from config file ${file})`);
      expect(message).toContain('host: expected a string of at least 1 characters, got "" (from VITRINE_HOST)');
      expect(message).toContain(`auth.tokens[0].token: expected a string of at least 16 characters, got a string of 12 characters (from config file ${file})`);
      expect(message).toContain(`auth.tokens[0].roles: expected a non-empty array, got an array of 0 items (from config file ${file})`);
      expect(message).not.toContain('short-secret');

      const fixed = loadConfig({ configPath: file, env: { VITRINE_PORT: '4001' }, overrides: { paging: { maxPageSize: 500 }, auth: { tokens: [] } } });
      expect(fixed.port).toBe(4001);
      expect(fixed.paging).toEqual({ defaultPageSize: 25, maxPageSize: 500 });
      expect(() => loadConfig({ env: {}, overrides: { paging: { maxPageSize: 10 } } })).toThrow(
        'paging.defaultPageSize: expected at most paging.maxPageSize, got 25 (default)',
      );
    }));

  it('rejects a malformed artifact type, and one the type registry refuses', () => {
    const shape = () => loadConfig({ env: {}, overrides: { artifactTypes: [{ name: 'playbooks', fields: { body: { kind: 'text' } } }] } });
    expect(shape).toThrow('artifactTypes[0].fields.body.kind: expected one of string, integer, float, boolean, blob, blobDict, got "text" (from overrides)');
    const semantics = () => loadConfig({ env: {}, overrides: { artifactTypes: [{ name: 'playbooks', fields: { name: { kind: 'string' } } }] } });
    expect(semantics).toThrow('artifactTypes: type playbooks: field name is a base field of every artifact (from overrides)');
  });

  it('rejects a quota for an unknown artifact type', () => {
    expect(() => loadConfig({ env: {}, overrides: { quotas: { 'max_artifact_number:gadgets': 3 } } })).toThrow('quotas.max_artifact_number:gadgets: expected a known artifact type after ":"');
    expect(() => loadConfig({ env: {}, overrides: { quotas: { max_widgets: 3 } } })).toThrow('quotas.max_widgets: expected max_artifact_number or max_uploaded_data, optionally followed by :<type> as the key, got "max_widgets"');
  });

  it('rejects named stores that are malformed or a default store that is not among them', () => {
    expect(() => loadConfig({ env: {}, overrides: { blobs: { stores: { fast: { path: '/a' } }, defaultStore: 'slow' } } })).toThrow('blobs.defaultStore: expected the name of one of blobs.stores');
    expect(() => loadConfig({ env: {}, overrides: { blobs: { stores: { os_glance_staging: { path: '/a' } } } } })).toThrow('blobs.stores.os_glance_staging: expected a store name of lower-case letters, digits, _ and - (not starting with os_glance_) as the key');
    expect(() => loadConfig({ env: {}, overrides: { blobs: { stores: { fast: {} } } } })).toThrow('blobs.stores.fast.path');
    expect(() => loadConfig({ env: {}, overrides: { blobs: { stores: { far: { driver: 'swift', auth: { url: 'http://swift:8080/auth/v1.0', user: 'a:b', key: 'k' } } } } } })).toThrow('blobs.stores.far.container');
    expect(() => loadConfig({ env: {}, overrides: { blobs: { stores: { far: { driver: 'swift', container: 'c' } } } } })).toThrow('blobs.stores.far.auth: expected auth, or both storageUrl and token');
    expect(() => loadConfig({ env: {}, overrides: { blobs: { stores: { far: { driver: 's3', path: '/x' } } } } })).toThrow('blobs.stores.far');
    expect(() => loadConfig({ env: {}, overrides: { imports: { methods: ['glance-upload'] } } })).toThrow('imports.methods[0]: expected one of glance-direct, web-download, copy-image, glance-download');
    expect(loadConfig({ env: {}, overrides: { imports: { methods: ['glance-download'] } } }).imports.methods).toEqual(['glance-download']);
    expect(() => loadConfig({ env: {}, overrides: { imports: { glanceDownload: { regions: { RegionTwo: 'http://glance.two/v2' } } } } })).toThrow('imports.glanceDownload.regions.RegionTwo: expected an http:// or https:// URL of the Glance endpoint, without /v2');
    const multi = loadConfig({ env: {}, overrides: { blobs: { stores: { fast: { path: '/f' }, cheap: { path: '/c' } } } } });
    expect(multi.blobs).toMatchObject({ multistore: true, defaultStore: 'fast' });
  });

  it('fills the defaults and derives paths and switches from the data dir and the mode', () => {
    const dev = loadConfig({ env: { VITRINE_DATA_DIR: '/srv/vitrine' } });
    expect(dev).toMatchObject({ mode: 'development', host: '127.0.0.1', port: 4000, dataDir: '/srv/vitrine' });
    expect(dev.database).toEqual({ driver: 'sqlite', path: '/srv/vitrine/vitrine.sqlite' });
    expect(dev.blobs).toEqual({ driver: 'fs', path: '/srv/vitrine/blobs', multistore: false, defaultStore: 'fs', stores: { fs: { driver: 'fs', path: '/srv/vitrine/blobs' } } });
    expect(dev.graphql).toEqual({ introspection: true, explorer: true, maxDepth: 12, maxCost: 25000, maxAliases: 20, maxDirectives: 30, maxTokens: 4000, maxBatch: 10, responseCache: { entries: 256, maxBytes: 32 * 1024 ** 2 } });
    expect(Object.isFrozen(dev.graphql)).toBe(true);
    expect(dev.imageCache).toEqual({ enabled: false, dir: '/srv/vitrine/image-cache', maxBytes: 10 * 1024 ** 3, prefetchDelayMs: 1000 });
    expect(dev.imports.methods).toEqual(['glance-direct', 'web-download', 'copy-image']);
    expect(dev.imports.glanceDownload).toEqual({ regions: {}, properties: ['hw_', 'trait:', 'os_distro', 'os_secure_boot', 'os_type'] });
    const prod = loadConfig({ env: { VITRINE_MODE: 'production', VITRINE_EXPLORER: 'yes' } });
    expect(prod.graphql).toMatchObject({ introspection: false, explorer: true });
  });

  it('stops `vitrine serve` with exit code 1 and the message alone, no stack trace', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'main.ts'), 'serve'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', VITRINE_PORT: 'abc', VITRINE_DATA_DIR: join(tmpdir(), 'vitrine-never-created') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('port: expected an integer from 0 to 65535, got "abc" (from VITRINE_PORT)');
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('the first-start admin token', () => {
  it('is created 0600 in the data dir, shown once, and reused silently on later starts', () =>
    withTempDir(async (dataDir) => {
      const shown: string[] = [];
      const start = () => startTestApp({}, { dataDir: join(dataDir, 'nested'), tokens: [], app: { announce: (text) => shown.push(text) } });

      const first = await start();
      const file = join(dataDir, 'nested', 'admin-token');
      const token = readFileSync(file, 'utf8').trim();
      try {
        expect(statSync(file).mode & 0o777).toBe(0o600);
        expect(statSync(join(dataDir, 'nested')).mode & 0o777).toBe(0o700);
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(shown).toHaveLength(1);
        expect(shown[0]).toContain(token);
        expect(shown[0]).toContain(file);
        const res = await first.gql('{ viewer { projectId roles } }', undefined, token);
        expect(res.body.data.viewer).toEqual({ projectId: 'admin', roles: ['admin', 'member', 'reader'] });
        expect((await first.gql('{ viewer { projectId } }', undefined, first.tokens.admin)).status).toBe(401);
      } finally {
        await first.close();
      }

      const second = await start();
      try {
        expect(shown).toHaveLength(1);
        expect(readFileSync(file, 'utf8').trim()).toBe(token);
        expect((await second.gql('{ viewer { projectId } }', undefined, token)).body.data.viewer.projectId).toBe('admin');
      } finally {
        await second.close();
      }
    }));
});

describe('GraphQL hardening', () => {
  /** artifact { links { target { … id } } }: 2 + 2 × pairs levels deep. */
  const nested = (pairs: number) => `query { artifact(id: "${SOME_ID}") { ${'links { target { '.repeat(pairs)}id${' } }'.repeat(pairs)} } }`;

  it('refuses a query deeper than maxDepth (12) with QUERY_TOO_DEEP', async () => {
    const within = await dev.gql(nested(5));
    expect(within.status).toBe(200);
    expect(within.body.errors).toBeUndefined();
    const deep = await dev.gql(nested(6));
    expect(deep.status).toBe(400);
    expect(codes(deep)).toEqual(['QUERY_TOO_DEEP']);
    expect(deep.body.errors![0].message).toBe('Query depth limit of 12 exceeded, found 14.');
  });

  it('refuses a query costlier than maxCost (25000) with QUERY_TOO_COSTLY, but not a 100-image page', async () => {
    const page = `{ images(first: 100) { edges { node { id name status visibility owner tags properties diskFormat containerFormat size
      virtualSize checksum osHashAlgo osHashValue minDisk minRam protected osHidden stores createdAt updatedAt } } totalCount } }`;
    const cheap = await dev.gql(page);
    expect(cheap.status).toBe(200);
    expect(cheap.body.errors).toBeUndefined();
    const costly = await dev.gql('{ artifacts(first: 1000) { nodes { id name version status owner tags properties createdAt updatedAt } } }');
    expect(costly.status).toBe(400);
    expect(codes(costly)).toEqual(['QUERY_TOO_COSTLY']);
  });

  it('refuses more than maxAliases (20) aliases with TOO_MANY_ALIASES', async () => {
    // graphql-armor does not count aliases of __typename.
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { projectId }`).join(' ')} }`;
    expect((await dev.gql(aliases(20))).status).toBe(200);
    const res = await dev.gql(aliases(21));
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['TOO_MANY_ALIASES']);
  });

  it('refuses more than maxDirectives (30) directives with TOO_MANY_DIRECTIVES', async () => {
    const directives = (n: number) => `{ ${'__typename @include(if: true) '.repeat(n)}}`;
    expect((await dev.gql(directives(30))).status).toBe(200);
    const res = await dev.gql(directives(31));
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['TOO_MANY_DIRECTIVES']);
  });

  it('refuses a document of more than maxTokens (4000) tokens with TOO_MANY_TOKENS, as a 400', async () => {
    const res = await dev.gql(`{ ${'__typename '.repeat(4000)}}`);
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['TOO_MANY_TOKENS']);
  });

  it('answers a syntax error with 400 GRAPHQL_PARSE_FAILED, not 500', async () => {
    const res = await dev.gql('{ viewer { projectId ');
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['GRAPHQL_PARSE_FAILED']);
  });

  it('runs batches up to maxBatch (10) and refuses larger ones with BATCH_TOO_LARGE', async () => {
    const batch = (n: number) => Array.from({ length: n }, () => ({ query: '{ viewer { projectId } }' }));
    const headers = { authorization: `Bearer ${dev.tokens.memberB}` };
    const ok = await dev.http('POST', '/graphql', { headers, body: batch(10) });
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(10);
    expect(ok.body[9]).toEqual({ data: { viewer: { projectId: 'project-b' } } });
    const res = await dev.http('POST', '/graphql', { headers, body: batch(11) });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['BATCH_TOO_LARGE']);
  });

  it('rejects circular fragments in validation', async () => {
    const res = await dev.gql(`
      query { artifact(id: "${SOME_ID}") { ...A } }
      fragment A on Artifact { links { target { ...B } } }
      fragment B on Artifact { links { target { ...A } } }`);
    expect(res.status).toBe(400);
    expect(codes(res)).toContain('GRAPHQL_VALIDATION_FAILED');
    expect(res.body.errors!.some((e) => /Cannot spread fragment "A" within itself/.test(e.message))).toBe(true);
  });

  it('suggests field names in development and hides them in production', async () => {
    const typo = '{ viewer { projectIdd } }';
    const devRes = await dev.gql(typo);
    expect(devRes.status).toBe(400);
    expect(devRes.body.errors![0].message).toContain('Did you mean "projectId"?');
    const prodRes = await prod.gql(typo);
    expect(prodRes.status).toBe(400);
    expect(codes(prodRes)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(prodRes.body.errors![0].message).not.toContain('"projectId"');
    expect(prodRes.body.errors![0].message).not.toMatch(/Did you mean/);
  });

  it('serves introspection in development and refuses it in production', async () => {
    const query = '{ __schema { queryType { name } } }';
    const devRes = await dev.gql(query);
    expect(devRes.status).toBe(200);
    expect(devRes.body.data.__schema.queryType.name).toBe('Query');
    const prodRes = await prod.gql(query);
    expect(prodRes.status).toBe(400);
    expect(codes(prodRes)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(prodRes.body.data).toBeUndefined();
  });

  it('serves the explorer page in development only', async () => {
    const devPage = await dev.http('GET', '/graphql', { headers: { accept: 'text/html' } });
    expect(devPage.status).toBe(200);
    expect(devPage.headers['content-type']).toMatch(/^text\/html/);
    const prodPage = await prod.http('GET', '/graphql', { headers: { accept: 'text/html' } });
    expect(prodPage.headers['content-type']).not.toMatch(/^text\/html/);
  });

  it('refuses GET and simple-content-type requests without a preflight header (CSRF)', async () => {
    const auth = { authorization: `Bearer ${dev.tokens.admin}` };
    const path = `/graphql?query=${encodeURIComponent('{ viewer { projectId } }')}`;
    const get = await dev.http('GET', path, { headers: auth });
    expect(get.status).toBe(400);
    expect(get.body.errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(get.body.errors[0].message).toMatch(/Cross-Site Request Forgery/);
    const form = await dev.http('POST', '/graphql', { headers: { ...auth, 'content-type': 'text/plain' }, body: JSON.stringify({ query: '{ viewer { projectId } }' }) });
    expect(form.status).toBe(400);
    expect(form.body.errors[0].extensions.code).toBe('BAD_REQUEST');
    const preflighted = await dev.http('GET', path, { headers: { ...auth, 'apollo-require-preflight': 'true' } });
    expect(preflighted.status).toBe(200);
    expect(preflighted.body.data.viewer.projectId).toBe('admin');
  });

  it('answers a body over the limit with 413 PAYLOAD_TOO_LARGE, not 500', async () => {
    const res = await dev.http('POST', '/graphql', {
      headers: { authorization: `Bearer ${dev.tokens.admin}` },
      body: { query: '{ viewer { projectId } }', variables: { padding: 'x'.repeat(1024 * 1024) } },
    });
    expect(res.status).toBe(413);
    expect(res.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers malformed JSON with 400, not 500', async () => {
    const res = await dev.http('POST', '/graphql', { headers: { authorization: `Bearer ${dev.tokens.admin}`, 'content-type': 'application/json' }, body: '{"query": ' });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('BAD_REQUEST');
  });
});

describe('error formatting', () => {
  const logged: unknown[] = [];
  const logger = { error: (obj: unknown) => logged.push(obj) } as unknown as Logger;
  const format = createErrorFormatter(logger);

  it('keeps a VitrineError’s message and code, with its details', () => {
    const cause = new VitrineError('REVISION_CONFLICT', 'artifact x is at revision 3, not 2', { revision: 3 });
    const wrapped = new GraphQLError(cause.message, { originalError: cause, path: ['updateArtifact'] });
    expect(format(wrapped.toJSON(), wrapped)).toEqual({ message: cause.message, path: ['updateArtifact'], extensions: { code: 'REVISION_CONFLICT', details: { revision: 3 } } });
  });

  it('masks any other error as INTERNAL and logs it with its stack', () => {
    const cause = new TypeError("Cannot read properties of undefined (reading 'secret')");
    const wrapped = new GraphQLError(cause.message, { originalError: cause, path: ['artifact'] });
    const out = format(wrapped.toJSON(), wrapped);
    expect(out).toEqual({ message: 'Unexpected error', path: ['artifact'], extensions: { code: 'INTERNAL' } });
    expect(JSON.stringify(out)).not.toContain('secret');
    expect(logged).toContainEqual(expect.objectContaining({ err: cause }));
  });
});

describe('shutdown', () => {
  it('lets a request in flight finish, then ends its keep-alive connection instead of waiting out the keep-alive timeout', async () => {
    const app = await startTestApp();
    const created = await app.http('POST', '/v2/images', { headers: { 'x-auth-token': TEST_TOKENS.memberA }, body: { name: 'in-flight', disk_format: 'raw', container_format: 'bare' } });
    const agent = new Agent({ keepAlive: true });
    let socketClosed = false;
    let sendRest!: () => void;
    const answered = new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${app.baseUrl}/v2/images/${created.body.id}/file`, { method: 'PUT', agent, headers: { 'x-auth-token': TEST_TOKENS.memberA, 'content-type': 'application/octet-stream', 'content-length': '8' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('socket', (socket) => socket.on('close', () => (socketClosed = true)));
      req.on('error', reject);
      req.write('half');
      sendRest = () => req.end('done');
    });
    // The upload has started: close now, then let the upload finish.
    await new Promise((r) => setTimeout(r, 200));
    const closed = app.close();
    await new Promise((r) => setTimeout(r, 200));
    sendRest();
    expect(await answered).toBe(204);
    // Without closing it, the kept-alive connection would hold close() for 72 s (past this test's timeout).
    await closed;
    expect(socketClosed).toBe(true);
    agent.destroy();
  }, 30_000);
});
