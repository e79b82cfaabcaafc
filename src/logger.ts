import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs. Anything that could carry a credential is redacted by path, and the serialisers below never
 * include request headers or bodies, so no key, token, password or cookie reaches a log line.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['*.authorization', '*.cookie', '*["x-api-key"]', '*.password', '*.secret', '*.token', 'headers', 'req.headers'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
