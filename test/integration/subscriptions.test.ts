import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client, type FormattedExecutionResult as ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { NativeBackend } from '../../src/backends/native/backend';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { EventLog, ProgressEvent } from '../../src/events/port';
import { artifactEventSource, type ArtifactEventPayload } from '../../src/graphql/subscriptions/artifact-events';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Subscriptions over real WebSockets: the graphql-ws client for the protocol as clients
 * use it, raw `ws` sockets for protocol abuse. Two projects (a and b) check that events
 * are authorised at delivery time.
 */
const PROTOCOL = 'graphql-transport-ws';

let app: TestApp;
let bus: MemoryEventBus;
const clients: Client[] = [];

beforeAll(async () => {
  bus = new MemoryEventBus();
  app = await startTestApp({ subscriptions: { maxSubscriptionsPerConnection: 3 }, artifactTypes: [{ name: 'notes', fields: { body: { kind: 'string', mutable: true, requiredOnActivate: false } } }] }, { app: { bus } });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
});
afterAll(async () => app?.close());

const wsUrl = (target: TestApp) => `${target.baseUrl.replace(/^http/, 'ws')}/graphql`;

function connect(token: string | null, target: TestApp = app, params?: Record<string, unknown>): Client {
  const client = createClient({
    url: wsUrl(target),
    webSocketImpl: WebSocket,
    connectionParams: params ?? (token ? { token } : {}),
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(client);
  return client;
}

/** Results of one operation, taken in order as they arrive. */
class Feed {
  private readonly items: ExecutionResult<any, any>[] = [];
  private readonly waiters: (() => void)[] = [];
  completed = false;
  error: unknown;
  readonly cancel: () => void;

  constructor(client: Client, query: string, variables?: Record<string, unknown>) {
    this.cancel = client.subscribe(
      { query, variables },
      {
        next: (value) => this.add(() => this.items.push(value)),
        error: (err) => this.add(() => (this.error = err)),
        complete: () => this.add(() => (this.completed = true)),
      },
    );
  }

  private add(change: () => void): void {
    change();
    this.waiters.splice(0).forEach((wake) => wake());
  }

  /** Waits until `n` results arrived (or the operation ended) and returns the first `n`. */
  async take(n: number): Promise<ExecutionResult<any, any>[]> {
    while (this.items.length < n && !this.completed && this.error === undefined) await new Promise<void>((wake) => this.waiters.push(wake));
    if (this.items.length < n) throw new Error(`operation ended after ${this.items.length} of ${n} results: ${JSON.stringify(this.error ?? 'completed')}`);
    return this.items.slice(0, n);
  }

  async ended(): Promise<void> {
    while (!this.completed && this.error === undefined) await new Promise<void>((wake) => this.waiters.push(wake));
  }

  get received(): ExecutionResult<any, any>[] {
    return [...this.items];
  }
}

/**
 * Resolves once the server has handled every message sent before it on this connection:
 * a query over the same socket answers only after earlier subscribe messages set up their
 * subscriptions (both run within the same turn of the server's event loop).
 */
async function barrier(client: Client): Promise<void> {
  const feed = new Feed(client, '{ viewer { projectId } }');
  await feed.take(1);
}

const EVENTS = `subscription($filter: ArtifactEventFilter, $after: String) {
  artifactEvents(filter: $filter, after: $after) { cursor kind artifactId typeName from to revision at artifact { id name visibility owner revision } }
}`;

async function ok(query: string, variables?: Record<string, unknown>, token = app.tokens.memberA, target = app): Promise<any> {
  const res = await target.gql(query, variables, token);
  if (res.body.errors) throw new Error(`unexpected errors: ${JSON.stringify(res.body.errors)}`);
  return res.body.data;
}

const createImage = (name: string, visibility = 'SHARED', token = app.tokens.memberA, target = app) =>
  ok(`mutation($input: CreateImageInput!) { createImage(input: $input) { id } }`, { input: { name, visibility } }, token, target).then((d) => d.createImage.id as string);
const rename = (id: string, name: string, token = app.tokens.memberA, target = app) => ok(`mutation($id: ID!, $name: String) { updateImage(id: $id, input: { name: $name }) { id } }`, { id, name }, token, target);
const setVisibility = (id: string, visibility: string, token = app.tokens.memberA) => ok(`mutation($id: ID!, $v: Visibility!) { setVisibility(id: $id, visibility: $v) { id } }`, { id, v: visibility }, token);
const remove = (id: string, token = app.tokens.memberA, target = app) => ok(`mutation($id: ID!) { deleteArtifact(id: $id) { id } }`, { id }, token, target);

const summary = (r: ExecutionResult<any, any>) => `${r.data.artifactEvents.kind}:${r.data.artifactEvents.artifact.name}`;

/** A raw socket speaking the protocol by hand; resolves its close code and reason. */
async function rawSocket(target: TestApp = app): Promise<{ ws: WebSocket; messages: any[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(wsUrl(target), PROTOCOL);
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

async function acknowledged(target: TestApp = app, token = app.tokens.memberA) {
  const raw = await rawSocket(target);
  raw.ws.send(JSON.stringify({ type: 'connection_init', payload: { token } }));
  await until(() => raw.messages.some((m) => m.type === 'connection_ack'));
  return raw;
}

/** Like `barrier`, on a raw socket: a query's answer means earlier messages were handled. */
async function barrierRaw(raw: { ws: WebSocket; messages: any[] }): Promise<void> {
  const id = `barrier-${Math.random()}`;
  raw.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query: '{ viewer { projectId } }' } }));
  await until(() => raw.messages.some((m) => m.id === id && m.type === 'complete'));
}

/** Polls a condition on data the test already holds (messages received); never a timing assertion. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('connection and authentication', () => {
  it('acknowledges a token given as token, authorization or X-Auth-Token in connection_init', async () => {
    for (const params of [{ token: app.tokens.memberB }, { authorization: `Bearer ${app.tokens.memberB}` }, { 'X-Auth-Token': app.tokens.memberB }]) {
      const client = connect(null, app, params);
      const feed = new Feed(client, '{ viewer { projectId } }');
      const [result] = await feed.take(1);
      expect(result.data).toEqual({ viewer: { projectId: 'project-b' } });
    }
  });

  it('closes with 4403 Forbidden without a token or with a bad one', async () => {
    for (const payload of [undefined, {}, { token: 'not-a-valid-token-00000000' }, { authorization: 'Basic abc' }]) {
      const raw = await rawSocket();
      raw.ws.send(JSON.stringify({ type: 'connection_init', ...(payload && { payload }) }));
      expect(await raw.closed).toEqual({ code: 4403, reason: 'Forbidden' });
      expect(raw.messages).toEqual([]);
    }
  });

  it('closes with 4401 when subscribing before the connection is acknowledged', async () => {
    const raw = await rawSocket();
    raw.ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ viewer { projectId } }' } }));
    expect((await raw.closed).code).toBe(4401);
  });

  it('closes with 4408 when connection_init does not come in time', async () => {
    const quick = await startTestApp({ subscriptions: { connectionInitWaitTimeoutMs: 50 } });
    try {
      const raw = await rawSocket(quick);
      expect(await raw.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    } finally {
      await quick.close();
    }
  });

  it('refuses a WebSocket without the graphql-transport-ws subprotocol, and upgrades on other paths', async () => {
    const wrong = new WebSocket(wsUrl(app));
    const code = await new Promise<number>((resolve) => wrong.on('close', (c) => resolve(c)));
    expect(code).toBe(4406);
    const elsewhere = new WebSocket(`${app.baseUrl.replace(/^http/, 'ws')}/elsewhere`, PROTOCOL);
    const status = await new Promise<number | undefined>((resolve) => {
      wrong.on('error', () => undefined);
      elsewhere.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      elsewhere.on('error', () => resolve(undefined));
    });
    expect(status).toBe(404);
  });
});

describe('artifactEvents', () => {
  it('streams created, updated, status changed and deleted events with cursors, kinds and the artifact', async () => {
    const client = connect(app.tokens.memberA);
    const feed = new Feed(client, EVENTS, { filter: { owners: ['project-a'] } });
    await barrier(client);

    // One change at a time: the artifact is read when its event is delivered.
    const id = await createImage('lifecycle-1');
    await feed.take(1);
    await rename(id, 'lifecycle-2');
    await feed.take(2);
    await remove(id);

    const events = (await feed.take(3)).map((r) => r.data.artifactEvents);
    expect(events.map((e) => e.kind)).toEqual(['CREATED', 'UPDATED', 'DELETED']);
    expect(events.map((e) => e.artifact.name)).toEqual(['lifecycle-1', 'lifecycle-2', 'lifecycle-2']);
    expect(events[2]).toMatchObject({ from: 'QUEUED', to: 'DELETED', artifactId: id, typeName: 'images', revision: 3 });
    expect(events.map((e) => e.revision)).toEqual([1, 2, 3]);
    expect(new Set(events.map((e) => e.cursor)).size).toBe(3);
    expect(events.every((e) => typeof e.cursor === 'string' && !/^\d+$/.test(e.cursor))).toBe(true);
  });

  it('reports status changes from → to', async () => {
    const client = connect(app.tokens.admin);
    const feed = new Feed(client, EVENTS, { filter: { kinds: ['STATUS_CHANGED'] } });
    await barrier(client);
    const note = await ok(`mutation { createArtifact(input: { typeName: "notes", name: "n" }) { id } }`, undefined, app.tokens.admin);
    const id = note.createArtifact.id;
    await ok(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id }, app.tokens.admin);
    await ok(`mutation($id: ID!) { deactivateArtifact(id: $id) { id } }`, { id }, app.tokens.admin);
    const events = (await feed.take(2)).map((r) => r.data.artifactEvents);
    expect(events.map((e) => [e.kind, e.from, e.to, e.typeName])).toEqual([
      ['STATUS_CHANGED', 'DRAFTED', 'ACTIVE', 'notes'],
      ['STATUS_CHANGED', 'ACTIVE', 'DEACTIVATED', 'notes'],
    ]);
    await remove(id, app.tokens.admin);
  });

  it('filters by ids, names and kinds, and completes a per-id subscription when its artifacts are deleted', async () => {
    const keep = await createImage('filter-keep');
    const other = await createImage('filter-other');
    const client = connect(app.tokens.memberA);
    const byId = new Feed(client, EVENTS, { filter: { ids: [keep] } });
    const byName = new Feed(client, EVENTS, { filter: { names: ['filter-other'], kinds: ['UPDATED'] } });
    await barrier(client);

    await rename(other, 'filter-other');
    await rename(keep, 'filter-keep-2');
    await setVisibility(other, 'COMMUNITY');
    await remove(keep);

    expect((await byId.take(2)).map(summary)).toEqual(['UPDATED:filter-keep-2', 'DELETED:filter-keep-2']);
    await byId.ended();
    expect(byId.completed).toBe(true);
    expect((await byName.take(1)).map(summary)).toEqual(['UPDATED:filter-other']);
    await remove(other);
  });

  it('delivers only what the subscriber may read: other projects see public and community artifacts only', async () => {
    const clientB = connect(app.tokens.memberB);
    const feedB = new Feed(clientB, EVENTS, { filter: { owners: ['project-a'] } });
    await barrier(clientB);

    const hidden = await createImage('visibility-private', 'PRIVATE');
    const open = await createImage('visibility-community', 'COMMUNITY');
    expect((await feedB.take(1)).map(summary)).toEqual(['CREATED:visibility-community']);

    await setVisibility(open, 'PRIVATE'); // from now on b may not read it
    await rename(open, 'visibility-community-2');
    await rename(hidden, 'visibility-private-2');
    await remove(hidden);
    await remove(open);
    const sentinel = await createImage('visibility-sentinel', 'COMMUNITY');
    await remove(sentinel);

    await feedB.take(3);
    expect(feedB.received.map(summary)).toEqual(['CREATED:visibility-community', 'CREATED:visibility-sentinel', 'DELETED:visibility-sentinel']);
  });

  it('resumes after a cursor with the missed events first, then live ones, without gaps or duplicates', async () => {
    const filter = { names: ['resume'] };
    const first = connect(app.tokens.memberA);
    const feed = new Feed(first, EVENTS, { filter });
    await barrier(first);
    const id = await createImage('resume');
    const [created] = await feed.take(1);
    feed.cancel();

    const tag = (t: string) => ok(`mutation($id: ID!, $t: String!) { addTags(id: $id, tags: [$t]) { id } }`, { id, t });
    await tag('one');
    await tag('two');

    const second = connect(app.tokens.memberA);
    const resumed = new Feed(second, EVENTS, { filter, after: created.data.artifactEvents.cursor });
    expect((await resumed.take(2)).map((r) => r.data.artifactEvents.revision)).toEqual([2, 3]);
    await tag('three');
    await remove(id);

    const all = (await resumed.take(4)).map((r) => r.data.artifactEvents);
    expect(all.map((e) => [e.kind, e.revision])).toEqual([
      ['UPDATED', 2],
      ['UPDATED', 3],
      ['UPDATED', 4],
      ['DELETED', 5],
    ]);
    expect(created.data.artifactEvents.revision).toBe(1);
  });

  it('rejects a malformed cursor with CURSOR_INVALID', async () => {
    const feed = new Feed(connect(app.tokens.memberA), EVENTS, { after: 'bm90LWEtY3Vyc29y' });
    const [result] = await feed.take(1);
    expect(result.errors?.[0].extensions?.code).toBe('CURSOR_INVALID');
    await feed.ended();
  });

  it('resolves nested fields of the delivered artifact through per-event loaders', async () => {
    const client = connect(app.tokens.memberA);
    const feed = new Feed(client, `subscription { artifactEvents(filter: { names: ["nested"] }) { kind artifact { id tags members { project } ... on Image { minDisk } } } }`);
    await barrier(client);
    const id = await createImage('nested');
    await ok(`mutation($id: ID!) { addTags(id: $id, tags: ["a"]) { id } }`, { id });
    await ok(`mutation($id: ID!) { addMember(artifactId: $id, project: "project-b") { project } }`, { id });
    const events = (await feed.take(3)).map((r) => r.data.artifactEvents);
    expect(events[2].artifact).toEqual({ id, tags: ['a'], members: [{ project: 'project-b' }], minDisk: 0 });
    await remove(id);
  });
});

describe('resume against a pruned log', () => {
  it('answers CURSOR_EXPIRED for a cursor older than the oldest kept event, and replays from one that is not', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vitrine-subs-'));
    try {
      const before = await startTestApp({}, { dataDir });
      const cursors: string[] = [];
      try {
        const client = connect(before.tokens.memberA, before);
        const feed = new Feed(client, EVENTS);
        await barrier(client);
        const id = await createImage('pruned', 'SHARED', before.tokens.memberA, before);
        for (let i = 1; i <= 4; i++) await rename(id, `pruned-${i}`, before.tokens.memberA, before);
        cursors.push(...(await feed.take(5)).map((r) => r.data.artifactEvents.cursor));
        await client.dispose();
      } finally {
        await before.close();
      }

      // Restarting with events.keep = 2 prunes the log to the last two events (revisions 4 and 5).
      const after = await startTestApp({ events: { keep: 2 } }, { dataDir });
      try {
        const expired = new Feed(connect(after.tokens.memberA, after), EVENTS, { after: cursors[1] });
        const [result] = await expired.take(1);
        expect(result.errors?.[0].extensions?.code).toBe('CURSOR_EXPIRED');

        const fine = new Feed(connect(after.tokens.memberA, after), EVENTS, { after: cursors[2] });
        expect((await fine.take(2)).map((r) => r.data.artifactEvents.revision)).toEqual([4, 5]);
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('uploadProgress and importProgress', () => {
  const progress = (artifactId: string, overrides: Partial<ProgressEvent>): ProgressEvent => ({
    kind: 'uploadProgress',
    artifactId,
    owner: 'project-a',
    subject: 'image',
    bytes: 0,
    total: 1000,
    ratePerSecond: 100,
    etaSeconds: 10,
    done: false,
    at: new Date().toISOString(),
    ...overrides,
  });
  const UPLOAD = `subscription($id: ID!, $field: String, $key: String) { uploadProgress(artifactId: $id, field: $field, key: $key) { artifactId field key bytes total rate etaSeconds done outcome error artifact { id } } }`;

  it('streams bytes, rate and ETA, then a final event with the outcome, then completes', async () => {
    const id = await createImage('upload');
    const client = connect(app.tokens.memberA);
    const feed = new Feed(client, UPLOAD, { id, field: 'image' });
    await barrier(client);
    await bus.publish({ topic: 'progress', event: progress(id, { subject: 'other', bytes: 1 }) }); // another field: not followed
    await bus.publish({ topic: 'progress', event: progress(id, { bytes: 500, etaSeconds: 5 }) });
    await feed.take(1);
    await bus.publish({ topic: 'progress', event: progress(id, { bytes: 1000, etaSeconds: 0, done: true, outcome: 'succeeded' }) });
    await feed.ended();
    expect(feed.completed).toBe(true);
    expect(feed.received.map((r) => r.data.uploadProgress)).toEqual([
      { artifactId: id, field: 'image', key: null, bytes: 500, total: 1000, rate: 100, etaSeconds: 5, done: false, outcome: null, error: null, artifact: { id } },
      { artifactId: id, field: 'image', key: null, bytes: 1000, total: 1000, rate: 100, etaSeconds: 0, done: true, outcome: 'SUCCEEDED', error: null, artifact: { id } },
    ]);
    await remove(id);
  });

  it('coalesces progress a slow consumer has not taken yet: the newest wins, the final event is kept', async () => {
    const id = await createImage('coalesce');
    const client = connect(app.tokens.memberA);
    const feed = new Feed(client, UPLOAD, { id });
    await barrier(client);
    // Published synchronously in one turn: the subscriber cannot take any before the last one.
    for (let bytes = 1; bytes <= 200; bytes++) void bus.publish({ topic: 'progress', event: progress(id, { bytes }) });
    void bus.publish({ topic: 'progress', event: progress(id, { bytes: 1000, done: true, outcome: 'failed', error: 'disk full' }) });
    await feed.ended();
    const received = feed.received.map((r) => r.data.uploadProgress);
    expect(received.length).toBeLessThanOrEqual(2);
    expect(received[received.length - 1]).toMatchObject({ done: true, outcome: 'FAILED', error: 'disk full', bytes: 1000 });
    await remove(id);
  });

  it('follows one blob-dict key, and completes when the artifact is deleted', async () => {
    const id = await createImage('dict');
    const client = connect(app.tokens.memberA);
    const feed = new Feed(client, UPLOAD, { id, field: 'files', key: 'a/b.txt' });
    await barrier(client);
    await bus.publish({ topic: 'progress', event: progress(id, { subject: 'files/other', bytes: 1 }) });
    await bus.publish({ topic: 'progress', event: progress(id, { subject: 'files/a/b.txt', bytes: 7 }) });
    const [first] = await feed.take(1);
    expect(first.data.uploadProgress).toMatchObject({ field: 'files', key: 'a/b.txt', bytes: 7 });
    await remove(id);
    await feed.ended();
    expect(feed.completed).toBe(true);
    expect(feed.received).toHaveLength(1);
  });

  it('answers NOT_FOUND for an artifact the subscriber may not read, and never delivers its progress', async () => {
    const id = await createImage('secret-upload', 'PRIVATE');
    const feed = new Feed(connect(app.tokens.memberB), UPLOAD, { id });
    const [result] = await feed.take(1);
    expect(result.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    await remove(id);
  });

  it('streams import progress with the same shape', async () => {
    const id = await createImage('import');
    const client = connect(app.tokens.memberA);
    const feed = new Feed(client, `subscription($id: ID!) { importProgress(imageId: $id) { imageId method stage bytes storesDone storesFailed done outcome finalStatus image { id } } }`, { id });
    await barrier(client);
    await bus.publish({ topic: 'progress', event: progress(id, { kind: 'importProgress', subject: 'web-download', stage: 'copy', storesDone: ['s1'], storesFailed: [], done: true, outcome: 'succeeded', finalStatus: 'active' }) });
    const [result] = await feed.take(1);
    expect(result.data.importProgress).toEqual({ imageId: id, method: 'web-download', stage: 'copy', bytes: 0, storesDone: ['s1'], storesFailed: [], done: true, outcome: 'SUCCEEDED', finalStatus: 'ACTIVE', image: { id } });
    await feed.ended();
    await remove(id);
  });
});

describe('hardening', () => {
  const codesOf = (result: ExecutionResult | undefined, error: unknown) =>
    (result?.errors ?? (Array.isArray(error) ? error : [])).map((e: any) => e.extensions?.code);

  async function firstOutcome(query: string, variables?: Record<string, unknown>) {
    const feed = new Feed(connect(app.tokens.memberA), query, variables);
    await feed.ended();
    return codesOf(feed.received[0], feed.error);
  }

  it('applies the HTTP limits and codes: depth, aliases, tokens, syntax, unknown fields, variables', async () => {
    const deep = `subscription { artifactEvents { artifact { ${'links { target { '.repeat(6)}id${' } }'.repeat(6)} } } }`;
    expect(await firstOutcome(deep)).toEqual(['QUERY_TOO_DEEP']);
    expect(await firstOutcome(`{ ${Array.from({ length: 21 }, (_, i) => `a${i}: viewer { projectId }`).join(' ')} }`)).toEqual(['TOO_MANY_ALIASES']);
    expect(await firstOutcome(`{ ${'__typename '.repeat(4000)}}`)).toEqual(['TOO_MANY_TOKENS']);
    expect(await firstOutcome('subscription { artifactEvents { ')).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(await firstOutcome('subscription { artifactEventz { cursor } }')).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(await firstOutcome('subscription($id: ID!) { uploadProgress(artifactId: $id) { bytes } }', {})).toEqual(['BAD_USER_INPUT']);
    expect(await firstOutcome('query A { viewer { projectId } } query B { viewer { userId } }')).toEqual(['OPERATION_RESOLUTION_FAILURE']);
  });

  it('refuses subscriptions beyond maxSubscriptionsPerConnection with TOO_MANY_SUBSCRIPTIONS, keeping the others', async () => {
    const client = connect(app.tokens.memberA);
    const running = [1, 2, 3].map(() => new Feed(client, EVENTS, { filter: { names: ['cap'] } }));
    const refused = new Feed(client, EVENTS);
    await refused.ended();
    expect(codesOf(undefined, refused.error)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
    const id = await createImage('cap');
    for (const feed of running) expect((await feed.take(1)).map(summary)).toEqual(['CREATED:cap']);
    await remove(id);
  });

  it('closes with the protocol codes on malformed messages (4400) and duplicate ids (4409), and stays healthy', async () => {
    for (const bad of ['not json', JSON.stringify({ type: 'nonsense' }), JSON.stringify({ id: 1, type: 'subscribe', payload: { query: 5 } })]) {
      const raw = await acknowledged();
      raw.ws.send(bad);
      expect((await raw.closed).code).toBe(4400);
    }
    const raw = await acknowledged();
    const subscribe = JSON.stringify({ id: 'same', type: 'subscribe', payload: { query: EVENTS } });
    raw.ws.send(subscribe);
    raw.ws.send(subscribe);
    expect(await raw.closed).toEqual({ code: 4409, reason: 'Subscriber for same already exists' });

    const flood = await acknowledged();
    for (let i = 0; i < 500; i++) flood.ws.send(JSON.stringify({ id: `f${i}`, type: 'subscribe', payload: { query: EVENTS } }));
    await until(() => flood.messages.filter((m) => m.type === 'error').length >= 497);
    expect(flood.messages.filter((m) => m.type === 'error').every((m) => m.payload[0].extensions.code === 'TOO_MANY_SUBSCRIPTIONS')).toBe(true);
    flood.ws.close();

    expect((await app.http('GET', '/healthz')).status).toBe(200);
    const feed = new Feed(connect(app.tokens.memberA), '{ viewer { projectId } }');
    expect((await feed.take(1))[0].data).toEqual({ viewer: { projectId: 'project-a' } });
  });
});

describe('backpressure', () => {
  it('closes a consumer that stops reading with 4420, and it resumes from its last cursor without gaps', async () => {
    const properties = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, 'x'.repeat(60_000)]));
    const id = await ok(`mutation($input: CreateImageInput!) { createImage(input: $input) { id } }`, { input: { name: 'heavy', properties } }).then((d) => d.createImage.id as string);
    // About 6 MB per event: the socket's buffers fill after a few events.
    const heavy = `subscription($f: ArtifactEventFilter) { artifactEvents(filter: $f) { cursor revision ${Array.from({ length: 10 }, (_, i) => `a${i}: artifact { properties }`).join(' ')} } }`;
    const raw = await acknowledged();
    raw.ws.send(JSON.stringify({ id: 'heavy', type: 'subscribe', payload: { query: heavy, variables: { f: { ids: [id] } } } }));
    await barrierRaw(raw);
    const tcp = (raw.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    const updates = 40;
    for (let i = 0; i < updates; i++) await ok(`mutation($id: ID!, $t: String!) { addTags(id: $id, tags: [$t]) { id } }`, { id, t: `t${i}` });
    tcp.resume();

    const closed = await raw.closed;
    expect(closed).toEqual({ code: 4420, reason: 'Subscriber too slow: resubscribe with the last cursor received' });
    const delivered = raw.messages.filter((m) => m.type === 'next' && m.id === 'heavy').map((m) => m.payload.data.artifactEvents);
    expect(delivered.length).toBeLessThan(updates);
    const revisions = delivered.map((e) => e.revision);
    expect(revisions).toEqual(revisions.map((_, i) => i + 2));

    const last = delivered.length > 0 ? delivered[delivered.length - 1].cursor : undefined;
    const resumed = new Feed(connect(app.tokens.memberA), `subscription($f: ArtifactEventFilter, $after: String) { artifactEvents(filter: $f, after: $after) { revision } }`, { f: { ids: [id] }, after: last });
    const rest = (await resumed.take(updates - delivered.length)).map((r) => r.data.artifactEvents.revision);
    expect([...revisions, ...rest]).toEqual(Array.from({ length: updates }, (_, i) => i + 2));
    await remove(id);
  });
});

describe('shutdown', () => {
  it('closes every socket with 1001 Going Away and ends the subscriptions, and close() completes', async () => {
    const target = await startTestApp();
    const raw = await acknowledged(target, target.tokens.memberA);
    raw.ws.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: EVENTS } }));
    await target.close();
    expect(await raw.closed).toEqual({ code: 1001, reason: 'Server shutting down' });
  });
});

/**
 * The artifactEvents source on its own, pulled by hand, with the real native backend: the
 * test decides exactly what happens between an event's publication and its delivery.
 */
describe('the artifactEvents source', () => {
  const admin: Principal = { projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] };
  const ownerA: Principal = { projectId: 'project-a', userId: 'a', roles: ['member', 'reader'] };
  const otherB: Principal = { projectId: 'project-b', userId: 'b', roles: ['member', 'reader'] };
  let dir: string;
  let store: SqliteMetadataStore;
  let sourceBus: MemoryEventBus;
  let backend: NativeBackend;
  let log: EventLog;
  let slowClosures: number;
  const connection = { congested: () => false, closeTooSlow: () => void slowClosures++ };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-source-'));
    store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
    await store.migrate();
    sourceBus = new MemoryEventBus();
    slowClosures = 0;
    backend = new NativeBackend({ name: 'native', types: new TypeRegistry([]), store, bus: sourceBus, paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts' });
    log = { read: (after, limit) => store.readEvents(after, limit), oldestSeq: async () => (await store.readEvents(0, 1))[0]?.seq ?? null };
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const source = (principal: Principal, options: { afterSeq?: number; queueLimit?: number } = {}) =>
    artifactEventSource({ principal, backend, bus: sourceBus, log, connection, filter: {}, queueLimit: options.queueLimit ?? 100, afterSeq: options.afterSeq });
  const take = async (stream: AsyncIterableIterator<ArtifactEventPayload>, n: number) => {
    const out: string[] = [];
    while (out.length < n) {
      const step = await stream.next();
      if (step.done) break;
      out.push(`${step.value.event.kind}:${step.value.event.revision}:${step.value.artifact?.name}`);
    }
    return out;
  };

  it('checks access when an event is delivered, not when it was published', async () => {
    const image = await backend.create(ownerA, { typeName: 'images', name: 'was-public', visibility: 'community' });
    const stream = await source(otherB);
    await backend.update(ownerA, image.id, { addTags: ['x'] }); // published while b may read it
    await backend.setVisibility(ownerA, image.id, 'private'); // but private before b takes it
    const marker = await backend.create(ownerA, { typeName: 'images', name: 'marker', visibility: 'community' });
    expect(await take(stream, 1)).toEqual(['created:1:marker']);
    await backend.delete(ownerA, marker.id);
    await backend.delete(ownerA, image.id); // b could not read the snapshot: private
    await backend.create(ownerA, { typeName: 'images', name: 'end', visibility: 'community' });
    expect(await take(stream, 2)).toEqual(['deleted:2:marker', 'created:1:end']);
    await stream.return?.();
  });

  it('replays from the log, skips live events the replay covered, then continues live: no gaps, no duplicates', async () => {
    const image = await backend.create(ownerA, { typeName: 'images', name: 'r' });
    const [first] = await store.readEvents(0, 1);
    const stream = await source(ownerA, { afterSeq: first.seq });
    // Committed after the bus subscription, before the replay reads the log: in both.
    for (const tag of ['a', 'b', 'c']) await backend.update(ownerA, image.id, { addTags: [tag] });
    expect(await take(stream, 3)).toEqual(['updated:2:r', 'updated:3:r', 'updated:4:r']);
    await backend.update(ownerA, image.id, { addTags: ['d'] });
    expect(await take(stream, 1)).toEqual(['updated:5:r']);
    await stream.return?.();
  });

  it('closes a subscriber that falls more than queueLimit events behind, instead of dropping one', async () => {
    const stream = await source(admin, { queueLimit: 3 });
    for (let i = 0; i < 3; i++) await backend.create(ownerA, { typeName: 'images', name: `q${i}` });
    expect(slowClosures).toBe(0);
    await backend.create(ownerA, { typeName: 'images', name: 'q3' });
    expect(slowClosures).toBe(1);
    expect(await take(stream, 1)).toEqual([]);
  });

  it('ends promptly when returned while waiting for events, and unsubscribes from the bus', async () => {
    const stream = await source(admin);
    const pending = stream.next();
    await stream.return?.();
    expect(await pending).toEqual({ value: undefined, done: true });
    await backend.create(ownerA, { typeName: 'images', name: 'after-return' });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });
});
