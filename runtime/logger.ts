/**
 * The console of the bank and of each ATM: what it is processing (peer, ATM,
 * action, outcome), never a secret. One line per event: pino writes one JSON
 * object per line, which log tools ingest as is; on a terminal pino-pretty
 * renders each as one readable line. Into a file or a pipe every line is
 * handed to the kernel as soon as it is written (never held back to fill a
 * buffer, so `tail -f` shows a refused login at once), without waiting on a
 * slow reader: lines that pile up meanwhile leave in the next write, and the
 * rest are flushed at exit. Tests pass `silentLogger`.
 */
import { pino } from 'pino';

type LogFields = Record<string, string | number | boolean | null | undefined>;
type LogMethod = (fields: LogFields, message: string) => void;

export type Logger = { info: LogMethod; warn: LogMethod; error: LogMethod };
export type ProcessLogger = Logger & { flush(): void };

export function createLogger(name: string): ProcessLogger {
  const options = { name, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (process.stdout.isTTY) {
    const logger = pino({
      ...options,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true },
      },
    });
    return {
      info: logger.info.bind(logger),
      warn: logger.warn.bind(logger),
      error: logger.error.bind(logger),
      flush: () => logger.flush(),
    };
  }
  const destination = pino.destination({ dest: 1, sync: false, minLength: 0 });
  const logger = pino(options, destination);
  return {
    info: logger.info.bind(logger),
    warn: logger.warn.bind(logger),
    error: logger.error.bind(logger),
    flush: () => destination.flushSync(),
  };
}

const ignore: LogMethod = () => {};
export const silentLogger: Logger = { info: ignore, warn: ignore, error: ignore };
