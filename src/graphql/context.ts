import DataLoader from 'dataloader';
import type { GraphQLFormattedError } from 'graphql';
import type { LinkRecord, MemberRecord } from '../domain/artifact';
import type { Principal } from '../domain/policy';
import type { ArtifactBackend, ArtifactView, BlobView, ImageCachePort, ImageLocationsView, MetadefCatalog } from '../backends/port';
import type { UrlSigner } from '../http/dataplane/signing';
import type { ResultSlot } from './response-cache';

/**
 * Per-request state of a GraphQL operation: who is calling, the backend, and the
 * DataLoaders that batch lookups so a page of N artifacts costs a constant number of
 * backend calls. Loaders are created per request and never shared between callers.
 */
export interface Loaders {
  artifact: DataLoader<string, ArtifactView | null>;
  members: DataLoader<string, MemberRecord[]>;
  links: DataLoader<string, LinkRecord[]>;
  blobs: DataLoader<string, BlobView[]>;
  locations: DataLoader<string, ImageLocationsView>;
}

export interface GraphQLContext {
  principal: Principal;
  backend: ArtifactBackend;
  /** Metadata definitions; absent where none are served (subscription executions). */
  metadefs?: MetadefCatalog;
  loaders: Loaders;
  /** Signs data-plane URLs (createUploadUrl); absent where no data plane is served. */
  urlSigner?: UrlSigner;
  /**
   * Backends that did not answer while the others did (a federation's partial listings):
   * sent as errors beside the data when the response leaves (see server.ts).
   */
  warnings: GraphQLFormattedError[];
  /** The image cache; absent when imageCache is not enabled. */
  imageCache?: ImageCachePort;
  /** Where a result that may be reused is noted (src/graphql/response-cache.ts); absent when it may not. */
  resultSlot?: ResultSlot;
}

export function createLoaders(principal: Principal, backend: ArtifactBackend): Loaders {
  return {
    // A VitrineError entry (a backend that did not answer) rejects that id's load only.
    artifact: new DataLoader<string, ArtifactView | null>((ids) => backend.getMany(principal, ids)),
    members: new DataLoader((ids) => backend.membersOf(principal, ids)),
    links: new DataLoader((ids) => backend.linksOf(principal, ids)),
    blobs: new DataLoader((ids) => backend.blobsOf(principal, ids)),
    locations: new DataLoader((ids) => backend.locationsOf(principal, ids)),
  };
}

export function createGraphQLContext(principal: Principal, backend: ArtifactBackend, urlSigner?: UrlSigner, extras: { metadefs?: MetadefCatalog; imageCache?: ImageCachePort; resultSlot?: ResultSlot } = {}): GraphQLContext {
  return {
    principal,
    backend,
    loaders: createLoaders(principal, backend),
    urlSigner,
    warnings: [],
    ...(extras.metadefs && { metadefs: extras.metadefs }),
    ...(extras.imageCache && { imageCache: extras.imageCache }),
    ...(extras.resultSlot && { resultSlot: extras.resultSlot }),
  };
}
