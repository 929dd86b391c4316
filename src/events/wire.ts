import type { BusMessage } from './port';

/**
 * How a BusMessage travels through a broker: one JSON document per message. Anything else
 * on the channel (another application, an older Vitrine) is refused here, at the boundary,
 * rather than reaching subscribers half-formed.
 */
export function encodeMessage(message: BusMessage): string {
  return JSON.stringify(message);
}

/** The message, or a reason why the payload is not one. */
export function decodeMessage(payload: string): BusMessage | { invalid: string } {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { invalid: 'not JSON' };
  }
  return asBusMessage(value);
}

export function asBusMessage(value: unknown): BusMessage | { invalid: string } {
  if (typeof value !== 'object' || value === null) return { invalid: 'not a JSON object' };
  const { topic, event } = value as { topic?: unknown; event?: unknown };
  if (topic !== 'artifact' && topic !== 'progress') return { invalid: `unknown topic ${JSON.stringify(topic)}` };
  if (typeof event !== 'object' || event === null) return { invalid: 'no event object' };
  return value as BusMessage;
}
