// A dashboard page: 100 images with their members (and, on Vitrine, links),
// as a browser would load it. Vitrine: one GraphQL request. Glance: the REST
// calls the same page needs, GET /v2/images?limit=100 then
// GET /v2/images/{id}/members for each of the 100 images, over at most 6
// parallel keep-alive connections (a browser's per-host limit). Measured as
// page latency (first request sent -> last body read and parsed), p50 per
// round; rounds interleaved (a Vitrine round, then a Glance round).
// Members are seeded on every 10th image of the first page on both sides, so
// the member calls return data.
import { Agent, request } from 'undici';
import type { BenchContext } from '../lib/context';
import { runPool } from '../lib/http';
import type { Row } from '../lib/report';
import { ratio, summarize, type Summary } from '../lib/stats';
import { graphql } from '../targets/vitrine';
import type { Scenario } from './types';

export const DASHBOARD_QUERY = `query Dashboard {
  images(first: 100, sort: [{ key: "createdAt", direction: DESC }]) {
    nodes { id name status size tags properties members { project status } links { name targetId } }
    totalCount
  }
}`;

/** A browser's parallel connections per host (HTTP/1.1). */
const BROWSER_CONNECTIONS = 6;
const MEMBER_PROJECTS = ['dashboard-project-a', 'dashboard-project-b'];
const TARGET = 0.2;

interface Page {
  images: number;
  members: number;
}

async function getJson<T>(agent: Agent, url: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await request(url, { dispatcher: agent, headers: { accept: 'application/json', ...headers } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** Seeds 2 members on every 10th image of each side's first page (once per run). */
function seedMembers(ctx: BenchContext): Promise<void> {
  return ctx.once('dashboard.members', async () => {
    const [v, g] = [await ctx.vitrine(), await ctx.glance()];
    const vPage = await graphql<{ images: { nodes: { id: string }[] } }>(v.url, v.headers, 'Dashboard', DASHBOARD_QUERY);
    const vIds = vPage.data.images.nodes.map((n) => n.id).filter((_, i) => i % 10 === 0);
    for (const id of vIds) {
      // createImage's default visibility is SHARED, which members need (as Glance's default).
      for (const project of MEMBER_PROJECTS) {
        await graphql(v.url, v.headers, 'AddMember', 'mutation AddMember($id: ID!, $p: String!) { addMember(artifactId: $id, project: $p) { project } }', { id, p: project });
      }
    }
    const gAgent = new Agent({ connections: 1 });
    try {
      const gPage = await getJson<{ images: { id: string }[] }>(gAgent, `${g.url}/v2/images?limit=100`);
      const gIds = gPage.images.map((x) => x.id).filter((_, i) => i % 10 === 0);
      for (const id of gIds) {
        for (const project of MEMBER_PROJECTS) {
          const res = await request(`${g.url}/v2/images/${id}/members`, { dispatcher: gAgent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ member: project }) });
          const text = await res.body.text();
          if (res.statusCode !== 200) throw new Error(`Glance add member: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
        }
      }
      ctx.log(`  members seeded: ${vIds.length} Vitrine images, ${gIds.length} Glance images, ${MEMBER_PROJECTS.length} projects each`);
    } finally {
      await gAgent.close();
    }
  });
}

async function vitrinePage(agent: Agent, url: string, headers: Record<string, string>): Promise<Page> {
  const res = await request(`${url}/graphql`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ operationName: 'Dashboard', query: DASHBOARD_QUERY }),
  });
  const text = await res.body.text();
  const body = JSON.parse(text) as { data?: { images: { nodes: { members: unknown[] }[] } }; errors?: unknown[] };
  if (res.statusCode !== 200 || !body.data || body.errors) throw new Error(`Vitrine dashboard: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
  const nodes = body.data.images.nodes;
  return { images: nodes.length, members: nodes.reduce((s, n) => s + n.members.length, 0) };
}

async function glancePage(agent: Agent, url: string): Promise<Page> {
  const list = await getJson<{ images: { id: string }[] }>(agent, `${url}/v2/images?limit=100`);
  const members = await runPool(list.images.length, BROWSER_CONNECTIONS, async (i) => (await getJson<{ members: unknown[] }>(agent, `${url}/v2/images/${list.images[i].id}/members`)).members.length);
  return { images: list.images.length, members: members.reduce((s, x) => s + x, 0) };
}

/** Loads pages one after another for `seconds` (at least minPages); returns each page's ms. */
async function round(load: () => Promise<Page>, seconds: number, minPages: number): Promise<{ ms: number[]; page: Page }> {
  const ms: number[] = [];
  let page: Page = { images: 0, members: 0 };
  const t0 = performance.now();
  for (let i = 0; i < 10_000 && (i < minPages || performance.now() - t0 < seconds * 1000); i++) {
    const t = performance.now();
    page = await load();
    ms.push(performance.now() - t);
  }
  return { ms, page };
}

const median = (xs: number[]): number => summarize(xs).median;

export const dashboardScenario: Scenario = {
  name: 'dashboard',
  description: 'a page of 100 images with members: one GraphQL request on Vitrine vs list + 100 member GETs on Glance (6 connections)',
  async run(ctx) {
    const [v, g] = [await ctx.vitrine(), await ctx.glance()];
    await seedMembers(ctx);
    const minPages = ctx.opts.quick ? 3 : 5;
    const vAgent = new Agent({ connections: BROWSER_CONNECTIONS, keepAliveTimeout: 60_000 });
    const gAgent = new Agent({ connections: BROWSER_CONNECTIONS, keepAliveTimeout: 60_000 });
    const sides = [
      { label: 'Vitrine, 1 GraphQL request', load: () => vitrinePage(vAgent, v.url, v.headers), p50: [] as number[], p99: [] as number[], pages: 0, page: { images: 0, members: 0 } },
      { label: `Glance, 1 + 100 REST requests over ${BROWSER_CONNECTIONS} connections`, load: () => glancePage(gAgent, g.url), p50: [] as number[], p99: [] as number[], pages: 0, page: { images: 0, members: 0 } },
    ];
    try {
      for (const s of sides) await round(s.load, ctx.opts.warmupSeconds, 1);
      for (let i = 0; i < ctx.opts.rounds; i++) {
        for (const s of sides) {
          const r = await round(s.load, ctx.opts.seconds, minPages);
          s.p50.push(median(r.ms));
          s.pages += r.ms.length;
          s.page = r.page;
          ctx.log(`  ${s.label} round ${i + 1}/${ctx.opts.rounds}: ${r.ms.length} pages, p50 ${median(r.ms).toFixed(1)} ms (${r.page.images} images, ${r.page.members} members)`);
        }
      }
    } finally {
      await vAgent.close();
      await gAgent.close();
    }
    for (const s of sides) {
      if (s.page.images !== 100 || s.page.members === 0) throw new Error(`${s.label}: the page had ${s.page.images} images and ${s.page.members} members (expected 100 and some)`);
    }
    ctx.extra.dashboard = Object.fromEntries(sides.map((s) => [s.label, { pages: s.pages, imagesPerPage: s.page.images, membersPerPage: s.page.members, p50RoundsMs: s.p50.map((x) => +x.toFixed(1)) }]));
    const [sv, sg]: Summary[] = [summarize(sides[0].p50), summarize(sides[1].p50)];
    const r = ratio(sv, sg);
    const row: Row = {
      scenario: this.name,
      metric: 'page of 100 images + members, p50 page latency (lower is better)',
      unit: 'ms',
      subject: { label: sides[0].label, value: sv },
      baseline: { label: sides[1].label, value: sg },
      ratio: r,
      target: { text: `<= ${TARGET}x (5x faster)`, met: r.median <= TARGET },
    };
    return [row];
  },
};
