// Bounded closed-loop load with autocannon on loopback: a fixed number of
// connections, each sending its next request when the previous answer has
// arrived, for a fixed duration.
import autocannon from 'autocannon';

export interface LoadSpec {
  /** Base URL, always http://127.0.0.1:PORT. */
  url: string;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Called before every request, e.g. for a random id or a unique name. */
  next?: () => { path?: string; body?: string };
  connections: number;
  /**
   * false: connections are reused (HTTP keep-alive).
   * true: a new TCP connection for every request (autocannon reconnectRate 1),
   * which sidesteps Glance's delayed-ACK stall on 16-64 KiB bodies.
   */
  fresh: boolean;
}

export interface LoadResult {
  rps: number;
  /** autocannon's percentiles: whole milliseconds (its histogram stores integers). */
  latencyP50: number;
  latencyP99: number;
  /**
   * Median of every 2xx response time with sub-millisecond resolution, for
   * differences of a millisecond or two (the proxy's added latency).
   */
  latencyMedianMs: number;
  requests: number;
  non2xx: number;
  errors: number;
  bytesPerRequest: number;
  seconds: number;
}

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1') throw new Error(`load is only generated against 127.0.0.1, not ${host}`);
}

/**
 * Makes an autocannon connection open a new TCP connection for every request.
 * autocannon's own `reconnectRate` cannot be used: in 9.0 it resets the
 * connection before recording the response, so nothing is ever counted.
 * Here the response has been recorded when `_doRequest` asks for the next
 * one; we close the socket, connect again, and send it on the new socket.
 */
function freshConnectionPerRequest(client: autocannon.Client): void {
  const send = client._doRequest;
  let reconnecting = false;
  client._doRequest = function (this: autocannon.Client): void {
    if (this.reqsMade === 0 || reconnecting || this.destroyed) return send.call(this);
    reconnecting = true;
    try {
      this._destroyConnection();
      this._connect(); // calls _doRequest again, which now sends
    } finally {
      reconnecting = false;
    }
  };
}

/** Median of unsorted samples (sorts in place). */
function medianOf(xs: number[]): number {
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

export async function runLoad(spec: LoadSpec, seconds: number): Promise<LoadResult> {
  assertLoopback(spec.url);
  const headers = { ...(spec.body !== undefined || spec.next ? { 'content-type': 'application/json' } : {}), ...spec.headers };
  const next = spec.next;
  // Each client reports a response's duration as a float (ms from hrtime) before
  // autocannon rounds it into its histogram; keep the 2xx ones.
  const durations: number[] = [];
  const setupClient = (client: autocannon.Client): void => {
    client.on('response', (status, _bytes, ms) => {
      if (status >= 200 && status < 300) durations.push(ms);
    });
    if (spec.fresh) freshConnectionPerRequest(client);
  };
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: seconds,
    timeout: 30,
    pipelining: 1,
    setupClient,
    requests: [
      {
        method: spec.method,
        path: spec.path,
        headers,
        body: spec.body,
        ...(next ? { setupRequest: (req) => ({ ...req, ...next() }) } : {}),
      },
    ],
  });
  const total = result['2xx'] + result.non2xx;
  return {
    // Only successful answers count towards the rate.
    rps: result['2xx'] / result.duration,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
    latencyMedianMs: medianOf(durations),
    requests: total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    bytesPerRequest: total > 0 ? result.throughput.total / total : 0,
    seconds: result.duration,
  };
}
