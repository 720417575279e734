/**
 * The console of the bank and of each ATM: what it is processing (peer, ATM,
 * action, outcome), never a secret. One line per event: pino writes one JSON
 * object per line, which log tools ingest as is; on a terminal pino-pretty
 * renders each as one readable line. Into a file or a pipe every line is
 * handed to the kernel as soon as it is written (never held back to fill a
 * buffer, so `tail -f` shows a refused login at once), without waiting on a
 * slow reader: lines that pile up meanwhile leave in the next write, and the
 * rest are flushed at exit. Tests pass `silentLogger`.
 *
 * Levels: `debug` is each request a process answered successfully (the
 * bank's deposits, withdrawals, inquiries; every one of them is in the audit
 * trail already), off unless asked for, since formatting and writing a line
 * per transaction was about 8% of the bank's CPU at peak (issue 15);
 * `info` and above (connections, refusals, lockouts, failures) always.
 */
import { pino } from 'pino';

type LogFields = Record<string, string | number | boolean | null | undefined>;
type LogMethod = (fields: LogFields, message: string) => void;

/** `debug` is optional: a logger that leaves it out (a test's, the command-line bank's) drops those lines. */
export type Logger = { debug?: LogMethod; info: LogMethod; warn: LogMethod; error: LogMethod };
export type ProcessLogger = Logger & { flush(): void };

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export function createLogger(name: string, level: LogLevel = 'info'): ProcessLogger {
  const options = { name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (process.stdout.isTTY) {
    const logger = pino({
      ...options,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true },
      },
    });
    return {
      debug: logger.debug.bind(logger),
      info: logger.info.bind(logger),
      warn: logger.warn.bind(logger),
      error: logger.error.bind(logger),
      flush: () => logger.flush(),
    };
  }
  const destination = pino.destination({ dest: 1, sync: false, minLength: 0 });
  const logger = pino(options, destination);
  return {
    debug: logger.debug.bind(logger),
    info: logger.info.bind(logger),
    warn: logger.warn.bind(logger),
    error: logger.error.bind(logger),
    flush: () => destination.flushSync(),
  };
}

const ignore: LogMethod = () => {};
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
