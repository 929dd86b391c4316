import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Secrets never reach the log: credentials in request headers and any `token` key up to
 * three levels deep are replaced before a line is written.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-auth-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-auth-token"]',
  'headers.cookie',
  'res.headers["set-cookie"]',
  'token',
  '*.token',
  '*.*.token',
  '*.*.*.token',
];

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout when omitted (tests pass a sink). */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const settings: pino.LoggerOptions = {
    level: options.level,
    base: { service: 'vitrine' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
