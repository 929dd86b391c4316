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
import { createLoaders } from '../context';
import type { Delivery, SubscriptionContext } from './context';

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

function coded(message: string, code: string, from?: GraphQLError): GraphQLError {
  return new GraphQLError(message, { nodes: from?.nodes, source: from?.source, positions: from?.positions, extensions: { code } });
}

/**
 * graphql-js's `subscribe`, except that each event executes with a context of its own:
 * fresh loaders for the subscriber's principal, primed with the artifact authorised at
 * delivery, so no event sees data cached by an earlier one.
 */
export async function subscribeWithEventContexts(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
  const events = source as AsyncIterableIterator<Delivery>;
  const base = args.contextValue as SubscriptionContext;
  const run = (payload: Delivery) => execute({ ...args, rootValue: payload, contextValue: eventContext(base, payload) }) as Promise<ExecutionResult>;
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

function eventContext(base: SubscriptionContext, payload: Delivery): SubscriptionContext {
  const loaders = createLoaders(base.principal, base.backend);
  if (payload.artifact && !payload.snapshot) loaders.artifact.prime(payload.artifact.id, payload.artifact);
  return { ...base, loaders };
}
