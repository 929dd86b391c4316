// Minimal typings for the parts of autocannon 9 the harness uses (the
// package ships none and @types/autocannon is not a dependency).
declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      setupRequest?: (req: Request, context: Record<string, unknown>) => Request;
    }
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      amount?: number;
      timeout?: number;
      pipelining?: number;
      reconnectRate?: number;
      method?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      requests?: Request[];
      expectBody?: string;
      /** Called with each connection's Client (internal API) before it connects. */
      setupClient?: (client: Client) => void;
    }
    /** Internals of autocannon's lib/httpClient.js used by load.ts. */
    interface Client {
      reqsMade: number;
      reconnectRate: number;
      destroyed: boolean;
      _doRequest(): void;
      _connect(): void;
      _destroyConnection(): void;
      /** Emitted for every response, before the next request is sent; ms is a float. */
      on(event: 'response', listener: (statusCode: number, bytes: number, ms: number) => void): this;
    }
    interface Histogram {
      average: number; mean: number; stddev: number; min: number; max: number; total: number;
      p50: number; p90: number; p97_5: number; p99: number;
    }
    interface Result {
      duration: number;
      requests: Histogram;
      latency: Histogram;
      throughput: Histogram;
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      resets: number;
      '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number;
      statusCodeStats?: Record<string, { count: number }>;
    }
  }
  function autocannon(opts: autocannon.Options): Promise<autocannon.Result>;
  export = autocannon;
}
