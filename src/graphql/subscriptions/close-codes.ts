/**
 * WebSocket close codes this server uses. The 44xx codes of the graphql-transport-ws
 * protocol (4400 bad message, 4401 unauthorised, 4403 forbidden, 4408 init timeout,
 * 4409 duplicate id, 4429 repeated init) are sent by graphql-ws itself; these are ours.
 */
export const CLOSE = {
  /** Server shutting down (RFC 6455 Going Away): reconnect to another instance or later. */
  GOING_AWAY: { code: 1001, reason: 'Server shutting down' },
  /**
   * The subscriber fell too far behind (its queue or the socket's send buffer is full).
   * Not fatal for graphql-ws clients, which reconnect; resubscribe with the last cursor.
   */
  SLOW_CONSUMER: { code: 4420, reason: 'Subscriber too slow: resubscribe with the last cursor received' },
  /** The protocol's Forbidden: connection_init carried no valid token. */
  FORBIDDEN: { code: 4403, reason: 'Forbidden' },
  /**
   * The token could not be checked (the identity service is down or slow): RFC 6455's Try
   * Again Later, not Forbidden, so clients retry instead of giving up on a good token.
   */
  TRY_AGAIN_LATER: { code: 1013, reason: 'Try again later: the identity service is unavailable' },
} as const;
