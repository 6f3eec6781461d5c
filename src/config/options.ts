import { isIP } from 'node:net';
import type { CollectorAddress } from '../export/collector.js';
import { LOG_LEVELS, type LogLevel } from '../log/levels.js';

/** Every long option can also come from FLOWPROBE_<NAME>: --active-timeout ← FLOWPROBE_ACTIVE_TIMEOUT. */
export const ENV_PREFIX = 'FLOWPROBE';

export function environmentName(option: string): string {
  return `${ENV_PREFIX}_${option.toUpperCase().replace(/-/g, '_')}`;
}

/** A mistake the user can fix: reported as one line, exit code 2. */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** yargs' fail handler for every parser: each mistake becomes one UsageError line. */
export function failAsUsageError(message: string | null | undefined, error: Error | null | undefined): never {
  if (error instanceof UsageError) throw error;
  throw new UsageError(message ?? error?.message ?? 'invalid command line');
}

export interface InterfaceSpec {
  name: string;
  /** given as IFINDEX:NAME; otherwise looked up from the system */
  ifIndex: number | undefined;
  /** ipcad.conf: this interface's own promiscuous mode and BPF filter */
  promiscuous?: boolean;
  filter?: string;
}

/** Everything the probe runs from, validated. Times in seconds as the user gave them. */
export const INTERFACE_LOSS_ACTIONS = ['exit', 'retry'] as const;
export type InterfaceLossAction = (typeof INTERFACE_LOSS_ACTIONS)[number];

/** NetFlow v5, NetFlow v9 (RFC 3954), IPFIX (RFC 7011, version 10): softflowd's numbers. */
export const EXPORT_VERSIONS = [5, 9, 10] as const;
export type ExportVersion = (typeof EXPORT_VERSIONS)[number];

/** A collector and the version it is sent (HOST:PORT/VERSION, else --export-version). */
export interface CollectorTarget extends CollectorAddress {
  version: ExportVersion;
}

export interface ProbeOptions {
  interfaces: InterfaceSpec[];
  /** capture file, '-' for stdin */
  read: string | undefined;
  collectors: CollectorTarget[];
  exportSource: string | undefined;
  activeTimeout: number;
  inactiveTimeout: number;
  tcpEndTimeout: number;
  maxFlows: number;
  snaplen: number;
  bufferSize: number;
  promiscuous: boolean;
  engineType: number;
  engineId: number;
  /** datagrams per second */
  exportRate: number;
  /** datagrams waiting to be sent */
  exportQueue: number;
  /** v9 source id / IPFIX observation domain id */
  sourceId: number;
  /** v9/IPFIX: templates are sent again after this many datagrams ... */
  templateRefreshPackets: number;
  /** ... and after this many seconds */
  templateRefreshSeconds: number;
  /** v9/IPFIX: largest datagram (UDP payload) sent: the path MTU less IP and UDP headers */
  exportMaxBytes: number;
  /** BPF filter as the user gave it ('' for none) */
  filter: string;
  /** switch to this user (name or number) once captures and sockets are open; undefined: stay */
  user: string | undefined;
  /** and this group; undefined: the user's primary group */
  group: string | undefined;
  /** a live interface that goes away: exit (the supervisor restarts us) or wait for it */
  onInterfaceLoss: InterfaceLossAction;
  /** how often live mode checks timeouts, ms */
  tickMs: number;
  /** where /metrics, /healthz and /readyz are served; undefined: off */
  metricsListen: ListenAddress | undefined;
  /** seconds the metrics stay served after the run, so the final figures can be scraped */
  metricsLinger: number;
  logLevel: LogLevel;
  /** seconds between live status lines; 0: none */
  statusInterval: number;
}

/** An address to listen on; port 0 lets the system choose (the log says which). */
export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULTS = {
  activeTimeout: 1800,
  inactiveTimeout: 15,
  tcpEndTimeout: 5,
  maxFlows: 262144,
  snaplen: 256,
  bufferSize: 32 * 1024 * 1024,
  engineType: 0,
  engineId: 0,
  exportRate: 50000,
  exportQueue: 4096,
  exportVersion: 5,
  templateRefreshPackets: 20,
  templateRefreshSeconds: 60,
  exportMaxBytes: 1400,
  /** live only: reading a file serves metrics only when asked to */
  metricsListen: '127.0.0.1:9464',
  metricsLinger: 0,
  logLevel: 'info',
  statusInterval: 60,
} as const;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

export function integerOption(name: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected a whole number from ${min} to ${max}, got ${describe(value)}`);
  }
  return n;
}

export function secondsOption(name: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected seconds from ${min} to ${max}, got ${describe(value)}`);
  }
  return n;
}

export function exportVersionOption(name: string, value: unknown): ExportVersion {
  const version = EXPORT_VERSIONS.find((v) => String(v) === String(value).trim());
  if (version === undefined) {
    throw new UsageError(`--${name}: expected 5 (NetFlow v5), 9 (NetFlow v9) or 10 (IPFIX), got ${describe(value)}`);
  }
  return version;
}

/** HOST:PORT[/VERSION] or [IPv6]:PORT[/VERSION]; without a version, `defaultVersion`. */
export function parseCollectorTarget(spec: string, defaultVersion: ExportVersion, option = 'collector'): CollectorTarget {
  const slash = /^(.*)\/([^/]*)$/.exec(spec);
  if (slash === null) return { ...parseCollector(spec, option), version: defaultVersion };
  const version = EXPORT_VERSIONS.find((v) => String(v) === slash[2]);
  if (version === undefined) {
    throw new UsageError(`--${option}: the version after "/" must be 5, 9 or 10, got ${describe(slash[2])} in ${describe(spec)}`);
  }
  return { ...parseCollector(slash[1]!, option), version };
}

/** HOST:PORT, [IPv6]:PORT */
export function parseCollector(spec: string, option = 'collector'): CollectorAddress {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(spec) ?? /^([^:[\]]+):(\d+)$/.exec(spec);
  if (match === null) {
    throw new UsageError(`--${option}: expected HOST:PORT or [IPv6]:PORT, got ${describe(spec)}`);
  }
  const host = match[1]!;
  if (spec.startsWith('[') && isIP(host) !== 6) {
    throw new UsageError(`--${option}: ${describe(host)} in brackets is not an IPv6 address`);
  }
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--${option}: port must be 1 to 65535, got ${describe(match[2])} in ${describe(spec)}`);
  }
  return { host, port };
}

/** HOST:PORT or [IPv6]:PORT to listen on (port 0: any free port), or "off". */
export function parseListenAddress(name: string, value: unknown): ListenAddress | undefined {
  if (value === 'off') return undefined;
  const spec = typeof value === 'string' ? value : '';
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(spec);
  const match = bracketed ?? /^([^:[\]]+):(\d+)$/.exec(spec);
  const host = match?.[1];
  if (match === null || host === undefined || isIP(host) !== (bracketed === null ? 4 : 6)) {
    throw new UsageError(`--${name}: expected ADDRESS:PORT, [IPv6]:PORT or off, got ${describe(value)}`);
  }
  return { host, port: integerOption(name, match[2], 0, 65535) };
}

export function logLevelOption(name: string, value: unknown): LogLevel {
  const level = LOG_LEVELS.find((l) => l === value);
  if (level === undefined) throw new UsageError(`--${name}: expected one of ${LOG_LEVELS.join(', ')}, got ${describe(value)}`);
  return level;
}

/** [IFINDEX:]NAME */
export function parseInterface(spec: string): InterfaceSpec {
  const match = /^(?:(\d+):)?(.+)$/.exec(spec);
  const name = match?.[2];
  if (match === null || name === undefined || name.trim() === '') {
    throw new UsageError(`--interface: expected [IFINDEX:]NAME, got ${describe(spec)}`);
  }
  return {
    name,
    ifIndex: match[1] === undefined ? undefined : integerOption('interface', match[1], 0, 65535),
  };
}

export function parseAddress(name: string, value: unknown): string {
  if (typeof value !== 'string' || isIP(value) === 0) {
    throw new UsageError(`--${name}: expected an IPv4 or IPv6 address, got ${describe(value)}`);
  }
  return value;
}
