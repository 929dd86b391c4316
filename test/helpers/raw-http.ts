import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * An HTTP/1.1 connection written byte for byte, as a client that streams its body would
 * (headers first, the body later, in pieces), reading responses one at a time. It keeps
 * what the socket reported (errors, the server's end) for the test to check.
 */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json: any;
}

export class RawConnection {
  /** Responses fully received so far. */
  readonly responses: RawResponse[] = [];
  /** A socket error (ECONNRESET, EPIPE...), if one happened. */
  error: Error | undefined;
  /** The server closed its side. */
  ended = false;
  private buffer = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
      this.wake();
    });
    socket.on('error', (err) => {
      this.error ??= err;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  static async open(baseUrl: string): Promise<RawConnection> {
    const { hostname, port } = new URL(baseUrl);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  /** Resolves with the write's error, or null once the bytes were handed to the kernel. */
  write(data: string | Buffer): Promise<Error | null> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve(new Error('the socket is closed'));
    return new Promise((resolve) => this.socket.write(data, (err) => resolve(err ?? null)));
  }

  /** The `index`th response, once complete; rejects if the connection ends or fails first. */
  async response(index = 0): Promise<RawResponse> {
    for (;;) {
      if (this.responses.length > index) return this.responses[index];
      if (this.error) throw this.error;
      if (this.ended) throw new Error(`the server closed the connection after ${this.responses.length} responses`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Responses with a Content-Length body (what the server sends for JSON errors). */
  private parse(): void {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.subarray(end + 4, end + 4 + length);
      this.buffer = this.buffer.subarray(end + 4 + length);
      let json: any;
      try {
        json = JSON.parse(body.toString());
      } catch {
        json = undefined;
      }
      this.responses.push({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]), headers, body, json });
    }
  }
}

/** One chunk of a chunked body. */
export function chunk(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data);
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
}

/** The chunk that ends a chunked body. */
export const LAST_CHUNK = '0\r\n\r\n';
