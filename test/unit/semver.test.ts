import { canonicalVersion, compareVersions, encodeVersion, parseVersionRange } from '../../src/domain/semver';
import { VitrineError } from '../../src/domain/errors';

describe('semver coercion (as Glare stores versions)', () => {
  it.each([
    ['1', '1.0.0'],
    ['1.0', '1.0.0'],
    ['01.2.3', '1.2.3'],
    ['1.2.3.4', '1.2.3+4'],
    ['1.2-rc1', '1.2.0-rc1'],
    ['2.0.0-beta.01+build.5', '2.0.0-beta.1+build.5'],
  ])('%s → %s', (input, expected) => {
    expect(canonicalVersion(input)).toBe(expected);
  });

  it.each(['', 'abc', '1..2', '1.2.3-', '70000.0.0', '1.0.0-1234567', 'x'.repeat(256)])('rejects %j with VERSION_INVALID', (input) => {
    expect(() => canonicalVersion(input)).toThrow(VitrineError);
    try {
      canonicalVersion(input);
    } catch (e) {
      expect((e as VitrineError).code).toBe('VERSION_INVALID');
    }
  });

  it('orders releases above their prereleases and numeric identifiers numerically', () => {
    const expected = ['0.9.9', '1.0.0-0', '1.0.0-9', '1.0.0-00a', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-alpha-x', '1.0.0-rc.2', '1.0.0-rc.10', '1.0.0', '2.0.0', '10.0.0'];
    const shuffled = [...expected].reverse();
    expect([...shuffled].sort(compareVersions)).toEqual(expected);
    // Stores sort by (prefix, suffix) as plain numbers and bytes: that order must be the same.
    const byEncoding = [...shuffled].sort((a, b) => {
      const [x, y] = [encodeVersion(a), encodeVersion(b)];
      return x.prefix - y.prefix || (x.suffix < y.suffix ? -1 : x.suffix > y.suffix ? 1 : 0);
    });
    expect(byEncoding).toEqual(expected);
    const enc = ['1.0.0-rc.2', '1.0.0-rc.10', '1.0.0'].map((v) => encodeVersion(v));
    expect(enc[0].prefix).toBe(enc[1].prefix);
    expect(enc[0].suffix < enc[1].suffix).toBe(true);
    expect(enc[2].prefix).toBeGreaterThan(enc[1].prefix);
  });
});

describe('semver ranges', () => {
  const matches = (range: string, version: string) =>
    parseVersionRange(range).some((set) =>
      set.every(({ op, version: bound }) => {
        const c = compareVersions(version, bound);
        return { eq: c === 0, gt: c > 0, gte: c >= 0, lt: c < 0, lte: c <= 0 }[op];
      }),
    );

  it.each([
    ['^1.2.0', '1.9.9', true],
    ['^1.2.0', '2.0.0', false],
    ['^1.2.0', '1.1.0', false],
    ['^0.2.3', '0.2.9', true],
    ['^0.2.3', '0.3.0', false],
    ['~1.4', '1.4.7', true],
    ['~1.4', '1.5.0', false],
    ['>=1.0.0 <2.0.0', '1.5.0', true],
    ['>=1.0.0 <2.0.0', '2.0.0', false],
    ['1.x', '1.99.0', true],
    ['1.x', '2.0.0', false],
    ['1.2.3 - 1.4', '1.4.9', true],
    ['1.2.3 - 1.4', '1.5.0', false],
    ['<1.0.0 || >=3', '3.1.0', true],
    ['<1.0.0 || >=3', '2.0.0', false],
    ['1.2.3', '1.2.3', true],
    ['*', '0.0.1', true],
  ])('%s matches %s: %s', (range, version, expected) => {
    expect(matches(range, version)).toBe(expected);
  });

  it('rejects garbage with VERSION_INVALID', () => {
    expect(() => parseVersionRange('>>1')).toThrow(expect.objectContaining({ code: 'VERSION_INVALID' }));
    expect(() => parseVersionRange('')).toThrow(expect.objectContaining({ code: 'VERSION_INVALID' }));
  });
});
