import { fail } from '../../domain/errors';
import type { BlobStore } from '../../storage/blobs/port';
import type { StoreView } from '../port';

/** One configured blob store and how it is shown in Glance's `/v2/info/stores`. */
export interface NamedStore {
  store: BlobStore;
  description?: string;
}

/**
 * The blob stores of the native backend, by name, one of them the default that uploads
 * and staging write to. `multistore` mirrors Glance's `enabled_backends`: only then are
 * stores named to clients (`stores` on images, `/v2/info/stores`, import to chosen stores).
 */
export class StoreSet {
  private readonly byName: ReadonlyMap<string, NamedStore>;
  readonly default: BlobStore;

  constructor(stores: readonly NamedStore[], defaultName: string, readonly multistore: boolean) {
    this.byName = new Map(stores.map((s) => [s.store.name, s]));
    this.default = this.byName.get(defaultName)?.store ?? fail('CONFIG_INVALID', `the default store ${defaultName} is not among the configured stores`);
  }

  /** A store bytes were written to; UNAVAILABLE when configuration no longer names it. */
  get(name: string): BlobStore {
    return this.byName.get(name)?.store ?? fail('UNAVAILABLE', `blob store ${name} is not configured`, { store: name });
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** A store a client named: STORE_UNKNOWN when there is none of that name. */
  named(name: string): BlobStore {
    if (!this.multistore || !this.byName.has(name)) fail('STORE_UNKNOWN', `there is no store named ${JSON.stringify(name)}${this.multistore ? ` (stores: ${this.names().join(', ')})` : ' (multiple stores are not enabled)'}`, { store: name });
    return this.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  all(): BlobStore[] {
    return [...this.byName.values()].map((s) => s.store);
  }

  views(): StoreView[] {
    if (!this.multistore) return [];
    return this.names().map((name) => ({ id: name, description: this.byName.get(name)?.description ?? null, isDefault: name === this.default.name, readOnly: false }));
  }
}
