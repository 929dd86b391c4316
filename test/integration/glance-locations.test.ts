import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startTestApp, type TestApp } from '../helpers/app';
import { ADD_LOCATION, errorCode, facadeClient, PATCH_V20, PATCH_V21, REMOVE_LOCATION } from '../helpers/facade-client';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';

/**
 * Image locations in proxy mode: Vitrine's `glance` backend in front of a real Glance 25.1
 * started with show_multiple_locations and show_image_direct_url (glance-dev
 * --show-locations, which adds a read-only http store so http locations are accepted).
 * Glance keeps and checks the locations (it HEADs each new http URL through its http
 * store); Vitrine forwards the JSON patch with the caller's identity, answers with Glance's
 * statuses under the native store's codes, and refuses URLs its own filter refuses before
 * Glance sees them. Through the facade (what Tempest's ImageLocationsTest does) and GraphQL.
 */
jest.setTimeout(120_000);

const DATA = Buffer.from('image data at an http location '.repeat(64));

let glance: RealGlance;
let origin: { server: Server; url: (path: string) => string; hits: string[] };

/** Vitrine in front of the Glance, locations on (or as `images` says), loopback URLs allowed unless `allowPrivateUrls` is false. */
function startVitrine(options: { images?: Record<string, unknown>; allowPrivateUrls?: boolean } = {}): Promise<TestApp> {
  return startTestApp({
    backends: [{ name: 'legacy', driver: 'glance', url: glance.url, identity: 'headers', timeouts: { connectMs: 1000, requestMs: 30_000, idleMs: 30_000 } }],
    images: options.images ?? { showLocations: true, showDirectUrl: true },
    dataPlane: { allowPrivateUrls: options.allowPrivateUrls ?? true },
  });
}

const client = (app: TestApp) => facadeClient(app, { accept: 'application/json', namePrefix: 'gloc' });

/** The image as Glance itself shows it (glance-dev's trusted headers: an admin of Glance's default project). */
async function inGlance(id: string): Promise<Record<string, any>> {
  const res = await request(`${glance.url}/v2/images/${id}`, { headers: { accept: 'application/json' } });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as Record<string, any>;
}

/** Requests the origin saw for a path (Glance's http store HEADs a location before accepting it). */
const hitsOf = (path: string) => origin.hits.filter((h) => h.endsWith(` ${path}`)).length;

beforeAll(async () => {
  const server = createServer((req, res) => {
    origin.hits.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DATA.length });
    res.end(req.method === 'HEAD' ? undefined : DATA);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  origin = { server, url: (path) => `http://127.0.0.1:${port}${path}`, hits: [] };
  glance = await startGlance({ showLocations: true });
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await glance?.stop();
  origin?.server.closeAllConnections();
  await new Promise((resolve) => origin?.server.close(resolve));
});

describe('facade, locations on', () => {
  let app: TestApp;
  let c: ReturnType<typeof client>;
  beforeAll(async () => {
    app = await startVitrine();
    c = client(app);
  });
  afterAll(async () => app?.close());

  it('shows [] while queued, then the stored copy Glance names after an upload, direct_url the same, in lists too', async () => {
    const image = await c.create();
    expect(image.locations).toEqual([]);
    expect(image).not.toHaveProperty('direct_url');
    const put = await request(`${app.baseUrl}/v2/images/${image.id}/file`, { method: 'PUT', headers: { 'x-auth-token': app.tokens.memberA, 'content-type': 'application/octet-stream' }, body: DATA });
    await put.body.dump();
    expect(put.statusCode).toBe(204);
    const shown = await c.show(image.id);
    expect(shown.locations).toEqual([{ url: expect.stringMatching(/^file:\/\//), metadata: { store: 'fast' } }]);
    expect(shown.direct_url).toBe(shown.locations[0].url);
    expect(shown.locations).toEqual((await inGlance(image.id)).locations);
    const list = await c.call('GET', '/v2/images?limit=1000');
    expect(list.body.images.find((i: any) => i.id === image.id).locations).toEqual(shown.locations);
  });

  it('adds (queued → active, no hashing) in both patch dialects, in the order Glance keeps', async () => {
    const image = await c.create();
    const first = { url: origin.url(`/a-${image.id}`), metadata: { foo: 'bar' } };
    const res = await c.addLocation(image.id, first);
    expect(res.status).toBe(200);
    // Glance names the store that reads the URL.
    expect(res.body).toMatchObject({ status: 'active', locations: [{ url: first.url, metadata: { foo: 'bar', store: 'web' } }], direct_url: first.url, size: DATA.length, os_hash_algo: null, os_hash_value: null });
    expect(hitsOf(`/a-${image.id}`)).toBeGreaterThan(0);
    const second = { url: `${first.url}#new`, metadata: { speed: '88mph' } };
    expect((await c.patch(image.id, [{ add: '/locations/-', value: second }], 'memberA', PATCH_V20)).status).toBe(200);
    const third = { url: `${first.url}#zero`, metadata: {} };
    expect((await c.addLocation(image.id, third, 'memberA', '/locations/0')).status).toBe(200);
    // Glance 25.1 inserts at the position in its PATCH answer but keeps locations in the
    // order they were created: read back, the one added at 0 comes last (as Glance shows it).
    const shown = await c.show(image.id);
    expect(shown.locations.map((l: any) => l.url)).toEqual([first.url, second.url, third.url]);
    expect(shown.direct_url).toBe(first.url);
    expect(shown.locations).toEqual((await inGlance(image.id)).locations);
  });

  it('replaces with the same URLs (metadata may change); dropping or changing a URL is 400 and changes nothing', async () => {
    const image = await c.create();
    await c.addLocation(image.id, { url: origin.url(`/r1-${image.id}`), metadata: {} });
    await c.addLocation(image.id, { url: origin.url(`/r2-${image.id}`), metadata: { n: '1' } });
    const locations = (await c.show(image.id)).locations;
    expect((await c.patch(image.id, [{ op: 'replace', path: '/locations', value: locations }])).status).toBe(200);
    const changed = [{ ...locations[0], metadata: { ...locations[0].metadata, date: '2015-10-15' } }, locations[1]];
    const replaced = await c.patch(image.id, [{ op: 'replace', path: '/locations', value: changed }]);
    expect(replaced.status).toBe(200);
    expect(replaced.body.locations).toEqual(changed);
    expect((await c.patch(image.id, [{ op: 'replace', path: '/locations', value: [changed[0]] }])).status).toBe(400);
    const other = { url: origin.url(`/r3-${image.id}`), metadata: {} };
    expect((await c.patch(image.id, [{ op: 'replace', path: '/locations', value: [changed[0], other] }])).status).toBe(400);
    expect((await c.patch(image.id, [{ op: 'replace', path: '/locations', value: [] }])).status).toBe(403);
    expect((await c.show(image.id)).locations).toEqual(changed);
  });

  it('removes by position; the only location is 403; a bad position is 400; a queued image is 409', async () => {
    const image = await c.create();
    await c.addLocation(image.id, { url: origin.url(`/d1-${image.id}`), metadata: {} });
    await c.addLocation(image.id, { url: origin.url(`/d2-${image.id}`), metadata: {} });
    expect((await c.patch(image.id, [{ op: 'remove', path: '/locations/5' }])).status).toBe(400);
    expect((await c.patch(image.id, [{ op: 'remove', path: '/locations/x' }])).status).toBe(400);
    const removed = await c.patch(image.id, [{ op: 'remove', path: '/locations/0' }]);
    expect(removed.status).toBe(200);
    expect(removed.body.locations.map((l: any) => l.url)).toEqual([origin.url(`/d2-${image.id}`)]);
    expect(removed.body.direct_url).toBe(origin.url(`/d2-${image.id}`));
    const last = await c.patch(image.id, [{ op: 'remove', path: '/locations/0' }]);
    expect(last.status).toBe(403);
    expect(last.body.message).toContain('Cannot remove last location in the image.');
    const queued = await c.create();
    expect((await c.patch(queued.id, [{ op: 'remove', path: '/locations/-' }])).status).toBe(409);
  });

  it('answers Glance\'s refusals with Glance\'s statuses: bad scheme 400, validation data 409, image status 409', async () => {
    const image = await c.create();
    const gopher = await c.addLocation(image.id, { url: 'gopher://info.cern.ch', metadata: { foo: 'bar' } });
    expect(gopher.status).toBe(400);
    expect(gopher.body.message).toContain('Invalid location');
    expect((await c.addLocation(image.id, { url: 'file:///etc/passwd', metadata: {} })).status).toBe(400);

    const hash = { checksum: '1'.repeat(32), os_hash_algo: 'sha512', os_hash_value: 'deadbeef'.repeat(16) };
    const url = origin.url(`/h-${image.id}`);
    expect((await c.addLocation(image.id, { url, metadata: {}, validation_data: hash })).status).toBe(200);
    const shown = await c.show(image.id);
    expect(shown).toMatchObject({ status: 'active', checksum: hash.checksum, os_hash_algo: 'sha512', os_hash_value: hash.os_hash_value });
    expect(shown.locations[0]).not.toHaveProperty('validation_data');
    expect((await c.addLocation(image.id, { url: `${url}#same`, metadata: {}, validation_data: hash })).status).toBe(200);
    for (const wrong of [{ checksum: '2'.repeat(32) }, { os_hash_value: 'beefdead'.repeat(16) }, { os_hash_algo: 'sha256' }]) {
      expect((await c.addLocation(image.id, { url: `${url}#other`, metadata: {}, validation_data: { ...hash, ...wrong } })).status).toBe(409);
    }
    expect((await c.show(image.id)).locations).toHaveLength(2);
    // The same URL again: Glance's DuplicateLocation.
    expect((await c.addLocation(image.id, { url, metadata: {} })).status).toBe(400);

    expect((await c.call('POST', `/v2/images/${image.id}/actions/deactivate`, 'admin')).status).toBe(204);
    const deactivated = await c.addLocation(image.id, { url: `${url}#late`, metadata: {} }, 'admin');
    expect(deactivated.status).toBe(409);
    expect(deactivated.body.message).toContain('image status is deactivated');
  });

  it('changes locations and other properties in one patch', async () => {
    const image = await c.create();
    const res = await c.patch(image.id, [
      { op: 'add', path: '/locations/-', value: { url: origin.url(`/m-${image.id}`), metadata: {} } },
      { op: 'add', path: '/note', value: 'both' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'active', note: 'both', locations: [{ url: origin.url(`/m-${image.id}`) }] });
  });
});

describe('Vitrine\'s URL filter in front of Glance', () => {
  let app: TestApp;
  let c: ReturnType<typeof client>;
  beforeAll(async () => {
    app = await startVitrine({ allowPrivateUrls: false });
    c = client(app);
  });
  afterAll(async () => app?.close());

  it('refuses a loopback URL with 400 before Glance sees it (Glance would accept it)', async () => {
    const image = await c.create();
    const path = `/private-${image.id}`;
    const res = await c.addLocation(image.id, { url: origin.url(path), metadata: {} });
    expect(res.status).toBe(400);
    expect(hitsOf(path)).toBe(0);
    expect((await c.show(image.id))).toMatchObject({ status: 'queued', locations: [] });
    // A replacement that brings in a new URL is checked too.
    expect((await c.patch(image.id, [{ op: 'replace', path: '/locations', value: [{ url: origin.url(path), metadata: {} }] }])).status).toBe(400);
    const gql = await app.gql('mutation($id: ID!, $url: String!) { addImageLocation(id: $id, input: { url: $url }) { id } }', { id: image.id, url: origin.url(path) }, app.tokens.memberA);
    expect(gql.body.errors?.[0]?.extensions?.code).toBe('URL_FORBIDDEN');
    expect(hitsOf(path)).toBe(0);
  });

  it('refuses a URL whose host Glance\'s Python would read differently (a backslash before @), for locations and web-download', async () => {
    const image = await c.create();
    const path = `/x-${image.id}`;
    // WHATWG URL: host 1.1.1.1 (public); Python's urlsplit (Glance's filter, urllib): 127.0.0.1.
    const tricky = `http://1.1.1.1\\@${origin.url(path).slice('http://'.length)}`;
    const add = await app.gql('mutation($id: ID!, $url: String!) { addImageLocation(id: $id, input: { url: $url }) { id } }', { id: image.id, url: tricky }, app.tokens.memberA);
    expect(add.body.errors?.[0]?.extensions?.code).toBe('URL_FORBIDDEN');
    const imported = await c.call('POST', `/v2/images/${image.id}/import`, 'memberA', { body: { method: { name: 'web-download', uri: tricky } } });
    expect(imported.status).toBe(400);
    expect(imported.body.message).toContain('backslash');
    await new Promise((r) => setTimeout(r, 500));
    expect(hitsOf(path)).toBe(0);
    expect((await c.show(image.id)).status).toBe('queued');
  });
});

describe('images.showLocations off in Vitrine (Glance shows them)', () => {
  let app: TestApp;
  let on: TestApp;
  beforeAll(async () => {
    app = await startVitrine({ images: { showLocations: false, showDirectUrl: false } });
    on = await startVitrine();
  });
  afterAll(async () => {
    await app?.close();
    await on?.close();
  });

  it('shows neither locations nor direct_url, and refuses every location change with 403 without asking Glance', async () => {
    const c = client(app);
    const image = await c.create();
    const path = `/off-${image.id}`;
    const add = await c.addLocation(image.id, { url: origin.url(path), metadata: {} });
    expect(add.status).toBe(403);
    expect(hitsOf(path)).toBe(0);
    expect((await client(on).addLocation(image.id, { url: origin.url(path), metadata: {} })).status).toBe(200);
    expect((await inGlance(image.id)).locations).toHaveLength(1);
    const shown = await c.show(image.id);
    expect(shown.status).toBe('active');
    expect(shown).not.toHaveProperty('locations');
    expect(shown).not.toHaveProperty('direct_url');
    expect((await c.patch(image.id, [{ op: 'remove', path: '/locations/0' }])).status).toBe(403);
    expect((await c.patch(image.id, [{ op: 'replace', path: '/locations', value: [{ url: origin.url(path), metadata: {} }] }])).status).toBe(403);
    const gql = await app.gql('query($id: ID!) { image(id: $id) { locations { url } directUrl } }', { id: image.id }, app.tokens.memberA);
    expect(gql.body.data.image).toEqual({ locations: null, directUrl: null });
  });
});

describe('GraphQL, locations on', () => {
  let app: TestApp;
  let c: ReturnType<typeof client>;
  beforeAll(async () => {
    app = await startVitrine();
    c = client(app);
  });
  afterAll(async () => app?.close());

  const SHOW = 'query($id: ID!) { image(id: $id) { status locations { url metadata } directUrl } }';

  it('adds, shows and removes through Glance, with the native store\'s error codes', async () => {
    const image = await c.create();
    const first = origin.url(`/g1-${image.id}`);
    const hash = { checksum: 'a'.repeat(32), osHashAlgo: 'sha512', osHashValue: 'b'.repeat(128) };
    const added = await app.gql(ADD_LOCATION, { id: image.id, input: { url: first, metadata: { k: 'v' }, validationData: hash } }, app.tokens.memberA);
    expect(added.body.errors).toBeUndefined();
    expect(added.body.data.addImageLocation).toMatchObject({ status: 'ACTIVE', checksum: hash.checksum, osHashAlgo: 'sha512', locations: [{ url: first, metadata: { k: 'v', store: 'web' } }], directUrl: first });
    const second = origin.url(`/g2-${image.id}`);
    const atZero = await app.gql(ADD_LOCATION, { id: image.id, input: { url: second, position: 0 } }, app.tokens.memberA);
    // Read back from Glance, which keeps creation order whatever the position (see above).
    expect(atZero.body.data.addImageLocation.locations.map((l: any) => l.url)).toEqual([first, second]);
    expect((await app.gql(SHOW, { id: image.id }, app.tokens.memberA)).body.data.image).toMatchObject({ locations: [{ url: first }, { url: second }], directUrl: first });

    expect(errorCode(await app.gql(ADD_LOCATION, { id: image.id, input: { url: 'gopher://info.cern.ch' } }, app.tokens.memberA))).toBe('LOCATION_INVALID');
    expect(errorCode(await app.gql(ADD_LOCATION, { id: image.id, input: { url: `${first}#3`, validationData: { ...hash, checksum: 'e'.repeat(32) } } }, app.tokens.memberA))).toBe('LOCATION_CONFLICT');
    expect(errorCode(await app.gql(ADD_LOCATION, { id: image.id, input: { url: `${first}#3`, position: -2 } }, app.tokens.memberA))).toBe('LOCATION_INVALID');
    expect(errorCode(await app.gql(REMOVE_LOCATION, { id: image.id, index: 7 }, app.tokens.memberA))).toBe('LOCATION_INVALID');

    const removed = await app.gql(REMOVE_LOCATION, { id: image.id, index: -1 }, app.tokens.memberA);
    expect(removed.body.data.removeImageLocation).toEqual({ locations: [{ url: first }], directUrl: first });
    expect(errorCode(await app.gql(REMOVE_LOCATION, { id: image.id, index: 0 }, app.tokens.memberA))).toBe('FORBIDDEN');
    // Another project's image: Glance does not show it to project-b.
    expect(errorCode(await app.gql(ADD_LOCATION, { id: image.id, input: { url: `${first}#b` } }, app.tokens.memberB))).toBe('NOT_FOUND');
  });
});
