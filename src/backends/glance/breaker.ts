import { VitrineError } from '../../domain/errors';

/**
 * A circuit breaker per backend. Closed: calls pass, and `failures` consecutive upstream
 * failures open it. Open: calls fail at once with UPSTREAM_UNAVAILABLE, sparing a Glance
 * that is down (and the callers' time) for `resetMs`. Then half-open: one trial call
 * passes; its success closes the breaker, its failure opens it again.
 */
export interface BreakerOptions {
  failures: number;
  resetMs: number;
}

export type BreakerState = 'closed' | 'open' | 'halfOpen';

export class CircuitBreaker {
  private consecutive = 0;
  private openedAt = 0;
  private opened = false;
  private trialRunning = false;

  constructor(private readonly backend: string, private readonly options: BreakerOptions, private readonly now: () => number = () => performance.now()) {}

  get state(): BreakerState {
    if (!this.opened) return 'closed';
    return this.now() - this.openedAt >= this.options.resetMs ? 'halfOpen' : 'open';
  }

  /**
   * Lets a call through or throws. Returns whether the call is the half-open trial: its
   * outcome must be reported with `success` or `failure` (`release` if it ended otherwise).
   */
  admit(): boolean {
    const state = this.state;
    if (state === 'closed') return false;
    if (state === 'halfOpen' && !this.trialRunning) {
      this.trialRunning = true;
      return true;
    }
    const retryInMs = Math.max(0, Math.ceil(this.options.resetMs - (this.now() - this.openedAt)));
    throw new VitrineError('UPSTREAM_UNAVAILABLE', `backend ${this.backend}: Glance failed ${this.options.failures} times in a row; not calling it for now (circuit breaker open)`, {
      backend: this.backend,
      breaker: 'open',
      retryInMs,
    });
  }

  success(): void {
    this.consecutive = 0;
    this.opened = false;
    this.trialRunning = false;
  }

  failure(): void {
    this.consecutive++;
    if (this.trialRunning || this.consecutive >= this.options.failures) {
      this.opened = true;
      this.openedAt = this.now();
    }
    this.trialRunning = false;
  }

  /** A trial that ended without telling whether Glance works (the caller went away). */
  release(): void {
    this.trialRunning = false;
  }
}
