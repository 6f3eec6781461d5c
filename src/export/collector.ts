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

export class CollectorConnectError extends Error {
  readonly code = 'E_COLLECTOR_CONNECT';
  constructor(
    message: string,
    /** the socket's error code (ENETUNREACH, …) */
    readonly errno: string,
  ) {
    super(message);
  }
}

const SEND_BUFFER_BYTES = 4 * 1024 * 1024;

/** Why a send failed, in a few words (errno codes are many; metric labels must stay few). */
export const SEND_ERROR_REASONS = [
  'refused',
  'unreachable',
  'unresolved',
  'no_buffer_space',
  'message_too_long',
  'not_permitted',
  'other',
] as const;
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
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
    case 'ENODATA':
      // the collector's name does not resolve (yet): its datagrams could go nowhere
      return 'unresolved';
    case 'EPERM':
    case 'EACCES':
      // a firewall rule
      return 'not_permitted';
    default:
      return 'other';
  }
}

/** What a collector whose name does not resolve tells the control plane. */
export interface CollectorEvents {
  /** a lookup failed (at start, or a retry): `why` is its error code, or why the connect failed; the next try is in `retryInMs` */
  resolveFailed(collector: Collector, why: string, retryInMs: number): void;
  /** the name resolved and the socket is connected; held datagrams go out now */
  resolved(collector: Collector, address: string, attempts: number): void;
  /**
   * An error the socket reported outside a send: an ICMP port unreachable read while
   * the socket was idle (ECONNREFUSED for a datagram the kernel had accepted). It is
   * already counted in `errors`.
   */
  socketError(collector: Collector, error: NodeJS.ErrnoException): void;
}

export interface CollectorOptions {
  /** source address to bind (--export-source) */
  exportSource?: string | undefined;
  /**
   * Datagrams held while the name does not resolve. Live mode holds a few and fails
   * the rest (counted); file mode holds everything it is given (Infinity): the
   * exporter's in-flight limit and the worker's pause bound what that can be.
   */
  holdWhileUnresolved: number;
  events?: CollectorEvents | undefined;
  /** first retry delay; each failure doubles it up to RESOLVE_RETRY_MAX_MS */
  retryMs?: number;
}

/** Retries of a name that does not resolve: 1 s, 2 s, 4 s, … at most 30 s apart. */
export const RESOLVE_RETRY_FIRST_MS = 1000;
export const RESOLVE_RETRY_MAX_MS = 30_000;

interface HeldDatagram {
  datagram: Buffer;
  length: number;
  done: (error: Error | null) => void;
}

/** An error with an errno-style code, as the send callback hands out. */
function codedError(code: string, message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(message);
  error.code = code;
  return error;
}

/**
 * One NetFlow collector: a connected UDP socket (only a connected socket hears
 * ICMP port-unreachable, which then fails the next send with ECONNREFUSED).
 *
 * A collector given by name that does not resolve is not fatal: the probe keeps
 * capturing, the lookup is retried with backoff, and datagrams are held (file mode)
 * or held up to a bound and then failed, counted by reason `unresolved` (live mode).
 */
export class Collector {
  /** datagrams the kernel accepted for this collector */
  datagramsSent = 0;
  recordsSent = 0;
  /** failed sends by reason (the error code) */
  readonly errors = new Map<string, number>();
  /** lookups that failed so far */
  resolveFailures = 0;

  private socket: SocketAsPromised | undefined;
  private resolvedAddress: string | undefined;
  private held: HeldDatagram[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private lastLookupError = 'ENOTFOUND';
  private givenUp = false;
  private closed = false;

  private constructor(
    readonly label: string,
    private readonly target: CollectorAddress,
    private readonly options: CollectorOptions,
  ) {
    this.retryMs = options.retryMs ?? RESOLVE_RETRY_FIRST_MS;
  }

  /**
   * Open a collector. An address, or a name that resolves, is connected at once;
   * a connect failure (no route) throws CollectorConnectError. A name that does not
   * resolve gives an unresolved collector that keeps trying on its own.
   */
  static async open(target: CollectorAddress, options: CollectorOptions): Promise<Collector> {
    const collector = new Collector(formatCollector(target), target, options);
    const address = await collector.lookup();
    if (address === undefined) {
      collector.scheduleRetry();
    } else {
      await collector.connect(address);
    }
    return collector;
  }

  /** the address datagrams go to; undefined while the name does not resolve */
  get address(): string | undefined {
    return this.resolvedAddress;
  }

  get port(): number {
    return this.target.port;
  }

  get resolved(): boolean {
    return this.resolvedAddress !== undefined;
  }

  /** datagrams waiting for the name to resolve */
  get heldDatagrams(): number {
    return this.held.length;
  }

  /** Send without copying: `datagram` must stay untouched until `done` runs. */
  send(datagram: Buffer, length: number, done: (error: Error | null) => void): void {
    if (this.socket !== undefined) {
      this.socket.socket.send(datagram, 0, length, done);
      return;
    }
    if (!this.givenUp && this.held.length < this.options.holdWhileUnresolved) {
      this.held.push({ datagram, length, done });
      return;
    }
    done(codedError(this.lastLookupError, `cannot resolve ${this.target.host} (${this.lastLookupError})`));
  }

  /**
   * Stop waiting for the name (a signal asked the probe to stop): held datagrams and
   * every later send fail, counted, so the exporter's drain can end.
   */
  stopWaiting(): void {
    if (this.socket !== undefined || this.givenUp) return;
    this.givenUp = true;
    clearTimeout(this.retryTimer);
    this.failHeld();
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
    this.closed = true;
    this.stopWaiting();
    const socket = this.socket;
    this.socket = undefined;
    await socket?.close();
  }

  private async lookup(): Promise<string | undefined> {
    if (isIP(this.target.host) !== 0) return this.target.host;
    try {
      return (await lookup(this.target.host)).address;
    } catch (error) {
      this.resolveFailures++;
      this.lastLookupError = (error as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
      return undefined;
    }
  }

  private async connect(address: string): Promise<void> {
    const family = isIP(address) === 6 ? 'udp6' : 'udp4';
    const wrapped = DgramAsPromised.createSocket({ type: family, sendBufferSize: SEND_BUFFER_BYTES });
    try {
      if (this.options.exportSource !== undefined) await wrapped.bind(0, this.options.exportSource);
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
        socket.connect(this.target.port, address, connected);
      });
    } catch (error) {
      await wrapped.close().catch(() => undefined);
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CollectorConnectError(`collector ${this.label}: cannot send to ${address} port ${this.target.port} (${code})`, code);
    }
    // A connected socket that is idle reads the ICMP error itself and emits it;
    // dgram-as-promised only stores it for its next promise: count and report it here.
    wrapped.socket.on('error', (error: NodeJS.ErrnoException) => {
      this.countError(error);
      this.options.events?.socketError(this, error);
    });
    this.socket = wrapped;
    this.resolvedAddress = address;
  }

  private scheduleRetry(): void {
    if (this.givenUp || this.closed) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(RESOLVE_RETRY_MAX_MS, this.retryMs * 2);
    this.options.events?.resolveFailed(this, this.lastLookupError, delay);
    this.retryTimer = setTimeout(() => void this.retry(), delay);
  }

  private async retry(): Promise<void> {
    if (this.givenUp || this.closed) return;
    const address = await this.lookup();
    if (this.givenUp || this.closed) return;
    if (address === undefined) {
      this.scheduleRetry();
      return;
    }
    try {
      await this.connect(address);
    } catch (error) {
      // resolved, but no route yet: count it as a failed attempt and keep trying
      this.resolveFailures++;
      this.lastLookupError = error instanceof CollectorConnectError ? error.errno : 'EHOSTUNREACH';
      this.scheduleRetry();
      return;
    }
    if (this.closed || this.givenUp) {
      // stopped while connecting: what was held has failed already
      this.socket = undefined;
      this.resolvedAddress = undefined;
      return;
    }
    this.options.events?.resolved(this, address, this.resolveFailures);
    const held = this.held;
    this.held = [];
    for (const h of held) this.send(h.datagram, h.length, h.done);
  }

  private failHeld(): void {
    const held = this.held;
    this.held = [];
    for (const h of held) this.send(h.datagram, h.length, h.done);
  }
}
