import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'graphql';
import WebSocket from 'ws';
import { NativeBackend } from '../../src/backends/native/backend';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { EventLog } from '../../src/events/port';
import type { OperationRef, SocketHandle } from '../../src/graphql/subscriptions/context';
import { ArtifactEventFanout } from '../../src/graphql/subscriptions/fanout';
import { EventSequencer } from '../../src/graphql/subscriptions/sequencer';
import type { StoredEvent } from '../../src/storage/metadata/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Grouped delivery of artifactEvents, seen from clients on raw graphql-transport-ws
 * sockets: identical subscriptions share one execution per event, yet each subscriber still
 * gets exactly what its own principal may read, under its own operation id, at its own pace.
 */
const PROTOCOL = 'graphql-transport-ws';
const EVENTS = `subscription($f: ArtifactEventFilter, $after: String) {
  artifactEvents(filter: $f, after: $after) { cursor kind revision artifact { name visibility } }
}`;

let app: TestApp;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  app = await startTestApp();
});
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});
afterAll(async () => app?.close());

interface Client {
  ws: WebSocket;
  messages: any[];
  closed: Promise<{ code: number; reason: string }>;
  /** `next` payloads of one operation, in arrival order. */
  next(id: string): any[];
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
  /** Resolves once every message sent before it was handled (a query's answer comes after). */
  barrier(): Promise<void>;
}

/** Polls data the test already holds (messages received); never a timing assertion. */
async function until(condition: () => boolean, what: string, boundMs = 20_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function client(token: string): Promise<Client> {
  const ws = new WebSocket(`${app.baseUrl.replace(/^http/, 'ws')}/graphql`, PROTOCOL);
  sockets.push(ws);
  const messages: any[] = [];
  // The protocol's messages are text frames; a binary one is kept as such, to fail the checks.
  ws.on('message', (data, isBinary) => messages.push(isBinary ? { type: 'binary frame' } : JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'connection_init', payload: { token } }));
  await until(() => messages.some((m) => m.type === 'connection_ack'), 'acknowledged');
  let barriers = 0;
  return {
    ws,
    messages,
    closed,
    next: (id) => messages.filter((m) => m.id === id && m.type === 'next').map((m) => m.payload),
    subscribe: (id, query, variables) => ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } })),
    async barrier() {
      const id = `barrier-${++barriers}`;
      ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query: '{ viewer { projectId } }' } }));
      await until(() => messages.some((m) => m.id === id && m.type === 'complete'), 'past the barrier');
    },
  };
}

async function ok(query: string, variables: Record<string, unknown>, token: string): Promise<any> {
  const res = await app.gql(query, variables, token);
  if (res.body.errors) throw new Error(`unexpected errors: ${JSON.stringify(res.body.errors)}`);
  return res.body.data;
}
const createImage = (name: string, visibility: string, token = app.tokens.memberA) =>
  ok(`mutation($input: CreateImageInput!) { createImage(input: $input) { id } }`, { input: { name, visibility } }, token).then((d) => d.createImage.id as string);
const rename = (id: string, name: string, token = app.tokens.memberA): Promise<unknown> => ok(`mutation($id: ID!, $name: String) { updateImage(id: $id, input: { name: $name }) { id } }`, { id, name }, token);
const setVisibility = (id: string, v: string) => ok(`mutation($id: ID!, $v: Visibility!) { setVisibility(id: $id, visibility: $v) { id } }`, { id, v }, app.tokens.memberA);
const remove = (id: string, token = app.tokens.memberA) => ok(`mutation($id: ID!) { deleteArtifact(id: $id) { id } }`, { id }, token);

const names = (payloads: any[]) => payloads.map((p) => `${p.data.artifactEvents.kind}:${p.data.artifactEvents.artifact.name}`);

describe('grouped artifactEvents', () => {
  it('gives each subscriber of one identical subscription only what its principal may read, under its own id', async () => {
    const f = { names: ['g-private', 'g-community', 'g-shared-b', 'g-sentinel'] };
    const [a1, a2, b1, b2] = await Promise.all([client(app.tokens.memberA), client(app.tokens.memberA), client(app.tokens.memberB), client(app.tokens.memberB)]);
    // Two subscriptions on one socket, two on others: the same document and variables for all.
    a1.subscribe('one', EVENTS, { f });
    a1.subscribe('two', EVENTS, { f });
    a2.subscribe('3f1c', EVENTS, { f });
    b1.subscribe('one', EVENTS, { f });
    b2.subscribe('b-2', EVENTS, { f });
    await Promise.all([a1, a2, b1, b2].map((c) => c.barrier()));

    const hidden = await createImage('g-private', 'PRIVATE');
    const open = await createImage('g-community', 'COMMUNITY');
    const ofB = await createImage('g-shared-b', 'PRIVATE', app.tokens.memberB);
    // Access is judged at delivery: let b's group deliver these before the artifact turns private.
    await until(() => b1.next('one').length === 2 && b2.next('b-2').length === 2, 'delivered to b');
    await setVisibility(open, 'PRIVATE'); // from now on b may not read it
    await ok(`mutation($id: ID!) { addTags(id: $id, tags: ["t"]) { id } }`, { id: open }, app.tokens.memberA);
    const sentinel = await createImage('g-sentinel', 'COMMUNITY');

    const forA = ['CREATED:g-private', 'CREATED:g-community', 'UPDATED:g-community', 'UPDATED:g-community', 'CREATED:g-sentinel'];
    const forB = ['CREATED:g-community', 'CREATED:g-shared-b', 'CREATED:g-sentinel'];
    await until(() => [a1.next('one'), a1.next('two'), a2.next('3f1c')].every((l) => l.length >= forA.length) && [b1.next('one'), b2.next('b-2')].every((l) => l.length >= forB.length), 'delivered');
    for (const received of [a1.next('one'), a1.next('two'), a2.next('3f1c')]) expect(names(received)).toEqual(forA);
    for (const received of [b1.next('one'), b2.next('b-2')]) expect(names(received)).toEqual(forB);
    // The same events, the same bytes for identical subscribers: equal payloads, cursors included.
    expect(a1.next('two')).toEqual(a2.next('3f1c'));
    expect(b1.next('one')).toEqual(b2.next('b-2'));
    expect([a1, a2, b1, b2].flatMap((c) => c.messages).filter((m) => m.type === 'binary frame')).toEqual([]);

    for (const id of [hidden, open, sentinel]) await remove(id);
    await remove(ofB, app.tokens.memberB);
  });

  it('keeps delivering to the others when one identical subscriber completes or stops reading (4420 for that one alone)', async () => {
    const properties = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, 'x'.repeat(60_000)]));
    const id = await ok(`mutation($input: CreateImageInput!) { createImage(input: $input) { id } }`, { input: { name: 'g-heavy', properties } }, app.tokens.memberA).then((d) => d.createImage.id as string);
    // About 1.2 MB per event: a socket that does not read fills its buffers after a dozen.
    const heavy = `subscription($f: ArtifactEventFilter) { artifactEvents(filter: $f) { revision ${Array.from({ length: 2 }, (_, i) => `a${i}: artifact { properties }`).join(' ')} } }`;
    const variables = { f: { ids: [id] } };
    const [reader, stalled, quitter] = await Promise.all([client(app.tokens.memberA), client(app.tokens.memberA), client(app.tokens.memberA)]);
    for (const c of [reader, stalled, quitter]) c.subscribe('h', heavy, variables);
    await Promise.all([reader, stalled, quitter].map((c) => c.barrier()));
    quitter.ws.send(JSON.stringify({ id: 'h', type: 'complete' }));
    await quitter.barrier();
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();

    const updates = 40;
    for (let i = 0; i < updates; i++) await ok(`mutation($id: ID!, $t: String!) { addTags(id: $id, tags: [$t]) { id } }`, { id, t: `t${i}` }, app.tokens.memberA);
    await until(() => reader.next('h').length >= updates, 'all delivered to the reader', 40_000);
    expect(reader.next('h').map((p) => p.data.artifactEvents.revision)).toEqual(Array.from({ length: updates }, (_, i) => i + 2));

    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await stalled.closed).toEqual({ code: 4420, reason: 'Subscriber too slow: resubscribe with the last cursor received' });
    expect(stalled.next('h').length).toBeLessThan(updates);
    expect(quitter.next('h')).toEqual([]);
    expect(reader.ws.readyState).toBe(WebSocket.OPEN);
    await remove(id);
  });

  it('switches subscribers that resume with the same cursor from the log to the live group without a gap or a duplicate, while events keep coming', async () => {
    const watcher = await client(app.tokens.memberA);
    const f = { names: ['g-resume'] };
    watcher.subscribe('w', EVENTS, { f });
    await watcher.barrier();
    const id = await createImage('g-resume', 'SHARED');
    await until(() => watcher.next('w').length === 1, 'created');
    const after = watcher.next('w')[0].data.artifactEvents.cursor;

    const tag = (t: string) => ok(`mutation($id: ID!, $t: String!) { addTags(id: $id, tags: [$t]) { id } }`, { id, t }, app.tokens.memberA);
    for (let i = 0; i < 5; i++) await tag(`early-${i}`);
    const first = await client(app.tokens.memberA);
    first.subscribe('r', EVENTS, { f, after });
    // A second subscriber with the same cursor joins while the first is live and events flow.
    const second = await client(app.tokens.memberA);
    const flowing = (async () => {
      for (let i = 0; i < 30; i++) {
        await tag(`late-${i}`);
        if (i === 10) second.subscribe('r', EVENTS, { f, after });
      }
    })();
    await flowing;
    await tag('last');
    const expected = Array.from({ length: 36 }, (_, i) => i + 2);
    await until(() => first.next('r').length >= expected.length && second.next('r').length >= expected.length, 'caught up');
    await first.barrier();
    await second.barrier();
    expect(first.next('r').map((p) => p.data.artifactEvents.revision)).toEqual(expected);
    expect(second.next('r').map((p) => p.data.artifactEvents.revision)).toEqual(expected);
    await remove(id);
  });

  it('completes every identical fixed-ids subscriber once its artifacts are deleted, after the DELETED event', async () => {
    const id = await createImage('g-ids', 'SHARED');
    const [c1, c2] = await Promise.all([client(app.tokens.memberA), client(app.tokens.readerA)]);
    c1.subscribe('x', EVENTS, { f: { ids: [id] } });
    c1.subscribe('y', EVENTS, { f: { ids: [id] } });
    c2.subscribe('x', EVENTS, { f: { ids: [id] } });
    await Promise.all([c1.barrier(), c2.barrier()]);
    await rename(id, 'g-ids-2');
    await remove(id);
    for (const [c, op] of [[c1, 'x'], [c1, 'y'], [c2, 'x']] as const) {
      await until(() => c.messages.some((m) => m.id === op && m.type === 'complete'), 'completed');
      const ofOp = c.messages.filter((m) => m.id === op).map((m) => (m.type === 'next' ? `${m.payload.data.artifactEvents.kind}` : m.type));
      expect(ofOp).toEqual(['UPDATED', 'DELETED', 'complete']);
    }
  });
});

describe('keep-alive', () => {
  it('pings every socket each interval from one shared timer, and terminates one that stops answering', async () => {
    const quick = await startTestApp({ subscriptions: { keepAliveMs: 160 } });
    const open = (autoPong: boolean) =>
      new Promise<{ ws: WebSocket; pings: () => number; closed: Promise<number> }>((resolve, reject) => {
        const ws = new WebSocket(`${quick.baseUrl.replace(/^http/, 'ws')}/graphql`, PROTOCOL, { autoPong });
        sockets.push(ws);
        let pings = 0;
        ws.on('ping', () => pings++);
        const closed = new Promise<number>((done) => ws.on('close', (code) => done(code)));
        ws.once('open', () => {
          ws.send(JSON.stringify({ type: 'connection_init', payload: { token: quick.tokens.memberA } }));
          resolve({ ws, pings: () => pings, closed });
        });
        ws.once('error', reject);
      });
    try {
      const answering = await Promise.all(Array.from({ length: 20 }, () => open(true)));
      const silent = await open(false);
      // Terminated, not closed: no close frame, hence 1006 on this side.
      expect(await silent.closed).toBe(1006);
      expect(silent.pings()).toBeGreaterThanOrEqual(1);
      await until(() => answering.every((s) => s.pings() >= 3), 'pinged three times');
      expect(answering.every((s) => s.ws.readyState === WebSocket.OPEN)).toBe(true);
    } finally {
      await quick.close();
    }
  });
});

/**
 * The switch from replay to live, with the one fault that makes it delicate: a log read
 * that answers late. The read sees the log before an event commits, and answers after the
 * live group has already written that event; the resuming subscriber must still get it, once.
 * Frames are recorded by a stand-in for the socket; store, backend, bus and log are real.
 */
describe('replay to live, with a slow log read', () => {
  const owner: Principal = { projectId: 'p', userId: 'u', roles: ['member', 'reader'] };
  let dir: string;
  let store: SqliteMetadataStore;
  let sequencer: EventSequencer;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-fanout-'));
    store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
    await store.migrate();
  });
  afterEach(async () => {
    sequencer?.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function recorder(): SocketHandle & { seqs: number[] } {
    const seqs: number[] = [];
    return {
      seqs,
      congested: () => false,
      closeTooSlow: () => {
        throw new Error('not expected to be too slow');
      },
      send(frame, sent) {
        seqs.push(JSON.parse(String(frame)).payload.seq);
        sent?.();
      },
    };
  }

  it('gives the resuming subscriber what the group wrote while its last read was on its way', async () => {
    const bus = new MemoryEventBus();
    const backend = new NativeBackend({ name: 'native', types: new TypeRegistry([]), store, bus, paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts' });
    // The fault: a read that is held back after it has seen the log.
    let held: { started: () => void; release: Promise<void> } | undefined;
    const log: EventLog = {
      async read(after, limit) {
        const events: StoredEvent[] = await store.readEvents(after, limit);
        const hold = held;
        held = undefined;
        if (hold) {
          hold.started();
          await hold.release;
        }
        return events;
      },
      oldestSeq: async () => (await store.readEvents(0, 1))[0]?.seq ?? null,
    };
    sequencer = new EventSequencer({ bus, log });
    const fanout = new ArtifactEventFanout({ backend, log, events: sequencer, queueLimit: 100, render: async (_execution, payload) => JSON.stringify({ seq: payload.event.seq }) });
    const operation = (id: string): OperationRef => ({ id, query: 'subscription { artifactEvents { cursor } }', variables: { same: true }, document: parse('subscription { artifactEvents { cursor } }') });

    const image = await backend.create(owner, { typeName: 'images', name: 'r' });
    const [created] = await store.readEvents(0, 1);
    const live = recorder();
    await fanout.join({ principal: owner, filter: {}, operation: operation('live'), connection: live });

    // The resuming subscriber's first read returns the created event; its second is held.
    let readStarted!: () => void;
    const secondRead = new Promise<void>((resolve) => (readStarted = resolve));
    let release!: () => void;
    const releasing = new Promise<void>((resolve) => (release = resolve));
    const resuming = recorder();
    const firstRead = log.read.bind(log);
    let reads = 0;
    log.read = async (after, limit) => {
      if (++reads === 2) held = { started: readStarted, release: releasing };
      return firstRead(after, limit);
    };
    await fanout.join({ principal: owner, filter: {}, afterSeq: created.seq - 1, operation: operation('resuming'), connection: resuming });
    await secondRead;

    await backend.update(owner, image.id, { addTags: ['while-reading'] });
    await until(() => live.seqs.length === 1, 'written to the live subscriber');
    release();
    const after = await backend.update(owner, image.id, { addTags: ['after'] });
    const all = (await store.readEvents(0, 10)).map((e) => e.seq);
    await until(() => resuming.seqs.length >= all.length && live.seqs.length >= all.length - 1, 'delivered to both', 5_000).catch((err: Error) => {
      throw new Error(`${err.message}: resuming got ${JSON.stringify(resuming.seqs)}, live got ${JSON.stringify(live.seqs)}, the log holds ${JSON.stringify(all)}`);
    });

    expect(after.revision).toBe(3);
    expect(resuming.seqs).toEqual(all);
    expect(live.seqs).toEqual(all.slice(1));
    expect(fanout.size).toEqual({ groups: 1, members: 2 });
    fanout.close();
    expect(fanout.size).toEqual({ groups: 0, members: 0 });
  });
});
