import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { request } from 'undici';
import { startTestApp, type HttpResult, type TestApp } from '../helpers/app';

/**
 * The Glance v2 facade through real HTTP: every route, the shapes clients parse (image and
 * member JSON, schemas, versions, errors in each format), and the error codes of
 * reference/glance-v2.md §1-§4 and tempest's checklist (§10).
 */
let app: TestApp;
let token: TestApp['tokens'];

beforeAll(async () => {
  app = await startTestApp();
  token = app.tokens;
});
afterAll(async () => app?.close());

const V21 = 'application/openstack-images-v2.1-json-patch';
const V20 = 'application/openstack-images-v2.0-json-patch';
const RUN = randomUUID().slice(0, 8);

function as(who: keyof TestApp['tokens'], headers: Record<string, string> = {}) {
  return { 'x-auth-token': token[who], ...headers };
}

function call(method: string, path: string, who: keyof TestApp['tokens'] = 'memberA', options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<HttpResult> {
  return app.http(method, path, { headers: as(who, options.headers), body: options.body });
}

async function createImage(body: Record<string, unknown> = {}, who: keyof TestApp['tokens'] = 'memberA'): Promise<Record<string, any>> {
  const res = await call('POST', '/v2/images', who, { body: { name: `img-${RUN}`, ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

function patch(id: string, ops: unknown, who: keyof TestApp['tokens'] = 'memberA', mediaType = V21): Promise<HttpResult> {
  return call('PATCH', `/v2/images/${id}`, who, { headers: { 'content-type': mediaType }, body: JSON.stringify(ops) });
}

/** Sends bytes as-is (the helper's http() would JSON-encode a Buffer). */
async function sendBytes(method: string, path: string, headers: Record<string, string>, body?: Buffer) {
  const res = await request(`${app.baseUrl}${path}`, { method: method as 'PUT', headers, body });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, bytes, text: bytes.toString('utf8') };
}

function upload(id: string, data: Buffer, who: keyof TestApp['tokens'] = 'memberA', headers: Record<string, string> = {}) {
  return sendBytes('PUT', `/v2/images/${id}/file`, as(who, { 'content-type': 'application/octet-stream', ...headers }), data);
}

async function activeImage(extra: Record<string, unknown> = {}, who: keyof TestApp['tokens'] = 'memberA') {
  const image = await createImage({ disk_format: 'raw', container_format: 'bare', ...extra }, who);
  expect((await upload(image.id, Buffer.from('0123456789'), who)).status).toBe(204);
  return image;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');

describe('versions', () => {
  it('answers GET / with 300 and GET /versions with 200, hrefs pointing back here, without a token', async () => {
    const root = await app.http('GET', '/');
    const versions = await app.http('GET', '/versions');
    expect(root.status).toBe(300);
    expect(versions.status).toBe(200);
    expect(root.body).toEqual(versions.body);
    const ids = versions.body.versions.map((v: any) => v.id);
    expect(ids).toEqual(['v2.15', 'v2.9', 'v2.7', 'v2.6', 'v2.5', 'v2.4', 'v2.3', 'v2.2', 'v2.1', 'v2.0']);
    expect(versions.body.versions.filter((v: any) => v.status === 'CURRENT').map((v: any) => v.id)).toEqual(['v2.15']);
    for (const v of versions.body.versions) expect(v.links).toEqual([{ rel: 'self', href: `${app.baseUrl}/v2/` }]);
  });

  it('refuses other methods with 405 and Allow', async () => {
    const res = await app.http('POST', '/versions');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET');
  });
});

describe('request ids, authentication and error bodies', () => {
  it('puts a req-<uuid> request id on every response, and adopts the caller\'s', async () => {
    const fresh = await call('GET', '/v2/images');
    expect(fresh.headers['x-openstack-request-id']).toMatch(/^req-[0-9a-f-]{36}$/);
    const mine = randomUUID();
    expect((await call('GET', '/v2/images', 'memberA', { headers: { 'x-openstack-request-id': `req-${mine}` } })).headers['x-openstack-request-id']).toBe(`req-${mine}`);
    expect((await call('GET', '/v2/images', 'memberA', { headers: { 'x-openstack-request-id': mine } })).headers['x-openstack-request-id']).toBe(`req-${mine}`);
    expect((await call('GET', '/v2/nope', 'memberA', { headers: { 'x-openstack-request-id': mine } })).headers['x-openstack-request-id']).toBe(`req-${mine}`);
    expect((await app.http('GET', '/v2/images')).headers['x-openstack-request-id']).toMatch(/^req-/);
  });

  it('answers without a valid token with 401', async () => {
    expect((await app.http('GET', '/v2/images')).status).toBe(401);
    expect((await app.http('GET', '/v2/images', { headers: { 'x-auth-token': 'not-a-token-at-all' } })).status).toBe(401);
    expect((await app.http('GET', '/v2/schemas/image')).status).toBe(401);
  });

  it('renders errors as HTML for */* or no Accept, JSON only when asked, plain text otherwise', async () => {
    const path = '/v2/images/not-a-uuid';
    const html = await call('GET', path, 'memberA', { headers: { accept: '*/*' } });
    expect(html.status).toBe(404);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.text).toContain('<title>404 Not Found</title>');
    expect(html.text).toContain('No image found with ID not-a-uuid<br /><br />');
    expect((await call('GET', path)).headers['content-type']).toMatch(/^text\/html/);

    const json = await call('GET', path, 'memberA', { headers: { accept: 'application/json' } });
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(json.body).toEqual({ message: 'No image found with ID not-a-uuid<br /><br />\n\n\n', code: '404 Not Found', title: 'Not Found' });

    const text = await call('GET', path, 'memberA', { headers: { accept: 'text/plain' } });
    expect(text.headers['content-type']).toMatch(/^text\/plain/);
    // Byte for byte what Glance 25.1 answers (webob turns the template's newlines into spaces).
    expect(text.text).toBe('404 Not Found\n\nNo image found with ID not-a-uuid\n\n   ');
    expect((await call('GET', path, 'memberA', { headers: { accept: '' } })).headers['content-type']).toMatch(/^text\/plain/);
    expect((await call('GET', path, 'memberA', { headers: { accept: 'text/html;q=0.5, application/json' } })).headers['content-type']).toMatch(/^application\/json/);
  });

  it('escapes HTML in messages', async () => {
    const res = await call('GET', '/v2/images/%3Cb%3E');
    expect(res.text).toContain('No image found with ID &lt;b&gt;');
  });

  it('answers unknown paths under /v2 with 404 and unsupported methods with 405 and Allow', async () => {
    expect((await call('GET', '/v2/nothing/here')).status).toBe(404);
    expect((await call('GET', '/v2')).status).toBe(404);
    expect((await call('GET', '/v2/')).status).toBe(404);
    const image = await createImage();
    const post = await call('POST', `/v2/images/${image.id}`);
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, PATCH, DELETE');
    expect(post.text).toContain('The method POST is not allowed for this resource.');
    const head = await call('HEAD', `/v2/images/${image.id}`);
    expect(head.status).toBe(405);
    expect((await call('PUT', '/v2/images')).headers.allow).toBe('GET, POST');
    expect((await call('GET', `/v2/images/${image.id}/actions/deactivate`)).headers.allow).toBe('POST');
    expect((await call('HEAD', `/v2/images/${image.id}/file`)).status).toBe(405);
  });
});

describe('POST /v2/images', () => {
  it('creates a queued, shared image: 201, Location, import-methods header, every base property', async () => {
    const res = await call('POST', '/v2/images', 'memberA', { body: { name: `create-${RUN}`, disk_format: 'qcow2', container_format: 'bare', os_distro: 'cirros', tags: ['b', 'a', 'b'], min_ram: 64 } });
    expect(res.status).toBe(201);
    const image = res.body;
    expect(res.headers.location).toBe(`${app.baseUrl}/v2/images/${image.id}`);
    expect(res.headers['openstack-image-import-methods']).toBe('glance-direct,web-download,copy-image');
    expect(res.headers['openstack-image-store-ids']).toBeUndefined();
    expect(Object.keys(image).sort()).toEqual([
      'checksum', 'container_format', 'created_at', 'disk_format', 'file', 'id', 'min_disk', 'min_ram', 'name', 'os_distro',
      'os_hash_algo', 'os_hash_value', 'os_hidden', 'owner', 'protected', 'schema', 'self', 'size', 'status', 'tags',
      'updated_at', 'virtual_size', 'visibility',
    ]);
    expect(image).toMatchObject({
      name: `create-${RUN}`, status: 'queued', visibility: 'shared', owner: 'project-a', disk_format: 'qcow2', container_format: 'bare',
      size: null, virtual_size: null, checksum: null, os_hash_algo: null, os_hash_value: null, min_disk: 0, min_ram: 64,
      protected: false, os_hidden: false, os_distro: 'cirros', self: `/v2/images/${image.id}`, file: `/v2/images/${image.id}/file`, schema: '/v2/schemas/image',
    });
    expect([...image.tags].sort()).toEqual(['a', 'b']);
    expect(image.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(image.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect((await call('GET', `/v2/images/${image.id}`)).body).toEqual(image);
  });

  it('creates an image from no body at all, with a null name', async () => {
    const res = await app.http('POST', '/v2/images', { headers: as('memberA') });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: null, disk_format: null, container_format: null, visibility: 'shared', status: 'queued', tags: [] });
  });

  it('takes a client-chosen id once; a duplicate is 409 and a malformed id 400', async () => {
    const id = randomUUID();
    expect((await createImage({ id })).id).toBe(id);
    expect((await call('POST', '/v2/images', 'memberA', { body: { id } })).status).toBe(409);
    expect((await call('POST', '/v2/images', 'memberA', { body: { id: 'not-a-uuid' } })).status).toBe(400);
  });

  it('refuses read-only (403), reserved (403) and ill-typed (400) keys as Glance does', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ status: 'active' }, 403, "Attribute 'status' is read-only."],
      [{ self: '/x' }, 403, "Attribute 'self' is read-only."],
      [{ stores: 'a' }, 403, "Attribute 'stores' is read-only."],
      [{ size: 5 }, 403, "Attribute 'size' is read-only."],
      [{ os_glance_foo: 'bar' }, 403, "Attribute 'os_glance_foo' is reserved."],
      [{ location: 'http://x' }, 403, "Attribute 'location' is reserved."],
      [{ deleted: 'x' }, 403, "Attribute 'deleted' is reserved."],
      [{ disk_format: 'floppy' }, 400, "Provided object does not match schema 'image': 'floppy' is not one of [None, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']"],
      [{ container_format: 'wrong' }, 400, "'wrong' is not one of"],
      [{ visibility: 'everyone' }, 400, "'everyone' is not one of"],
      [{ protected: 'yes' }, 400, "'yes' is not of type 'boolean'"],
      [{ min_disk: 1.5 }, 400, "1.5 is not of type 'integer'"],
      [{ os_distro: 7 }, 400, "7 is not of type 'string'"],
      [{ name: 'x'.repeat(256) }, 400, 'is too long'],
      [{ kernel_id: 'nope' }, 400, 'does not match'],
      [{ ['k'.repeat(256)]: 'v' }, 400, 'Custom property should not be greater than 255 characters.'],
      [{ min_disk: -1 }, 400, 'min_disk'],
    ];
    for (const [body, status, message] of cases) {
      const res = await call('POST', '/v2/images', 'memberA', { body, headers: { accept: 'text/plain' } });
      expect({ body, status: res.status }).toEqual({ body, status });
      expect(res.text).toContain(message);
    }
  });

  it('answers malformed JSON with 400', async () => {
    const res = await call('POST', '/v2/images', 'memberA', { headers: { 'content-type': 'application/json', accept: 'text/plain' }, body: '{"name":' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('Malformed JSON in request body.');
  });

  it('keeps kernel_id: null as unset, and keys with dots (the SDK sends owner_specified.*)', async () => {
    const image = await createImage({ kernel_id: null, 'owner_specified.openstack.md5': '' });
    expect(image).not.toHaveProperty('kernel_id');
    expect(image['owner_specified.openstack.md5']).toBe('');
  });

  it('lets only admins create public images or images for another project', async () => {
    expect((await call('POST', '/v2/images', 'memberA', { body: { visibility: 'public' } })).status).toBe(403);
    expect((await call('POST', '/v2/images', 'memberA', { body: { owner: 'project-b' } })).status).toBe(403);
    const owner = randomUUID().replace(/-/g, '');
    const made = await createImage({ owner, visibility: 'public' }, 'admin');
    expect(made).toMatchObject({ owner, visibility: 'public' });
    expect((await call('GET', `/v2/images/${made.id}`, 'memberB')).status).toBe(200);
  });
});

describe('GET /v2/images/{id}', () => {
  it('answers 404 for invisible, missing, malformed and empty ids, and a trailing slash', async () => {
    const privateImage = await createImage({ visibility: 'private' });
    const sharedImage = await createImage();
    expect((await call('GET', `/v2/images/${privateImage.id}`, 'memberB')).status).toBe(404);
    expect((await call('GET', `/v2/images/${sharedImage.id}`, 'memberB')).status).toBe(404);
    expect((await call('GET', `/v2/images/${randomUUID()}`)).status).toBe(404);
    expect((await call('GET', '/v2/images/not-a-uuid')).status).toBe(404);
    expect((await call('GET', '/v2/images/')).status).toBe(404);
    expect((await call('GET', `/v2/images/${privateImage.id}/`)).status).toBe(404);
    expect((await call('DELETE', '/v2/images/')).status).toBe(404);
    expect((await call('DELETE', `/v2/images/${randomUUID()}`)).status).toBe(404);
    // An upper-case id names the same image.
    expect((await call('GET', `/v2/images/${privateImage.id.toUpperCase()}`)).body.id).toBe(privateImage.id);
  });

  it('does not serve other artifact types as images', async () => {
    const made = await app.gql(`mutation { createArtifact(input: {typeName: "heat_templates", name: "t"}) { id } }`, undefined, token.memberA);
    expect((await call('GET', `/v2/images/${made.body.data.createArtifact.id}`)).status).toBe(404);
  });
});

describe('GET /v2/images', () => {
  const SUITE = `list-${RUN}`;
  const listed: Record<string, any>[] = [];

  beforeAll(async () => {
    const specs: Record<string, unknown>[] = [
      { name: 'alpha', disk_format: 'raw', container_format: 'bare', tags: ['red', 'round'], min_disk: 1 },
      { name: 'beta', disk_format: 'qcow2', container_format: 'bare', tags: ['red'], visibility: 'private' },
      { name: 'gamma,delta', disk_format: 'iso', container_format: 'ova', tags: ['blue'], protected: true },
      { name: 'hidden', disk_format: 'raw', container_format: 'bare', os_hidden: true },
      { name: 'epsilon', disk_format: 'raw', container_format: 'bare', visibility: 'community', os_distro: 'debian' },
    ];
    for (const spec of specs) {
      listed.push(await createImage({ suite: SUITE, ...spec }));
      // Distinct created_at seconds, so time filters and the default order are exact.
      await new Promise((r) => setTimeout(r, 1100));
    }
    expect((await upload(listed[0].id, Buffer.from('x'.repeat(100)))).status).toBe(204);
    expect((await upload(listed[2].id, Buffer.from('y'.repeat(300)))).status).toBe(204);
  });

  async function names(query: string, who: keyof TestApp['tokens'] = 'memberA'): Promise<string[]> {
    const res = await call('GET', `/v2/images?suite=${SUITE}&${query}`, who);
    expect(res.status).toBe(200);
    return res.body.images.map((i: any) => i.name);
  }

  it('lists newest first by default, hides os_hidden images, and wraps them with first and schema', async () => {
    const res = await call('GET', `/v2/images?suite=${SUITE}`);
    expect(res.body).toMatchObject({ first: `/v2/images?suite=${SUITE}`, schema: '/v2/schemas/images' });
    expect(res.body).not.toHaveProperty('next');
    expect(res.body.images.map((i: any) => i.name)).toEqual(['epsilon', 'gamma,delta', 'beta', 'alpha']);
    expect(res.body.images[3]).toEqual((await call('GET', `/v2/images/${listed[0].id}`)).body);
  });

  it('pages with limit and marker, linking next whenever a page is full (Glance: even if the next page is empty)', async () => {
    const first = await call('GET', `/v2/images?suite=${SUITE}&limit=2`);
    expect(first.body.images.map((i: any) => i.name)).toEqual(['epsilon', 'gamma,delta']);
    expect(first.body.first).toBe(`/v2/images?suite=${SUITE}&limit=2`);
    expect(first.body.next).toBe(`/v2/images?suite=${SUITE}&limit=2&marker=${listed[2].id}`);
    const second = await call('GET', first.body.next);
    expect(second.body.images.map((i: any) => i.name)).toEqual(['beta', 'alpha']);
    expect(second.body.first).toBe(`/v2/images?suite=${SUITE}&limit=2`);
    const third = await call('GET', second.body.next);
    expect(third.body.images).toEqual([]);
    expect(third.body).not.toHaveProperty('next');
    expect((await call('GET', `/v2/images?suite=${SUITE}&limit=0`)).body).not.toHaveProperty('next');
  });

  it('continues after a marker the filter itself excludes, and refuses unknown markers and bad limits', async () => {
    expect(await names(`marker=${listed[3].id}`)).toEqual(['gamma,delta', 'beta', 'alpha']);
    for (const query of [`marker=${randomUUID()}`, 'marker=nope', 'limit=-1', 'limit=abc', 'limit=1.5']) {
      expect({ query, status: (await call('GET', `/v2/images?${query}`)).status }).toEqual({ query, status: 400 });
    }
    expect((await call('GET', `/v2/images?marker=${listed[1].id}`, 'memberB')).status).toBe(400);
    expect((await call('GET', `/v2/images?suite=${SUITE}&limit=5000`)).status).toBe(200);
  });

  it('applies the default page size of 25', async () => {
    const res = await call('GET', '/v2/images', 'admin');
    expect(res.body.images.length).toBeLessThanOrEqual(25);
    if (res.body.images.length === 25) expect(res.body.next).toContain('marker=');
  });

  it('sorts with sort_key/sort_dir and with sort=, and refuses mixing, bad keys and mismatched dirs', async () => {
    expect(await names('sort_key=name&sort_dir=asc')).toEqual(['alpha', 'beta', 'epsilon', 'gamma,delta']);
    expect(await names('sort=name:desc')).toEqual(['gamma,delta', 'epsilon', 'beta', 'alpha']);
    expect(await names('sort=disk_format:asc,name')).toEqual(['gamma,delta', 'beta', 'epsilon', 'alpha']);
    expect(await names('sort_key=disk_format&sort_key=name&sort_dir=asc&sort_dir=desc')).toEqual(['gamma,delta', 'beta', 'epsilon', 'alpha']);
    const bySize = await names('sort=size:desc&size_min=1');
    expect(bySize).toEqual(['gamma,delta', 'alpha']);
    for (const query of ['sort=name&sort_key=name', 'sort_key=owner', 'sort=bogus:asc', 'sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc', 'sort_dir=up']) {
      const res = await call('GET', `/v2/images?${query}`, 'memberA', { headers: { accept: 'text/plain' } });
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
    }
    expect((await call('GET', '/v2/images?sort_key=bogus', 'memberA', { headers: { accept: 'text/plain' } })).text).toContain(
      'Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.',
    );
  });

  it('filters on name, id, status and formats, with in: and quoted values', async () => {
    expect(await names('name=alpha')).toEqual(['alpha']);
    expect(await names('name=in:alpha,"gamma,delta"')).toEqual(['gamma,delta', 'alpha']);
    expect(await names(`id=in:${listed[0].id},${listed[1].id}`)).toEqual(['beta', 'alpha']);
    expect(await names(`id=${listed[4].id}`)).toEqual(['epsilon']);
    expect(await names('id=not-a-uuid')).toEqual([]);
    expect(await names('status=active')).toEqual(['gamma,delta', 'alpha']);
    expect(await names('status=in:queued,saving')).toEqual(['epsilon', 'beta']);
    expect(await names('status=bogus')).toEqual([]);
    expect(await names('disk_format=in:qcow2,iso')).toEqual(['gamma,delta', 'beta']);
    expect(await names('container_format=ova')).toEqual(['gamma,delta']);
    expect((await call('GET', '/v2/images?name=like:al%25')).status).toBe(400);
  });

  it('filters on created_at and updated_at with comparison operators', async () => {
    const t = (i: number) => listed[i].created_at as string;
    expect(await names(`created_at=gt:${t(2)}`)).toEqual(['epsilon']);
    expect(await names(`created_at=gte:${t(2)}`)).toEqual(['epsilon', 'gamma,delta']);
    expect(await names(`created_at=lt:${t(1)}`)).toEqual(['alpha']);
    expect(await names(`created_at=lte:${t(1)}`)).toEqual(['beta', 'alpha']);
    expect(await names(`created_at=eq:${t(1)}`)).toEqual(['beta']);
    expect(await names(`created_at=${t(1)}`)).toEqual(['beta']);
    expect(await names(`created_at=neq:${t(1)}`)).toEqual(['epsilon', 'gamma,delta', 'alpha']);
    expect(await names(`updated_at=gte:${t(0)}`)).toHaveLength(4);
    expect((await call('GET', '/v2/images?created_at=gt:yesterday')).status).toBe(400);
    expect((await call('GET', `/v2/images?created_at=after:${t(0)}`)).status).toBe(400);
  });

  it('filters on size (inclusive bounds and equality), tags (AND), protected, owner and hashes', async () => {
    expect(await names('size_min=100&size_max=300')).toEqual(['gamma,delta', 'alpha']);
    expect(await names('size_min=101')).toEqual(['gamma,delta']);
    expect(await names('size_max=100')).toEqual(['alpha']);
    expect(await names('size=300')).toEqual(['gamma,delta']);
    expect((await call('GET', '/v2/images?size_min=big')).status).toBe(400);
    expect(await names('tag=red')).toEqual(['beta', 'alpha']);
    expect(await names('tag=red&tag=round')).toEqual(['alpha']);
    expect(await names('protected=true')).toEqual(['gamma,delta']);
    expect(await names('protected=false')).toEqual(['epsilon', 'beta', 'alpha']);
    expect((await call('GET', '/v2/images?protected=True')).status).toBe(400);
    expect(await names('owner=project-a')).toHaveLength(4);
    expect(await names('owner=project-b')).toEqual([]);
    const data = Buffer.from('x'.repeat(100));
    expect(await names(`checksum=${md5(data)}`)).toEqual(['alpha']);
    expect(await names(`os_hash_value=${sha512(data)}`)).toEqual(['alpha']);
    expect(await names('min_disk=1')).toEqual(['alpha']);
  });

  it('filters on os_hidden (default false) and extra properties', async () => {
    expect(await names('os_hidden=true')).toEqual(['hidden']);
    expect(await names('os_hidden=TRUE')).toEqual(['hidden']);
    expect((await call('GET', '/v2/images?os_hidden=maybe')).status).toBe(400);
    expect(await names('os_distro=debian')).toEqual(['epsilon']);
    expect(await names('os_distro=ubuntu')).toEqual([]);
  });

  it('scopes by visibility and member status as Glance does', async () => {
    expect(await names('visibility=private')).toEqual(['beta']);
    expect(await names('visibility=community')).toEqual(['epsilon']);
    expect(await names('visibility=all')).toEqual(['epsilon', 'gamma,delta', 'beta', 'alpha']);
    expect((await call('GET', '/v2/images?visibility=everyone')).status).toBe(400);
    // Another project sees neither private nor shared images, and community ones only when asked.
    expect(await names('', 'memberB')).toEqual([]);
    expect(await names('visibility=community', 'memberB')).toEqual(['epsilon']);
    expect((await call('GET', '/v2/images?member_status=maybe')).status).toBe(400);
    expect((await call('GET', '/v2/images?changes-since=2020-01-01T00:00:00Z')).status).toBe(400);
  });
});

describe('PATCH /v2/images/{id}', () => {
  it('applies v2.1 operations atomically and returns the image', async () => {
    const image = await createImage({ os_distro: 'cirros', tags: ['a'] });
    const res = await patch(image.id, [
      { op: 'replace', path: '/name', value: 'renamed' },
      { op: 'add', path: '/hw_qemu_guest_agent', value: 'yes' },
      { op: 'remove', path: '/os_distro' },
      { op: 'replace', path: '/tags', value: ['x', 'y', 'x'] },
      { op: 'add', path: '/min_ram', value: 128 },
      { op: 'replace', path: '/disk_format', value: 'qcow2' },
      { op: 'replace', path: '/os_hidden', value: true },
      { op: 'replace', path: '/visibility', value: 'private' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'renamed', hw_qemu_guest_agent: 'yes', min_ram: 128, disk_format: 'qcow2', os_hidden: true, visibility: 'private' });
    expect(res.body).not.toHaveProperty('os_distro');
    expect([...res.body.tags].sort()).toEqual(['x', 'y']);
    expect((await call('GET', `/v2/images/${image.id}`)).body).toEqual(res.body);
  });

  it('accepts the deprecated v2.0 dialect, whose add of an existing property is a 409', async () => {
    const image = await createImage({ os_distro: 'cirros' });
    const res = await patch(image.id, [{ replace: '/name', value: 'v20' }, { add: '/extra', value: '1' }, { remove: '/os_distro' }], 'memberA', V20);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'v20', extra: '1' });
    expect((await patch(image.id, [{ add: '/extra', value: '2' }], 'memberA', V20)).status).toBe(409);
    expect((await patch(image.id, [{ add: '/name', value: 'x' }], 'memberA', V20)).status).toBe(409);
    expect((await patch(image.id, [{ op: 'add', path: '/extra', value: '2' }])).body.extra).toBe('2');
    expect((await patch(image.id, [{ add: '/a', remove: '/b' }], 'memberA', V20)).status).toBe(400);
    expect((await patch(image.id, [{ value: 'x' }], 'memberA', V20)).status).toBe(400);
  });

  it('answers other media types with 415 and Accept-Patch, before looking at the image', async () => {
    for (const type of ['application/json', 'application/json-patch+json', '']) {
      const res = await call('PATCH', `/v2/images/${randomUUID()}`, 'memberA', { headers: type ? { 'content-type': type } : {}, body: '[]' });
      expect(res.status).toBe(415);
      expect(res.headers['accept-patch']).toBe(`${V20}, ${V21}`);
    }
  });

  it('refuses malformed patches with 400', async () => {
    const image = await createImage();
    const cases: [unknown, string][] = [
      [{ op: 'replace', path: '/name', value: 'x' }, 'Request body must be a JSON array of operation objects.'],
      [['nope'], 'Operations must be JSON objects.'],
      [[{ op: 'move', from: '/name', path: '/x' }], 'Invalid operation: `move`. It must be one of the following: add, remove, replace.'],
      [[{ op: 'test', path: '/name', value: 'x' }], 'Invalid operation: `test`.'],
      [[{ path: '/name', value: 'x' }], 'Unable to find `op`'],
      [[{ op: 'replace', value: 'x' }], "Unable to find 'path'"],
      [[{ op: 'replace', path: '/name' }], 'Operation "replace" requires a member named "value".'],
      [[{ op: 'replace', path: 'name', value: 'x' }], 'does not start with "/"'],
      [[{ op: 'replace', path: '/tags/0', value: 'x' }], "Invalid JSON pointer for this resource: '/tags/0'"],
      [[{ op: 'add', path: '/tags/-', value: 'x' }], "Invalid JSON pointer for this resource: '/tags/-'"],
      [[{ op: 'replace', path: '/name/', value: 'x' }], 'end with "/"'],
      [[{ op: 'add', path: '/a~2b', value: 'x' }], 'not part of a recognized escape sequence'],
      [[{ op: 'replace', path: '/disk_format', value: 'floppy' }], "'floppy' is not one of"],
      [[{ op: 'add', path: '/foo', value: 5 }], "5 is not of type 'string'"],
      [[{ op: 'replace', path: '/protected', value: 'yes' }], "'yes' is not of type 'boolean'"],
      [[{ op: 'replace', path: '/min_disk', value: -1 }], 'min_disk'],
    ];
    for (const [body, message] of cases) {
      const res = await call('PATCH', `/v2/images/${image.id}`, 'memberA', { headers: { 'content-type': V21, accept: 'text/plain' }, body: JSON.stringify(body) });
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.text).toContain(message);
    }
    expect((await call('PATCH', `/v2/images/${image.id}`, 'memberA', { headers: { 'content-type': V21 } })).status).toBe(400);
    expect((await call('PATCH', `/v2/images/${image.id}`, 'memberA', { headers: { 'content-type': V21 }, body: '[{' })).status).toBe(400);
  });

  it('refuses read-only, reserved and base-removal operations with 403, absent properties with 409', async () => {
    const image = await createImage();
    const cases: [unknown, number, string][] = [
      [{ op: 'replace', path: '/status', value: 'active' }, 403, "Attribute 'status' is read-only."],
      [{ op: 'replace', path: '/id', value: randomUUID() }, 403, "Attribute 'id' is read-only."],
      [{ op: 'add', path: '/checksum', value: 'x' }, 403, "Attribute 'checksum' is read-only."],
      [{ op: 'add', path: '/os_glance_foo', value: 'x' }, 403, "Attribute 'os_glance_foo' is reserved."],
      [{ op: 'add', path: '/deleted_at', value: 'x' }, 403, "Attribute 'deleted_at' is reserved."],
      [{ op: 'remove', path: '/name' }, 403, 'Property name may not be removed.'],
      [{ op: 'remove', path: '/tags' }, 403, 'Property tags may not be removed.'],
      [{ op: 'replace', path: '/owner', value: 'project-b' }, 403, "Owner can't be updated by non admin."],
      [{ op: 'add', path: '/locations', value: { url: 'http://x', metadata: {} } }, 400, "Invalid JSON pointer for this resource: '/locations'"],
      [{ op: 'add', path: '/locations/-', value: { url: 'http://x', metadata: {} } }, 403, "It's not allowed to add locations if locations are invisible."],
      [{ op: 'replace', path: '/locations', value: [] }, 403, 'locations'],
      [{ op: 'replace', path: '/nope', value: 'x' }, 409, 'Property nope does not exist.'],
      [{ op: 'remove', path: '/nope' }, 409, 'Property nope does not exist.'],
    ];
    for (const [op, status, message] of cases) {
      const res = await call('PATCH', `/v2/images/${image.id}`, 'memberA', { headers: { 'content-type': V21, accept: 'text/plain' }, body: JSON.stringify([op]) });
      expect({ op, status: res.status }).toEqual({ op, status });
      expect(res.text).toContain(message);
    }
  });

  it('lets only admins publicize or change the owner, and writes nothing when a patch is refused', async () => {
    const image = await createImage({ os_distro: 'x' });
    const refused = await patch(image.id, [{ op: 'replace', path: '/name', value: 'half' }, { op: 'replace', path: '/visibility', value: 'public' }]);
    expect(refused.status).toBe(403);
    expect((await call('GET', `/v2/images/${image.id}`)).body).toMatchObject({ name: image.name, visibility: 'shared' });
    const byAdmin = await patch(image.id, [{ op: 'replace', path: '/owner', value: 'project-q' }, { op: 'replace', path: '/visibility', value: 'public' }], 'admin');
    expect(byAdmin.body).toMatchObject({ owner: 'project-q', visibility: 'public' });
    // A visible image of another project is not the caller's to change.
    expect((await patch(image.id, [{ op: 'replace', path: '/name', value: 'mine' }], 'memberB')).status).toBe(403);
    expect((await patch(image.id, [], 'memberB')).status).toBe(403);
    expect((await patch(randomUUID(), [{ op: 'replace', path: '/name', value: 'x' }])).status).toBe(404);
  });

  it('freezes the formats once the image has data, but not protection', async () => {
    const image = await activeImage({ protected: true });
    expect((await patch(image.id, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }])).status).toBe(403);
    expect((await patch(image.id, [{ op: 'replace', path: '/protected', value: false }])).body.protected).toBe(false);
  });
});

describe('DELETE /v2/images/{id}', () => {
  it('deletes with 204; then GET and a repeated DELETE are 404 and the list no longer has it', async () => {
    const image = await createImage();
    const res = await call('DELETE', `/v2/images/${image.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await call('GET', `/v2/images/${image.id}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/images/${image.id}`)).status).toBe(404);
    expect((await call('GET', `/v2/images?id=${image.id}`)).body.images).toEqual([]);
  });

  it('refuses protected images with 403 and other projects\' images', async () => {
    const image = await createImage({ protected: true });
    const res = await call('DELETE', `/v2/images/${image.id}`, 'memberA', { headers: { accept: 'text/plain' } });
    expect(res.status).toBe(403);
    expect(res.text).toContain(`Image ${image.id} is protected and cannot be deleted.`);
    const community = await createImage({ visibility: 'community' });
    expect((await call('DELETE', `/v2/images/${community.id}`, 'memberB')).status).toBe(403);
  });
});

describe('tags', () => {
  it('adds (idempotently) and removes tags with 204', async () => {
    const image = await createImage({ tags: ['keep'] });
    expect((await call('PUT', `/v2/images/${image.id}/tags/blue`)).status).toBe(204);
    expect((await call('PUT', `/v2/images/${image.id}/tags/blue`)).status).toBe(204);
    expect([...(await call('GET', `/v2/images/${image.id}`)).body.tags].sort()).toEqual(['blue', 'keep']);
    expect((await call('DELETE', `/v2/images/${image.id}/tags/blue`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${image.id}`)).body.tags).toEqual(['keep']);
  });

  it('answers 404 for unknown images and absent tags, 400 for long tags', async () => {
    const image = await createImage();
    expect((await call('PUT', `/v2/images/${randomUUID()}/tags/x`)).status).toBe(404);
    expect((await call('DELETE', `/v2/images/${image.id}/tags/absent`)).status).toBe(404);
    expect((await call('PUT', `/v2/images/${image.id}/tags/${'t'.repeat(256)}`)).status).toBe(400);
    expect((await call('GET', `/v2/images/${image.id}/tags/x`)).status).toBe(405);
  });
});

describe('members', () => {
  const memberKeys = ['created_at', 'image_id', 'member_id', 'schema', 'status', 'updated_at'];

  it('runs tempest\'s sharing flow: pending, accepted, listed, removed', async () => {
    const image = await createImage();
    const created = await call('POST', `/v2/images/${image.id}/members`, 'memberA', { body: { member: 'project-b' } });
    expect(created.status).toBe(200);
    expect(Object.keys(created.body).sort()).toEqual(memberKeys);
    expect(created.body).toMatchObject({ member_id: 'project-b', image_id: image.id, status: 'pending', schema: '/v2/schemas/member' });
    expect(created.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const idsOf = async (query = '') => (await call('GET', `/v2/images?${query}`, 'memberB')).body.images.map((i: any) => i.id);
    // A pending member can read the image but does not list it by default.
    expect((await call('GET', `/v2/images/${image.id}`, 'memberB')).status).toBe(200);
    expect(await idsOf()).not.toContain(image.id);
    expect(await idsOf('member_status=pending&visibility=shared')).toEqual([image.id]);

    const accepted = await call('PUT', `/v2/images/${image.id}/members/project-b`, 'memberB', { body: { status: 'accepted' } });
    expect(accepted.status).toBe(200);
    expect(accepted.body.status).toBe('accepted');
    expect(await idsOf()).toContain(image.id);

    const list = await call('GET', `/v2/images/${image.id}/members`);
    expect(list.body).toEqual({ members: [accepted.body], schema: '/v2/schemas/members' });
    expect((await call('GET', `/v2/images/${image.id}/members/project-b`)).body).toEqual(accepted.body);

    expect((await call('PUT', `/v2/images/${image.id}/members/project-b`, 'memberB', { body: { status: 'rejected' } })).body.status).toBe('rejected');
    expect(await idsOf()).not.toContain(image.id);

    expect((await call('DELETE', `/v2/images/${image.id}/members/project-b`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${image.id}`, 'memberB')).status).toBe(404);
  });

  it('applies Glance\'s rules: 400 bodies, 403 roles and non-shared images, 404 strangers, 409 duplicates', async () => {
    const image = await createImage();
    const members = `/v2/images/${image.id}/members`;
    expect((await call('POST', members, 'memberA', { body: {} })).status).toBe(400);
    expect((await call('POST', members, 'memberA', { body: { member: '' } })).status).toBe(400);
    expect((await call('POST', members, 'memberA')).status).toBe(400);
    expect((await call('POST', members, 'memberA', { body: { member: 'project-b' } })).status).toBe(200);
    expect((await call('POST', members, 'memberA', { body: { member: 'project-q' } })).status).toBe(200);
    expect((await call('POST', members, 'memberA', { body: { member: 'project-b' } })).status).toBe(409);
    // A member may not invite others, nor change what the owner decides, nor see other entries.
    expect((await call('POST', members, 'memberB', { body: { member: 'project-x' } })).status).toBe(403);
    expect((await call('GET', members, 'memberB')).body.members.map((m: any) => m.member_id)).toEqual(['project-b']);
    expect((await call('GET', `${members}/project-q`, 'memberB')).status).toBe(404);
    expect((await call('DELETE', `${members}/project-b`, 'memberB')).status).toBe(403);
    // The owner may not answer for the member; statuses are checked.
    expect((await call('PUT', `${members}/project-b`, 'memberA', { body: { status: 'accepted' } })).status).toBe(403);
    expect((await call('PUT', `${members}/project-b`, 'memberB', { body: { status: 'notavalidstatus' } })).status).toBe(400);
    expect((await call('PUT', `${members}/project-b`, 'memberB', { body: {} })).status).toBe(400);
    expect((await call('PUT', `${members}/project-b`, 'admin', { body: { status: 'accepted' } })).body.status).toBe('accepted');
    expect((await call('GET', `${members}/project-nobody`)).status).toBe(404);
    expect((await call('DELETE', `${members}/project-nobody`)).status).toBe(404);
    // A pending member sees only its own entry; the owner's project sees them all.
    expect((await call('GET', members, 'memberQ')).body.members.map((m: any) => [m.member_id, m.status])).toEqual([['project-q', 'pending']]);
    expect((await call('GET', members, 'readerA')).body.members).toHaveLength(2);

    const privateImage = await createImage({ visibility: 'private' });
    expect((await call('POST', `/v2/images/${privateImage.id}/members`, 'memberA', { body: { member: 'project-b' } })).status).toBe(403);
    expect((await call('GET', `/v2/images/${privateImage.id}/members`)).status).toBe(403);
    expect((await call('GET', `/v2/images/${privateImage.id}/members/project-b`)).status).toBe(404);
    expect((await call('GET', `/v2/images/${privateImage.id}/members`, 'memberB')).status).toBe(404);
  });
});

describe('deactivate and reactivate', () => {
  it('moves an active image to deactivated and back; only admins download deactivated data', async () => {
    const image = await activeImage();
    expect((await call('POST', `/v2/images/${image.id}/actions/deactivate`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${image.id}`)).body.status).toBe('deactivated');
    expect((await call('POST', `/v2/images/${image.id}/actions/deactivate`)).status).toBe(204);
    expect((await sendBytes('GET', `/v2/images/${image.id}/file`, as('memberA'))).status).toBe(403);
    expect((await sendBytes('GET', `/v2/images/${image.id}/file`, as('admin'))).status).toBe(200);
    expect((await call('POST', `/v2/images/${image.id}/actions/reactivate`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${image.id}`)).body.status).toBe('active');
    expect((await call('POST', `/v2/images/${image.id}/actions/reactivate`)).status).toBe(204);
    const download = await sendBytes('GET', `/v2/images/${image.id}/file`, as('memberA'));
    expect(download.text).toBe('0123456789');
  });

  it('answers 403 from the wrong status and for other projects, 404 for invisible images', async () => {
    const queued = await createImage({ visibility: 'community' });
    const res = await call('POST', `/v2/images/${queued.id}/actions/deactivate`, 'memberA', { headers: { accept: 'text/plain' } });
    expect(res.status).toBe(403);
    expect(res.text).toContain("Not allowed to deactivate image in status 'queued'");
    expect((await call('POST', `/v2/images/${queued.id}/actions/reactivate`)).status).toBe(403);
    const active = await activeImage({ visibility: 'community' });
    expect((await call('POST', `/v2/images/${active.id}/actions/deactivate`, 'memberB')).status).toBe(403);
    expect((await call('POST', `/v2/images/${randomUUID()}/actions/deactivate`)).status).toBe(404);
  });
});

describe('image data', () => {
  it('uploads with 204 and records size, md5 checksum and sha512 hash; downloads with Glance\'s headers', async () => {
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const image = await createImage({ disk_format: 'raw', container_format: 'bare' });
    const put = await upload(image.id, data, 'memberA', { 'x-openstack-image-size': String(data.length) });
    expect(put.status).toBe(204);
    const shown = (await call('GET', `/v2/images/${image.id}`)).body;
    expect(shown).toMatchObject({ status: 'active', size: 5000, virtual_size: 5000, checksum: md5(data), os_hash_algo: 'sha512', os_hash_value: sha512(data) });
    expect(shown).not.toHaveProperty('stores');

    const get = await sendBytes('GET', `/v2/images/${image.id}/file`, as('memberA'));
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toBe('application/octet-stream');
    expect(get.headers['content-md5']).toBe(md5(data));
    expect(get.headers['content-length']).toBe('5000');
    expect(get.bytes.equals(data)).toBe(true);
  });

  it('serves single byte ranges with 206, refuses lists (400) and ranges past the end (416)', async () => {
    const data = Buffer.from('abcdefghij');
    const image = await createImage({ disk_format: 'raw', container_format: 'bare' });
    await upload(image.id, data);
    const path = `/v2/images/${image.id}/file`;
    const part = await sendBytes('GET', path, as('memberA', { range: 'bytes=2-4' }));
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 2-4/10');
    expect(part.text).toBe('cde');
    const suffix = await sendBytes('GET', path, as('memberA', { range: 'bytes=-3' }));
    expect([suffix.status, suffix.text, suffix.headers['content-range']]).toEqual([206, 'hij', 'bytes 7-9/10']);
    const open = await sendBytes('GET', path, as('memberA', { range: 'bytes=8-' }));
    expect([open.status, open.text]).toEqual([206, 'ij']);
    expect((await sendBytes('GET', path, as('memberA', { range: 'bytes=0-1,3-4' }))).status).toBe(400);
    expect((await sendBytes('GET', path, as('memberA', { range: 'bytes=10-' }))).status).toBe(416);
    expect((await sendBytes('GET', path, as('memberA', { range: 'pages=1' }))).status).toBe(416);
  });

  it('answers 204 with no body for an image without data', async () => {
    const image = await createImage();
    const res = await sendBytes('GET', `/v2/images/${image.id}/file`, as('memberA'));
    expect(res.status).toBe(204);
    expect(res.bytes.length).toBe(0);
  });

  it('refuses uploads: other media types (415), unset formats (400, image stays queued), a second upload (409), a wrong size (400)', async () => {
    const bare = await createImage();
    expect((await sendBytes('PUT', `/v2/images/${bare.id}/file`, as('memberA', { 'content-type': 'application/json' }), Buffer.from('{}'))).status).toBe(415);
    const noFormats = await upload(bare.id, Buffer.from('data'));
    expect(noFormats.status).toBe(400);
    expect((await call('GET', `/v2/images/${bare.id}`)).body).toMatchObject({ status: 'queued', size: null });

    const image = await createImage({ disk_format: 'raw', container_format: 'bare' });
    expect((await upload(image.id, Buffer.from('data'), 'memberA', { 'x-openstack-image-size': '99' })).status).toBe(400);
    expect((await call('GET', `/v2/images/${image.id}`)).body).toMatchObject({ status: 'queued', size: null });
    expect((await upload(image.id, Buffer.from('data'))).status).toBe(204);
    const again = await upload(image.id, Buffer.from('more'));
    expect(again.status).toBe(409);
    expect(again.text).toContain('Image status transition from active to saving is not allowed');
    expect((await upload(randomUUID(), Buffer.from('x'))).status).toBe(404);
    expect((await upload(image.id, Buffer.from('x'), 'memberB')).status).toBe(404);
  });

  it('reads a refused upload\'s chunked body before answering, so a client still sending gets the 409', async () => {
    const image = await createImage({ disk_format: 'raw', container_format: 'bare' });
    expect((await upload(image.id, Buffer.from('data'))).status).toBe(204);
    const { hostname, port } = new URL(app.baseUrl);
    const socket = connect(Number(port), hostname);
    const answer = new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    await once(socket, 'connect');
    socket.write(`PUT /v2/images/${image.id}/file HTTP/1.1\r\nHost: ${hostname}\r\nX-Auth-Token: ${app.tokens.memberA}\r\n`
      + 'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
    // Like glanceclient, the body follows the headers a moment later; the answer must wait for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const wrote = await new Promise<Error | null | undefined>((resolve) => socket.write('3e8\r\n' + 'x'.repeat(1000) + '\r\n0\r\n\r\n', resolve));
    expect(wrote ?? null).toBeNull();
    const response = await answer;
    expect(response).toMatch(/^HTTP\/1\.1 409 /);
    expect(response).toContain('Image status transition from active to saving is not allowed');
  });
});

describe('schemas and discovery', () => {
  it('serves the four schemas with Glance\'s names and shapes', async () => {
    const image = (await call('GET', '/v2/schemas/image')).body;
    expect(image.name).toBe('image');
    expect(image.additionalProperties).toEqual({ type: 'string' });
    expect(image.links).toEqual([{ rel: 'self', href: '{self}' }, { rel: 'enclosure', href: '{file}' }, { rel: 'describedby', href: '{schema}' }]);
    expect(image.properties.disk_format.enum).toEqual([null, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']);
    expect(image.properties.container_format.enum).toEqual([null, 'ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed']);
    expect(image.properties.kernel_id).toMatchObject({ type: ['null', 'string'], is_base: false });
    expect(image.properties.name).not.toHaveProperty('is_base');
    const images = (await call('GET', '/v2/schemas/images')).body;
    expect(images.name).toBe('images');
    expect(images.properties.images.items).toEqual(image);
    const member = (await call('GET', '/v2/schemas/member')).body;
    expect(member.name).toBe('member');
    expect(member).not.toHaveProperty('links');
    expect(member).not.toHaveProperty('additionalProperties');
    expect(member.properties.status.enum).toEqual(['pending', 'accepted', 'rejected']);
    expect((await call('GET', '/v2/schemas/members')).body.name).toBe('members');
    // Metadefs are served now (test/integration/metadefs-facade.test.ts); unknown schemas stay 404.
    expect((await call('GET', '/v2/schemas/metadefs/namespace')).body.name).toBe('namespace');
    expect((await call('GET', '/v2/schemas/metadefs/unknown')).status).toBe(404);
  });

  it('serves /v2/info: import methods, 404 for stores (single store), usage', async () => {
    expect((await call('GET', '/v2/info/import')).body).toEqual({ 'import-methods': { description: 'Import methods available.', type: 'array', value: ['glance-direct', 'web-download', 'copy-image'] } });
    expect((await call('GET', '/v2/info/stores')).status).toBe(404);
    const before = (await call('GET', '/v2/info/usage', 'memberQ')).body.usage;
    await activeImage({}, 'memberQ');
    const after = (await call('GET', '/v2/info/usage', 'memberQ')).body.usage;
    expect(after.image_count_total).toEqual({ limit: -1, usage: before.image_count_total.usage + 1 });
    expect(after.image_size_total.limit).toBe(-1);
    expect(after.image_size_total.usage).toBeGreaterThanOrEqual(1);
  });
});
