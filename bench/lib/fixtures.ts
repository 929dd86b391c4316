// The images both sides are seeded with, and the request bodies the create
// scenarios send: one definition so Glance and Vitrine hold the same data.

export interface SeedImage {
  name: string;
  diskFormat: string;
  containerFormat: string;
  tags: string[];
  properties: Record<string, string>;
}

/** Like the NOTES.md baseline: 2 extra properties and 2 tags per image. */
export function seedImage(i: number): SeedImage {
  return {
    name: `seed-${String(i).padStart(5, '0')}`,
    diskFormat: 'raw',
    containerFormat: 'bare',
    tags: ['seed', `g${i % 10}`],
    properties: { os_distro: 'debian', os_version: String(i % 13) },
  };
}

export function glanceBody(img: SeedImage): Record<string, unknown> {
  return {
    name: img.name,
    disk_format: img.diskFormat,
    container_format: img.containerFormat,
    tags: img.tags,
    ...img.properties,
  };
}

/** The GraphQL image fields matching what Glance returns for an image. */
export const IMAGE_FIELDS = `id name status visibility owner tags properties
  diskFormat containerFormat size virtualSize checksum osHashAlgo osHashValue
  minDisk minRam protected osHidden stores createdAt updatedAt`;

export const CREATE_IMAGE = `mutation CreateImage($input: CreateImageInput!) {
  createImage(input: $input) { ${IMAGE_FIELDS} }
}`;

export const LIST_IMAGES = `query ListImages {
  images(first: 100, sort: [{ key: "createdAt", direction: DESC }]) {
    edges { node { ${IMAGE_FIELDS} } }
    totalCount
  }
}`;

/**
 * The list through a Glance backend: the same page without totalCount, which
 * Glance cannot count (the backend would page through every image, 1000 per
 * call, on every request; docs/glance-backend.md).
 */
export const PROXY_LIST_IMAGES = `query ProxyListImages {
  images(first: 100, sort: [{ key: "createdAt", direction: DESC }]) {
    edges { node { ${IMAGE_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const SHOW_IMAGE = `query ShowImage($id: ID!) {
  image(id: $id) { ${IMAGE_FIELDS} }
}`;

export function graphqlInput(img: SeedImage): Record<string, unknown> {
  return { ...img };
}

/** Unique names for images created under load (both sides get the same shape). */
let created = 0;
export function benchImage(): SeedImage {
  created++;
  return { ...seedImage(created), name: `bench-${process.pid}-${created}` };
}
