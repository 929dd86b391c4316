// The load each side receives, defined once so every scenario that compares
// against, say, Glance's list measures exactly the same request (and the
// run-wide measurement cache can recognise it by key).
import type { BenchContext, MeasureRequest } from '../lib/context';
import { benchImage, CREATE_IMAGE, glanceBody, graphqlInput, LIST_IMAGES, SHOW_IMAGE } from '../lib/fixtures';
import { requestJson } from '../lib/http';
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

const GRAPHQL_OP = { list: 'ListImages', show: 'ShowImage', create: 'CreateImage' } as const;

/** The ceiling answering the same request as `like`, with the same bytes. */
export function ceilingLike(ctx: BenchContext, like: MeasureRequest): MeasureRequest {
  const isGraphql = like.key.startsWith('vitrine.');
  return {
    key: `ceiling:${like.key}`,
    label: `Fastify ceiling (${like.label.replace(/^(Glance|Vitrine) /, (_, s: string) => `${s.toLowerCase()} `)})`,
    spec: async () => {
      const kind = like.key.split('.')[1] as keyof typeof GRAPHQL_OP;
      await (isGraphql ? graphqlFixture(ctx, GRAPHQL_OP[kind]) : glanceFixtures(ctx));
      const [c, spec] = [await ctx.ceiling(), await like.spec()];
      return { ...spec, url: c.url };
    },
  };
}
