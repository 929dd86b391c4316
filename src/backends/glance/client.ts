import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';
import { VitrineError } from '../../domain/errors';
import { CircuitBreaker, type BreakerOptions } from './breaker';
import { glanceAnswerError, glanceMessage, transportFailure, upstreamRejected, upstreamTimeout, type StatusCodes } from './errors';

/**
 * HTTP to one Glance: a keep-alive undici Pool, timeouts on every call (connect, answer,
 * body idle), retries with jittered exponential backoff for idempotent reads only, and a
 * circuit breaker. Every failure leaves as a VitrineError whose `details.backend` names
 * the backend: transport problems as UPSTREAM_*, Glance's own refusals as the matching code.
 */
export interface GlanceTimeouts {
  /** TCP connect. */
  connectMs: number;
  /** From the request (or the end of an upload's body) to Glance's answer headers. */
  requestMs: number;
  /** Longest pause while an answer's body arrives. */
  idleMs: number;
}

export interface GlanceClientOptions {
  backend: string;
  /** http(s)://host:port, optionally with a path prefix; without /v2. */
  url: string;
  timeouts: GlanceTimeouts;
  /** Extra attempts for GET and HEAD. */
  retries: number;
  breaker: BreakerOptions;
  connections: number;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface GlanceRequest {
  method: Method;
  /** Path below the base URL, starting with /v2, already encoded. */
  path: string;
  query?: URLSearchParams;
  headers: Record<string, string>;
  body?: string | Readable;
  /**
   * A streamed upload: the answer timeout starts when the body has been sent, not before
   * (a slow client must not time out a healthy Glance).
   */
  upload?: boolean;
  signal?: AbortSignal;
}

export interface GlanceAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
}

/** Largest JSON answer read (a page of 1000 images with many properties is a few MiB). */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** Largest error body read for its message. */
const MAX_ERROR_BYTES = 64 * 1024;
/** Glance answers these when it is (about to be) back: worth another try for a read. */
const RETRY_STATUSES = new Set([502, 503, 504]);
const BACKOFF_BASE_MS = 25;
const BACKOFF_MAX_MS = 1000;

export class GlanceClient {
  readonly breaker: CircuitBreaker;
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(private readonly options: GlanceClientOptions, private readonly random: () => number = Math.random) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new VitrineError('CONFIG_INVALID', `backend ${options.backend}: url must be http(s), got ${url.protocol}`);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      connectTimeout: options.timeouts.connectMs,
      headersTimeout: options.timeouts.requestMs,
      bodyTimeout: options.timeouts.idleMs,
      keepAliveTimeout: 4_000,
    });
    this.breaker = new CircuitBreaker(options.backend, options.breaker);
  }

  get backend(): string {
    return this.options.backend;
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** A JSON answer with one of the `ok` statuses; anything else becomes its error. */
  async json(request: GlanceRequest, ok: readonly number[], codes?: StatusCodes): Promise<unknown> {
    return this.exchange(request, async (answer) => {
      if (!ok.includes(answer.status)) throw await this.answerError(answer, codes);
      return this.readJson(answer);
    });
  }

  /** The answer's body as JSON (at most 64 MiB), or UPSTREAM_REJECTED. */
  async readJson(answer: GlanceAnswer): Promise<unknown> {
    const text = await readText(answer.body, MAX_JSON_BYTES, this.backend);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw upstreamRejected(this.backend, `Glance answered HTTP ${answer.status} with a body that is not JSON`);
    }
  }

  /** An answer without a body worth reading (204 for actions and deletes). */
  async empty(request: GlanceRequest, ok: readonly number[], codes?: StatusCodes): Promise<number> {
    return this.exchange(request, async (answer) => {
      if (!ok.includes(answer.status)) throw await this.answerError(answer, codes);
      await answer.body.dump();
      return answer.status;
    });
  }

  /**
   * The answer itself, for streaming its body. `consume` runs before the breaker and the
   * retries consider the call done; it must read or dump the body if it does not return it.
   */
  exchange<T>(request: GlanceRequest, consume: (answer: GlanceAnswer) => Promise<T>): Promise<T> {
    return this.attempt(request, consume, 1);
  }

  /** The error a non-success answer stands for (reads up to 64 KiB of its body for the message). */
  async answerError(answer: GlanceAnswer, codes?: StatusCodes): Promise<VitrineError> {
    let message = '';
    try {
      const text = await readText(answer.body, MAX_ERROR_BYTES, this.backend, true);
      message = glanceMessage(text, headerValue(answer.headers['content-type']));
    } catch {
      // The status alone still says what happened.
    }
    return glanceAnswerError(this.backend, answer.status, message, codes);
  }

  private async attempt<T>(request: GlanceRequest, consume: (answer: GlanceAnswer) => Promise<T>, attempt: number): Promise<T> {
    const idempotent = request.method === 'GET' || request.method === 'HEAD';
    const mayRetry = idempotent && attempt <= this.options.retries && !request.signal?.aborted;
    const trial = this.breaker.admit();
    let answer: GlanceAnswer | undefined;
    try {
      answer = await this.dispatch(request);
      if (answer.status >= 500) {
        const error = await this.answerError(answer, undefined);
        this.breaker.failure();
        if (mayRetry && RETRY_STATUSES.has(answer.status)) return await this.retry(request, consume, attempt);
        throw error;
      }
      this.breaker.success();
      return await consume(answer);
    } catch (err) {
      if (err instanceof VitrineError) {
        answer?.body.destroy();
        throw err;
      }
      answer?.body.destroy();
      const failure = transportFailure(this.backend, err);
      if (!failure) {
        // Not Glance's fault: the caller went away, or an upload's own body failed.
        if (trial) this.breaker.release();
        throw err;
      }
      this.breaker.failure();
      if (mayRetry && failure.retryable) return this.retry(request, consume, attempt);
      throw failure.error;
    }
  }

  private async retry<T>(request: GlanceRequest, consume: (answer: GlanceAnswer) => Promise<T>, attempt: number): Promise<T> {
    // Full jitter: concurrent callers that failed together do not come back together.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
    await sleep(Math.floor(this.random() * ceiling), undefined, { signal: request.signal });
    return this.attempt(request, consume, attempt + 1);
  }

  private async dispatch(request: GlanceRequest): Promise<GlanceAnswer> {
    const query = request.query?.toString();
    const path = `${this.basePath}${request.path}${query ? `?${query}` : ''}`;
    let signal = request.signal;
    let answerTimer: NodeJS.Timeout | undefined;
    let timedOut: VitrineError | undefined;
    const body = request.body;
    if (request.upload && body !== undefined && typeof body !== 'string') {
      const deadline = new AbortController();
      body.once('end', () => {
        answerTimer = setTimeout(() => {
          timedOut = upstreamTimeout(this.backend, 'did not answer in time after the upload');
          deadline.abort(timedOut);
        }, this.options.timeouts.requestMs);
      });
      signal = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
    }
    try {
      const response = await this.pool.request({
        method: request.method,
        path,
        headers: request.headers,
        body,
        signal,
        ...(request.upload && { headersTimeout: 0 }),
      });
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (err) {
      if (timedOut) throw timedOut;
      throw err;
    } finally {
      clearTimeout(answerTimer);
    }
  }
}

/** The body as text, at most `limit` bytes (or UPSTREAM_REJECTED; `truncate` keeps the start instead). */
async function readText(body: Readable, limit: number, backend: string, truncate = false): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    length += buffer.length;
    if (length > limit) {
      body.destroy();
      if (truncate) break;
      throw upstreamRejected(backend, `Glance's answer is larger than ${limit} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
