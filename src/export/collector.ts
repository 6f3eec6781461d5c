import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';

/** A collector as the user named it. */
export interface CollectorAddress {
  host: string;
  port: number;
}

export function formatCollector(address: CollectorAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export class CollectorResolveError extends Error {
  readonly code = 'E_COLLECTOR_RESOLVE';
}

export class CollectorConnectError extends Error {
  readonly code = 'E_COLLECTOR_CONNECT';
}

const SEND_BUFFER_BYTES = 4 * 1024 * 1024;

/** Why a send failed, in a few words (errno codes are many; metric labels must stay few). */
export const SEND_ERROR_REASONS = ['refused', 'unreachable', 'no_buffer_space', 'message_too_long', 'not_permitted', 'other'] as const;
export type SendErrorReason = (typeof SEND_ERROR_REASONS)[number];

export function sendErrorReason(code: string): SendErrorReason {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return 'unreachable';
    case 'ENOBUFS':
    case 'EAGAIN':
    case 'ENOMEM':
      return 'no_buffer_space';
    case 'EMSGSIZE':
      return 'message_too_long';
    case 'EPERM':
    case 'EACCES':
      // a firewall rule
      return 'not_permitted';
    default:
      return 'other';
  }
}

/**
 * One NetFlow collector: a connected UDP socket (only a connected socket hears
 * ICMP port-unreachable, which then fails the next send with ECONNREFUSED).
 */
export class Collector {
  /** datagrams the kernel accepted for this collector */
  datagramsSent = 0;
  recordsSent = 0;
  /** failed sends by reason (the error code) */
  readonly errors = new Map<string, number>();

  private constructor(
    readonly label: string,
    /** the resolved address datagrams go to */
    readonly address: string,
    readonly port: number,
    private readonly wrapped: SocketAsPromised,
  ) {}

  static async open(target: CollectorAddress, exportSource: string | undefined): Promise<Collector> {
    const label = formatCollector(target);
    let address = target.host;
    if (isIP(address) === 0) {
      try {
        address = (await lookup(target.host)).address;
      } catch (error) {
        throw new CollectorResolveError(
          `collector ${label}: cannot resolve ${target.host} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        );
      }
    }
    const family = isIP(address) === 6 ? 'udp6' : 'udp4';
    const wrapped = DgramAsPromised.createSocket({ type: family, sendBufferSize: SEND_BUFFER_BYTES });
    try {
      if (exportSource !== undefined) await wrapped.bind(0, exportSource);
      await new Promise<void>((resolve, reject) => {
        const socket = wrapped.socket;
        socket.once('error', reject);
        // A failed connect() (no route to the collector) comes to this callback, not
        // to 'error'; ignored, the socket would stay unconnected and the first send throw.
        const connected = (error?: Error): void => {
          socket.off('error', reject);
          if (error === undefined || error === null) resolve();
          else reject(error);
        };
        socket.connect(target.port, address, connected);
      });
    } catch (error) {
      await wrapped.close().catch(() => undefined);
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CollectorConnectError(`collector ${label}: cannot send to ${address} port ${target.port} (${code})`);
    }
    return new Collector(label, address, target.port, wrapped);
  }

  /** Send without copying: `datagram` must stay untouched until `done` runs. */
  send(datagram: Buffer, length: number, done: (error: Error | null) => void): void {
    this.wrapped.socket.send(datagram, 0, length, done);
  }

  countError(error: NodeJS.ErrnoException): string {
    const reason = error.code ?? 'unknown';
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
    return reason;
  }

  get errorCount(): number {
    let total = 0;
    for (const n of this.errors.values()) total += n;
    return total;
  }

  async close(): Promise<void> {
    await this.wrapped.close();
  }
}
