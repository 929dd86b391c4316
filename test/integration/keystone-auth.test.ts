import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app';
import { KEYSTONE_START_TIMEOUT_MS, startKeystone, type RealKeystone } from '../helpers/keystone';


/** Opens a graphql-transport-ws socket, sends connection_init with `token`, and returns how the server closed it. */
function initCloseCode(target: TestApp, token: string): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${target.baseUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { token } })));
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'connection_ack') reject(new Error('the connection was acknowledged'));
    });
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    socket.on('error', reject);
  });
}

/**
 * auth.mode keystone against a REAL Keystone 22 (scripts/keystone-dev): tokens issued by
 * Keystone reach GraphQL, the Glance facade and graphql-ws; roles and project come from
 * the token. Keystone's tokens live TOKEN_LIFETIME_S here so that expiry can be observed,
 * so every test asks for fresh tokens; the app re-validates cached tokens after 1 s.
 */
const TOKEN_LIFETIME_S = 30;

let keystone: RealKeystone;
let app: TestApp;

beforeAll(async () => {
  keystone = await startKeystone({ tokenExpirationSeconds: TOKEN_LIFETIME_S });
  app = await startTestApp({ auth: { mode: 'keystone', keystone: keystone.authConfig({ cacheSeconds: 1, timeoutMs: 10_000 }) } });
}, KEYSTONE_START_TIMEOUT_MS);
afterAll(async () => {
  await app?.close();
  await keystone?.stop();
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const auth = (token: string) => ({ 'x-auth-token': token });
const VIEWER = '{ viewer { projectId userId roles } }';
const codes = (res: { body: { errors?: { extensions?: { code?: string } }[] } }) => (res.body.errors ?? []).map((e) => e.extensions?.code);

describe('tokens from Keystone', () => {
  it('gives the token\'s project, user and roles to GraphQL (member implies reader)', async () => {
    const token = await keystone.tokenFor('member-a', 'project-a');
    const res = await app.gql(VIEWER, undefined, token);
    expect(res.status).toBe(200);
    expect(res.body.data.viewer).toEqual({ projectId: keystone.projectIds['project-a'], userId: keystone.env.KEYSTONE_MEMBER_A_USER_ID, roles: ['member', 'reader'] });
    const reader = await app.gql(VIEWER, undefined, await keystone.tokenFor('reader-a', 'project-a'));
    expect(reader.body.data.viewer.roles).toEqual(['reader']);
  });

  it('lets member-a create and list in project-a through GraphQL and the Glance facade', async () => {
    const token = await keystone.tokenFor('member-a', 'project-a');
    const created = await app.gql('mutation { createArtifact(input: {typeName: "images", name: "ks-gql"}) { id owner } }', undefined, token);
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.createArtifact.owner).toBe(keystone.projectIds['project-a']);
    const facade = await app.http('POST', '/v2/images', { headers: auth(token), body: { name: 'ks-facade' } });
    expect(facade.status).toBe(201);
    expect(facade.body.owner).toBe(keystone.projectIds['project-a']);
    const listed = await app.http('GET', '/v2/images', { headers: { authorization: `Bearer ${token}` } });
    expect(listed.status).toBe(200);
    expect(listed.body.images.map((i: { id: string }) => i.id)).toEqual(expect.arrayContaining([created.body.data.createArtifact.id, facade.body.id]));
  });

  it('refuses creation to reader-a with 403', async () => {
    const token = await keystone.tokenFor('reader-a', 'project-a');
    expect((await app.http('POST', '/v2/images', { headers: auth(token), body: { name: 'nope' } })).status).toBe(403);
    const res = await app.gql('mutation { createArtifact(input: {typeName: "images", name: "nope"}) { id } }', undefined, token);
    expect(codes(res)).toEqual(['FORBIDDEN']);
  });

  it('hides project-a\'s private image from member-b and shows it to admin', async () => {
    const mine = await app.http('POST', '/v2/images', { headers: auth(await keystone.tokenFor('member-a', 'project-a')), body: { name: 'private-a', visibility: 'private' } });
    expect(mine.status).toBe(201);
    expect((await app.http('GET', `/v2/images/${mine.body.id}`, { headers: auth(await keystone.tokenFor('member-b', 'project-b')) })).status).toBe(404);
    const admin = await app.http('GET', `/v2/images/${mine.body.id}`, { headers: auth(await keystone.tokenFor('admin', 'admin')) });
    expect(admin.status).toBe(200);
    expect(admin.body.owner).toBe(keystone.projectIds['project-a']);
  });

  it('authenticates graphql-ws connection_init with a Keystone token', async () => {
    const token = await keystone.tokenFor('member-b', 'project-b');
    const client: Client = createClient({ url: `${app.baseUrl.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0, lazy: true });
    try {
      const result = await new Promise<any>((resolve, reject) => {
        let value: unknown;
        client.subscribe({ query: VIEWER }, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
      });
      expect(result.data.viewer.projectId).toBe(keystone.projectIds['project-b']);
    } finally {
      await client.dispose();
    }
  });

  it('validates X-Service-Token too, and keeps the user token\'s principal', async () => {
    const user = await keystone.tokenFor('member-a', 'project-a');
    const service = await keystone.tokenFor('admin', 'admin');
    const ok = await app.http('POST', '/graphql', { headers: { ...auth(user), 'x-service-token': service }, body: { query: VIEWER } });
    expect(ok.body).toEqual({ data: { viewer: expect.objectContaining({ projectId: keystone.projectIds['project-a'] }) } });
    const bad = await app.http('POST', '/graphql', { headers: { ...auth(user), 'x-service-token': 'gAAAAAB-not-a-real-token' }, body: { query: VIEWER } });
    expect(bad.status).toBe(401);
  });
});

describe('bad tokens', () => {
  it.each([
    ['a malformed token (too long to be one)', 'x'.repeat(9_000)],
    ['an unknown token', 'gAAAAABnot-a-fernet-token-that-keystone-ever-issued-0123456789'],
  ])('refuses %s with 401 UNAUTHENTICATED', async (_what, token) => {
    const res = await app.http('POST', '/graphql', { headers: { authorization: `Bearer ${token}` }, body: { query: VIEWER } });
    expect(res.status).toBe(401);
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    expect((await app.http('GET', '/v2/images', { headers: auth(token) })).status).toBe(401);
    expect((await initCloseCode(app, token)).code).toBe(4403);
  });

  it('refuses a revoked token once the cache re-validates it', async () => {
    const token = await keystone.tokenFor('member-a', 'project-a');
    expect((await app.gql(VIEWER, undefined, token)).status).toBe(200);
    await keystone.revoke(token);
    await sleep(1_100);
    const res = await app.gql(VIEWER, undefined, token);
    expect(res.status).toBe(401);
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses an expired token with 401, cached or not', async () => {
    const cached = await keystone.tokenFor('member-a', 'project-a');
    const fresh = await keystone.tokenFor('member-b', 'project-b');
    expect((await app.gql(VIEWER, undefined, cached)).status).toBe(200);
    await sleep((TOKEN_LIFETIME_S + 1) * 1000);
    for (const token of [cached, fresh]) {
      const res = await app.gql(VIEWER, undefined, token);
      expect(res.status).toBe(401);
      expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    }
  }, 60_000);
});

describe('an unavailable Keystone', () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  let slowApp: TestApp;
  beforeAll(async () => {
    // Fault injection: accepts connections and never answers.
    silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    slowApp = await startTestApp({ auth: { mode: 'keystone', keystone: keystone.authConfig({ url, timeoutMs: 500 }) } });
  });
  afterAll(async () => {
    await slowApp?.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it('answers 503 UNAVAILABLE after timeoutMs when Keystone does not answer', async () => {
    const started = Date.now();
    const res = await slowApp.gql(VIEWER, undefined, 'gAAAAABsome-token-0123456789');
    expect(res.status).toBe(503);
    expect(codes(res)).toEqual(['UNAVAILABLE']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await slowApp.http('GET', '/v2/images', { headers: auth('gAAAAABsome-token-0123456789') })).status).toBe(503);
  });

  it('closes a graphql-ws connection whose token cannot be checked with 1013 (try again later), not 4403', async () => {
    expect(await initCloseCode(slowApp, 'gAAAAABsome-token-0123456789')).toEqual({ code: 1013, reason: expect.stringContaining('identity service is unavailable') });
  });

  // Last: it stops the Keystone.
  it('keeps a cached token working when Keystone is down; a new one gets 503 quickly', async () => {
    const cached = await keystone.tokenFor('member-a', 'project-a');
    const unseen = await keystone.tokenFor('member-b', 'project-b');
    expect((await app.gql(VIEWER, undefined, cached)).status).toBe(200);
    await keystone.pause();
    await sleep(1_100); // past cacheSeconds: the cached token is due for re-validation
    const still = await app.gql(VIEWER, undefined, cached);
    expect(still.status).toBe(200);
    expect(still.body.data.viewer.projectId).toBe(keystone.projectIds['project-a']);
    const started = Date.now();
    const res = await app.gql(VIEWER, undefined, unseen);
    expect(res.status).toBe(503);
    expect(codes(res)).toEqual(['UNAVAILABLE']);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 60_000);
});
