import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeBackend } from '../../src/backends/native/backend';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { BusMessage, EventLog } from '../../src/events/port';
import { EventSequencer, newestSeq } from '../../src/graphql/subscriptions/sequencer';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * The sequencer over a real SQLite log. Two backends share the store: one publishes on the
 * bus the sequencer listens to, the other on a bus nobody hears, which is exactly what a
 * subscriber sees when its broker connection drops or a publish fails after commit.
 */
const owner: Principal = { projectId: 'p', userId: 'u', roles: ['member', 'reader'] };

let dir: string;
let store: SqliteMetadataStore;
let heard: MemoryEventBus;
let live: NativeBackend;
let unheard: NativeBackend;
let log: EventLog;
let sequencer: EventSequencer | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-sequencer-'));
  store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
  await store.migrate();
  heard = new MemoryEventBus();
  const backend = (bus: MemoryEventBus) =>
    new NativeBackend({ name: 'native', types: new TypeRegistry([]), store, bus, paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts' });
  live = backend(heard);
  unheard = backend(new MemoryEventBus());
  log = { read: (after, limit) => store.readEvents(after, limit), oldestSeq: async () => (await store.readEvents(0, 1))[0]?.seq ?? null };
});
afterEach(async () => {
  sequencer?.stop();
  sequencer = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a sequencer and records what it delivers as "kind:name". */
async function started(onLost?: (afterSeq: number, oldest: number) => void): Promise<{ delivered: string[]; seqs: number[]; until: (n: number) => Promise<void> }> {
  sequencer = new EventSequencer({ bus: heard, log, onLost });
  const delivered: string[] = [];
  const seqs: number[] = [];
  const waiters: (() => void)[] = [];
  sequencer.subscribe((m: BusMessage) => {
    if (m.topic !== 'artifact') return;
    delivered.push(`${m.event.kind}:${m.event.snapshot.name}`);
    seqs.push(m.event.seq);
    waiters.splice(0).forEach((wake) => wake());
  });
  await sequencer.start();
  return {
    delivered,
    seqs,
    async until(n) {
      while (delivered.length < n) await new Promise<void>((wake) => waiters.push(wake));
    },
  };
}

describe('EventSequencer', () => {
  it('passes live events through in order, and nothing from before it started', async () => {
    await live.create(owner, { typeName: 'images', name: 'before' });
    const out = await started();
    const a = await live.create(owner, { typeName: 'images', name: 'a' });
    await live.update(owner, a.id, { name: 'a2' });
    expect(out.delivered).toEqual(['created:a', 'updated:a2']);
  });

  it('fills a gap from the log: events the bus never brought come first, in seq order, then the one that revealed the gap', async () => {
    const out = await started();
    const first = await live.create(owner, { typeName: 'images', name: 'heard-1' });
    const missed = await unheard.create(owner, { typeName: 'images', name: 'missed-1' });
    await unheard.update(owner, missed.id, { name: 'missed-2' });
    await unheard.delete(owner, missed.id);
    await live.update(owner, first.id, { name: 'heard-2' });
    await out.until(5);
    expect(out.delivered).toEqual(['created:heard-1', 'created:missed-1', 'updated:missed-2', 'deleted:missed-2', 'updated:heard-2']);
    expect(out.seqs).toEqual([...out.seqs].sort((x, y) => x - y));
    expect(new Set(out.seqs).size).toBe(5);
  });

  it('drops events the bus brings late, after the log already gave them', async () => {
    const out = await started();
    const a = await live.create(owner, { typeName: 'images', name: 'a' });
    // A copy of the same event arriving again (a redelivery, or a late publish of another instance).
    const [stored] = await store.readEvents(0, 100).then((events) => events.filter((e) => e.artifactId === a.id));
    await heard.publish({ topic: 'artifact', event: stored });
    await live.update(owner, a.id, { name: 'b' });
    await heard.publish({ topic: 'artifact', event: stored });
    expect(out.delivered).toEqual(['created:a', 'updated:b']);
  });

  it('reads the log when the bus announces an event it cannot place yet, until the log has nothing newer', async () => {
    const out = await started();
    for (let i = 0; i < 3; i++) await unheard.create(owner, { typeName: 'images', name: `quiet-${i}` });
    // A message claiming a seq the log does not hold (a foreign publisher): the log wins.
    const [last] = (await store.readEvents(0, 100)).slice(-1);
    await heard.publish({ topic: 'artifact', event: { ...last, seq: last.seq + 1000 } });
    await out.until(3);
    await live.create(owner, { typeName: 'images', name: 'after' });
    await out.until(4);
    expect(out.delivered).toEqual(['created:quiet-0', 'created:quiet-1', 'created:quiet-2', 'created:after']);
  });
});

describe('EventSequencer and a pruned log', () => {
  it('reports events pruned before it could deliver them, to its listeners too, and goes on with what the log kept', async () => {
    const lost: string[] = [];
    const out = await started((afterSeq, oldest) => lost.push(`after ${afterSeq}, oldest ${oldest}`));
    let told = 0;
    sequencer?.onLost(() => told++);
    const first = await live.create(owner, { typeName: 'images', name: 'heard' });
    for (let i = 0; i < 5; i++) await unheard.create(owner, { typeName: 'images', name: `gone-${i}` });
    await store.pruneEvents(2);
    await live.update(owner, first.id, { name: 'heard-again' });
    await out.until(4);
    const kept = await store.readEvents(0, 10);
    expect(out.delivered).toEqual(['created:heard', 'created:gone-3', 'created:gone-4', 'updated:heard-again']);
    expect(lost).toEqual([`after ${out.seqs[0]}, oldest ${kept[0].seq}`]);
    expect(told).toBe(1);
  });
});

describe('newestSeq', () => {
  it('finds the newest seq of the log with single-event reads, after pruning too, and 0 for an empty log', async () => {
    expect(await newestSeq(log)).toBe(0);
    const a = await live.create(owner, { typeName: 'images', name: 'n' });
    // More than the first doubling step (1024), so the search has to double before it halves.
    for (let i = 0; i < 1100; i++) await live.update(owner, a.id, { name: `n${i}` });
    const all = await store.readEvents(0, 5000);
    expect(all).toHaveLength(1101);
    expect(await newestSeq(log)).toBe(all[all.length - 1].seq);
    await store.pruneEvents(5);
    expect(await newestSeq(log)).toBe(all[all.length - 1].seq);
  });
});
