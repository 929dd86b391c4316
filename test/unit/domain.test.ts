import type { ArtifactRecord } from '../../src/domain/artifact';
import { TypeRegistry } from '../../src/domain/builtin-types';
import { VitrineError } from '../../src/domain/errors';
import { accessCondition, compileFilter, resolveSort } from '../../src/domain/filters';
import { nextStatus } from '../../src/domain/lifecycle';
import { decodeCursor, encodeCursor, planPage } from '../../src/domain/paging';
import { canRead, POLICY_DEFAULTS, requireDelete, requireVisibilityChange, type Principal } from '../../src/domain/policy';
import { applyChange, initialFields, normalizeTags } from '../../src/domain/rules';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof VitrineError ? e.code : `not a VitrineError: ${String(e)}`;
  }
  return undefined;
};

const types = new TypeRegistry([{ name: 'charts', fields: { chart_version: { kind: 'string', sortable: true }, replicas: { kind: 'integer', mutable: true, minimum: 1 }, labels: { kind: 'string', container: 'dict', mutable: true } } }]);
const charts = types.get('charts');
const images = types.get('images');

function record(over: Partial<ArtifactRecord> = {}): ArtifactRecord {
  return {
    id: '11111111-1111-4111-8111-111111111111', typeName: 'charts', name: 'c', version: '1.0.0', status: 'drafted', visibility: 'private',
    owner: 'p1', tags: [], properties: {}, fields: initialFields(charts), createdAt: 't', updatedAt: 't', activatedAt: null, revision: 1, ...over,
  };
}

describe('type declarations', () => {
  it.each([
    [[{ name: 'Bad-Name' }], /type name "Bad-Name" must match/],
    [[{ name: 'x', fields: { name: { kind: 'string' } } }], /field name is a base field/],
    [[{ name: 'x', fields: { tags2: { kind: 'string', container: 'list', sortable: true } } }], /only scalar fields can be sortable/],
    [[{ name: 'x', fields: { n: { kind: 'integer', filterOps: ['like'] } } }], /filter operators like are not allowed for integer/],
    [[{ name: 'x', fields: { n: { kind: 'integer', default: 'ten' } } }], /expects an integer/],
    [[{ name: 'images' }], /defined twice/],
    [[{ name: 'x', graphqlName: 'Image' }], /reserved/],
    [[{ name: 'heat_template' }], /GraphQL name HeatTemplate/],
    [[{ name: 'x', fields: { foo_1: { kind: 'string' }, foo1: { kind: 'string' } } }], /field foo1 would be the GraphQL field foo1, as is field foo_1/],
  ])('refuses %j with CONFIG_INVALID naming the problem', (specs, message) => {
    expect(() => new TypeRegistry(specs as never)).toThrow(message);
    expect(codeOf(() => new TypeRegistry(specs as never))).toBe('CONFIG_INVALID');
  });

  it('derives GraphQL names and Glare defaults', () => {
    expect(charts.graphqlName).toBe('Chart');
    expect(charts.uniqueVersions).toBe(true);
    const f = charts.fields.find((x) => x.name === 'chart_version')!;
    expect(f).toMatchObject({ mutable: false, requiredOnActivate: true, maxLength: 255, filterOps: ['eq', 'neq', 'in'] });
  });
});

describe('changes', () => {
  it('freezes immutable fields of active Glare artifacts but not mutable ones', () => {
    const active = record({ status: 'active' });
    expect(codeOf(() => applyChange(charts, active, { fields: { chart_version: '2' } }))).toBe('FIELD_IMMUTABLE');
    expect(applyChange(charts, active, { fields: { replicas: 3 } }).fields.replicas).toBe(3);
    expect(codeOf(() => applyChange(charts, record({ status: 'deactivated' }), { addTags: ['x'] }))).toBe('FIELD_IMMUTABLE');
  });

  it('returns the same record when nothing changes, so no event is emitted', () => {
    const r = record({ tags: ['a'] });
    expect(applyChange(charts, r, { addTags: ['a'], fields: { replicas: null } })).toBe(r);
  });

  it('keeps image formats editable only while queued or importing', () => {
    const img = { ...record({ typeName: 'images', status: 'active' }), fields: initialFields(images) };
    expect(codeOf(() => applyChange(images, img, { fields: { disk_format: 'raw' } }))).toBe('FIELD_IMMUTABLE');
    expect(applyChange(images, { ...img, status: 'queued' }, { fields: { diskFormat: 'raw' } }).fields.disk_format).toBe('raw');
    expect(applyChange(images, img, { name: 'renamed' }).name).toBe('renamed');
  });

  it('treats tags as a set and refuses bad ones', () => {
    expect(normalizeTags(['b', 'a', 'b'])).toEqual(['b', 'a']);
    expect(codeOf(() => normalizeTags(['a,b']))).toBe('FIELD_INVALID');
    expect(codeOf(() => normalizeTags(Array.from({ length: 129 }, (_, i) => `t${i}`)))).toBe('QUOTA_EXCEEDED');
  });
});

describe('lifecycle table', () => {
  it('allows only listed transitions', () => {
    expect(nextStatus('artifact', 'activate', 'drafted')).toBe('active');
    expect(nextStatus('image', 'upload_failed', 'saving')).toBe('queued');
    expect(codeOf(() => nextStatus('artifact', 'activate', 'deactivated'))).toBe('TRANSITION_FORBIDDEN');
    expect(codeOf(() => nextStatus('image', 'activate', 'queued'))).toBe('TRANSITION_FORBIDDEN');
    expect(codeOf(() => nextStatus('image', 'upload_start', 'active'))).toBe('TRANSITION_FORBIDDEN');
  });
});

describe('policy', () => {
  const a: Principal = { projectId: 'p1', userId: 'u', roles: ['member', 'reader'] };
  const b: Principal = { projectId: 'p2', userId: 'v', roles: ['member', 'reader'] };
  const admin: Principal = { projectId: 'x', userId: 'w', roles: ['admin'] };
  it('reads by visibility and membership', () => {
    expect(canRead(b, { owner: 'p1', visibility: 'private' })).toBe(false);
    expect(canRead(b, { owner: 'p1', visibility: 'shared' })).toBe(false);
    expect(canRead(b, { owner: 'p1', visibility: 'shared' }, [{ artifactId: 'i', member: 'p2', status: 'pending', createdAt: '', updatedAt: '' }])).toBe(true);
    expect(canRead(b, { owner: 'p1', visibility: 'community' })).toBe(true);
    expect(canRead(admin, { owner: 'p1', visibility: 'private' })).toBe(true);
  });
  it('guards publishing and deleting', () => {
    expect(codeOf(() => requireVisibilityChange(a, 'image', { owner: 'p1', visibility: 'shared', status: 'active' }, 'public', POLICY_DEFAULTS))).toBe('FORBIDDEN');
    expect(codeOf(() => requireVisibilityChange(admin, 'artifact', { owner: 'p1', visibility: 'private', status: 'drafted' }, 'public', POLICY_DEFAULTS))).toBe('FORBIDDEN');
    expect(codeOf(() => requireVisibilityChange(a, 'image', { owner: 'p1', visibility: 'shared', status: 'queued' }, 'community', POLICY_DEFAULTS))).toBeUndefined();
    expect(codeOf(() => requireDelete(a, 'image', { owner: 'p1', visibility: 'private', status: 'active', protected: true }, POLICY_DEFAULTS))).toBe('PROTECTED');
    expect(codeOf(() => requireDelete(b, 'image', { owner: 'p1', visibility: 'public', status: 'active', protected: false }, POLICY_DEFAULTS))).toBe('FORBIDDEN');
  });
  it('lists community artifacts of others only when asked for, and admins see everything', () => {
    expect(JSON.stringify(accessCondition(a, {}))).not.toContain('community');
    expect(JSON.stringify(accessCondition(a, { visibility: { eq: 'community' } }))).toContain('community');
    expect(accessCondition(admin, {})).toEqual({ op: 'true' });
  });
});

describe('filters, sorting and cursors', () => {
  it('enforces declared operators and value types', () => {
    expect(codeOf(() => compileFilter(charts, { fields: [{ field: 'chart_version', op: 'gt', value: '1' }] }))).toBe('FILTER_INVALID');
    expect(codeOf(() => compileFilter(charts, { fields: [{ field: 'replicas', op: 'gt', value: '1' }] }))).toBe('FILTER_INVALID');
    expect(codeOf(() => compileFilter(undefined, { fields: [{ field: 'replicas', op: 'eq', value: 1 }] }))).toBe('FILTER_INVALID');
    expect(codeOf(() => compileFilter(charts, { ids: ['x'] }))).toBe('INVALID_ID');
    expect(codeOf(() => compileFilter(charts, { createdAt: { gt: 'yesterday' } }))).toBe('FILTER_INVALID');
    expect(compileFilter(charts, { fields: [{ field: 'replicas', op: 'gte', value: 2 }] })).toEqual({ op: 'gte', target: { kind: 'field', name: 'replicas', valueType: 'number' }, value: 2 });
  });

  it('resolves sort keys by base or sortable field name', () => {
    expect(resolveSort(charts, [{ key: 'chartVersion', direction: 'asc' }])[0].target).toEqual({ kind: 'field', name: 'chart_version', valueType: 'string' });
    expect(codeOf(() => resolveSort(charts, [{ key: 'replicas', direction: 'asc' }]))).toBe('SORT_INVALID');
  });

  it('binds cursors to their sort and refuses forged ones', () => {
    const sort = resolveSort(charts, [{ key: 'name', direction: 'asc' }]);
    const cursor = encodeCursor(sort, { values: ['a'], id: 'i' });
    expect(decodeCursor(sort, cursor)).toEqual({ values: ['a'], id: 'i' });
    expect(codeOf(() => decodeCursor(resolveSort(charts, [{ key: 'name', direction: 'desc' }]), cursor))).toBe('CURSOR_INVALID');
    expect(codeOf(() => decodeCursor(sort, Buffer.from('{"s":1}').toString('base64url')))).toBe('CURSOR_INVALID');
    expect(codeOf(() => planPage(sort, { first: 1, last: 1 }, { defaultPageSize: 25, maxPageSize: 100 }))).toBe('PAGE_SIZE_INVALID');
  });
});
