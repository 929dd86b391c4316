import { parse, validate } from 'graphql';
import type { ArtifactBackend } from '../../src/backends/port';
import { TypeRegistry } from '../../src/domain/builtin-types';
import { buildExecutableSchema } from '../../src/graphql/schema';
import { ResponseCache } from '../../src/graphql/response-cache';

/** Which documents may be kept until the next write: those that read artifacts and nothing else. */
describe('ResponseCache.cacheableDocument', () => {
  const types = new TypeRegistry([{ name: 'charts', fields: { chart_version: { kind: 'string' } } }]);
  const schema = buildExecutableSchema(types);
  const cache = new ResponseCache({ entries: 1, bytes: 1 }, schema, {} as ArtifactBackend);
  // Only validated documents reach the cache: each example must be valid, or a refusal proves nothing.
  const cacheable = (source: string) => {
    const document = parse(source);
    expect(validate(schema, document)).toEqual([]);
    return cache.cacheableDocument(document);
  };

  test.each([
    ['an image page with its members, links, blobs and locations', '{ images(first: 5) { edges { cursor node { id name tags properties members { project status artifact { id } } links { name target { id name } } data { size md5 } locations { url metadata } } } pageInfo { hasNextPage endCursor } totalCount } }'],
    ['one image, with __typename and @include', 'query($full: Boolean!) { image(id: "x") { __typename id name @include(if: $full) } }'],
    ['artifacts of an operator type through a fragment', 'fragment C on Chart { chartVersion } query { artifacts(typeName: "charts") { nodes { id ...C } } artifact(id: "x") { id ... on Chart { chartVersion } } }'],
    ['the latest version of a name', '{ latestArtifact(typeName: "charts", name: "web") { id version } }'],
  ])('kept: %s', (_, source) => {
    expect(cacheable(source)).toBe(true);
  });

  test.each([
    ['a mutation', 'mutation { addTags(id: "x", tags: ["a"]) { id } }'],
    ['a subscription', 'subscription { artifactEvents { kind } }'],
    ['the viewer beside images', '{ viewer { projectId } images { totalCount } }'],
    ['usage and quotas', '{ usage { totalCount quotas { name value } } }'],
    ['artifact types', '{ artifactTypes { name } }'],
    ['import tasks', '{ imageTasks(imageId: "x") { id status } }'],
    ['stores', '{ stores { id } }'],
    ['the image cache', '{ imageCache { cachedImages { imageId } } }'],
    ['metadata definitions', '{ metadefNamespaces { namespace } }'],
    ['any node by id', '{ node(id: "x") { id } }'],
    ['nodes by id', '{ nodes(ids: ["x"]) { id } }'],
  ])('executed every time: %s', (_, source) => {
    expect(cacheable(source)).toBe(false);
  });

  test('a document with a mutation beside the query is not kept', () => {
    expect(cacheable('query A { images { totalCount } } mutation B { addTags(id: "x", tags: ["a"]) { id } }')).toBe(false);
  });
});
