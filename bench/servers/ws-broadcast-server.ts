// Baseline for subscription.fanout: a bare `ws` server that broadcasts one
// payload to every connected client when it receives a trigger. No protocol,
// no per-client work beyond ws.send of the same string, so it is the practical
// ceiling for pushing one message to N sockets from one Node process.
//   GET  /healthz
//   POST /broadcast?bytes=N   builds a graphql-ws-like `next` message of exactly
//                             N bytes and sends it to every open client; answers
//                             {"clients": count} once every send is queued.
// Usage: node --import tsx bench/servers/ws-broadcast-server.ts PORT
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 19394);
let seq = 0;

/** `{"id":"1","type":"next","payload":{"data":{"seq":K,"pad":"xxx"}}}` padded to `bytes`. */
function message(bytes: number): string {
  seq++;
  const head = `{"id":"1","type":"next","payload":{"data":{"seq":${seq},"pad":"`;
  const tail = '"}}}';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (req.method === 'GET' && url.pathname === '/healthz') {
    res.end('{"ok":true}');
    return;
  }
  if (req.method === 'POST' && url.pathname === '/broadcast') {
    req.resume();
    req.on('end', () => {
      const data = message(Number(url.searchParams.get('bytes') ?? 256));
      let n = 0;
      for (const c of wss.clients) {
        if (c.readyState === WebSocket.OPEN) {
          c.send(data);
          n++;
        }
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ clients: n }));
    });
    return;
  }
  res.statusCode = 404;
  res.end();
});
// The same ws defaults as Vitrine's server (no permessage-deflate).
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('error', () => ws.terminate()));

server.listen(port, '127.0.0.1', 511);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    for (const c of wss.clients) c.terminate();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
