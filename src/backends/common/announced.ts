import { fail } from '../../domain/errors';
import type { UploadMeta } from '../port';

/** Hex digests as clients announce them (and as Vitrine stores them). */
export const MD5_HEX = /^[0-9a-f]{32}$/;
export const SHA512_HEX = /^[0-9a-f]{128}$/;

/**
 * Checks what a client announced about an upload before any byte is read: sizes that are
 * integers and agree, digests that are well-formed. Returns the announced size, if any.
 */
export function checkAnnounced(meta: UploadMeta): number | undefined {
  for (const [name, value] of [['Content-Length', meta.contentLength], ['expected size', meta.expectedSize]] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) fail('BAD_INPUT', `${name} must be a non-negative integer`);
  }
  if (meta.contentLength !== undefined && meta.expectedSize !== undefined && meta.contentLength !== meta.expectedSize) {
    fail('SIZE_MISMATCH', `Content-Length (${meta.contentLength}) and the expected size (${meta.expectedSize}) differ`);
  }
  if (meta.expectedMd5 !== undefined && !MD5_HEX.test(meta.expectedMd5)) fail('BAD_INPUT', 'the expected md5 must be 32 lowercase hex digits');
  if (meta.expectedSha512 !== undefined && !SHA512_HEX.test(meta.expectedSha512)) fail('BAD_INPUT', 'the expected sha512 must be 128 lowercase hex digits');
  return meta.contentLength ?? meta.expectedSize;
}
