import {
  createSourceEventStream,
  execute,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import type { ArtifactBackend } from '../../backends/port';
import type { Principal } from '../../domain/policy';
import { createLoaders, type GraphQLContext } from '../context';
import type { Delivery, SubscriptionContext } from './context';
import { GroupMember } from './fanout';

/**
 * Parsing, validation and execution for the WebSocket transport, with the same limits as
 * HTTP (maxTokens in the parser, graphql-armor's rules in validation), and a subscription
 * execution that gives every event its own context with fresh DataLoaders.
 */
const TOKEN_LIMIT = /Document contains more that (\d+) tokens/;

export interface DocumentRules {
  maxTokens: number;
  /** graphql-armor's rules (depth, cost, aliases, directives). */
  armor: readonly ValidationRule[];
  /** Hide "Did you mean …?" hints, as HTTP does in production. */
  hideSuggestions: boolean;
}

/** The document, or the errors to answer with, each carrying its code. */
export function parseAndValidate(schema: GraphQLSchema, query: string, rules: DocumentRules): DocumentNode | GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: rules.maxTokens });
  } catch (err) {
    if (!(err instanceof GraphQLError)) throw err;
    const tokens = TOKEN_LIMIT.exec(err.message);
    if (tokens) return [coded(`The document has more than ${tokens[1]} tokens.`, 'TOO_MANY_TOKENS')];
    return [coded(err.message, 'GRAPHQL_PARSE_FAILED', err)];
  }
  const errors = validate(schema, document, [...specifiedRules, ...rules.armor]);
  if (errors.length === 0) return document;
  return errors.map((e) => {
    // Armor's rejections carry their own code (through originalError); the rest are plain validation failures.
    if (e.originalError) return e;
    const message = rules.hideSuggestions ? e.message.replace(/ ?Did you mean .*$/, '') : e.message;
    return coded(message, 'GRAPHQL_VALIDATION_FAILED', e);
  });
}

/**
 * `parseAndValidate` with its successes remembered by query text (the schema and rules are
 * fixed per server): identical subscriptions share one DocumentNode instead of each holding
 * its own tree of nodes and tokens, and are parsed and validated once. Failures are not
 * kept, so a flood of bad documents cannot fill the cache.
 */
export function cachedParseAndValidate(schema: GraphQLSchema, rules: DocumentRules, maxEntries = 256): (query: string) => DocumentNode | GraphQLError[] {
  const documents = new Map<string, DocumentNode>();
  return (query) => {
    const known = documents.get(query);
    if (known) {
      // Most recently used last: the first entry is the one to evict.
      documents.delete(query);
      documents.set(query, known);
      return known;
    }
    const result = parseAndValidate(schema, query, rules);
    if (Array.isArray(result)) return result;
    documents.set(query, result);
    if (documents.size > maxEntries) documents.delete(documents.keys().next().value as string);
    return result;
  };
}

function coded(message: string, code: string, from?: GraphQLError): GraphQLError {
  return new GraphQLError(message, { nodes: from?.nodes, source: from?.source, positions: from?.positions, extensions: { code } });
}

/**
 * graphql-js's `subscribe`, except that each event executes with a context of its own:
 * fresh loaders for the subscriber's principal, primed with the artifact authorised at
 * delivery, so no event sees data cached by an earlier one. A grouped subscription
 * (`fanout.ts`) is returned as it is: its group executes and writes the events itself.
 */
export async function subscribeWithEventContexts(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
  if (source instanceof GroupMember) return source;
  const events = source as AsyncIterableIterator<Delivery>;
  const base = args.contextValue as SubscriptionContext;
  const run = (payload: Delivery) => execute({ ...args, rootValue: payload, contextValue: { ...base, ...eventContext(base.principal, base.backend, payload) } }) as Promise<ExecutionResult>;
  const stream: AsyncIterableIterator<ExecutionResult> = {
    async next(): Promise<IteratorResult<ExecutionResult>> {
      const step = await events.next();
      return step.done ? { value: undefined, done: true } : { value: await run(step.value), done: false };
    },
    async return(): Promise<IteratorResult<ExecutionResult>> {
      await events.return?.();
      return { value: undefined, done: true };
    },
    async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
      await events.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}

/** A context for one event: fresh loaders, primed with the artifact authorised at delivery. */
export function eventContext(principal: Principal, backend: ArtifactBackend, payload: Delivery): GraphQLContext {
  const loaders = createLoaders(principal, backend);
  if (payload.artifact && !payload.snapshot) loaders.artifact.prime(payload.artifact.id, payload.artifact);
  // Federation warnings of listings are not reported over WebSocket (docs/federation.md).
  return { principal, backend, loaders, warnings: [] };
}
