/**
 * Glance's virtual_size, from what an upload already sees: a raw disk is as large as its
 * data; a qcow2 image declares its size in the header (bytes 24..31, big-endian), which the
 * meter keeps while streaming. Other formats would need a full inspector: null.
 */
export const HEADER_BYTES = 32;
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"

export function virtualSizeOf(diskFormat: unknown, head: Buffer, size: number): number | null {
  if (diskFormat === 'raw') return size;
  if (diskFormat === 'qcow2' && head.length >= HEADER_BYTES && head.subarray(0, 4).equals(QCOW2_MAGIC)) {
    const value = head.readBigUInt64BE(24);
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
  }
  return null;
}
