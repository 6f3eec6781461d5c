import type { LogWrite } from './logger.js';

/**
 * stderr on a terminal: log lines scroll above one line that is redrawn in
 * place (the progress bar), so neither garbles the other.
 */
export class TerminalStderr {
  private line = '';

  constructor(
    private readonly out: (text: string) => void = (text) => process.stderr.write(text),
    readonly columns: () => number = () => process.stderr.columns || 80,
  ) {}

  /** For the logger: each record goes above the line. */
  readonly log: LogWrite = (text) => {
    this.out(this.line === '' ? text : `\r\x1b[K${text}${this.line}`);
  };

  show(line: string): void {
    this.line = line;
    this.out(`\r${line}\x1b[K`);
  }

  /** Leave the line as it stands and go on below it. */
  keep(): void {
    if (this.line !== '') this.out('\n');
    this.line = '';
  }
}

export interface ProgressFrame {
  /** bytes of the file read so far, and its size; undefined when unknown (a pipe) */
  bytesRead: number | undefined;
  size: number | undefined;
  packets: number;
  packetsPerSecond: number;
  flows: number;
  /** of which IPv6 */
  ipv6Flows: number;
}

/** One line: a bar of bytes read when the size is known, then packets/s and flows. */
export function formatProgress(frame: ProgressFrame, columns: number): string {
  const { size, bytesRead } = frame;
  const tail = [
    bytesRead === undefined ? '' : size === undefined ? `${formatBytes(bytesRead)} read` : formatBytePair(bytesRead, size),
    `${formatCount(frame.packetsPerSecond)} packets/s`,
    frame.ipv6Flows > 0 ? `${frame.flows} flows (${frame.ipv6Flows} IPv6)` : `${frame.flows} flows`,
  ]
    .filter((part) => part !== '')
    .join('  ');
  if (size === undefined || bytesRead === undefined || size === 0) return tail.slice(0, columns - 1);
  const fraction = Math.min(1, bytesRead / size);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  // a steady width, whatever the numbers after it
  const width = Math.min(30, columns - 60);
  if (width < 10) return `${percent}  ${tail}`.slice(0, columns - 1);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent}  ${tail}`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

function unitFor(bytes: number): number {
  let unit = 0;
  while (bytes >= 1024 ** (unit + 1) && unit < BYTE_UNITS.length - 1) unit++;
  return unit;
}

function inUnit(bytes: number, unit: number): string {
  return unit === 0 ? String(bytes) : (bytes / 1024 ** unit).toFixed(1);
}

function formatBytes(bytes: number): string {
  const unit = unitFor(bytes);
  return `${inUnit(bytes, unit)} ${BYTE_UNITS[unit]}`;
}

/** "12.5/228.9 MiB" */
function formatBytePair(part: number, whole: number): string {
  const unit = unitFor(whole);
  return `${inUnit(part, unit)}/${inUnit(whole, unit)} ${BYTE_UNITS[unit]}`;
}

function formatCount(n: number): string {
  if (n < 10_000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(0)}k`;
  return `${(n / 1e6).toFixed(2)}M`;
}

/** Packets per second over the last couple of seconds, from samples taken as the bar redraws. */
export class RateMeter {
  private readonly samples: { at: number; count: number }[] = [];
  constructor(private readonly windowMs = 2000) {}

  add(at: number, count: number): number {
    this.samples.push({ at, count });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    return at > first.at ? ((count - first.count) * 1000) / (at - first.at) : 0;
  }
}
