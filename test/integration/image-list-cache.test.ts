import { startTestApp, type TestApp } from '../helpers/app';
import { openBackdoor, type Backdoor } from '../helpers/backdoor';
import { facadeClient } from '../helpers/facade-client';

/**
 * The facade's rendered-page cache (config images.listCache) on the native SQLite store: a
 * repeated `GET /v2/images` is answered from memory until a write moves the store's mark,
 * and every kind of write is seen at once by every caller it concerns.
 *
 * To tell a cached answer from a fresh one, the tests rename an image behind Vitrine's back
 * (a second SQLite connection, no event): a cached page still shows the old name.
 */
describe('GET /v2/images page cache', () => {
  let app: TestApp;
  let db: Backdoor;
  let facade: ReturnType<typeof facadeClient>;

  beforeAll(async () => {
    app = await startTestApp();
    db = openBackdoor(app);
    facade = facadeClient(app, { accept: 'application/json', namePrefix: 'cached' });
  });
  afterAll(async () => {
    db.close();
    await app.close();
  });

  const list = async (who: Parameters<typeof facade.call>[2] = 'memberA', query = '', headers: Record<string, string> = {}) => {
    const res = await facade.call('GET', `/v2/images${query}`, who, { headers });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    return res.body as { images: { id: string; name: string; status: string; size: number | null; tags: string[]; visibility: string }[]; first: string; next?: string };
  };
  const renameBehindTheBack = (id: string, name: string) => db.rename(id, name);
  const nameIn = async (id: string, who: Parameters<typeof facade.call>[2] = 'memberA', query = '', headers: Record<string, string> = {}) =>
    (await list(who, query, headers)).images.find((i) => i.id === id)?.name;

  test('a repeated list is served from the cache; no-cache asks for a fresh one', async () => {
    const image = await facade.create();
    expect(await nameIn(image.id)).toBe(image.name);
    renameBehindTheBack(image.id, 'renamed-directly');
    expect(await nameIn(image.id)).toBe(image.name);
    expect(await nameIn(image.id, 'memberA', '', { 'cache-control': 'no-cache' })).toBe('renamed-directly');
    // The fresh answer replaced the cached page.
    expect(await nameIn(image.id)).toBe('renamed-directly');
    renameBehindTheBack(image.id, 'renamed-again');
    expect(await nameIn(image.id, 'memberA', '', { pragma: 'no-cache' })).toBe('renamed-again');
  });

  test('pages are kept per query string and per caller', async () => {
    const image = await facade.create();
    await list('memberA', '?limit=5');
    renameBehindTheBack(image.id, 'other-query');
    expect(await nameIn(image.id, 'memberA', '?limit=5')).toBe(image.name);
    // Another query string, another caller of the same project with other roles: their own pages.
    expect(await nameIn(image.id, 'memberA', '?limit=6')).toBe('other-query');
    expect(await nameIn(image.id, 'readerA', '?limit=5')).toBe('other-query');
    // Another project never gets project A's page (its private image is not listed).
    expect(await nameIn(image.id, 'memberB', '?limit=5')).toBeUndefined();
  });

  test('every kind of write is seen at once', async () => {
    const image = await facade.create();
    const seen = async (who: Parameters<typeof facade.call>[2] = 'memberA', query = '') => (await list(who, query)).images.find((i) => i.id === image.id);
    await seen();

    const created = await facade.create();
    expect((await list()).images.map((i) => i.id)).toContain(created.id);

    expect((await facade.patch(image.id, [{ op: 'replace', path: '/name', value: 'patched' }])).status).toBe(200);
    expect((await seen())?.name).toBe('patched');

    expect((await facade.call('PUT', `/v2/images/${image.id}/tags/fresh`)).status).toBe(204);
    expect((await seen())?.tags).toContain('fresh');

    expect(await facade.upload(image.id, Buffer.from('twelve bytes'))).toBe(204);
    expect(await seen()).toMatchObject({ status: 'active', size: 12 });

    // Sharing: project B sees the image once it accepts, and not after the member is removed.
    expect((await facade.patch(image.id, [{ op: 'replace', path: '/visibility', value: 'shared' }])).status).toBe(200);
    expect(await seen('memberB')).toBeUndefined();
    expect((await facade.call('POST', `/v2/images/${image.id}/members`, 'memberA', { body: { member: 'project-b' } })).status).toBe(200);
    expect(await seen('memberB', '?member_status=pending')).toBeDefined();
    expect((await facade.call('PUT', `/v2/images/${image.id}/members/project-b`, 'memberB', { body: { status: 'accepted' } })).status).toBe(200);
    expect(await seen('memberB')).toBeDefined();
    expect(await seen('memberB', '?member_status=pending')).toBeUndefined();
    expect((await facade.call('DELETE', `/v2/images/${image.id}/members/project-b`)).status).toBe(204);
    expect(await seen('memberB')).toBeUndefined();

    expect((await facade.call('POST', `/v2/images/${image.id}/actions/deactivate`, 'admin')).status).toBe(204);
    expect((await seen())?.status).toBe('deactivated');

    expect((await facade.call('POST', `/v2/images/${image.id}/actions/reactivate`, 'admin')).status).toBe(204);
    expect((await facade.call('DELETE', `/v2/images/${image.id}`)).status).toBe(204);
    expect(await seen()).toBeUndefined();
  });

  test('a write through another Vitrine process on the same database is seen at once', async () => {
    const other = await startTestApp({}, { dataDir: app.dataDir });
    try {
      const image = await facade.create();
      await list();
      const res = await other.http('PATCH', `/v2/images/${image.id}`, {
        headers: { 'x-auth-token': app.tokens.memberA, 'content-type': 'application/openstack-images-v2.1-json-patch' },
        body: JSON.stringify([{ op: 'replace', path: '/name', value: 'from-the-other-instance' }]),
      });
      expect(res.status).toBe(200);
      expect(await nameIn(image.id)).toBe('from-the-other-instance');
    } finally {
      await other.close();
    }
  });
});

describe('with images.listCache.entries 0', () => {
  test('every list is fresh', async () => {
    const app = await startTestApp({ images: { listCache: { entries: 0 } } });
    const db = openBackdoor(app);
    try {
      const facade = facadeClient(app, { accept: 'application/json', namePrefix: 'uncached' });
      const image = await facade.create();
      expect((await facade.call('GET', '/v2/images')).body.images[0].name).toBe(image.name);
      db.rename(image.id, 'renamed-directly');
      expect((await facade.call('GET', '/v2/images')).body.images[0].name).toBe('renamed-directly');
    } finally {
      db.close();
      await app.close();
    }
  });
});
