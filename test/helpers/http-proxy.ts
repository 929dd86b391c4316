import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An HTTP reverse proxy in front of a real server (a real Glance) that counts and records
 * every request, and can inject faults: answer the next requests with an error status,
 * delay requests before forwarding them, or drop every connection (`cut`). Bodies stream
 * through both ways. The upstream itself is never touched.
 */
export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export class HttpProxy {
  readonly seen: SeenRequest[] = [];
  /** TCP connections accepted (cut ones included). */
  connections = 0;
  delayMs = 0;
  private failures: number[] = [];
  private cutting = false;
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(private readonly server: Server, private readonly upstream: URL) {}

  static async start(upstreamUrl: string): Promise<HttpProxy> {
    const server = createServer();
    const proxy = new HttpProxy(server, new URL(upstreamUrl));
    server.on('connection', (socket) => proxy.accept(socket));
    server.on('request', (req, res) => proxy.forward(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests seen, optionally only those with this method and path. */
  count(method?: string, path?: string | RegExp): number {
    return this.seen.filter((r) => (!method || r.method === method) && (!path || (typeof path === 'string' ? r.path === path : path.test(r.path)))).length;
  }

  reset(): void {
    this.seen.length = 0;
    this.connections = 0;
  }

  /** The next `n` requests get `status` without reaching the upstream. */
  failNext(n: number, status = 503): void {
    this.failures = new Array<number>(n).fill(status);
  }

  /** Drops every open connection and every new one until `restore()`. */
  cut(): void {
    this.cutting = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.cutting = false;
  }

  async close(): Promise<void> {
    this.cut();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.connections++;
    if (this.cutting) return void socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private forward(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://proxy');
    this.seen.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers });
    const status = this.failures.shift();
    if (status !== undefined) {
      req.resume();
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `injected ${status}<br /><br />\n\n\n`, code: `${status}`, title: 'Injected' }));
      return;
    }
    const send = () => {
      const upstream = httpRequest({
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.upstream.host },
        agent: this.agent,
      }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      // A client that breaks off its request breaks off the upstream one too (as a real client's reset would).
      req.on('close', () => {
        if (!req.complete) upstream.destroy();
      });
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      req.pipe(upstream);
    };
    if (this.delayMs > 0) setTimeout(send, this.delayMs);
    else send();
  }
}
