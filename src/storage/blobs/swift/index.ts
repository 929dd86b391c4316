export { SwiftBlobStore, SWIFT_MAX_OBJECT_BYTES, type SwiftBlobStoreOptions } from './store';
export type { SwiftV1Auth } from './session';
