import { fail } from '../../domain/errors';
import type { SignedMethod } from '../../http/dataplane/signing';
import type { GraphQLContext } from '../context';
import type { InputMaybe, Resolvers } from '../__generated__/resolvers';

/**
 * Data-plane mutations: signed upload and download URLs (the bytes then go over plain HTTP,
 * never through GraphQL) and external blobs. A URL is signed only after the caller's access
 * is checked, and the data plane checks it again when the URL is used.
 */
const opt = <T>(v: InputMaybe<T> | undefined): T | undefined => (v === null ? undefined : v);

interface SignArgs {
  artifactId: string;
  field: string;
  key?: InputMaybe<string>;
  expiresInSeconds?: InputMaybe<number>;
}

async function signed(ctx: GraphQLContext, method: SignedMethod, args: SignArgs) {
  const signer = ctx.urlSigner ?? fail('UNAVAILABLE', 'this server does not serve the data plane');
  const requested = { artifactId: args.artifactId, field: args.field, key: args.key ?? '' };
  const target = method === 'PUT'
    ? await ctx.backend.checkUploadable(ctx.principal, requested)
    : (await ctx.backend.openBlob(ctx.principal, requested)).blob;
  return signer.sign({ method, artifactId: target.artifactId, field: target.field, key: target.key }, ctx.principal, args.expiresInSeconds ?? 900);
}

export const dataPlaneResolvers: Resolvers = {
  Mutation: {
    createUploadUrl: (_r, args, ctx) => signed(ctx, 'PUT', args),
    createDownloadUrl: (_r, args, ctx) => signed(ctx, 'GET', args),
    setExternalBlob: (_r, { artifactId, field, key, url, md5, sha512, size, contentType }, ctx) =>
      ctx.backend.setExternalBlob(ctx.principal, { artifactId, field, key: key ?? '' }, { url, md5: opt(md5), sha512: opt(sha512), size: opt(size), contentType: opt(contentType) }),
  },
};
