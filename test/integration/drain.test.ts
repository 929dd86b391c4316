import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { discardBody, type DrainLimits } from '../../src/http/drain';
import { chunk, LAST_CHUNK, RawConnection } from '../helpers/raw-http';

/**
 * discardBody on a real node:http server, driven by a raw client: what it reports for a
 * body read to its end, one past the bound, a silent client, a client that leaves, and a
 * body a failed upload had piped somewhere.
 */
let server: Server;
let baseUrl: string;
let handle: (req: IncomingMessage, res: ServerResponse) => void;
let connection: RawConnection | undefined;

beforeAll(async () => {
  server = createServer((req, res) => handle(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => connection?.close());
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HEAD = 'PUT /x HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n';

/** Each request: discard its body with `limits`, then answer what discardBody said. */
function answerWith(limits: DrainLimits): Promise<boolean>[] {
  const outcomes: Promise<boolean>[] = [];
  handle = (req, res) => {
    const outcome = discardBody(req, limits);
    outcomes.push(outcome);
    void outcome.then((drained) => {
      if (!drained) res.setHeader('connection', 'close');
      res.end(JSON.stringify({ drained }));
    });
  };
  return outcomes;
}

it('reads a body sent after a pause to its end, and the connection serves the next request', async () => {
  answerWith({ maxBytes: 10_000, idleMs: 2000 });
  const conn = (connection = await RawConnection.open(baseUrl));
  await conn.write(HEAD);
  await sleep(100);
  expect(conn.responses).toEqual([]);
  await conn.write(Buffer.concat([chunk('a'.repeat(4000)), chunk('b'.repeat(4000)), Buffer.from(LAST_CHUNK)]));
  expect((await conn.response(0)).json).toEqual({ drained: true });
  await conn.write(HEAD + LAST_CHUNK);
  expect((await conn.response(1)).json).toEqual({ drained: true });
});

it('reports true at once for a body already complete', async () => {
  handle = (req, res) => {
    req.once('end', () => void discardBody(req).then((drained) => res.end(JSON.stringify({ drained }))));
    req.resume();
  };
  const conn = (connection = await RawConnection.open(baseUrl));
  await conn.write('PUT /x HTTP/1.1\r\nhost: test\r\ncontent-length: 3\r\n\r\nabc');
  expect((await conn.response()).json).toEqual({ drained: true });
});

it('stops past the bound and reports false', async () => {
  const outcomes = answerWith({ maxBytes: 10_000, idleMs: 2000 });
  const conn = (connection = await RawConnection.open(baseUrl));
  await conn.write(HEAD);
  await conn.write(chunk('x'.repeat(6000)));
  await sleep(50);
  expect(conn.responses).toEqual([]);
  await conn.write(chunk('x'.repeat(6000)));
  expect(await outcomes[0]).toBe(false);
  const res = await conn.response();
  expect(res.json).toEqual({ drained: false });
  expect(res.headers.connection).toBe('close');
});

it('gives up on a client that falls silent mid-body', async () => {
  const outcomes = answerWith({ maxBytes: 10_000, idleMs: 150 });
  const conn = (connection = await RawConnection.open(baseUrl));
  await conn.write(HEAD + chunk('x'.repeat(100)));
  expect((await conn.response()).json).toEqual({ drained: false });
  expect(await outcomes[0]).toBe(false);
});

it('settles when the client goes away mid-body', async () => {
  const outcomes = answerWith({ maxBytes: 10_000, idleMs: 60_000 });
  const conn = (connection = await RawConnection.open(baseUrl));
  await conn.write(HEAD + chunk('x'.repeat(100)));
  await sleep(50);
  conn.close();
  expect(await outcomes[0]).toBe(false);
});

it('detaches a pipe a failed upload left on the body, so the rest goes nowhere', async () => {
  let piped = 0;
  let outcome: Promise<boolean> | undefined;
  handle = (req, res) => {
    // A consumer that took the first bytes and stopped reading, as a failed upload does.
    const stalled = new Writable({
      highWaterMark: 1,
      write(data: Buffer, _encoding, _done) {
        piped += data.length;
        outcome ??= discardBody(req, { maxBytes: 100_000, idleMs: 2000 });
        void outcome.then((drained) => res.end(JSON.stringify({ drained })));
      },
    });
    req.pipe(stalled);
  };
  const conn = (connection = await RawConnection.open(baseUrl));
  await conn.write(HEAD + chunk('a'.repeat(1000)));
  await sleep(50);
  expect(piped).toBe(1000);
  await conn.write(Buffer.concat([chunk('b'.repeat(20_000)), Buffer.from(LAST_CHUNK)]));
  expect((await conn.response()).json).toEqual({ drained: true });
  expect(await outcome).toBe(true);
  expect(piped).toBe(1000);
});
