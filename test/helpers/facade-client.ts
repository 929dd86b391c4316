import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { GraphQLBody, HttpResult, TestApp } from './app';

export type Caller = keyof TestApp['tokens'];

export const PATCH_V21 = 'application/openstack-images-v2.1-json-patch';
export const PATCH_V20 = 'application/openstack-images-v2.0-json-patch';

/**
 * Glance-facade calls as one of the test app's callers: JSON requests, PATCH in either
 * media type, image create, raw data upload and download, location adds. `accept` picks
 * the error body format (webob's html, json or text), as clients do.
 */
export function facadeClient(app: TestApp, options: { accept: string; namePrefix: string }) {
  const call = (method: string, path: string, who: Caller = 'memberA', extra: { headers?: Record<string, string>; body?: unknown } = {}): Promise<HttpResult> =>
    app.http(method, path, { headers: { 'x-auth-token': app.tokens[who], accept: options.accept, ...extra.headers }, body: extra.body });
  const patch = (id: string, ops: unknown, who: Caller = 'memberA', mediaType = PATCH_V21) => call('PATCH', `/v2/images/${id}`, who, { headers: { 'content-type': mediaType }, body: JSON.stringify(ops) });
  const show = async (id: string, who: Caller = 'memberA') => (await call('GET', `/v2/images/${id}`, who)).body;
  const create = async (who: Caller = 'memberA') => {
    const res = await call('POST', '/v2/images', who, { body: { name: `${options.namePrefix}-${randomUUID().slice(0, 8)}`, disk_format: 'raw', container_format: 'bare' } });
    if (res.status !== 201) throw new Error(`creating an image answered ${res.status}: ${res.text}`);
    return res.body;
  };
  const upload = async (id: string, data: Buffer, who: Caller = 'memberA') => {
    const res = await request(`${app.baseUrl}/v2/images/${id}/file`, { method: 'PUT', headers: { 'x-auth-token': app.tokens[who], 'content-type': 'application/octet-stream' }, body: data });
    await res.body.dump();
    return res.statusCode;
  };
  const download = async (id: string, who: Caller = 'memberA') => {
    const res = await request(`${app.baseUrl}/v2/images/${id}/file`, { headers: { 'x-auth-token': app.tokens[who] } });
    return { status: res.statusCode, headers: res.headers, bytes: Buffer.from(await res.body.arrayBuffer()) };
  };
  const addLocation = (id: string, value: unknown, who: Caller = 'memberA', path = '/locations/-') => patch(id, [{ op: 'add', path, value }], who);
  return { call, patch, show, create, upload, download, addLocation };
}

/** The GraphQL location mutations both location suites (native and proxied) send. */
export const ADD_LOCATION = 'mutation($id: ID!, $input: AddImageLocationInput!) { addImageLocation(id: $id, input: $input) { id status checksum osHashAlgo locations { url metadata } directUrl } }';
export const REMOVE_LOCATION = 'mutation($id: ID!, $index: Int!) { removeImageLocation(id: $id, index: $index) { locations { url } directUrl } }';

/** The first GraphQL error's stable code. */
export const errorCode = (res: HttpResult<GraphQLBody>): string | undefined => res.body.errors?.[0]?.extensions?.code;
