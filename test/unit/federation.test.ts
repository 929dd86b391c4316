import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendParts } from '../../src/app/compose';
import { decodeFederatedCursor, encodeFederatedCursor, queryFingerprint } from '../../src/backends/federation/cursor';
import { FederatedBackend, type FederationMember } from '../../src/backends/federation/backend';
import type { ArtifactBackend, ArtifactPage, ListRequest } from '../../src/backends/port';
import { TypeRegistry } from '../../src/domain/builtin-types';
import { VitrineError } from '../../src/domain/errors';
import { resolveSort } from '../../src/domain/filters';
import { compareKeysets, compareText } from '../../src/domain/ordering';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import { faulty, openNativeMember, type Faults, type NativeMember } from '../helpers/backends';

/**
 * The merge of several backends' listings, checked against the order one native store
 * gives when it holds every row (same ids): pages forward and backward must concatenate to
 * exactly that order, with no item missing or repeated, whatever the page size.
 */
const ADMIN: Principal = { projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] };
const types = new TypeRegistry();
const PAGING = { defaultPageSize: 10, maxPageSize: 50 };
type Sort = NonNullable<ListRequest['sort']>;

function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  return expect(promise).rejects.toMatchObject({ code });
}

/** A small deterministic generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ordering as the stores order', () => {
  it('compares text by code point (UTF-8 byte order), not by UTF-16 unit', () => {
    // U+FF5A is one UTF-16 unit above the surrogates of U+1D4B3, but sorts below it in UTF-8.
    expect(compareText('\uff5a', '\u{1d4b3}')).toBeLessThan(0);
    expect('\uff5a' < '\u{1d4b3}').toBe(false);
    expect(compareText('a', 'ab')).toBeLessThan(0);
    expect(compareText('B', 'a')).toBeLessThan(0);
    expect(compareText('x', 'x')).toBe(0);
  });

  it('puts NULL lowest, compares versions by precedence, and breaks ties by id in the last key\'s direction', () => {
    const sort = resolveSort(types.get('images'), [{ key: 'disk_format', direction: 'desc' }, { key: 'version', direction: 'asc' }]);
    const k = (format: string | null, version: string, id: string) => ({ values: [format, version], id });
    expect(compareKeysets(sort, k('raw', '1.0.0', 'a'), k(null, '1.0.0', 'a'))).toBeLessThan(0);
    expect(compareKeysets(sort, k('raw', '1.0.0-rc.1', 'a'), k('raw', '1.0.0', 'a'))).toBeLessThan(0);
    expect(compareKeysets(sort, k('raw', '10.0.0', 'a'), k('raw', '9.0.0', 'a'))).toBeGreaterThan(0);
    expect(compareKeysets(sort, k('raw', '1.0.0', 'a'), k('raw', '1.0.0', 'b'))).toBeLessThan(0);
    const desc = resolveSort(undefined, [{ key: 'name', direction: 'desc' }]);
    expect(compareKeysets(desc, { values: ['n'], id: 'a' }, { values: ['n'], id: 'b' })).toBeGreaterThan(0);
  });
});

describe('federated cursors', () => {
  const sort = resolveSort(undefined, [{ key: 'name', direction: 'asc' }]);
  const query = queryFingerprint(sort, ['a', 'b'], 'images');
  const position = { boundaries: [{ last: { c: 'cursor-a' }, next: 'cursor-a2' }, { last: null, next: null }], owner: 0 };

  it('round-trips every kind of boundary', () => {
    const all = { boundaries: [{ last: { id: 'm' }, next: null }, { last: { c: 'x' }, next: 'y' }, { last: 'end' as const, next: null }], owner: 1 };
    const q = queryFingerprint(sort, ['a', 'b', 'c'], undefined);
    expect(decodeFederatedCursor(q, encodeFederatedCursor(q, all), 3)).toEqual(all);
  });

  it('refuses a tampered cursor, a cursor of another query, and anything it did not issue', () => {
    const cursor = encodeFederatedCursor(query, position);
    const [body, digest] = cursor.split('.');
    const edited = Buffer.from(Buffer.from(body, 'base64url').toString('utf8').replace('cursor-a2', 'cursor-a3')).toString('base64url');
    expect(() => decodeFederatedCursor(query, `${edited}.${digest}`, 2)).toThrow(expect.objectContaining({ code: 'CURSOR_INVALID' }));
    const flipped = `${body.slice(0, 5)}${body[5] === 'A' ? 'B' : 'A'}${body.slice(6)}.${digest}`;
    expect(() => decodeFederatedCursor(query, flipped, 2)).toThrow(expect.objectContaining({ code: 'CURSOR_INVALID' }));
    const other = queryFingerprint(resolveSort(undefined, [{ key: 'name', direction: 'desc' }]), ['a', 'b'], 'images');
    expect(() => decodeFederatedCursor(other, cursor, 2)).toThrow(/another query/);
    expect(() => decodeFederatedCursor(queryFingerprint(sort, ['a', 'c'], 'images'), cursor, 2)).toThrow(/another query/);
    // Well-formed and digested, but naming an item of a backend that has none at that position.
    const text = JSON.stringify([1, query, [[{ c: 'cursor-a' }, null], [null, null]], 1]);
    const forged = `${Buffer.from(text).toString('base64url')}.${createHash('sha256').update(text).digest('base64url').slice(0, 16)}`;
    for (const junk of ['', 'abc', '.', 'eyJ4IjoxfQ.xyz', cursor.replace('.', ''), forged]) {
      expect(() => decodeFederatedCursor(query, junk, 2)).toThrow(expect.objectContaining({ code: 'CURSOR_INVALID' }));
    }
  });
});

describe('merged listings over three native backends', () => {
  let dir: string;
  let parts: BackendParts;
  let members: NativeMember[];
  let all: NativeMember;
  let fed: FederatedBackend;
  const ids: string[] = [];
  const home = new Map<string, string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-federation-'));
    parts = {
      types,
      bus: new MemoryEventBus(),
      paging: { ...PAGING, maxPageSize: PAGING.maxPageSize + 1 },
      blobPathPrefix: '/v1/artifacts',
      lookup: (p, some) => fed.getMany(p, some),
    };
    members = await Promise.all(['a', 'b', 'c'].map((name) => openNativeMember(parts, dir, name)));
    all = await openNativeMember({ ...parts, paging: { defaultPageSize: 10, maxPageSize: 1000 }, lookup: undefined }, dir, 'all');
    fed = federation(members.map((m) => m.backend));

    // Many ties (few names, versions, formats), NULL formats, text outside the BMP.
    const random = prng(7);
    const names = ['alpha', 'beta', 'Beta', 'gamma', '\uff5a', '\u{1d4b3}', 'ünï'];
    const versions = ['1.0.0', '1.0.0-rc.1', '0.9.0', '10.0.0', '1.0.0-alpha'];
    const formats = [null, 'raw', 'qcow2', 'iso'];
    for (let i = 0; i < 57; i++) {
      const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
      const member = pick(members);
      const format = pick(formats);
      const request = {
        typeName: 'images',
        name: pick(names),
        version: pick(versions),
        fields: { min_disk: Math.floor(random() * 3), ...(format !== null && { disk_format: format }) },
      };
      const created = await member.backend.create(ADMIN, request);
      await all.backend.create(ADMIN, { ...request, id: created.id });
      ids.push(created.id);
      home.set(created.id, member.backend.name);
    }
  });

  afterAll(async () => {
    await Promise.all([...members, all].map((m) => m.store.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  function federation(backends: ArtifactBackend[], home?: string): FederatedBackend {
    return new FederatedBackend({ members: backends.map((backend): FederationMember => ({ backend })), types, paging: PAGING, ...(home && { home }) });
  }

  async function expected(sort: Sort): Promise<string[]> {
    return (await all.backend.list(ADMIN, { typeName: 'images', sort, first: 1000 })).items.map((i) => i.id);
  }

  async function forward(backend: ArtifactBackend, sort: Sort, size: number, start: Partial<ListRequest> = {}): Promise<{ ids: string[]; pages: ArtifactPage[] }> {
    const out: string[] = [];
    const pages: ArtifactPage[] = [];
    let request: ListRequest = { typeName: 'images', sort, first: size, ...start };
    for (;;) {
      const page = await backend.list(ADMIN, request);
      expect(page.items.length).toBeLessThanOrEqual(size);
      pages.push(page);
      out.push(...page.items.map((i) => i.id));
      if (!page.hasNextPage) return { ids: out, pages };
      expect(page.items.length).toBe(size);
      request = { typeName: 'images', sort, first: size, after: page.cursors.at(-1) };
      expect(pages.length).toBeLessThan(100);
    }
  }

  async function backward(backend: ArtifactBackend, sort: Sort, size: number, before?: string): Promise<string[]> {
    let out: string[] = [];
    let request: ListRequest = { typeName: 'images', sort, last: size, ...(before && { before }) };
    for (let n = 0; ; n++) {
      const page = await backend.list(ADMIN, request);
      out = [...page.items.map((i) => i.id), ...out];
      if (!page.hasPreviousPage) return out;
      expect(page.items.length).toBe(size);
      request = { typeName: 'images', sort, last: size, before: page.cursors[0] };
      expect(n).toBeLessThan(100);
    }
  }

  const SORTS: [string, Sort][] = [
    ['name', [{ key: 'name', direction: 'asc' }]],
    ['name desc', [{ key: 'name', direction: 'desc' }]],
    ['disk format (NULLs) desc, then version', [{ key: 'disk_format', direction: 'desc' }, { key: 'version', direction: 'asc' }]],
    ['version desc', [{ key: 'version', direction: 'desc' }]],
    ['min_disk, then name desc', [{ key: 'min_disk', direction: 'asc' }, { key: 'name', direction: 'desc' }]],
  ];

  it.each(SORTS)('pages forward in the order one store gives (%s)', async (_label, sort) => {
    const want = await expected(sort);
    expect(want).toHaveLength(ids.length);
    for (const size of [1, 4, 10, 50]) expect((await forward(fed, sort, size)).ids).toEqual(want);
  });

  it.each(SORTS)('pages backward in the same order (%s)', async (_label, sort) => {
    const want = await expected(sort);
    for (const size of [1, 7, 50]) expect(await backward(fed, sort, size)).toEqual(want);
  });

  it('turns around mid-way: before the start cursor of any forward page lies exactly what came before', async () => {
    const sort: Sort = [{ key: 'name', direction: 'asc' }];
    const want = await expected(sort);
    const { pages } = await forward(fed, sort, 6);
    let seen = 0;
    for (const page of pages) {
      if (page.items.length > 0) expect(await backward(fed, sort, 5, page.cursors[0])).toEqual(want.slice(0, seen));
      seen += page.items.length;
    }
    // And after any item's own cursor (not only page ends), forward again.
    const middle = pages[3];
    const rest = await forward(fed, sort, 9, { after: middle.cursors[2] });
    expect(rest.ids).toEqual(want.slice(3 * 6 + 3));
  });

  it('reports hasPreviousPage and hasNextPage as a single backend does', async () => {
    const sort: Sort = [{ key: 'name', direction: 'asc' }];
    const first = await fed.list(ADMIN, { typeName: 'images', sort, first: 5 });
    expect([first.hasPreviousPage, first.hasNextPage]).toEqual([false, true]);
    const second = await fed.list(ADMIN, { typeName: 'images', sort, first: 5, after: first.cursors.at(-1) });
    expect([second.hasPreviousPage, second.hasNextPage]).toEqual([true, true]);
    const everything = await fed.list(ADMIN, { typeName: 'images', sort, first: 50 });
    expect([everything.hasPreviousPage, everything.hasNextPage]).toEqual([false, true]);
    const tail = await fed.list(ADMIN, { typeName: 'images', sort, first: 50, after: everything.cursors.at(-1) });
    expect(tail.items).toHaveLength(ids.length - 50);
    expect(tail.hasNextPage).toBe(false);
  });

  it('continues after an afterId marker of any backend, then with cursors', async () => {
    const sort: Sort = [{ key: 'disk_format', direction: 'desc' }, { key: 'version', direction: 'asc' }];
    const want = await expected(sort);
    for (const at of [0, 13, 30, want.length - 2]) {
      const marker = want[at];
      expect((await forward(fed, sort, 8, { afterId: marker })).ids).toEqual(want.slice(at + 1));
    }
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort, first: 5, afterId: '00000000-0000-4000-8000-000000000000' }), 'CURSOR_INVALID');
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort, last: 5, afterId: want[3] }), 'CURSOR_INVALID');
  });

  it('scans a backend that cannot start after another backend\'s marker', async () => {
    const sort: Sort = [{ key: 'name', direction: 'desc' }];
    const want = await expected(sort);
    const faults: Faults = { refuseForeignMarkers: true, calls: {} };
    const scanned = federation([members[0].backend, members[1].backend, faulty(members[2].backend, faults)]);
    const marker = want.find((id) => home.get(id) === 'a' && want.indexOf(id) > 20)!;
    expect((await forward(scanned, sort, 6, { afterId: marker })).ids).toEqual(want.slice(want.indexOf(marker) + 1));
    expect(faults.calls!.list).toBeGreaterThan(1);
  });

  it('works with a backend that answers fewer items than asked', async () => {
    const sort: Sort = [{ key: 'min_disk', direction: 'asc' }, { key: 'name', direction: 'desc' }];
    const want = await expected(sort);
    const short = federation([faulty(members[0].backend, { maxPage: 2 }), members[1].backend, faulty(members[2].backend, { maxPage: 3 })]);
    for (const size of [1, 5, 12]) {
      expect((await forward(short, sort, size)).ids).toEqual(want);
      expect(await backward(short, sort, size)).toEqual(want);
    }
  });

  it('refuses tampered cursors, cursors of other queries and native cursors', async () => {
    const sort: Sort = [{ key: 'name', direction: 'asc' }];
    const page = await fed.list(ADMIN, { typeName: 'images', sort, first: 3 });
    const cursor = page.cursors[1];
    const tampered = `${cursor.slice(0, 10)}${cursor[10] === 'x' ? 'y' : 'x'}${cursor.slice(11)}`;
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort, first: 3, after: tampered }), 'CURSOR_INVALID');
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort: [{ key: 'name', direction: 'desc' }], first: 3, after: cursor }), 'CURSOR_INVALID');
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort, first: 3, after: cursor, filter: { backend: ['a', 'b'] } }), 'CURSOR_INVALID');
    const native = (await members[0].backend.list(ADMIN, { typeName: 'images', sort, first: 1 })).cursors[0];
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort, first: 3, after: native }), 'CURSOR_INVALID');
    await expectCode(fed.list(ADMIN, { typeName: 'images', sort, first: PAGING.maxPageSize + 1 }), 'PAGE_SIZE_INVALID');
  });

  it('counts every backend, and selects backends by name', async () => {
    const sort: Sort = [{ key: 'name', direction: 'asc' }];
    expect(await (await fed.list(ADMIN, { typeName: 'images', sort, first: 2 })).totalCount()).toBe(ids.length);
    const onlyB = await forward(fed, sort, 50, { filter: { backend: ['b'] } });
    expect(onlyB.ids.sort()).toEqual(ids.filter((id) => home.get(id) === 'b').sort());
    const bAndC = await fed.list(ADMIN, { typeName: 'images', sort, first: 50, filter: { backend: ['c', 'b'] } });
    expect(await bAndC.totalCount()).toBe(ids.filter((id) => home.get(id) !== 'a').length);
    expect(bAndC.items.map((i) => i.backend).every((b) => b !== 'a')).toBe(true);
    await expectCode(fed.list(ADMIN, { typeName: 'images', first: 5, filter: { backend: ['b', 'nope'] } }), 'BACKEND_UNKNOWN');
    const none = await fed.list(ADMIN, { typeName: 'images', first: 5, filter: { backend: [] } });
    expect(none.items).toEqual([]);
    await expectCode(fed.list(ADMIN, { typeName: 'images', first: 5, filter: { and: [{ backend: ['a'] }] } }), 'FILTER_INVALID');
  });

  it('shows snapshots whose event names no backend as the home member\'s (the only writer of such events)', () => {
    const [a, b, c] = members.map((m) => m.backend);
    expect(federation([a, b, c]).name).toBe(a.name);
    expect(federation([a, b, c], b.name).name).toBe(b.name);
  });

  it('looks ids up in whichever backend holds them, in input order', async () => {
    const sample = [ids[5], '00000000-0000-4000-8000-000000000000', ids[0], ids[40]];
    const found = await fed.getMany(ADMIN, sample);
    expect(found.map((v) => (v && !(v instanceof Error) ? v.id : v))).toEqual([ids[5], null, ids[0], ids[40]]);
    expect(found.map((v) => (v && !(v instanceof Error) ? v.backend : null))).toEqual([home.get(ids[5]), null, home.get(ids[0]), home.get(ids[40])]);
  });

  it('lists what the healthy backends hold when one fails, and says which failed', async () => {
    const faults: Faults = { down: true };
    const partial = federation([members[0].backend, faulty(members[1].backend, faults), members[2].backend]);
    const sort: Sort = [{ key: 'name', direction: 'asc' }];
    const want = (await expected(sort)).filter((id) => home.get(id) !== 'b');
    const page = await partial.list(ADMIN, { typeName: 'images', sort, first: 50 });
    expect(page.items.map((i) => i.id)).toEqual(want.slice(0, 50));
    expect(page.warnings).toEqual([{ backend: 'b', code: 'UPSTREAM_UNAVAILABLE', message: expect.stringContaining('down') }]);
    expect(await page.totalCount()).toBe(want.length);

    const inB = ids.find((id) => home.get(id) === 'b')!;
    const inC = ids.find((id) => home.get(id) === 'c')!;
    const [b, c, missing] = await partial.getMany(ADMIN, [inB, inC, '00000000-0000-4000-8000-000000000000']);
    expect(b).toBeInstanceOf(VitrineError);
    expect(b).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { backend: 'b' } });
    expect(c).toMatchObject({ id: inC, backend: 'c' });
    expect(missing).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    await expectCode(partial.update(ADMIN, inB, { addTags: ['x'] }), 'UPSTREAM_UNAVAILABLE');

    // A backend that comes back is asked again from where the cursor left it: nothing lost.
    const next = page.cursors.at(-1)!;
    faults.down = false;
    const rest = await forward(partial, sort, 50, { after: next });
    expect(new Set([...page.items.map((i) => i.id), ...rest.ids])).toEqual(new Set(ids));

    faults.down = true;
    const lonely = federation([faulty(members[0].backend, faults), faulty(members[1].backend, faults)]);
    await expectCode(lonely.list(ADMIN, { typeName: 'images', first: 5 }), 'UPSTREAM_UNAVAILABLE');
  });

  it('routes writes to the backend that holds the artifact and creates in the named one', async () => {
    const inC = ids.find((id) => home.get(id) === 'c')!;
    const updated = await fed.update(ADMIN, inC, { addTags: ['routed'] });
    expect(updated).toMatchObject({ backend: 'c', tags: ['routed'] });
    const [inStore] = await members[2].backend.getMany(ADMIN, [inC]);
    expect(inStore).toMatchObject({ tags: ['routed'] });
    await fed.update(ADMIN, inC, { removeTags: ['routed'] });

    const made = await fed.create(ADMIN, { typeName: 'images', name: 'made', backend: 'b' });
    expect(made.backend).toBe('b');
    expect(await members[1].backend.getMany(ADMIN, [made.id])).toEqual([expect.objectContaining({ id: made.id })]);
    const byDefault = await fed.create(ADMIN, { typeName: 'images', name: 'made' });
    expect(byDefault.backend).toBe('a');
    await expectCode(fed.create(ADMIN, { typeName: 'images', name: 'made', backend: 'nope' }), 'BACKEND_UNKNOWN');

    // A link from one backend's artifact to another's resolves through the federation.
    const linked = await fed.addLink(ADMIN, made.id, 'base', byDefault.id);
    expect(linked.backend).toBe('b');
    expect(await fed.linksOf(ADMIN, [made.id, byDefault.id])).toEqual([[expect.objectContaining({ targetId: byDefault.id })], []]);

    await fed.delete(ADMIN, made.id);
    await fed.delete(ADMIN, byDefault.id);
    expect(await fed.getMany(ADMIN, [made.id, byDefault.id])).toEqual([null, null]);
    await expectCode(fed.delete(ADMIN, made.id), 'NOT_FOUND');
  });

  it('asks each image\'s backend for its locations, in input order, and routes location changes to it', async () => {
    const [inA, inB] = ['a', 'b'].map((name) => ids.find((id) => home.get(id) === name)!);
    // These members have no blob stores, hence no locations: shown as none, changes refused by the owner.
    const hidden = { locations: null, directUrl: null };
    expect(await fed.locationsOf(ADMIN, [inB, inA, inB])).toEqual([hidden, hidden, hidden]);
    await expectCode(fed.addImageLocation(ADMIN, inB, { url: 'https://example.com/x', metadata: {} }), 'FORBIDDEN');
    await expectCode(fed.replaceImageLocations(ADMIN, inA, [{ url: 'https://example.com/x', metadata: {} }]), 'FORBIDDEN');
    await expectCode(fed.removeImageLocation(ADMIN, inA, 0), 'FORBIDDEN');
    await expectCode(fed.removeImageLocation(ADMIN, randomUUID(), 0), 'NOT_FOUND');
  });
});
