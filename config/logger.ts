import pino, { type Logger } from 'pino';

export type { Logger };

// Anything that can carry a credential is censored wherever it appears in a log line.
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["stripe-signature"]',
  'req.headers.cookie',
  '*.apiKey',
  '*.apiKeys',
  '*.secretKey',
  '*.webhookSecrets',
  '*.tokens',
  '*.password',
  '*.smtpUrl',
  '*.databaseUrl',
];

/** A logger with the service's redaction; to stdout unless given a destination (the tests' log files). */
export function createLogger(
  options: { level: string; name: string },
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: options.name },
    },
    destination,
  );
}
