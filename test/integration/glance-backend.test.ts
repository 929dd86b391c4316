import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { testGlanceOptions } from '../helpers/glance-backend';
import { GlanceBackend, type GlanceBackendOptions } from '../../src/backends/glance/backend';
import type { ArtifactView } from '../../src/backends/port';
import { toGlanceImage } from '../../src/domain/glance-image';
import type { Principal } from '../../src/domain/policy';
import type { ProgressEvent } from '../../src/events/port';
import { MemoryEventBus } from '../../src/events/memory';
import { GlanceCli } from '../helpers/glance-cli';
import { freePort, GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';
import { HttpProxy } from '../helpers/http-proxy';

/**
 * GlanceBackend against a real Glance 25.1 (scripts/glance-dev, trusted identity headers):
 * lossless round trips with the real glanceclient, batched lookups, pushed-down filters and
 * paging, a constant number of upstream calls, writes and Glance's own refusals, streamed
 * data, and resilience (unreachable, slow, failing upstreams) through a counting proxy.
 */
jest.setTimeout(300_000);

let glance: RealGlance;
let proxy: HttpProxy;
let bus: MemoryEventBus;
let backend: GlanceBackend;
let cli: GlanceCli;
const opened: GlanceBackend[] = [];
const proxies: HttpProxy[] = [];

let admin: Principal;
const projectA = 'a'.repeat(32);
const projectB = 'b'.repeat(32);
const userA: Principal = { projectId: projectA, userId: 'user-a', roles: ['member', 'reader'] };
const userB: Principal = { projectId: projectB, userId: 'user-b', roles: ['member', 'reader'] };

function open(overrides: Partial<GlanceBackendOptions> = {}): GlanceBackend {
  const b = new GlanceBackend(testGlanceOptions(proxy.url, bus, { timeouts: { connectMs: 2_000, requestMs: 15_000, idleMs: 15_000 }, ...overrides }));
  opened.push(b);
  return b;
}

async function startProxy(): Promise<HttpProxy> {
  const p = await HttpProxy.start(glance.url);
  proxies.push(p);
  return p;
}

/** Glance's own JSON for an image, read directly (no proxy, no backend). */
async function rawImage(id: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${glance.url}/v2/images/${id}`, { headers: { accept: 'application/json' } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

const image = (b: GlanceBackend, p: Principal, request: Partial<Parameters<GlanceBackend['create']>[1]> = {}) =>
  b.create(p, { typeName: 'images', name: `img-${randomUUID().slice(0, 8)}`, ...request });

beforeAll(async () => {
  glance = await startGlance();
  admin = { projectId: glance.projectId, userId: glance.env.GLANCE_USER_ID, roles: ['admin', 'member', 'reader'] };
  proxy = await startProxy();
  bus = new MemoryEventBus();
  backend = open();
  cli = new GlanceCli(glance.url);
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
  await Promise.all(proxies.map((p) => p.close()));
  cli?.cleanup();
  await glance?.stop();
});

describe('a lossless round trip with glanceclient', () => {
  it('creates with glance, reads and updates through the backend, and glance sees only the change', async () => {
    const created = await cli.run([
      'image-create', '--name', 'round trip', '--disk-format', 'qcow2', '--container-format', 'bare', '--min-disk', '2', '--min-ram', '128',
      '--property', 'os_distro=cirros', '--property', 'hw_disk_bus=virtio', '--property', 'owner_specified.openstack.md5=abc',
      '--property', 'description=a "quoted" ünïcode text', '--tags', 't1', 'with space', '--protected', 'False',
    ]);
    const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})/.exec(created)![1];
    const before = await cli.show(id);

    const [view] = await backend.getMany(admin, [id]);
    expect(view).toMatchObject({
      id,
      typeName: 'images',
      name: 'round trip',
      status: 'queued',
      visibility: 'shared',
      owner: glance.projectId,
      backend: 'legacy',
      properties: { os_distro: 'cirros', hw_disk_bus: 'virtio', 'owner_specified.openstack.md5': 'abc', description: 'a "quoted" ünïcode text' },
      fields: { disk_format: 'qcow2', container_format: 'bare', min_disk: 2, min_ram: 128, protected: false, os_hidden: false, size: null, checksum: null },
    });
    expect([...view!.tags].sort()).toEqual(['t1', 'with space']);
    // Every key and value of Glance's JSON survives: the facade's serializer gives it back.
    const raw = await rawImage(id);
    const again = toGlanceImage(view!);
    expect({ ...again, tags: [...(again.tags as string[])].sort() }).toEqual({ ...raw, tags: [...(raw.tags as string[])].sort() });

    const updated = await backend.update(admin, id, { setProperties: { os_distro: 'debian' }, addTags: ['t3'] });
    expect(updated.properties.os_distro).toBe('debian');

    const after = await cli.show(id);
    const unchanged = (t: Record<string, string>) => {
      const { os_distro: _d, tags: _t, updated_at: _u, ...rest } = t;
      return rest;
    };
    expect(unchanged(after)).toEqual(unchanged(before));
    expect(after.os_distro).toBe('debian');
    expect((JSON.parse(after.tags) as string[]).sort()).toEqual(['t1', 't3', 'with space']);
  });
});

describe('lookups', () => {
  let priv: ArtifactView;
  let pending: ArtifactView;
  let community: ArtifactView;
  let hidden: ArtifactView;

  beforeAll(async () => {
    priv = await image(backend, userA, { visibility: 'private' });
    pending = await image(backend, userA, { visibility: 'shared' });
    await backend.addMember(userA, pending.id, projectB);
    community = await image(backend, userA, { visibility: 'community' });
    hidden = await image(backend, userA, { visibility: 'community', fields: { os_hidden: true } });
  });

  it('finds images by id in one batched call, hidden ones in one more, missing ones one by one', async () => {
    const missing = randomUUID();
    proxy.reset();
    const found = await backend.getMany(userA, [priv.id, missing, hidden.id, 'not-a-uuid', priv.id.toUpperCase(), community.id]);
    expect(found.map((v) => v?.id ?? null)).toEqual([priv.id, null, hidden.id, null, priv.id, community.id]);
    expect(proxy.count('GET', '/v2/images')).toBe(2);
    expect(proxy.seen[0].query.get('id')).toMatch(/^in:/);
    expect(proxy.count('GET', `/v2/images/${missing}`)).toBe(1);
    expect(proxy.seen).toHaveLength(3);
  });

  it("shows one image with Glance's own show, hidden or not", async () => {
    proxy.reset();
    expect((await backend.getMany(userA, [hidden.id]))[0]?.id).toBe(hidden.id);
    expect((await backend.getMany(userA, [randomUUID()]))[0]).toBeNull();
    expect(proxy.seen.map((r) => r.path)).toEqual([`/v2/images/${hidden.id}`, expect.stringMatching(/^\/v2\/images\/[0-9a-f-]{36}$/)]);
  });

  it('shows another project only what Glance lets it see (pending shares and community images by id)', async () => {
    const found = await backend.getMany(userB, [priv.id, pending.id, community.id, hidden.id]);
    expect(found.map((v) => v?.id ?? null)).toEqual([null, pending.id, community.id, hidden.id]);
  });

  it('lists members only for shared images, each as its owner or member may see them', async () => {
    proxy.reset();
    const members = await backend.membersOf(userA, [priv.id, pending.id, community.id]);
    expect(members.map((m) => m.map((x) => `${x.member}:${x.status}`))).toEqual([[], [`${projectB}:pending`], []]);
    expect(proxy.count('GET', /\/members$/)).toBe(1);
    const asMember = await backend.membersOf(userB, [pending.id]);
    expect(asMember[0]).toEqual([expect.objectContaining({ artifactId: pending.id, member: projectB, status: 'pending' })]);
  });
});

describe('listing', () => {
  const tag = `list-${randomUUID().slice(0, 8)}`;
  const names = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf'];
  const made: ArtifactView[] = [];

  beforeAll(async () => {
    for (const [i, name] of names.entries()) {
      made.push(await image(backend, userA, {
        name,
        tags: [tag, i % 2 === 0 ? 'even' : 'odd'],
        properties: { os_distro: i < 3 ? 'cirros' : 'debian' },
        fields: { min_disk: i, disk_format: i % 2 === 0 ? 'raw' : 'qcow2', container_format: 'bare' },
      }));
    }
  });

  const byTag = { tags: { all: [tag] } };

  it('pages forward and backward across pages with cursors', async () => {
    const sort = [{ key: 'name', direction: 'asc' as const }];
    const seen: string[] = [];
    const pages = [];
    let after: string | undefined;
    for (;;) {
      const page = await backend.list(userA, { typeName: 'images', filter: byTag, sort, first: 3, after });
      pages.push(page);
      seen.push(...page.items.map((i) => i.name));
      expect(page.hasPreviousPage).toBe(after !== undefined);
      if (!page.hasNextPage) break;
      after = page.cursors.at(-1);
    }
    expect(seen).toEqual(names);
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 1]);

    const back = await backend.list(userA, { typeName: 'images', filter: byTag, sort, last: 3, before: pages[2].cursors[0] });
    expect(back.items.map((i) => i.name)).toEqual(['delta', 'echo', 'foxtrot']);
    expect(back.hasNextPage).toBe(true);
    expect(back.hasPreviousPage).toBe(true);
    const first = await backend.list(userA, { typeName: 'images', filter: byTag, sort, last: 3, before: back.cursors[0] });
    expect(first.items.map((i) => i.name)).toEqual(['alpha', 'bravo', 'charlie']);
    expect(first.hasPreviousPage).toBe(false);
    const tail = await backend.list(userA, { typeName: 'images', filter: byTag, sort, last: 2 });
    expect(tail.items.map((i) => i.name)).toEqual(['foxtrot', 'golf']);
    expect(tail.hasNextPage).toBe(false);
    expect(tail.hasPreviousPage).toBe(true);

    const marker = await backend.list(userA, { filter: byTag, sort, first: 2, afterId: made[4].id });
    expect(marker.items.map((i) => i.name)).toEqual(['foxtrot', 'golf']);
    expect(await first.totalCount()).toBe(names.length);
    await expect(backend.list(userA, { filter: byTag, sort: [{ key: 'createdAt', direction: 'asc' }], after: pages[0].cursors[0] })).rejects.toMatchObject({ code: 'CURSOR_INVALID' });
  });

  it('pushes filters down to Glance', async () => {
    proxy.reset();
    const page = await backend.list(userA, {
      filter: {
        tags: { all: [tag, 'even'] },
        properties: [{ key: 'os_distro', eq: 'debian' }],
        fields: [{ field: 'minDisk', op: 'gte', value: 4 }, { field: 'diskFormat', op: 'eq', value: 'raw' }],
        status: { in: ['queued', 'active'] },
      },
      sort: [{ key: 'name', direction: 'desc' }],
    });
    expect(page.items.map((i) => i.name)).toEqual(['golf', 'echo']);
    expect(proxy.seen).toHaveLength(1);
    const query = proxy.seen[0].query;
    expect(query.getAll('tag')).toEqual([tag, 'even']);
    expect(query.get('os_distro')).toBe('debian');
    expect(query.get('min_disk_min')).toBe('4');
    expect(query.get('disk_format')).toBe('eq:raw');
    expect(query.get('sort')).toBe('name:desc,created_at:desc,id:desc');

    const named = await backend.list(userA, { filter: { ...byTag, name: { in: ['bravo', 'delta', 'nope'] } } });
    expect(named.items.map((i) => i.name).sort()).toEqual(['bravo', 'delta']);
    const ids = await backend.list(userA, { filter: { ids: [made[0].id, made[6].id] }, sort: [{ key: 'name', direction: 'asc' }] });
    expect(ids.items.map((i) => i.name)).toEqual(['alpha', 'golf']);
  });

  it('filters by times as the shown (whole-second) values compare', async () => {
    const newest = made.at(-1)!;
    const after = await backend.list(userA, { filter: { ...byTag, createdAt: { gte: newest.createdAt } } });
    expect(after.items.map((i) => i.id)).toContain(newest.id);
    expect(after.items.every((i) => i.createdAt >= newest.createdAt)).toBe(true);
    const before = await backend.list(userA, { filter: { ...byTag, createdAt: { lt: newest.createdAt } } });
    expect(before.items.every((i) => i.createdAt < newest.createdAt)).toBe(true);
    expect(before.items.length + after.items.length).toBe(names.length);
  });

  it('refuses what Glance cannot express instead of answering wrongly', async () => {
    await expect(backend.list(userA, { filter: { name: { like: 'a%' } } })).rejects.toMatchObject({ code: 'FILTER_INVALID', message: expect.stringContaining('legacy') });
    await expect(backend.list(userA, { filter: { tags: { any: ['even', 'odd'] } } })).rejects.toMatchObject({ code: 'FILTER_INVALID' });
    await expect(backend.list(userA, { sort: [{ key: 'owner', direction: 'asc' }] })).rejects.toMatchObject({ code: 'SORT_INVALID' });
    await expect(backend.list(userA, { filter: { createdAt: { gt: 'never' } } })).rejects.toMatchObject({ code: 'FILTER_INVALID' });
    // Glance's own refusal of a filter value comes through as FILTER_INVALID too, with its message.
    proxy.reset();
    await expect(backend.list(userA, { filter: { memberStatus: 'bogus' as never } })).rejects.toMatchObject({ code: 'FILTER_INVALID', message: expect.stringContaining('bogus') });
    expect(proxy.count('GET', '/v2/images')).toBe(1);
    const other = await backend.list(userA, { typeName: 'heat_templates' });
    expect(other.items).toEqual([]);
  });
});

describe('a constant number of upstream calls', () => {
  const projectC = 'c'.repeat(32);
  const userC: Principal = { projectId: projectC, userId: 'user-c', roles: ['member', 'reader'] };
  let ids: string[] = [];

  beforeAll(async () => {
    const created = await Promise.all(Array.from({ length: 100 }, (_, i) => image(backend, userC, { name: `many-${i}`, visibility: 'private' })));
    ids = created.map((c) => c.id);
  });

  async function callsFor(n: number): Promise<number> {
    proxy.reset();
    const views = await backend.getMany(userC, ids.slice(0, n));
    const members = await backend.membersOf(userC, ids.slice(0, n));
    const blobs = await backend.blobsOf(userC, ids.slice(0, n));
    expect(views.filter(Boolean)).toHaveLength(n);
    expect(members).toHaveLength(n);
    expect(blobs).toHaveLength(n);
    return proxy.seen.length;
  }

  it('fetches 10 or 100 images with their members and data in the same number of calls', async () => {
    const ten = await callsFor(10);
    const hundred = await callsFor(100);
    expect(hundred).toBe(ten);
    expect(ten).toBe(3);
  });
});

describe('writes', () => {
  it('creates, updates, tags, shares, deactivates, reactivates and deletes', async () => {
    const created = await image(backend, userA, { name: 'w', tags: ['a'], properties: { p1: 'v1' }, fields: { disk_format: 'raw', container_format: 'bare' } });
    expect(created).toMatchObject({ status: 'queued', owner: projectA, visibility: 'shared', backend: 'legacy' });

    const renamed = await backend.update(userA, created.id, { name: 'w2', removeTags: ['a'], addTags: ['b'], unsetProperties: ['p1', 'absent'], setProperties: { p2: 'v2' }, fields: { minRam: 64 } });
    expect(renamed).toMatchObject({ name: 'w2', tags: ['b'], properties: { p2: 'v2' }, fields: expect.objectContaining({ min_ram: 64 }) });
    expect(await rawImage(created.id)).toMatchObject({ name: 'w2', tags: ['b'], p2: 'v2', min_ram: 64 });
    expect(await rawImage(created.id)).not.toHaveProperty('p1');

    await expect(backend.update(userA, created.id, { name: 'w3' }, renamed.revision - 1)).rejects.toMatchObject({ code: 'REVISION_CONFLICT' });
    const same = await backend.update(userA, created.id, { name: 'w2' });
    expect(same.revision).toBe(renamed.revision);

    const member = await backend.addMember(userA, created.id, projectB);
    expect(member).toMatchObject({ artifactId: created.id, member: projectB, status: 'pending' });
    await expect(backend.addMember(userA, created.id, projectB)).rejects.toMatchObject({ code: 'MEMBER_EXISTS' });
    expect(await backend.updateMember(userB, created.id, projectB, 'accepted')).toMatchObject({ status: 'accepted' });
    // Only the member answers a share (Glance's policy, passed through).
    await expect(backend.updateMember(userA, created.id, projectB, 'rejected')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(backend.removeMember(userA, created.id, 'nobody')).rejects.toMatchObject({ code: 'MEMBER_NOT_FOUND' });
    await backend.removeMember(userA, created.id, projectB);
    expect((await backend.membersOf(userA, [created.id]))[0]).toEqual([]);

    const priv = await backend.setVisibility(userA, created.id, 'private');
    expect(priv.visibility).toBe('private');
    await expect(backend.addMember(userA, created.id, projectB)).rejects.toMatchObject({ code: 'NOT_SHARED' });
    await expect(backend.setVisibility(userA, created.id, 'public')).rejects.toMatchObject({ code: 'FORBIDDEN' });

    // Glance's own refusal of an illegal transition (a queued image cannot be deactivated).
    await expect(backend.changeStatus(userA, created.id, 'deactivate')).rejects.toMatchObject({ code: 'TRANSITION_FORBIDDEN', message: expect.stringContaining('queued') });
    await backend.uploadBlob(userA, { artifactId: created.id, field: 'image', key: '' }, Readable.from([Buffer.from('data')]), { contentType: 'application/octet-stream' });
    expect((await backend.changeStatus(userA, created.id, 'deactivate')).status).toBe('deactivated');
    expect((await backend.changeStatus(userA, created.id, 'reactivate')).status).toBe('active');
    await expect(backend.changeStatus(userA, created.id, 'activate')).rejects.toMatchObject({ code: 'TRANSITION_FORBIDDEN' });

    expect(await backend.delete(userA, created.id)).toEqual({ id: created.id, typeName: 'images', status: 'deleted' });
    expect(await backend.getMany(userA, [created.id])).toEqual([null]);
    await expect(backend.delete(userA, created.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('passes Glance\'s refusals through as the matching codes, with Glance\'s message', async () => {
    const created = await image(backend, userA, { fields: { protected: true } });
    await expect(backend.update(userA, randomUUID(), { name: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(backend.delete(userA, created.id)).rejects.toMatchObject({ code: 'PROTECTED', details: { backend: 'legacy', status: 403 } });
    await expect(backend.update(userA, created.id, { fields: { min_ram: 2 ** 40 } })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining('min_ram') });
    await expect(backend.update(userA, created.id, { setProperties: { kernel_id: 'not-a-uuid' } })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/does not match/) });
    await expect(backend.create(userA, { typeName: 'images', name: 'dup', id: created.id })).rejects.toMatchObject({ code: 'DUPLICATE_ID' });
    await expect(backend.update(userB, created.id, { name: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // Vitrine's own checks come first, with the native backend's codes.
    await expect(backend.update(userA, created.id, { fields: { size: 3 } })).rejects.toMatchObject({ code: 'FIELD_READ_ONLY' });
    await expect(backend.update(userA, created.id, { setProperties: { os_glance_x: '1' } })).rejects.toMatchObject({ code: 'PROPERTY_RESERVED' });
    await expect(backend.create(userA, { typeName: 'heat_templates', name: 'h' })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(backend.addLink()).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect(await backend.linksOf(userA, [created.id])).toEqual([[]]);
    await backend.update(userA, created.id, { fields: { protected: false } });
  });

  it('reports Glance\'s member quota (413) as QUOTA_EXCEEDED', async () => {
    const shared = await image(backend, userA, { visibility: 'shared' });
    for (let i = 0; i < 128; i++) await backend.addMember(userA, shared.id, `member-${i}`);
    await expect(backend.addMember(userA, shared.id, 'one-too-many')).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', details: { backend: 'legacy', status: 413 } });
  });
});

describe('image data', () => {
  const data = randomBytes(4 * 1024 * 1024 + 123);
  const md5 = createHash('md5').update(data).digest('hex');
  const sha512 = createHash('sha512').update(data).digest('hex');
  const chunked = (bytes: Buffer) => Readable.from((function* () {
    for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
  })());
  const raw = () => image(backend, userA, { fields: { disk_format: 'raw', container_format: 'bare' } });

  it('streams an upload to Glance with progress events, and the download back', async () => {
    const created = await raw();
    const events: ProgressEvent[] = [];
    const sub = bus.subscribe((m) => {
      if (m.topic === 'progress' && m.event.artifactId === created.id) events.push(m.event);
    });
    const target = { artifactId: created.id, field: 'image', key: '' };
    const result = await backend.uploadBlob(userA, target, chunked(data), { contentType: 'application/octet-stream', contentLength: data.length, expectedMd5: md5 });
    sub.unsubscribe();
    expect(result.artifact.status).toBe('active');
    expect(result.blob).toMatchObject({ field: 'image', status: 'active', size: data.length, md5, sha512, downloadUrl: `/v1/artifacts/${created.id}/blobs/image` });
    expect(await rawImage(created.id)).toMatchObject({ checksum: md5, os_hash_value: sha512, size: data.length });
    expect(events.at(-1)).toMatchObject({ kind: 'uploadProgress', done: true, outcome: 'succeeded', bytes: data.length, total: data.length, subject: 'image' });
    expect(events.filter((e) => !e.done).length).toBeGreaterThan(0);

    expect((await backend.blobsOf(userA, [created.id]))[0]).toEqual([result.blob]);
    const content = await backend.openBlob(userA, target);
    expect(content.kind).toBe('stored');
    if (content.kind !== 'stored') return;
    expect(content.blob.size).toBe(data.length);
    const whole = createHash('md5');
    for await (const chunk of await content.read()) whole.update(chunk as Buffer);
    expect(whole.digest('hex')).toBe(md5);
    const parts: Buffer[] = [];
    for await (const chunk of await content.read({ start: 1000, end: 70_999 })) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).equals(data.subarray(1000, 71_000))).toBe(true);

    await expect(backend.uploadBlob(userA, target, chunked(data), { contentType: 'application/octet-stream' })).rejects.toMatchObject({ code: 'TRANSITION_FORBIDDEN' });
  });

  it('never completes an upload whose bytes differ from what was announced: Glance keeps the image queued', async () => {
    const created = await raw();
    const target = { artifactId: created.id, field: 'image', key: '' };
    await expect(backend.uploadBlob(userA, target, chunked(data), { contentType: 'application/octet-stream', expectedMd5: '0'.repeat(32) })).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(await rawImage(created.id)).toMatchObject({ status: 'queued', size: null });
    await expect(backend.uploadBlob(userA, target, chunked(data.subarray(0, 1000)), { contentType: 'application/octet-stream', contentLength: 2000 })).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    expect(await rawImage(created.id)).toMatchObject({ status: 'queued', size: null });
    await expect(backend.uploadBlob(userA, target, chunked(data), { contentType: 'application/octet-stream', contentLength: 1000 })).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    expect(await rawImage(created.id)).toMatchObject({ status: 'queued' });
    await expect(backend.openBlob(userA, target)).rejects.toMatchObject({ code: 'BLOB_NOT_READY' });
    const noFormats = await image(backend, userA);
    await expect(backend.checkUploadable(userA, { artifactId: noFormats.id, field: 'image', key: '' })).rejects.toMatchObject({ code: 'ACTIVATION_INCOMPLETE' });
    // The image is still usable afterwards.
    const ok = await backend.uploadBlob(userA, target, chunked(data.subarray(0, 5000)), { contentType: 'application/octet-stream', contentLength: 5000 });
    expect(ok.blob.size).toBe(5000);
  });
});

describe('resilience', () => {
  it('reports an unreachable Glance as UPSTREAM_UNAVAILABLE and opens the breaker, which then stops calling', async () => {
    const port = await freePort();
    const down = open({ url: `http://127.0.0.1:${port}`, retries: 0, breaker: { failures: 2, resetMs: 60_000 } });
    for (let i = 0; i < 2; i++) {
      await expect(down.getMany(admin, [randomUUID()])).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { backend: 'legacy', reason: 'ECONNREFUSED' } });
    }
    expect(down.breakerState).toBe('open');
    await expect(down.list(admin, {})).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: expect.objectContaining({ backend: 'legacy', breaker: 'open' }) });
  });

  it('half-opens after resetMs and closes again once Glance answers', async () => {
    const p = await startProxy();
    const flaky = open({ url: p.url, retries: 0, breaker: { failures: 2, resetMs: 300 } });
    p.cut();
    for (let i = 0; i < 2; i++) await expect(flaky.list(admin, { first: 1 })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    const attempts = p.connections;
    await expect(flaky.list(admin, { first: 1 })).rejects.toMatchObject({ details: expect.objectContaining({ breaker: 'open' }) });
    expect(p.connections).toBe(attempts);
    p.restore();
    while (flaky.breakerState === 'open') await new Promise((r) => setTimeout(r, 50));
    expect(flaky.breakerState).toBe('halfOpen');
    const page = await flaky.list(admin, { first: 1 });
    expect(page.items).toHaveLength(1);
    expect(flaky.breakerState).toBe('closed');
  });

  it('reports a slow Glance as UPSTREAM_TIMEOUT', async () => {
    const p = await startProxy();
    p.delayMs = 3_000;
    const slow = open({ url: p.url, retries: 0, timeouts: { connectMs: 2_000, requestMs: 200, idleMs: 200 } });
    await expect(slow.list(admin, { first: 1 })).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: expect.objectContaining({ backend: 'legacy' }) });
  });

  it('retries reads on 503 with backoff, never writes', async () => {
    const p = await startProxy();
    const b = open({ url: p.url, retries: 2 });
    const created = await image(backend, admin);
    p.failNext(2, 503);
    expect((await b.getMany(admin, [created.id]))[0]?.id).toBe(created.id);
    expect(p.count('GET', `/v2/images/${created.id}`)).toBe(3);

    p.reset();
    const name = `not-retried-${randomUUID()}`;
    p.failNext(1, 503);
    await expect(b.create(admin, { typeName: 'images', name })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { backend: 'legacy', status: 503 } });
    expect(p.count('POST', '/v2/images')).toBe(1);
    expect((await backend.list(admin, { filter: { name: { eq: name } } })).items).toEqual([]);
  });
});

describe('identity', () => {
  it('sends the principal as identity headers, so Glance applies its policy to it', async () => {
    proxy.reset();
    await backend.list(userA, { first: 1 });
    expect(proxy.seen[0].headers).toMatchObject({ 'x-project-id': projectA, 'x-user-id': 'user-a', 'x-roles': 'member,reader' });
    expect(proxy.seen[0].headers['x-auth-token']).toBeUndefined();
  });

  it('forwards the caller\'s token in token mode, and refuses a principal without one', async () => {
    const b = open({ identity: 'token' });
    const withToken = { ...userA };
    Object.defineProperty(withToken, 'token', { value: 'secret-token', enumerable: false });
    proxy.reset();
    await b.list(withToken, { first: 1 });
    expect(proxy.seen[0].headers['x-auth-token']).toBe('secret-token');
    expect(proxy.seen[0].headers['x-project-id']).toBeUndefined();
    await expect(b.list(userA, { first: 1 })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

describe('stores and tasks', () => {
  it('passes Glance\'s stores and image tasks through', async () => {
    const stores = await backend.stores(admin);
    expect(stores.map((s) => s.id).sort()).toEqual(glance.env.GLANCE_STORES.split(',').sort());
    expect(stores.find((s) => s.isDefault)?.id).toBe(glance.env.GLANCE_DEFAULT_STORE);
    const created = await image(backend, admin);
    expect(await backend.tasksOf(admin, created.id)).toEqual([]);
    await expect(backend.getTask(admin, randomUUID())).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(backend.usage()).rejects.toMatchObject({ code: 'BAD_INPUT' });
  });
});
