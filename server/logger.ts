/**
 * The bank's console: what it is processing (peer, ATM, action, outcome),
 * never a secret. pino writes one JSON object per line, which log tools
 * ingest as is; on a terminal pino-pretty renders it for people. Tests pass
 * `silentLogger`.
 */
import { pino } from 'pino';

type LogFields = Record<string, string | number | boolean | null | undefined>;
type LogMethod = (fields: LogFields, message: string) => void;

export type Logger = { info: LogMethod; warn: LogMethod; error: LogMethod };

export function createLogger(name: string): Logger {
  const pretty = process.stdout.isTTY
    ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } }
    : {};
  return pino({ name, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, ...pretty });
}

const ignore: LogMethod = () => {};
export const silentLogger: Logger = { info: ignore, warn: ignore, error: ignore };
