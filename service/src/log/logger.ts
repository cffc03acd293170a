import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Fields that may carry a secret, wherever they sit in a log object. Code never logs a
 * secret on purpose; redaction is the second line, for the object logged by mistake.
 */
export const redactedPaths = [
  'password', '*.password', 'token', '*.token', 'client_token', '*.client_token',
  'secret_id', '*.secret_id', 'role_id', '*.role_id', 'secrets', '*.secrets', 'data', '*.data',
  'authorization', '*.authorization', 'cookie', '*.cookie', 'headers.cookie', 'headers["x-vault-token"]',
  'headers["set-cookie"]',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'saas-app' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous writes: lines reach stdout in order and before process.exit(), even when the
    // reader of the pipe is slow (an asynchronous stream can reorder a line retried on EAGAIN).
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
