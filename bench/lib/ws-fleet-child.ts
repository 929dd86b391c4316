// One load-generator process of subscription.fanout: holds a share of the
// WebSocket clients and timestamps, per client, the arrival of each event.
// Driven by its parent over IPC (see ws-fleet.ts); never talks to anything
// but 127.0.0.1. Timestamps are process.hrtime (CLOCK_MONOTONIC, the same
// clock in every process of the machine), in ms.
//
// Two client implementations:
//  - raw: `ws` sockets speaking graphql-transport-ws by hand (connection_init
//    with { token }, subscribe, ping/pong as the "subscribed" check), or no
//    protocol at all for the bare broadcast server. An event's arrival is taken
//    in the socket's 'message' handler before any parsing.
//  - graphql-ws: the reference client (createClient + ws) per subscriber; the
//    arrival is taken in its `next` callback (after its JSON parse).
import { createClient, type Client as GqlClient } from 'graphql-ws';
import WebSocket from 'ws';

export type Impl = 'raw' | 'graphql-ws';

export type FleetCommand =
  | { cmd: 'connect'; group: string; url: string; count: number; protocol: 'graphql-ws' | 'none'; impl: Impl; token?: string; query?: string; parallel: number; timeoutMs: number }
  | { cmd: 'arm'; group: string; event: number; timeoutMs: number }
  | { cmd: 'close'; group: string }
  | { cmd: 'exit' };

export type FleetReply =
  | { type: 'connected'; group: string; ok: number; failed: number; firstError?: string; ms: number; rss: number; cpuMs: number }
  | { type: 'armed'; group: string; event: number }
  | { type: 'done'; group: string; event: number; times: number[]; missing: number; bytes: number; cpuMs: number }
  | { type: 'closed'; group: string; unexpectedCloses: number }
  | { type: 'fatal'; message: string };

interface Sub {
  arrived: number; // ms, 0 = not yet in the armed event
  close(): void;
}

interface Group {
  subs: Sub[];
  armedEvent: number | null;
  remaining: number;
  bytes: number;
  timer?: NodeJS.Timeout;
  unexpectedCloses: number;
  closing: boolean;
}

const groups = new Map<string, Group>();
const send = (m: FleetReply): void => void process.send?.(m);
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function arrive(g: Group, s: Sub, bytes: number): void {
  if (g.armedEvent === null || s.arrived !== 0) return;
  s.arrived = nowMs();
  if (g.bytes === 0) g.bytes = bytes;
  if (--g.remaining === 0) finish(g);
}

function finish(g: Group): void {
  if (g.armedEvent === null) return;
  clearTimeout(g.timer);
  const times = g.subs.map((s) => s.arrived);
  const event = g.armedEvent;
  g.armedEvent = null;
  send({ type: 'done', group: groupName(g), event, times, missing: times.filter((t) => t === 0).length, bytes: g.bytes, cpuMs: cpuMs() });
}

function groupName(g: Group): string {
  for (const [k, v] of groups) if (v === g) return k;
  return '?';
}

/** One raw socket; resolves when ready (subscribed, or open without protocol). */
function rawClient(g: Group, c: Extract<FleetCommand, { cmd: 'connect' }>): Promise<Sub> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(c.url, c.protocol === 'graphql-ws' ? 'graphql-transport-ws' : undefined, { perMessageDeflate: false });
    let ready = false;
    const sub: Sub = { arrived: 0, close: () => ws.terminate() };
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('connect timeout'));
    }, c.timeoutMs);
    const isReady = (): void => {
      ready = true;
      clearTimeout(timer);
      resolve(sub);
    };
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!ready) reject(err);
    });
    ws.on('close', (code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`closed ${code} before ready`));
      } else if (!g.closing) g.unexpectedCloses++;
    });
    ws.on('open', () => {
      if (c.protocol === 'none') return isReady();
      ws.send(JSON.stringify({ type: 'connection_init', payload: { token: c.token } }));
    });
    ws.on('message', (data: Buffer) => {
      if (ready) {
        // Hot path: no parse. Every `next` of the one subscription is an event.
        if (data.includes('"next"')) arrive(g, sub, data.length);
        else if (data.includes('"ping"')) ws.send('{"type":"pong"}');
        return;
      }
      const msg = JSON.parse(String(data)) as { type: string; payload?: unknown };
      if (msg.type === 'connection_ack') {
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: c.query } }));
        // Messages are handled in order: the pong comes after the subscribe was taken.
        ws.send('{"type":"ping"}');
      } else if (msg.type === 'pong') {
        isReady();
      } else if (msg.type === 'ping') {
        ws.send('{"type":"pong"}');
      } else if (msg.type === 'error' || msg.type === 'next') {
        ws.terminate();
        reject(new Error(`subscribe failed: ${String(data).slice(0, 300)}`));
      }
    });
  });
}

/** One graphql-ws reference client; resolves once acknowledged and subscribed. */
function libClient(g: Group, c: Extract<FleetCommand, { cmd: 'connect' }>): Promise<Sub> {
  return new Promise((resolve, reject) => {
    let ready = false;
    let client: GqlClient | undefined = undefined;
    const sub: Sub = { arrived: 0, close: () => void client?.terminate() };
    const timer = setTimeout(() => {
      client?.terminate();
      reject(new Error('connect timeout'));
    }, c.timeoutMs);
    class Ws extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { perMessageDeflate: false });
      }
    }
    client = createClient({
      url: c.url,
      webSocketImpl: Ws,
      connectionParams: { token: c.token },
      lazy: true,
      retryAttempts: 0,
      on: {
        // The subscribe message is sent right after the ack; the server's pong
        // to our ping (sent next) comes after it has taken the subscribe.
        connected: (socket) => void (socket as WebSocket).send('{"type":"ping"}'),
        pong: () => {
          if (ready) return;
          ready = true;
          clearTimeout(timer);
          resolve(sub);
        },
        closed: () => {
          if (!ready) {
            clearTimeout(timer);
            reject(new Error('closed before ready'));
          } else if (!g.closing) g.unexpectedCloses++;
        },
      },
    });
    client.subscribe(
      { query: c.query ?? '' },
      {
        next: (v) => arrive(g, sub, JSON.stringify({ id: '1', type: 'next', payload: v }).length),
        error: (err) => {
          if (!ready) {
            clearTimeout(timer);
            reject(new Error(`subscribe failed: ${JSON.stringify(err).slice(0, 300)}`));
          }
        },
        complete: () => undefined,
      },
    );
  });
}

async function connect(c: Extract<FleetCommand, { cmd: 'connect' }>): Promise<void> {
  const g: Group = { subs: [], armedEvent: null, remaining: 0, bytes: 0, unexpectedCloses: 0, closing: false };
  groups.set(c.group, g);
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const make = c.impl === 'graphql-ws' && c.protocol === 'graphql-ws' ? libClient : rawClient;
  const worker = async (): Promise<void> => {
    while (next < c.count) {
      next++;
      try {
        g.subs.push(await make(g, c));
      } catch (err) {
        failed++;
        firstError ??= String((err as Error).message ?? err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.parallel, c.count) }, worker));
  send({ type: 'connected', group: c.group, ok: g.subs.length, failed, firstError, ms: performance.now() - t0, rss: process.memoryUsage().rss, cpuMs: cpuMs() });
}

process.on('message', (m: FleetCommand) => {
  try {
    if (m.cmd === 'connect') {
      void connect(m).catch((err: unknown) => send({ type: 'fatal', message: String(err) }));
    } else if (m.cmd === 'arm') {
      const g = groups.get(m.group)!;
      for (const s of g.subs) s.arrived = 0;
      g.armedEvent = m.event;
      g.remaining = g.subs.length;
      g.bytes = 0;
      g.timer = setTimeout(() => finish(g), m.timeoutMs);
      send({ type: 'armed', group: m.group, event: m.event });
      if (g.remaining === 0) finish(g);
    } else if (m.cmd === 'close') {
      const g = groups.get(m.group);
      if (g) {
        g.closing = true;
        clearTimeout(g.timer);
        for (const s of g.subs) s.close();
        groups.delete(m.group);
      }
      send({ type: 'closed', group: m.group, unexpectedCloses: g?.unexpectedCloses ?? 0 });
    } else if (m.cmd === 'exit') {
      for (const g of groups.values()) {
        g.closing = true;
        for (const s of g.subs) s.close();
      }
      setTimeout(() => process.exit(0), 50);
    }
  } catch (err) {
    send({ type: 'fatal', message: String((err as Error).stack ?? err) });
  }
});
// Never outlive the parent.
process.on('disconnect', () => process.exit(0));
