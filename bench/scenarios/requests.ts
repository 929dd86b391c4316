// The load each side receives, defined once so every scenario that compares
// against, say, Glance's list measures exactly the same request (and the
// run-wide measurement cache can recognise it by key).
import type { BenchContext, MeasureRequest } from '../lib/context';
import { benchImage, CREATE_IMAGE, glanceBody, graphqlInput, LIST_IMAGES, PROXY_LIST_IMAGES, SHOW_IMAGE } from '../lib/fixtures';
import { requestJson } from '../lib/http';
import { groupCpuSeconds, processCpuSeconds } from '../lib/proc';
import { graphql } from '../targets/vitrine';

const mode = (fresh: boolean): string => (fresh ? 'new conn/req' : 'keep-alive');
const pick = (ids: string[]): string => ids[Math.floor(Math.random() * ids.length)];

export const GLANCE_LIST_PATH = '/v2/images?limit=100';

// ---------------------------------------------------------------- Glance ---
export function glanceList(ctx: BenchContext, fresh: boolean): MeasureRequest {
  return {
    key: `glance.list.${fresh ? 'fresh' : 'ka'}`,
    label: `Glance list, ${mode(fresh)}`,
    spec: async () => ({ url: (await ctx.glance()).url, method: 'GET', path: GLANCE_LIST_PATH, connections: ctx.opts.connections, fresh }),
  };
}

export function glanceShow(ctx: BenchContext, fresh = false): MeasureRequest {
  return {
    key: `glance.show.${fresh ? 'fresh' : 'ka'}`,
    label: `Glance show, ${mode(fresh)}`,
    spec: async () => {
      const g = await ctx.glance();
      return { url: g.url, method: 'GET', path: `/v2/images/${g.ids[0]}`, next: () => ({ path: `/v2/images/${pick(g.ids)}` }), connections: ctx.opts.connections, fresh };
    },
  };
}

export function glanceCreate(ctx: BenchContext, fresh = false): MeasureRequest {
  return {
    key: `glance.create.${fresh ? 'fresh' : 'ka'}`,
    label: `Glance create, ${mode(fresh)}`,
    spec: async () => ({
      url: (await ctx.glance()).url,
      method: 'POST',
      path: '/v2/images',
      body: JSON.stringify(glanceBody(benchImage())),
      next: () => ({ body: JSON.stringify(glanceBody(benchImage())) }),
      connections: ctx.opts.connections,
      fresh,
    }),
  };
}

// --------------------------------------------------------------- Vitrine ---
function gqlBody(operationName: string, query: string, variables?: Record<string, unknown>): string {
  return JSON.stringify({ operationName, query, variables });
}

export function vitrineList(ctx: BenchContext, fresh: boolean): MeasureRequest {
  return {
    key: `vitrine.list.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine GraphQL list, ${mode(fresh)}`,
    spec: async () => {
      const v = await ctx.vitrine();
      return { url: v.url, method: 'POST', path: '/graphql', headers: v.headers, body: gqlBody('ListImages', LIST_IMAGES), connections: ctx.opts.connections, fresh };
    },
  };
}

/** The same list with `Cache-Control: no-cache`: executed afresh every time (graphql.responseCache bypassed). */
export function vitrineListUncached(ctx: BenchContext): MeasureRequest {
  return {
    key: 'vitrine.list.uncached',
    label: 'Vitrine GraphQL list, keep-alive, no-cache',
    spec: async () => {
      const v = await ctx.vitrine();
      return { url: v.url, method: 'POST', path: '/graphql', headers: { ...v.headers, 'cache-control': 'no-cache' }, body: gqlBody('ListImages', LIST_IMAGES), connections: ctx.opts.connections, fresh: false };
    },
  };
}

export function vitrineShow(ctx: BenchContext, fresh = false): MeasureRequest {
  return {
    key: `vitrine.show.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine GraphQL show, ${mode(fresh)}`,
    spec: async () => {
      const v = await ctx.vitrine();
      return {
        url: v.url,
        method: 'POST',
        path: '/graphql',
        headers: v.headers,
        body: gqlBody('ShowImage', SHOW_IMAGE, { id: v.ids[0] }),
        next: () => ({ body: gqlBody('ShowImage', SHOW_IMAGE, { id: pick(v.ids) }) }),
        connections: ctx.opts.connections,
        fresh,
      };
    },
  };
}

export function vitrineCreate(ctx: BenchContext, fresh = false): MeasureRequest {
  const body = (): string => gqlBody('CreateImage', CREATE_IMAGE, { input: graphqlInput(benchImage()) });
  return {
    key: `vitrine.create.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine GraphQL create, ${mode(fresh)}`,
    spec: async () => {
      const v = await ctx.vitrine();
      return { url: v.url, method: 'POST', path: '/graphql', headers: v.headers, body: body(), next: () => ({ body: body() }), connections: ctx.opts.connections, fresh };
    },
  };
}

// ---------------------------------------------------- Vitrine /v2 facade ---
// The same requests as Glance's (same paths, same bodies, same connection
// modes), against Vitrine's Glance v2 facade, with its Keystone-style header.
function facadeHeaders(token: string): Record<string, string> {
  return { 'x-auth-token': token, accept: 'application/json' };
}

export function facadeList(ctx: BenchContext, fresh: boolean): MeasureRequest {
  return {
    key: `facade.list.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine /v2 list, ${mode(fresh)}`,
    spec: async () => {
      const v = await ctx.vitrine();
      return { url: v.url, method: 'GET', path: GLANCE_LIST_PATH, headers: facadeHeaders(v.token), connections: ctx.opts.connections, fresh };
    },
  };
}

/** The same list with `Cache-Control: no-cache`: every request queried and rendered afresh (images.listCache bypassed). */
export function facadeListUncached(ctx: BenchContext): MeasureRequest {
  return {
    key: 'facade.list.uncached',
    label: 'Vitrine /v2 list, keep-alive, no-cache',
    spec: async () => {
      const v = await ctx.vitrine();
      return { url: v.url, method: 'GET', path: GLANCE_LIST_PATH, headers: { ...facadeHeaders(v.token), 'cache-control': 'no-cache' }, connections: ctx.opts.connections, fresh: false };
    },
  };
}

export function facadeShow(ctx: BenchContext, fresh = false): MeasureRequest {
  return {
    key: `facade.show.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine /v2 show, ${mode(fresh)}`,
    spec: async () => {
      const v = await ctx.vitrine();
      return { url: v.url, method: 'GET', path: `/v2/images/${v.ids[0]}`, headers: facadeHeaders(v.token), next: () => ({ path: `/v2/images/${pick(v.ids)}` }), connections: ctx.opts.connections, fresh };
    },
  };
}

export function facadeCreate(ctx: BenchContext, fresh = false): MeasureRequest {
  return {
    key: `facade.create.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine /v2 create, ${mode(fresh)}`,
    spec: async () => {
      const v = await ctx.vitrine();
      return {
        url: v.url,
        method: 'POST',
        path: '/v2/images',
        headers: facadeHeaders(v.token),
        body: JSON.stringify(glanceBody(benchImage())),
        next: () => ({ body: JSON.stringify(glanceBody(benchImage())) }),
        connections: ctx.opts.connections,
        fresh,
      };
    },
  };
}

// ------------------------------------------------- Vitrine in front of Glance ---
// The client requests of glance.list / glance.show, sent to Vitrine's /v2 facade
// when its only backend is the run's Glance, and the very same requests sent to
// that Glance directly with the identity headers Vitrine forwards (so Glance
// applies the same policy to both). Keys of their own: measured interleaved with
// the proxy, not reused from glance.list (which sends no identity).
// Both record the CPU per request of Glance (all its processes), the proxy's also Vitrine's.
function proxyCpu(ctx: BenchContext, through: 'proxy' | 'direct'): () => Promise<Record<string, () => number>> {
  return async () => {
    const p = await ctx.glanceProxy();
    const readers: Record<string, () => number> = { glance: () => groupCpuSeconds(p.glance.pid) };
    if (through === 'proxy') readers.vitrine = () => processCpuSeconds(p.pid);
    return readers;
  };
}

/**
 * One side of a proxy comparison: `through` the proxy or `direct` to Glance, the
 * list or a random show, with the run's connections (throughput) or `single`
 * connection (latency without queueing: what the extra hop itself adds).
 */
function proxyRequest(ctx: BenchContext, through: 'proxy' | 'direct', op: 'list' | 'show', fresh: boolean, single: boolean): MeasureRequest {
  const what = through === 'proxy' ? `Vitrine /v2 -> Glance ${op}` : `Glance direct ${op}`;
  return {
    key: `proxy.${through === 'direct' ? 'direct.' : ''}${op}.${fresh ? 'fresh' : 'ka'}${single ? '.c1' : ''}`,
    label: `${what}, ${mode(fresh)}${single ? ', 1 connection' : ''}`,
    cpu: proxyCpu(ctx, through),
    spec: async () => {
      const p = await ctx.glanceProxy();
      const [url, headers] = through === 'proxy' ? [p.url, p.facadeHeaders] : [p.glance.url, p.identity];
      const connections = single ? 1 : ctx.opts.connections;
      if (op === 'list') return { url, method: 'GET', path: GLANCE_LIST_PATH, headers, connections, fresh };
      const ids = p.glance.ids;
      return { url, method: 'GET', path: `/v2/images/${ids[0]}`, headers, next: () => ({ path: `/v2/images/${pick(ids)}` }), connections, fresh };
    },
  };
}

export const proxyList = (ctx: BenchContext, fresh: boolean, single = false): MeasureRequest => proxyRequest(ctx, 'proxy', 'list', fresh, single);
export const proxyDirectList = (ctx: BenchContext, fresh: boolean, single = false): MeasureRequest => proxyRequest(ctx, 'direct', 'list', fresh, single);
export const proxyShow = (ctx: BenchContext, fresh: boolean, single = false): MeasureRequest => proxyRequest(ctx, 'proxy', 'show', fresh, single);
export const proxyDirectShow = (ctx: BenchContext, fresh: boolean, single = false): MeasureRequest => proxyRequest(ctx, 'direct', 'show', fresh, single);

/** `images(first: 100)` through GraphQL on the proxy (no totalCount: Glance has no count). */
export function proxyGraphqlList(ctx: BenchContext, fresh = false): MeasureRequest {
  return {
    key: `proxy.graphql.list.${fresh ? 'fresh' : 'ka'}`,
    label: `Vitrine GraphQL -> Glance list, ${mode(fresh)}`,
    cpu: proxyCpu(ctx, 'proxy'),
    spec: async () => {
      const p = await ctx.glanceProxy();
      return { url: p.url, method: 'POST', path: '/graphql', headers: p.headers, body: gqlBody('ProxyListImages', PROXY_LIST_IMAGES), connections: ctx.opts.connections, fresh };
    },
  };
}

// --------------------------------------------------------------- ceiling ---
/** Loads the ceiling with Glance's real response bodies (captured once). */
function glanceFixtures(ctx: BenchContext): Promise<void> {
  return ctx.once('fixtures.glance', async () => {
    const [g, c] = [await ctx.glance(), await ctx.ceiling()];
    const list = await requestJson(`${g.url}${GLANCE_LIST_PATH}`);
    const show = await requestJson(`${g.url}/v2/images/${g.ids[0]}`);
    const created = await requestJson(`${g.url}/v2/images`, { method: 'POST', body: glanceBody(benchImage()) });
    await c.setFixture('glance.list', list.text);
    await c.setFixture('glance.show', show.text);
    await c.setFixture('glance.create', created.text, 201);
  });
}

/** Loads the ceiling with Vitrine's real response body for one operation. */
function graphqlFixture(ctx: BenchContext, op: 'ListImages' | 'ShowImage' | 'CreateImage'): Promise<void> {
  return ctx.once(`fixtures.graphql.${op}`, async () => {
    const [v, c] = [await ctx.vitrine(), await ctx.ceiling()];
    const res =
      op === 'ListImages'
        ? await graphql(v.url, v.headers, op, LIST_IMAGES)
        : op === 'ShowImage'
          ? await graphql(v.url, v.headers, op, SHOW_IMAGE, { id: v.ids[0] })
          : await graphql(v.url, v.headers, op, CREATE_IMAGE, { input: graphqlInput(benchImage()) });
    await c.setFixture(`graphql.${op}`, res.text);
  });
}

/**
 * Loads the ceiling with the Vitrine facade's real response bodies (captured
 * once). The ceiling serves them under /facade/v2/..., the same routes as
 * Glance's under another prefix.
 */
function facadeFixtures(ctx: BenchContext): Promise<void> {
  return ctx.once('fixtures.facade', async () => {
    const [v, c] = [await ctx.vitrine(), await ctx.ceiling()];
    const headers = facadeHeaders(v.token);
    const list = await requestJson(`${v.url}${GLANCE_LIST_PATH}`, { headers });
    const show = await requestJson(`${v.url}/v2/images/${v.ids[0]}`, { headers });
    const created = await requestJson(`${v.url}/v2/images`, { method: 'POST', headers, body: glanceBody(benchImage()) });
    for (const [name, r, want] of [['list', list, 200], ['show', show, 200], ['create', created, 201]] as const) {
      if (r.status !== want) throw new Error(`Vitrine /v2 ${name} fixture: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    }
    await c.setFixture('facade.list', list.text);
    await c.setFixture('facade.show', show.text);
    await c.setFixture('facade.create', created.text, 201);
  });
}

const GRAPHQL_OP = { list: 'ListImages', show: 'ShowImage', create: 'CreateImage' } as const;
export const FACADE_CEILING_PREFIX = '/facade';

/** The ceiling answering the same request as `like`, with the same bytes. */
export function ceilingLike(ctx: BenchContext, like: MeasureRequest): MeasureRequest {
  const isGraphql = like.key.startsWith('vitrine.');
  const isFacade = like.key.startsWith('facade.');
  const kind = like.key.split('.')[1] as keyof typeof GRAPHQL_OP;
  return {
    key: `ceiling:${like.key}`,
    label: `Fastify ceiling (${like.label.replace(/^(Glance|Vitrine) /, (_, s: string) => `${s.toLowerCase()} `)})`,
    spec: async () => {
      await (isGraphql ? graphqlFixture(ctx, GRAPHQL_OP[kind]) : isFacade ? facadeFixtures(ctx) : glanceFixtures(ctx));
      const [c, spec] = [await ctx.ceiling(), await like.spec()];
      if (!isFacade) return { ...spec, url: c.url };
      // Same request under the ceiling's /facade prefix (it ignores the token header).
      const next = spec.next;
      return {
        ...spec,
        url: c.url,
        path: `${FACADE_CEILING_PREFIX}${spec.path}`,
        ...(next ? { next: () => { const n = next(); return n.path ? { ...n, path: `${FACADE_CEILING_PREFIX}${n.path}` } : n; } } : {}),
      };
    },
  };
}
