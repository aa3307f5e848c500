/** Logger options that keep secrets out of the logs. */
import type { FastifyServerOptions } from 'fastify';

/**
 * Redacted wherever they appear in a log object (request headers, errors, config dumps). The
 * request log line itself never includes headers or bodies; this is the safety net.
 */
export const REDACT_PATHS: readonly string[] = [
  'authorization',
  'cookie',
  'token',
  'password',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'request.headers.authorization',
  'request.headers.cookie',
  '*.authorization',
  '*.token',
  '*.password',
  '*.tokens',
];

export type LoggerOptions = Exclude<FastifyServerOptions['logger'], boolean | undefined>;

/** pino options for the server: level, redaction, and optionally a destination stream (tests). */
export function loggerOptions(level: string, stream?: { write(msg: string): void }): LoggerOptions {
  return {
    level,
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    ...(stream ? { stream } : {}),
  };
}
