/**
 * An async iterator over payloads that a `produce` function yields in batches (an empty
 * batch means "nothing for this subscriber, keep going"; null means the end). Unlike an
 * async generator, `return()` takes effect at once even while `next()` waits for events,
 * so a client's `complete`, a closed socket or shutdown release the subscription promptly.
 */
export class BatchStream<P> implements AsyncIterableIterator<P> {
  private ready: P[] = [];
  private finished = false;

  constructor(
    private readonly produce: () => Promise<P[] | null>,
    private readonly release: () => void,
  ) {}

  async next(): Promise<IteratorResult<P, undefined>> {
    while (!this.finished) {
      if (this.ready.length > 0) return { value: this.ready.shift() as P, done: false };
      let batch: P[] | null;
      try {
        batch = await this.produce();
      } catch (err) {
        this.finish();
        throw err;
      }
      if (batch === null) this.finish();
      else if (!this.finished) this.ready.push(...batch);
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<P, undefined>> {
    this.finish();
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<P, undefined>> {
    this.finish();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.ready = [];
    this.release();
  }
}
