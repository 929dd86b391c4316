import { createHmac, timingSafeEqual } from 'node:crypto';
import { fail } from '../../domain/errors';
import { ROLES, type Principal, type Role } from '../../domain/policy';

/**
 * Signed data-plane URLs: a short-lived grant to PUT (or GET) one blob without a bearer
 * token, for browsers. The query carries the expiry and the caller's principal; the HMAC
 * (SHA-256) covers them together with the method and the blob, so changing any of them,
 * or using the URL for another blob, breaks the signature.
 */
export type SignedMethod = 'PUT' | 'GET';

export interface SignedBlob {
  method: SignedMethod;
  artifactId: string;
  field: string;
  key: string;
}

export interface SignedUrl {
  url: string;
  method: SignedMethod;
  expiresAt: string;
}

export const SIGNATURE_PARAMS = ['expires', 'principal', 'signature'] as const;
export const MAX_EXPIRY_SECONDS = 7 * 24 * 3600;

export class UrlSigner {
  constructor(private readonly key: Buffer, private readonly pathPrefix: string, private readonly now: () => number = Date.now) {}

  sign(blob: SignedBlob, principal: Principal, expiresInSeconds: number): SignedUrl {
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_EXPIRY_SECONDS) {
      fail('BAD_INPUT', `expiresInSeconds must be an integer from 1 to ${MAX_EXPIRY_SECONDS}, got ${expiresInSeconds}`);
    }
    const expires = Math.floor(this.now() / 1000) + expiresInSeconds;
    const who = encodePrincipal(principal);
    const query = new URLSearchParams({ expires: String(expires), principal: who, signature: this.mac(blob, expires, who) });
    return { url: `${blobPath(this.pathPrefix, blob)}?${query.toString()}`, method: blob.method, expiresAt: new Date(expires * 1000).toISOString() };
  }

  /** The principal a signed request acts as; SIGNATURE_INVALID or SIGNATURE_EXPIRED otherwise. */
  verify(blob: SignedBlob, query: Record<string, unknown>): Principal {
    const [expiresRaw, who, signature] = SIGNATURE_PARAMS.map((p) => query[p]);
    if (typeof expiresRaw !== 'string' || typeof who !== 'string' || typeof signature !== 'string' || !/^\d{1,12}$/.test(expiresRaw) || !/^[0-9a-f]{64}$/.test(signature)) {
      fail('SIGNATURE_INVALID', 'a signed URL needs expires, principal and signature parameters');
    }
    const expected = Buffer.from(this.mac(blob, Number(expiresRaw), who), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) fail('SIGNATURE_INVALID', 'the signature does not match this method and blob (tampered, or made for another blob)');
    if (Number(expiresRaw) * 1000 <= this.now()) fail('SIGNATURE_EXPIRED', `the signed URL expired at ${new Date(Number(expiresRaw) * 1000).toISOString()}`);
    return decodePrincipal(who);
  }

  private mac(blob: SignedBlob, expires: number, who: string): string {
    // Newline-separated fields; none of them can contain a newline (ids, field names, checked keys, base64url).
    const text = ['vitrine-blob-v1', blob.method, blob.artifactId, blob.field, blob.key, String(expires), who].join('\n');
    return createHmac('sha256', this.key).update(text, 'utf8').digest('hex');
  }
}

export function blobPath(prefix: string, blob: Pick<SignedBlob, 'artifactId' | 'field' | 'key'>): string {
  const key = blob.key ? `/${blob.key.split('/').map(encodeURIComponent).join('/')}` : '';
  return `${prefix}/${blob.artifactId}/blobs/${encodeURIComponent(blob.field)}${key}`;
}

function encodePrincipal(p: Principal): string {
  return Buffer.from(JSON.stringify({ p: p.projectId, u: p.userId, r: p.roles }), 'utf8').toString('base64url');
}

function decodePrincipal(text: string): Principal {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { p: unknown; u: unknown; r: unknown };
    if (typeof v.p === 'string' && typeof v.u === 'string' && Array.isArray(v.r) && v.r.every((r) => ROLES.includes(r as Role))) {
      return Object.freeze({ projectId: v.p, userId: v.u, roles: Object.freeze([...(v.r as Role[])]) });
    }
  } catch {
    // falls through: a signature over garbage is still garbage
  }
  return fail('SIGNATURE_INVALID', 'the signed URL names no valid principal');
}
