/**
 * Which member holds an artifact, remembered from lookups, listings and creates so that the
 * related rows of artifacts just read (links, members, blobs) go straight to their member
 * instead of costing every member a lookup. Only a routing hint: the member still applies
 * its own policy, and every lookup by id refreshes it (an id moved by a migration is found
 * again). Bounded: the oldest entries are forgotten first.
 */
export class Locations {
  private readonly ranks = new Map<string, number>();

  constructor(private readonly capacity = 50_000) {}

  remember(id: string, rank: number): void {
    this.ranks.delete(id);
    this.ranks.set(id, rank);
    if (this.ranks.size > this.capacity) this.ranks.delete(this.ranks.keys().next().value!);
  }

  rankOf(id: string): number | undefined {
    return this.ranks.get(id);
  }

  forget(id: string): void {
    this.ranks.delete(id);
  }
}
