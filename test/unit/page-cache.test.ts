import type { FastifyRequest } from 'fastify';
import { PageCache, wantsFresh } from '../../src/http/page-cache';

describe('PageCache', () => {
  const alice = { projectId: 'p1', userId: 'alice', roles: ['reader', 'member'] as const };

  test('a page is served only under the mark it was rendered at', () => {
    const cache = new PageCache({ entries: 4, bytes: 1000 });
    cache.set('k', 'native:1', 'page-1');
    expect(cache.get('k', 'native:1')).toBe('page-1');
    expect(cache.get('k', 'native:2')).toBeUndefined();
    // A stale page is dropped on sight.
    expect(cache.size).toBe(0);
    expect(cache.get('k', 'native:1')).toBeUndefined();
  });

  test('least recently used pages go first, by count and by bytes', () => {
    const cache = new PageCache({ entries: 2, bytes: 100 });
    cache.set('a', 'm', 'x'.repeat(10));
    cache.set('b', 'm', 'x'.repeat(10));
    expect(cache.get('a', 'm')).toBeDefined();
    cache.set('c', 'm', 'x'.repeat(10));
    expect([cache.get('a', 'm') !== undefined, cache.get('b', 'm') !== undefined, cache.get('c', 'm') !== undefined]).toEqual([true, false, true]);

    const bytes = new PageCache({ entries: 10, bytes: 100 });
    bytes.set('a', 'm', 'x'.repeat(25));
    bytes.set('b', 'm', 'x'.repeat(25));
    bytes.set('c', 'm', 'x'.repeat(25));
    bytes.set('d', 'm', 'x'.repeat(25));
    bytes.set('e', 'm', 'x'.repeat(25));
    expect(bytes.size).toBe(4);
    expect(bytes.get('a', 'm')).toBeUndefined();
    // Larger than a quarter of the budget: not kept at all.
    bytes.set('big', 'm', 'x'.repeat(26));
    expect(bytes.get('big', 'm')).toBeUndefined();
    expect(bytes.size).toBe(4);
  });

  test('replacing a page keeps the byte count right', () => {
    const cache = new PageCache({ entries: 10, bytes: 100 });
    for (let i = 0; i < 20; i++) cache.set('same', `m${i}`, 'x'.repeat(25));
    cache.set('other', 'm', 'x'.repeat(25));
    cache.set('third', 'm', 'x'.repeat(25));
    expect(cache.size).toBe(3);
  });

  test('pages of other kinds count the size their sizeOf gives', () => {
    const cache = new PageCache<{ body: string; type: string }>({ entries: 10, bytes: 100 }, (p) => p.body.length + p.type.length);
    cache.set('a', 'm', { body: 'x'.repeat(20), type: 'json' });
    expect(cache.get('a', 'm')).toEqual({ body: 'x'.repeat(20), type: 'json' });
    // 22 + 4 bytes: over a quarter of the budget, not kept.
    cache.set('b', 'm', { body: 'x'.repeat(22), type: 'json' });
    expect(cache.get('b', 'm')).toBeUndefined();
    for (const key of ['c', 'd', 'e', 'f']) cache.set(key, 'm', { body: 'x'.repeat(20), type: 'json' });
    // 5 pages of 24 bytes exceed 100: the least recently used one went.
    expect(cache.size).toBe(4);
    expect(cache.get('a', 'm')).toBeUndefined();
  });

  test('off when either limit is 0', () => {
    for (const limits of [{ entries: 0, bytes: 100 }, { entries: 10, bytes: 0 }]) {
      const cache = new PageCache(limits);
      expect(cache.enabled).toBe(false);
      cache.set('k', 'm', 'page');
      expect(cache.get('k', 'm')).toBeUndefined();
    }
  });

  test('keys: project, roles in any order, and the exact query', () => {
    expect(PageCache.key(alice, 'limit=5')).toBe(PageCache.key({ ...alice, userId: 'bob', roles: ['member', 'reader'] }, 'limit=5'));
    expect(PageCache.key(alice, 'limit=5')).not.toBe(PageCache.key({ ...alice, roles: ['reader'] }, 'limit=5'));
    expect(PageCache.key(alice, 'limit=5')).not.toBe(PageCache.key({ ...alice, projectId: 'p2' }, 'limit=5'));
    expect(PageCache.key(alice, 'limit=5')).not.toBe(PageCache.key(alice, 'limit=5&'));
  });

  test('wantsFresh reads Cache-Control and Pragma', () => {
    const req = (headers: Record<string, string>) => ({ headers }) as unknown as FastifyRequest;
    expect(wantsFresh(req({}))).toBe(false);
    expect(wantsFresh(req({ 'cache-control': 'no-cache' }))).toBe(true);
    expect(wantsFresh(req({ 'cache-control': 'max-stale=5, No-Store' }))).toBe(true);
    expect(wantsFresh(req({ 'cache-control': 'max-age=0' }))).toBe(true);
    expect(wantsFresh(req({ 'cache-control': 'max-age=60' }))).toBe(false);
    expect(wantsFresh(req({ pragma: 'no-cache' }))).toBe(true);
  });
});
