import { HeaderMap } from '@apollo/server';
import { GraphQLError, type GraphQLFormattedError, type ResponsePath, type ValidationContext } from 'graphql';
import type { BackendWarning } from '../backends/port';
import { isErrorCode, VitrineError, type ErrorCode } from '../domain/errors';
import type { Logger } from '../observability/logger';

/**
 * How errors leave the GraphQL edge: a VitrineError keeps its message and code; Apollo's
 * own request-level codes (registered too) pass through; limit rejections get our codes; anything else is
 * logged with its stack and masked as INTERNAL. No stack traces ever reach a response.
 */


/** graphql-js's parser message when `parseOptions.maxTokens` is exceeded (its typo included). */
const TOKEN_LIMIT = /Document contains more that (\d+) tokens/;

export const UNEXPECTED_MESSAGE = 'Unexpected error';

/** The VitrineError behind an error, however deeply Apollo and graphql-js wrapped it. */
export function vitrineErrorIn(error: unknown): VitrineError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof VitrineError) return current;
    current = (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

export function createErrorFormatter(log: Logger): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => {
    const where = { ...(formatted.locations && { locations: formatted.locations }), ...(formatted.path && { path: formatted.path }) };
    const vitrine = vitrineErrorIn(error);
    if (vitrine) {
      const backend = vitrine.details?.backend;
      return {
        message: vitrine.message,
        ...where,
        extensions: { code: vitrine.code, ...(typeof backend === 'string' && { backend }), ...(vitrine.details && { details: vitrine.details }) },
      };
    }
    const code = formatted.extensions?.code;
    const tokens = code === 'GRAPHQL_PARSE_FAILED' ? TOKEN_LIMIT.exec(formatted.message) : null;
    if (tokens) {
      return { message: `The document has more than ${tokens[1]} tokens.`, ...where, extensions: { code: 'TOO_MANY_TOKENS' satisfies ErrorCode } };
    }
    if (isErrorCode(code) && code !== 'INTERNAL') {
      return { message: formatted.message, ...where, extensions: { code } };
    }
    const cause = (error as { originalError?: unknown })?.originalError ?? error;
    log.error({ err: cause, path: formatted.path }, 'unexpected error in a GraphQL request');
    return { message: UNEXPECTED_MESSAGE, ...where, extensions: { code: 'INTERNAL' satisfies ErrorCode } };
  };
}

/**
 * A VitrineError raised before execution (authentication in the context function) as the
 * GraphQLError Apollo turns into the whole response, with the code's HTTP status.
 */
export function asRequestError(error: VitrineError): GraphQLError {
  const headers = new HeaderMap(error.code === 'UNAUTHENTICATED' ? [['www-authenticate', 'Bearer']] : []);
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: { code: error.code, http: { status: error.status, headers } },
  });
}

/**
 * graphql-armor's rejections become validation errors that carry our code: Apollo wraps
 * them as GRAPHQL_VALIDATION_FAILED but keeps `originalError`, where the formatter finds it.
 */
export function rejectAs(code: ErrorCode): (context: ValidationContext | null, error: GraphQLError) => void {
  return (context, error) => {
    const message = error.message.replace(/^Syntax Error: /, '');
    context?.reportError(new GraphQLError(message, { originalError: new VitrineError(code, message) }));
  };
}

/** A GraphQL-shaped body for errors answered before Apollo runs (body limit, batch size). */
export function errorBody(code: ErrorCode, message: string): { errors: GraphQLFormattedError[] } {
  return { errors: [{ message, extensions: { code } }] };
}

/**
 * A backend that did not answer while the others did, as an error beside the data: the
 * field's path, the backend's code, and `extensions.backend` naming it.
 */
export function warningError(warning: BackendWarning, path: ResponsePath | undefined): GraphQLFormattedError {
  const segments: (string | number)[] = [];
  for (let p = path; p; p = p.prev) segments.unshift(p.key);
  return {
    message: `backend ${warning.backend} did not answer; the result holds the other backends' artifacts only: ${warning.message}`,
    ...(segments.length > 0 && { path: segments }),
    extensions: { code: warning.code, backend: warning.backend },
  };
}
