import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { createApp, type App, type AppOptions } from '../../src/app/compose';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';

/**
 * Starts the real app (SQLite in a temp dir, real Fastify on 127.0.0.1:<random port>) and
 * talks to it over HTTP, as clients do. Every test app has these callers:
 * admin (project admin), memberA and readerA (project-a), memberB (project-b),
 * memberQ (project-q).
 */
export type TestCaller = 'admin' | 'memberA' | 'readerA' | 'memberB' | 'memberQ';

export const TEST_TOKENS: Readonly<Record<TestCaller, string>> = {
  admin: 'test-token-admin-0000000000000001',
  memberA: 'test-token-member-a-0000000000002',
  readerA: 'test-token-reader-a-0000000000003',
  memberB: 'test-token-member-b-0000000000004',
  memberQ: 'test-token-member-q-0000000000005',
};

const GRANTS = [
  { token: TEST_TOKENS.admin, projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] },
  { token: TEST_TOKENS.memberA, projectId: 'project-a', userId: 'member-a', roles: ['member', 'reader'] },
  { token: TEST_TOKENS.readerA, projectId: 'project-a', userId: 'reader-a', roles: ['reader'] },
  { token: TEST_TOKENS.memberB, projectId: 'project-b', userId: 'member-b', roles: ['member', 'reader'] },
  { token: TEST_TOKENS.memberQ, projectId: 'project-q', userId: 'member-q', roles: ['member', 'reader'] },
];

export interface HttpResult<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON when the response is JSON, the text otherwise. */
  body: T;
  text: string;
}

export interface GraphQLBody {
  data?: any;
  errors?: { message: string; locations?: unknown; path?: unknown; extensions?: { code?: string; [key: string]: unknown } }[];
}

export interface TestApp {
  baseUrl: string;
  tokens: typeof TEST_TOKENS;
  config: Config;
  dataDir: string;
  /** POST /graphql with a JSON body; the token defaults to admin's (pass null for none). */
  gql(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<HttpResult<GraphQLBody>>;
  /** Any request; a non-string body is sent as JSON. */
  http(method: string, path: string, options?: { headers?: Record<string, string>; body?: unknown }): Promise<HttpResult>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Keep this data dir (and do not delete it on close); a fresh temp dir otherwise. */
  dataDir?: string;
  /** Replace the test tokens (e.g. [] to exercise the generated admin token). */
  tokens?: Config['auth']['tokens'];
  app?: AppOptions;
}

/** `overrides` is a partial config (e.g. `{ mode: 'production', artifactTypes: [...] }`) applied over the test defaults. */
export async function startTestApp(overrides: Record<string, unknown> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'vitrine-test-'));
  const config = loadConfig({
    env: {},
    overrides: { host: '127.0.0.1', port: 0, dataDir, auth: { tokens: options.tokens ?? GRANTS }, ...overrides },
  });
  const app: App = await createApp(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...options.app });
  const baseUrl = await app.listen();

  const http: TestApp['http'] = async (method, path, { headers = {}, body } = {}) => {
    const json = body !== undefined && typeof body !== 'string';
    const res = await request(`${baseUrl}${path}`, {
      method: method as 'GET',
      headers: { ...(json && { 'content-type': 'application/json' }), ...headers },
      body: json ? JSON.stringify(body) : (body as string | undefined),
    });
    const text = await res.body.text();
    const type = String(res.headers['content-type'] ?? '');
    return { status: res.statusCode, headers: res.headers, text, body: type.includes('json') && text ? JSON.parse(text) : text };
  };

  return {
    baseUrl,
    tokens: TEST_TOKENS,
    config,
    dataDir,
    http,
    gql(query, variables, token = TEST_TOKENS.admin) {
      return http('POST', '/graphql', { headers: token ? { authorization: `Bearer ${token}` } : {}, body: { query, variables } });
    },
    async close() {
      await app.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
