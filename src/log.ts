import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout, one per event; pino writes synchronously enough that a crash loses nothing. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'vigil' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination(1));
}
