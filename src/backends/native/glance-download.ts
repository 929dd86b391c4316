import type { Readable } from 'node:stream';
import { fail, VitrineError } from '../../domain/errors';
import { openWebDownload, type HostLookup, type UrlFilter } from './web-download';

/**
 * The remote side of glance-download (Glance's cross-region import): find the `image`
 * endpoint of a region and interface, read the remote image, stream its data. In keystone
 * auth mode the endpoint comes from the caller's own service catalog (`GET
 * /v3/auth/catalog` with the caller's token, as Glance reads the catalog of the request
 * context); in static mode from the configured region → URL map. The endpoint is trusted
 * (it comes from Keystone or the operator), so the web-download URL filter does not apply
 * to it, but every request and redirect stays on the endpoint's host. The caller's token
 * goes to that host only, and is never logged or stored.
 */
export interface GlanceSource {
  /** The endpoint URL (no trailing slash); IMPORT_SOURCE_UNKNOWN when there is none for the region and interface. */
  endpoint(region: string, iface: string, token: string | undefined, signal: AbortSignal): Promise<string>;
  /** The remote image's JSON (Glance's `GET /v2/images/{id}`). */
  image(endpoint: string, imageId: string, token: string | undefined, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** The remote image's data, streamed with a cap and an idle timeout. */
  open(endpoint: string, imageId: string, token: string | undefined, maxBytes: number, signal: AbortSignal): Promise<{ body: Readable; size: number | null }>;
}

export interface GlanceSourceOptions {
  /** auth.mode keystone: the Keystone (without /v3) whose catalog names the endpoints. */
  keystoneUrl?: string;
  /** static auth mode: region name → Glance URL (without /v2). */
  regions: Readonly<Record<string, string>>;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRedirects: number;
  lookup?: HostLookup;
}

/** Glance's service interfaces (`publicURL`, `internalURL`, `adminURL` in the v2 catalog it reads). */
const INTERFACES = new Set(['public', 'internal', 'admin']);
/** The remote image's JSON is small; anything larger is not a Glance image. */
const MAX_IMAGE_JSON = 1024 * 1024;

export function glanceSource(options: GlanceSourceOptions): GlanceSource {
  const hostOnly = (endpoint: string): UrlFilter => {
    const url = new URL(endpoint);
    return {
      allowedSchemes: ['http', 'https'],
      disallowedSchemes: [],
      // Listed: trusted even on a private address; and the only host any redirect may reach.
      allowedHosts: [url.hostname.replace(/^\[(.*)\]$/, '$1')],
      disallowedHosts: [],
      allowedPorts: [],
      disallowedPorts: [],
      allowPrivate: true,
    };
  };
  const get = (endpoint: string, path: string, token: string | undefined, maxBytes: number, signal: AbortSignal, accept: string) =>
    openWebDownload(`${endpoint}${path}`, {
      filter: hostOnly(endpoint),
      maxBytes,
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      maxRedirects: options.maxRedirects,
      signal,
      ...(options.lookup && { lookup: options.lookup }),
      headers: { accept, ...(token !== undefined && { 'x-auth-token': token }) },
    }).catch((err: unknown) => {
      throw remoteError(err, path);
    });

  return {
    async endpoint(region, iface, token, signal) {
      if (!INTERFACES.has(iface)) fail('IMPORT_SOURCE_UNKNOWN', `glance_service_interface must be public, internal or admin, got ${JSON.stringify(iface.slice(0, 64))}`);
      const url = options.keystoneUrl ? await fromCatalog(options.keystoneUrl, region, iface, token, options.idleTimeoutMs, signal) : fromMap(options.regions, region);
      const trimmed = url.replace(/\/+$/, '');
      if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(trimmed)) fail('IMPORT_SOURCE_UNKNOWN', `the image endpoint of region ${region} is not an http(s) URL`);
      return trimmed;
    },
    async image(endpoint, imageId, token, signal) {
      const { body } = await get(endpoint, `/v2/images/${encodeURIComponent(imageId)}`, token, MAX_IMAGE_JSON, signal, 'application/json');
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of body) chunks.push(chunk as Buffer);
      } catch (err) {
        throw remoteError(err, 'the image');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        parsed = null;
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) fail('IMPORT_FETCH_FAILED', `the remote Glance answered GET /v2/images/${imageId} with something other than an image`);
      return parsed as Record<string, unknown>;
    },
    async open(endpoint, imageId, token, maxBytes, signal) {
      const { body, size } = await get(endpoint, `/v2/images/${encodeURIComponent(imageId)}/file`, token, maxBytes, signal, 'application/octet-stream');
      return { body, size };
    },
  };
}

/** Keystone's catalog for the caller's token: the endpoint of type `image` in that region (case-insensitive, as Glance) and interface. */
async function fromCatalog(keystoneUrl: string, region: string, iface: string, token: string | undefined, timeoutMs: number, signal: AbortSignal): Promise<string> {
  if (token === undefined) fail('IMPORT_SOURCE_UNKNOWN', 'glance-download needs the caller\'s token to read the service catalog, and this process does not hold it (it restarted, or another instance took the task over); start the import again');
  let response: Response;
  try {
    response = await fetch(`${keystoneUrl.replace(/\/+$/, '')}/v3/auth/catalog`, { headers: { accept: 'application/json', 'x-auth-token': token }, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new VitrineError('UNAVAILABLE', `the identity service could not be asked for the service catalog (${(err as Error).name})`);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    fail(response.status === 401 || response.status === 404 ? 'UNAUTHENTICATED' : 'UNAVAILABLE', `the identity service answered HTTP ${response.status} when asked for the service catalog`);
  }
  const body = (await response.json().catch(() => null)) as { catalog?: { type?: string; endpoints?: { region?: string; region_id?: string; interface?: string; url?: string }[] }[] } | null;
  for (const service of body?.catalog ?? []) {
    if (service.type !== 'image') continue;
    for (const e of service.endpoints ?? []) {
      const name = e.region_id ?? e.region ?? '';
      if (name.toLowerCase() === region.toLowerCase() && e.interface === iface && typeof e.url === 'string') return e.url;
    }
  }
  return fail('IMPORT_SOURCE_UNKNOWN', `the service catalog has no ${iface} image endpoint in region ${JSON.stringify(region.slice(0, 64))}`);
}

function fromMap(regions: Readonly<Record<string, string>>, region: string): string {
  const found = Object.entries(regions).find(([name]) => name.toLowerCase() === region.toLowerCase());
  if (!found) fail('IMPORT_SOURCE_UNKNOWN', `no Glance is configured for region ${JSON.stringify(region.slice(0, 64))} (imports.glanceDownload.regions)`);
  return found[1];
}

/** The remote's failures as the task reports them; a 404 says the image is not there (or not visible to the caller). */
function remoteError(err: unknown, what: string): unknown {
  if (!(err instanceof VitrineError)) return err;
  if (err.code === 'URL_FORBIDDEN') return new VitrineError('IMPORT_FETCH_FAILED', `the remote Glance redirected ${what} elsewhere than its own host: ${err.message}`);
  if (err.details?.upstreamStatus === 404) return new VitrineError('IMPORT_FETCH_FAILED', 'the remote Glance has no such image (or does not show it to the caller)', { upstreamStatus: 404 });
  return err;
}
