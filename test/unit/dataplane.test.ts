import { decideRange } from '../../src/http/dataplane/range';
import { evaluatePreconditions, rangeApplies } from '../../src/http/dataplane/conditional';
import { UrlSigner } from '../../src/http/dataplane/signing';
import { disallowedReason, parseExternalUrl } from '../../src/domain/urls';
import { virtualSizeOf } from '../../src/backends/native/virtual-size';
import { VitrineError } from '../../src/domain/errors';

/** The data plane's pure parts: ranges, preconditions, signatures, the SSRF address check, qcow2 sniffing. */

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof VitrineError ? err.code : `not a VitrineError: ${String(err)}`;
  }
  return undefined;
};

describe('decideRange', () => {
  it.each([
    [undefined, 100, { kind: 'full' }],
    ['bytes=0-0', 100, { kind: 'partial', start: 0, end: 0 }],
    ['bytes=5-', 100, { kind: 'partial', start: 5, end: 99 }],
    ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-1000', 100, { kind: 'partial', start: 0, end: 99 }],
    ['bytes=90-1000', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes = 1 - 2', 100, { kind: 'partial', start: 1, end: 2 }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=-5', 0, { kind: 'unsatisfiable' }],
    ['bytes=0-1,3-4', 100, { kind: 'full' }],
    ['bytes=5-1', 100, { kind: 'full' }],
    ['bytes=-', 100, { kind: 'full' }],
    ['lines=1-2', 100, { kind: 'full' }],
  ])('%s of %i bytes → %o', (header, size, expected) => {
    expect(decideRange(header, size)).toEqual(expected);
  });
});

describe('preconditions', () => {
  const v = { etag: '"abc"', lastModified: new Date('2024-05-01T10:00:00.750Z') };
  const at = 'Wed, 01 May 2024 10:00:00 GMT';
  it.each([
    [{}, 'proceed'],
    [{ 'if-match': '"abc"' }, 'proceed'],
    [{ 'if-match': '*' }, 'proceed'],
    [{ 'if-match': 'W/"abc"' }, 'failed'],
    [{ 'if-match': '"x", "y"' }, 'failed'],
    [{ 'if-unmodified-since': at }, 'proceed'],
    [{ 'if-unmodified-since': 'Wed, 01 May 2024 09:59:59 GMT' }, 'failed'],
    [{ 'if-match': '"abc"', 'if-unmodified-since': 'Wed, 01 May 2020 00:00:00 GMT' }, 'proceed'],
    [{ 'if-none-match': '"abc"' }, 'not-modified'],
    [{ 'if-none-match': 'W/"abc"' }, 'not-modified'],
    [{ 'if-none-match': '*' }, 'not-modified'],
    [{ 'if-none-match': '"x"', 'if-modified-since': at }, 'proceed'],
    [{ 'if-modified-since': at }, 'not-modified'],
    [{ 'if-modified-since': 'Wed, 01 May 2024 09:59:59 GMT' }, 'proceed'],
    [{ 'if-modified-since': 'garbage' }, 'proceed'],
  ])('%o → %s', (headers, expected) => {
    expect(evaluatePreconditions(headers, v)).toBe(expected);
  });

  it('applies a Range only while If-Range names the current representation', () => {
    expect(rangeApplies({}, v)).toBe(true);
    expect(rangeApplies({ 'if-range': '"abc"' }, v)).toBe(true);
    expect(rangeApplies({ 'if-range': '"old"' }, v)).toBe(false);
    expect(rangeApplies({ 'if-range': 'W/"abc"' }, v)).toBe(false);
    expect(rangeApplies({ 'if-range': at }, v)).toBe(true);
    expect(rangeApplies({ 'if-range': 'Wed, 01 May 2024 09:00:00 GMT' }, v)).toBe(false);
  });
});

describe('UrlSigner', () => {
  const key = Buffer.from('k'.repeat(32));
  const alice = { projectId: 'p', userId: 'alice', roles: ['member'] as const };
  const blob = { method: 'PUT' as const, artifactId: '5f0c8a7e-51a5-4a53-8d5e-0a4b3c2d1e0f', field: 'files', key: 'a/b c.txt' };
  const query = (url: string) => Object.fromEntries(new URL(url, 'http://x').searchParams);

  it('round-trips the principal, and binds method, blob, expiry and principal', () => {
    const now = 1_700_000_000_000;
    const signer = new UrlSigner(key, '/v1/artifacts', () => now);
    const signed = signer.sign(blob, alice, 60);
    expect(signed.url.startsWith('/v1/artifacts/5f0c8a7e-51a5-4a53-8d5e-0a4b3c2d1e0f/blobs/files/a/b%20c.txt?')).toBe(true);
    expect(signed.expiresAt).toBe(new Date(now + 60_000).toISOString());
    const q = query(signed.url);
    expect(signer.verify(blob, q)).toEqual(alice);
    expect(codeOf(() => signer.verify({ ...blob, method: 'GET' }, q))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify({ ...blob, key: 'a/b' }, q))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify({ ...blob, field: 'other' }, q))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify(blob, { ...q, expires: String(Number(q.expires) + 1) }))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => new UrlSigner(Buffer.from('x'.repeat(32)), '/v1/artifacts', () => now).verify(blob, q))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify(blob, { expires: q.expires }))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => new UrlSigner(key, '/v1/artifacts', () => now + 60_000).verify(blob, q))).toBe('SIGNATURE_EXPIRED');
    expect(codeOf(() => signer.sign(blob, alice, 0))).toBe('BAD_INPUT');
  });
});

describe('external URL address check', () => {
  it.each([
    '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.251', '239.255.255.250', '255.255.255.255', '240.0.0.1', '192.0.2.1', '198.18.0.1',
    '::', '::1', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fec0::1', '2001:db8::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::127.0.0.1', '64:ff9b::10.0.0.1', '100::1',
  ])('%s is not public', (address) => {
    expect(disallowedReason(address)).not.toBeNull();
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '2001:4860:4860::8888'])('%s is public', (address) => {
    expect(disallowedReason(address)).toBeNull();
  });

  it('accepts only absolute http(s) URLs without credentials', () => {
    expect(parseExternalUrl('https://example.org/a?b=1').hostname).toBe('example.org');
    for (const bad of ['ftp://example.org/a', 'file:///etc/passwd', 'gopher://x/', '/relative', 'https://u:p@example.org/', `https://example.org/${'a'.repeat(2100)}`]) {
      expect([bad.slice(0, 30), codeOf(() => parseExternalUrl(bad))]).toEqual([bad.slice(0, 30), 'URL_FORBIDDEN']);
    }
  });
});

describe('virtualSizeOf', () => {
  const qcow2 = (size: bigint) => {
    const h = Buffer.alloc(32);
    h.write('QFI\xfb', 0, 'latin1');
    h.writeBigUInt64BE(size, 24);
    return h;
  };
  it('is the size for raw, the header\'s for qcow2, null otherwise', () => {
    expect(virtualSizeOf('raw', Buffer.alloc(0), 1234)).toBe(1234);
    expect(virtualSizeOf('qcow2', qcow2(1n << 40n), 5000)).toBe(2 ** 40);
    expect(virtualSizeOf('qcow2', Buffer.alloc(32), 5000)).toBeNull();
    expect(virtualSizeOf('qcow2', qcow2(1n << 40n).subarray(0, 20), 5000)).toBeNull();
    expect(virtualSizeOf('qcow2', qcow2(1n << 62n), 5000)).toBeNull();
    expect(virtualSizeOf('vmdk', qcow2(1n << 40n), 5000)).toBeNull();
  });
});
