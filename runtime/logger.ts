/**
 * The console of the bank and of each ATM: what it is processing (peer, ATM,
 * action, outcome), never a secret. pino writes one JSON object per line,
 * which log tools ingest as is; on a terminal pino-pretty renders it for
 * people. When piped, lines are buffered (a write per 4 KiB, not per
 * request) and flushed at exit. Tests pass `silentLogger`.
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
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } },
    });
    return {
      info: logger.info.bind(logger),
      warn: logger.warn.bind(logger),
      error: logger.error.bind(logger),
      flush: () => logger.flush(),
    };
  }
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
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
