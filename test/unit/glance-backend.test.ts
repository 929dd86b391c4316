import { CircuitBreaker } from '../../src/backends/glance/breaker';
import { glanceAnswerError, glanceMessage, transportFailure } from '../../src/backends/glance/errors';
import { glanceFilter, glanceSort, reverseGlanceSort, timeOperand } from '../../src/backends/glance/query';
import { imageView, locationsShown, storesOf } from '../../src/backends/glance/shapes';
import { TypeRegistry } from '../../src/domain/builtin-types';
import { resolveSort } from '../../src/domain/filters';

/**
 * The pure parts of the Glance backend: how filters and sorts become Glance query
 * parameters, how Glance's error bodies are read, and the breaker's state machine. The
 * behaviour against a real Glance is in test/integration/glance-backend.test.ts.
 */
const images = new TypeRegistry().get('images');
const params = (spec: Parameters<typeof glanceFilter>[1]) => glanceFilter(images, spec, 'legacy');

describe('filters as Glance query parameters', () => {
  it('pushes down every filter Glance can express', () => {
    const out = params({
      name: { in: ['a', 'b,c'] },
      status: { neq: 'queued' },
      visibility: { eq: 'shared' },
      owner: { eq: 'p1' },
      tags: { all: ['t1', 't2'] },
      properties: [{ key: 'os_distro', eq: 'cirros' }],
      fields: [
        { field: 'diskFormat', op: 'in', value: ['raw', 'qcow2'] },
        { field: 'size', op: 'gt', value: 10 },
        { field: 'size', op: 'lte', value: 99 },
        { field: 'min_disk', op: 'eq', value: 3 },
        { field: 'os_hidden', op: 'eq', value: true },
        { field: 'protected', op: 'neq', value: true },
        { field: 'checksum', op: 'eq', value: 'abc' },
      ],
      createdAt: { gte: '2026-01-01T00:00:00.500Z' },
      memberStatus: 'all',
    });
    expect(out.nothing).toBe(false);
    expect(out.params).toEqual([
      ['status', 'in:saving,uploading,importing,active,deactivated,pending_delete'],
      ['visibility', 'shared'],
      ['name', 'in:"a","b,c"'],
      ['disk_format', 'in:"raw","qcow2"'],
      ['size_min', '11'],
      ['size_max', '99'],
      ['min_disk', '3'],
      ['created_at', 'gte:2026-01-01T00:00:01Z'],
      ['owner', 'p1'],
      ['os_distro', 'cirros'],
      ['os_hidden', 'true'],
      ['protected', 'false'],
      ['checksum', 'abc'],
      ['member_status', 'all'],
      ['tag', 't1'],
      ['tag', 't2'],
    ]);
  });

  it('reads the facade\'s shape (and/not over statuses) and intersects repeated constraints', () => {
    const out = params({ and: [{ not: { status: { in: ['killed', 'deleted'] } } }, { status: { in: ['active', 'queued'] } }, { status: { eq: 'active' } }], fields: [{ field: 'os_hidden', op: 'eq', value: false }] });
    expect(out.params).toEqual([['status', 'in:active'], ['os_hidden', 'false']]);
    expect(params({ not: { status: { in: ['killed', 'deleted'] } } }).params).toEqual([]);
    expect(params({ visibility: { in: ['public', 'community', 'shared', 'private'] } }).params).toEqual([['visibility', 'all']]);
  });

  it('knows when a filter matches nothing, without asking Glance', () => {
    expect(params({ ids: [] }).nothing).toBe(true);
    expect(params({ status: { eq: 'killed' } }).nothing).toBe(true);
    expect(params({ owner: { eq: 'a' }, and: [{ owner: { eq: 'b' } }] }).nothing).toBe(true);
    expect(params({ fields: [{ field: 'size', op: 'gt', value: 10 }, { field: 'size', op: 'lt', value: 5 }] }).nothing).toBe(true);
    expect(params({ name: { eq: 'a' }, and: [{ name: { eq: 'b' } }] }).nothing).toBe(true);
  });

  it.each([
    ['name like', { name: { like: 'a%' } }],
    ['owner neq', { owner: { neq: 'x' } }],
    ['tags.any with two tags', { tags: { any: ['a', 'b'] } }],
    ['or', { or: [{ name: { eq: 'a' } }, { name: { eq: 'b' } }] }],
    ['not over names', { not: { name: { eq: 'a' } } }],
    ['property exists', { properties: [{ key: 'os_distro', exists: true }] }],
    ['a property named like a Glance parameter', { properties: [{ key: 'limit', eq: '1' }] }],
    ['version', { version: { eq: '1.0.0' } }],
    ['a time range', { createdAt: { gt: '2026-01-01T00:00:00Z', lt: '2026-02-01T00:00:00Z' } }],
    ['two visibilities', { visibility: { in: ['public', 'private'] } }],
    ['stores', { fields: [{ field: 'stores', op: 'eq', value: 'fast' }] }],
    ['a double quote in an in: list', { name: { in: ['a"b', 'c'] } }],
  ] as const)('refuses %s with FILTER_INVALID naming the backend', (_, spec) => {
    expect(() => params(spec as Parameters<typeof glanceFilter>[1])).toThrow(expect.objectContaining({ code: 'FILTER_INVALID', message: expect.stringContaining('legacy') }));
  });

  it('compares times the way Glance shows them (whole seconds)', () => {
    const t = Date.parse('2026-01-01T00:00:10.250Z');
    const whole = Date.parse('2026-01-01T00:00:10.000Z');
    expect(timeOperand('gt', t)).toEqual({ op: 'gte', at: whole + 1000 });
    expect(timeOperand('gte', t)).toEqual({ op: 'gte', at: whole + 1000 });
    expect(timeOperand('lt', t)).toEqual({ op: 'lt', at: whole + 1000 });
    expect(timeOperand('lte', t)).toEqual({ op: 'lt', at: whole + 1000 });
    expect(timeOperand('gt', whole)).toEqual({ op: 'gte', at: whole + 1000 });
    expect(timeOperand('gte', whole)).toEqual({ op: 'gte', at: whole });
    expect(timeOperand('lt', whole)).toEqual({ op: 'lt', at: whole });
    expect(timeOperand('lte', whole)).toEqual({ op: 'lt', at: whole + 1000 });
  });
});

describe('sorts as Glance sort parameters', () => {
  const sort = (keys: { key: string; direction: 'asc' | 'desc' }[] | undefined) => glanceSort(resolveSort(images, keys), 'legacy');

  it('makes the order total with created_at and id in the last key\'s direction', () => {
    expect(sort(undefined)).toBe('created_at:desc,id:desc');
    expect(sort([{ key: 'name', direction: 'asc' }])).toBe('name:asc,created_at:asc,id:asc');
    expect(sort([{ key: 'diskFormat', direction: 'desc' }, { key: 'size', direction: 'asc' }])).toBe('disk_format:desc,size:asc,created_at:asc,id:asc');
    expect(sort([{ key: 'typeName', direction: 'asc' }, { key: 'updatedAt', direction: 'desc' }])).toBe('updated_at:desc,created_at:desc,id:desc');
    expect(reverseGlanceSort('name:asc,created_at:asc,id:asc')).toBe('name:desc,created_at:desc,id:desc');
  });

  it.each(['owner', 'visibility', 'min_disk', 'activatedAt'])('refuses %s with SORT_INVALID', (key) => {
    expect(() => sort([{ key, direction: 'asc' }])).toThrow(expect.objectContaining({ code: 'SORT_INVALID', message: expect.stringContaining('legacy') }));
  });
});

describe('Glance error bodies', () => {
  it('takes the message out of webob\'s JSON, HTML and text bodies', () => {
    expect(glanceMessage('{"message": "There was a conflict when trying to complete your request.<br /><br />\\nProperty nope does not exist.\\n\\n", "code": "409 Conflict", "title": "Conflict"}', 'application/json'))
      .toBe('There was a conflict when trying to complete your request. Property nope does not exist.');
    expect(glanceMessage('<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID &#x27;x&#x27;<br /><br />\n\n\n\n </body>\n</html>', 'text/html; charset=UTF-8'))
      .toBe("No image found with ID 'x'");
    expect(glanceMessage('400 Bad Request\n\nlimit param must be positive\n\n\n', 'text/plain')).toBe('limit param must be positive');
    expect(glanceMessage('{"message": "Provided object does not match schema \'image\': \'floppy\' is not one of [None, \'raw\']\\n\\nFailed validating \'enum\' in schema[\'properties\']:\\n    {\'enum\': [None]}<br /><br />\\n\\n\\n"}', 'application/json'))
      .toBe("Provided object does not match schema 'image': 'floppy' is not one of [None, 'raw']");
    expect(glanceMessage('not json', 'application/json')).toBe('');
    expect(glanceMessage('x'.repeat(2000), 'text/plain').length).toBeLessThanOrEqual(500);
  });

  it('maps statuses and telling messages to registry codes', () => {
    expect(glanceAnswerError('legacy', 403, 'Image 1 is protected and cannot be deleted.')).toMatchObject({ code: 'PROTECTED', details: { backend: 'legacy', status: 403 } });
    expect(glanceAnswerError('legacy', 403, "Not allowed to deactivate image in status 'queued'").code).toBe('TRANSITION_FORBIDDEN');
    expect(glanceAnswerError('legacy', 403, 'You are not authorized').code).toBe('FORBIDDEN');
    expect(glanceAnswerError('legacy', 409, 'Member b is duplicated for image 1').code).toBe('MEMBER_EXISTS');
    expect(glanceAnswerError('legacy', 409, 'Image status transition from active to saving is not allowed').code).toBe('TRANSITION_FORBIDDEN');
    expect(glanceAnswerError('legacy', 413, 'The limit has been exceeded on the number of allowed image tags.').code).toBe('QUOTA_EXCEEDED');
    expect(glanceAnswerError('legacy', 415, 'x').code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(glanceAnswerError('legacy', 400, 'bad', { 400: 'FILTER_INVALID' }).code).toBe('FILTER_INVALID');
    expect(glanceAnswerError('legacy', 500, 'boom')).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { backend: 'legacy' } });
    expect(glanceAnswerError('legacy', 302, '').code).toBe('UPSTREAM_REJECTED');
  });

  it('maps transport failures, including wrapped ones, and leaves other errors alone', () => {
    expect(transportFailure('legacy', Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toMatchObject({ retryable: true, error: { code: 'UPSTREAM_UNAVAILABLE', details: { backend: 'legacy', reason: 'ECONNREFUSED' } } });
    expect(transportFailure('legacy', new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]))?.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(transportFailure('legacy', Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))).toMatchObject({ retryable: false, error: { code: 'UPSTREAM_TIMEOUT' } });
    expect(transportFailure('legacy', new Error('mine'))).toBeNull();
  });
});

describe('circuit breaker', () => {
  it('opens after N consecutive failures, half-opens after resetMs for one trial, and closes on its success', () => {
    let now = 0;
    const breaker = new CircuitBreaker('legacy', { failures: 2, resetMs: 100 }, () => now);
    breaker.admit();
    breaker.failure();
    breaker.admit();
    breaker.success();
    breaker.admit();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.admit();
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(() => breaker.admit()).toThrow(expect.objectContaining({ code: 'UPSTREAM_UNAVAILABLE', details: expect.objectContaining({ backend: 'legacy', breaker: 'open' }) }));
    now = 100;
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.admit()).toBe(true);
    expect(() => breaker.admit()).toThrow(expect.objectContaining({ code: 'UPSTREAM_UNAVAILABLE' }));
    breaker.failure();
    expect(breaker.state).toBe('open');
    now = 200;
    expect(breaker.admit()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
  });
});

describe('Glance image JSON: locations beside the view', () => {
  const base = { id: '8a5b1a3e-7e2f-4c55-9a57-0f6c1d8f0b11', status: 'active', visibility: 'private', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:01Z' };

  it('keeps what Glance showed out of the record (no properties, nothing to serialize) and gives it to locationsShown', () => {
    const view = imageView('legacy', { ...base, locations: [{ url: 'http://h/a', metadata: { store: 'web' } }, { url: 'rbd://p/i', metadata: null }], direct_url: 'http://h/a' });
    expect(view.properties).toEqual({});
    expect(JSON.stringify(view)).not.toContain('http://h/a');
    expect(locationsShown(view)).toEqual({ locations: [{ url: 'http://h/a', metadata: { store: 'web' } }, { url: 'rbd://p/i', metadata: {} }], directUrl: 'http://h/a' });
  });

  it('answers null for keys Glance left out, and refuses locations that are not a list of URLs', () => {
    expect(locationsShown(imageView('legacy', base))).toEqual({ locations: null, directUrl: null });
    expect(locationsShown(imageView('legacy', { ...base, locations: [] }))).toEqual({ locations: [], directUrl: null });
    expect(() => imageView('legacy', { ...base, locations: 'x' })).toThrow(expect.objectContaining({ code: 'UPSTREAM_REJECTED' }));
    expect(() => imageView('legacy', { ...base, locations: [{ metadata: {} }] })).toThrow(expect.objectContaining({ code: 'UPSTREAM_REJECTED' }));
  });

  it('reads Glance\'s "read-only" store flag (its http store)', () => {
    const stores = storesOf('legacy', { stores: [{ id: 'fast', default: 'true' }, { id: 'web', 'read-only': 'true' }] });
    expect(stores.map((s) => [s.id, s.isDefault, s.readOnly])).toEqual([['fast', true, false], ['web', false, true]]);
  });
});
