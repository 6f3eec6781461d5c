/**
 * Structured logs (pino), always on stderr: stdout may carry flow lines.
 * JSON lines when stderr is not a terminal, readable lines when it is.
 */
import { pino, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from './levels.js';

export { LOG_LEVELS, type LogLevel } from './levels.js';

export type Logger = PinoLogger;

/** Where formatted log text goes (stderr; a test's buffer; around a progress bar). */
export type LogWrite = (text: string) => void;

export interface LoggerOptions {
  level: LogLevel;
  /** readable lines instead of JSON (stderr is a terminal) */
  pretty: boolean;
  colour?: boolean;
  write?: LogWrite;
}

const writeStderr: LogWrite = (text) => {
  // synchronous for pipes, files and terminals on Linux: nothing is lost at exit
  process.stderr.write(text);
};

export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** pino-pretty is loaded only for a terminal: start-up time counts for a file run. */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const write = options.write ?? writeStderr;
  const format = options.pretty
    ? (await import('pino-pretty')).default.prettyFactory({
        colorize: options.colour ?? false,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
        // fields are for machines; the message says it all on a terminal
        hideObject: true,
      })
    : undefined;
  return pino(
    { name: 'flowprobe', level: options.level },
    { write: format === undefined ? write : (line: string) => write(format(line)) },
  );
}

/**
 * Lets the first occurrence of a repeated message through, then at most one per
 * interval with the count of what was suppressed in between.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly emit: (message: string, suppressed: number) => void,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  log(key: string, message: string): void {
    const t = this.now();
    const seen = this.last.get(key);
    if (seen !== undefined && t - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    const suffix = suppressed > 0 ? ` (${suppressed} more like this suppressed)` : '';
    this.last.set(key, { at: t, suppressed: 0 });
    this.emit(message + suffix, suppressed);
  }
}
