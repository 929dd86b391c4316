import { fail } from '../../domain/errors';

/** Event cursors are opaque to clients: base64url of "ev:<seq>". */
export function encodeEventCursor(seq: number): string {
  return Buffer.from(`ev:${seq}`, 'utf8').toString('base64url');
}

export function decodeEventCursor(cursor: string): number {
  const match = /^ev:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || cursor.length > 32) fail('CURSOR_INVALID', 'the event cursor is malformed; pass the cursor of an event you received');
  return Number(match[1]);
}
