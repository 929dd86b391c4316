import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  close(): Promise<void>;
}

/** A loopback HTTP server answering GET of each path with its bytes and 404 otherwise: a web-download source. */
export async function serveFiles(files: Record<string, Buffer>): Promise<FileServer> {
  const server = createServer((req, res) => {
    const body = files[req.url ?? ''];
    if (body) res.writeHead(200, { 'content-length': body.length }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
