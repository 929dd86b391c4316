import type { ArtifactRecord, BlobRecord } from '../../domain/artifact';
import { nowIso } from '../../domain/artifact';
import type { EventBus, ProgressEvent } from '../../events/port';

/** Throttled progress of one upload on the bus; progress is best-effort and never fails an upload. */
export class ProgressReporter {
  private readonly startedAt = performance.now();
  private lastBytes = 0;

  constructor(private readonly bus: EventBus, private readonly artifact: Pick<ArtifactRecord, 'id' | 'owner'>, private readonly subject: string, private readonly total: number | null) {}

  report(bytes: number, elapsedMs: number): void {
    this.lastBytes = bytes;
    const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
    const eta = this.total !== null && rate > 0 ? Math.max(0, (this.total - bytes) / rate) : null;
    this.send({ bytes, ratePerSecond: rate, etaSeconds: eta, done: false });
  }

  /** The last event of an upload; a failed one reports the bytes last seen. */
  finish(outcome: 'succeeded' | 'failed', bytes = this.lastBytes, error?: string): void {
    const elapsedMs = performance.now() - this.startedAt;
    const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
    this.send({ bytes, ratePerSecond: rate, etaSeconds: outcome === 'succeeded' ? 0 : null, done: true, outcome, ...(error && { error }) });
  }

  private send(fields: Pick<ProgressEvent, 'bytes' | 'ratePerSecond' | 'etaSeconds' | 'done' | 'outcome' | 'error'>): void {
    const event: ProgressEvent = { kind: 'uploadProgress', artifactId: this.artifact.id, owner: this.artifact.owner, subject: this.subject, total: this.total, at: nowIso(), ...fields };
    this.bus.publish({ topic: 'progress', event }).catch(() => undefined);
  }
}

/** How progress events name a blob: its field, and the key of a blob-dictionary entry. */
export function subjectOf(target: Pick<BlobRecord, 'field' | 'key'>): string {
  return target.key ? `${target.field}/${target.key}` : target.field;
}
