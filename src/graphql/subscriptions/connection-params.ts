import type { IncomingHttpHeaders } from 'node:http';

/**
 * The headers `Authenticate` understands, taken from connection_init's payload: browsers
 * cannot set headers on a WebSocket, so the token travels there as `{ token }`,
 * `{ authorization: 'Bearer …' }` or `{ 'X-Auth-Token': … }`.
 */
export function headersFromConnectionParams(params: Readonly<Record<string, unknown>> | undefined): IncomingHttpHeaders {
  if (!params) return {};
  const text = (...keys: string[]) => keys.map((k) => params[k]).find((v): v is string => typeof v === 'string');
  const token = text('token');
  const authorization = text('authorization', 'Authorization') ?? (token === undefined ? undefined : `Bearer ${token}`);
  const xAuthToken = text('X-Auth-Token', 'x-auth-token');
  return { ...(authorization !== undefined && { authorization }), ...(xAuthToken !== undefined && { 'x-auth-token': xAuthToken }) };
}
