import { checkValidationData } from '../../src/backends/native/locations';
import { loadConfig } from '../../src/config/load';
import { VitrineError, type ErrorCode } from '../../src/domain/errors';
import { allows, POLICY_DEFAULTS, policiesOf, requirePolicy, type Principal } from '../../src/domain/policy';

/** The overridable policy rules (src/domain/policy.ts), their configuration, and Glance's validation_data rules. */
const admin: Principal = { projectId: 'ops', userId: 'root', roles: ['admin'] };
const member: Principal = { projectId: 'p', userId: 'm', roles: ['member', 'reader'] };
const reader: Principal = { projectId: 'p', userId: 'r', roles: ['reader'] };
const stranger: Principal = { projectId: 'q', userId: 's', roles: ['member', 'reader'] };
const image = { owner: 'p' };

function codeOf(run: () => unknown): ErrorCode | null {
  try {
    run();
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(VitrineError);
    return (err as VitrineError).code;
  }
}

function problems(overrides: Record<string, unknown>): string[] {
  try {
    loadConfig({ env: {}, overrides });
  } catch (err) {
    expect((err as VitrineError).code).toBe('CONFIG_INVALID');
    return (err as Error).message.split('\n').slice(1).map((l) => l.replace(/^ {2}- /, ''));
  }
  return [];
}

describe('policy rules', () => {
  it('admin: admins only; member: admins and the owner\'s members; reader: admins and anyone of the owner', () => {
    const table = [admin, member, reader, stranger].map((p) => (['admin', 'member', 'reader'] as const).map((rule) => allows(rule, p, image.owner)));
    expect(table).toEqual([
      [true, true, true],
      [false, true, true],
      [false, false, true],
      [false, false, false],
    ]);
  });

  it('defaults to Glance 25.1 (enforce_new_defaults off) and applies overrides rule by rule', () => {
    expect(policiesOf()).toEqual({
      getImageLocation: 'reader', setImageLocation: 'member', deleteImageLocation: 'member', publicizeImage: 'admin', deleteImage: 'member', manageMembers: 'member',
      importGlanceDirect: 'member', importWebDownload: 'member', importGlanceDownload: 'member', copyImage: 'admin',
    });
    const strict = policiesOf({ deleteImageLocation: 'admin' });
    expect(strict).toEqual({ ...POLICY_DEFAULTS, deleteImageLocation: 'admin' });
    expect(Object.isFrozen(strict)).toBe(true);
    expect(codeOf(() => requirePolicy(strict, 'deleteImageLocation', member, image, 'delete image locations'))).toBe('FORBIDDEN');
    expect(codeOf(() => requirePolicy(strict, 'setImageLocation', member, image, 'add image locations'))).toBeNull();
    expect(codeOf(() => requirePolicy(strict, 'deleteImageLocation', admin, image, 'delete image locations'))).toBeNull();
    expect(() => requirePolicy(strict, 'deleteImageLocation', member, image, 'delete image locations')).toThrow('only an admin may delete image locations (policy deleteImageLocation)');
  });

  it('reads images.* and policy.* from configuration, defaults off and Glance\'s, naming bad keys and values', () => {
    const config = loadConfig({ env: {} });
    expect(config.images).toEqual({ showLocations: false, showDirectUrl: false, maxLocations: 10, listCache: { entries: 256, maxBytes: 32 * 1024 ** 2 } });
    expect(config.policy).toEqual(POLICY_DEFAULTS);
    const set = loadConfig({ env: {}, overrides: { images: { showLocations: true }, policy: { setImageLocation: 'admin' } } });
    expect(set.images).toEqual({ showLocations: true, showDirectUrl: false, maxLocations: 10, listCache: { entries: 256, maxBytes: 32 * 1024 ** 2 } });
    expect(set.policy).toEqual({ ...POLICY_DEFAULTS, setImageLocation: 'admin' });
    expect(problems({ policy: { setImageLocation: 'owner', publicize: 'admin' }, images: { showLocations: 'yes' } })).toEqual([
      expect.stringMatching(/^images\.showLocations: expected true or false/),
      'policy.setImageLocation: expected one of admin, member, reader, got "owner" (from overrides)',
      'policy.publicize: unknown key; expected one of: getImageLocation, setImageLocation, deleteImageLocation, publicizeImage, deleteImage, manageMembers, importGlanceDirect, importWebDownload, importGlanceDownload, copyImage, got "admin" (from overrides)',
    ]);
  });
});

describe('validation_data (Glance _validate_validation_data)', () => {
  const queued = { status: 'queued' as const, fields: { checksum: null, os_hash_algo: null, os_hash_value: null } };
  const data = { checksum: 'a'.repeat(32), os_hash_algo: 'sha512', os_hash_value: 'b'.repeat(128) };

  it('fills in what a queued image lacks, and nothing when the values are already there', () => {
    expect(checkValidationData(queued, [data])).toEqual(data);
    expect(checkValidationData(queued, [])).toEqual({});
    const active = { status: 'active' as const, fields: { ...data } };
    expect(checkValidationData(active, [data, data])).toEqual({});
  });

  it('refuses with LOCATION_CONFLICT: disagreeing entries, other values than the image has, new values on a non-queued image, bad digests', () => {
    const active = { status: 'active' as const, fields: { ...data } };
    expect(codeOf(() => checkValidationData(queued, [data, { ...data, checksum: 'c'.repeat(32) }]))).toBe('LOCATION_CONFLICT');
    expect(codeOf(() => checkValidationData(active, [{ ...data, os_hash_algo: 'sha256' }]))).toBe('LOCATION_CONFLICT');
    expect(codeOf(() => checkValidationData({ status: 'active', fields: { checksum: null, os_hash_algo: null, os_hash_value: null } }, [data]))).toBe('LOCATION_CONFLICT');
    expect(codeOf(() => checkValidationData(queued, [{ ...data, checksum: 'zz'.repeat(16) }]))).toBe('LOCATION_CONFLICT');
    expect(codeOf(() => checkValidationData(queued, [{ os_hash_algo: 'sha256', os_hash_value: 'b'.repeat(64) }]))).toBe('LOCATION_CONFLICT');
    expect(codeOf(() => checkValidationData(queued, [{ os_hash_algo: 'sha512', os_hash_value: 'b'.repeat(127) }]))).toBe('LOCATION_CONFLICT');
  });
});
