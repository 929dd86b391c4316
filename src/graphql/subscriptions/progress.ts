import type { ArtifactBackend } from '../../backends/port';
import type { Principal } from '../../domain/policy';
import type { EventBus, ProgressEvent } from '../../events/port';
import { BatchStream } from './batch-stream';
import type { ConnectionHandle, Delivery } from './context';
import { DeliveryQueue } from './delivery-queue';

/**
 * The source of `uploadProgress` and `importProgress`: progress events of one artifact,
 * coalesced per upload (newest wins, so a slow consumer holds at most one pending event per
 * upload), authorised at delivery time. It ends after the first final event (`done`, with
 * the outcome), or when the artifact is deleted.
 */
export interface ProgressPayload extends Delivery {
  progress: ProgressEvent;
}

export interface ProgressSourceOptions {
  principal: Principal;
  backend: ArtifactBackend;
  bus: EventBus;
  connection: ConnectionHandle;
  kind: ProgressEvent['kind'];
  artifactId: string;
  /** Which of the artifact's progress streams to follow (by subject); all when omitted. */
  subject?: (subject: string) => boolean;
  queueLimit: number;
}

type Item = { progress: ProgressEvent } | { deleted: true };

/** Upload subjects are "<field>" for a plain blob and "<field>/<key>" for a blob-dict entry. */
export function splitUploadSubject(subject: string): { field: string; key: string } {
  const slash = subject.indexOf('/');
  return slash < 0 ? { field: subject, key: '' } : { field: subject.slice(0, slash), key: subject.slice(slash + 1) };
}

export function progressSource(options: ProgressSourceOptions): AsyncIterableIterator<ProgressPayload> {
  const { artifactId, connection } = options;
  const queue = new DeliveryQueue<Item>(options.queueLimit, () => connection.closeTooSlow());
  const subscription = options.bus.subscribe((message) => {
    if (message.topic === 'artifact') {
      if (message.event.artifactId === artifactId && message.event.kind === 'deleted') {
        queue.push({ deleted: true });
        queue.end();
      }
      return;
    }
    const progress = message.event;
    if (progress.kind !== options.kind || progress.artifactId !== artifactId) return;
    if (options.subject && !options.subject(progress.subject)) return;
    if (connection.congested()) return connection.closeTooSlow();
    // The final event takes the place of a pending one too: it is the newest state.
    queue.push({ progress }, progress.subject);
    if (progress.done) queue.end();
  });

  let ended = false;
  const produce = async (): Promise<ProgressPayload[] | null> => {
    if (ended) return null;
    const batch = await queue.take(Number.MAX_SAFE_INTEGER);
    if (batch === null) return null;
    if (connection.congested()) {
      connection.closeTooSlow();
      return null;
    }
    const events: ProgressEvent[] = [];
    for (const item of batch) {
      if ('deleted' in item) {
        ended = true;
        break;
      }
      events.push(item.progress);
      if (item.progress.done) {
        ended = true;
        break;
      }
    }
    if (events.length === 0) return ended ? null : [];
    const [view] = await options.backend.getMany(options.principal, [artifactId]);
    return view && !(view instanceof Error) ? events.map((progress) => ({ progress, artifact: view, snapshot: false })) : [];
  };

  return new BatchStream(produce, () => {
    subscription.unsubscribe();
    queue.close();
  });
}
