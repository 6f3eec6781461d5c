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
  /** the name's lookup (the system resolver unless a test gives its own): an address, or a rejection with an errno code */
  lookup?: ((host: string) => Promise<string>) | undefined;
}

/** Retries of a name that does not resolve: 1 s, 2 s, 4 s, … at most 30 s apart. */
export const RESOLVE_RETRY_FIRST_MS = 1000;
export const RESOLVE_RETRY_MAX_MS = 30_000;

interface HeldDatagram {
  datagram: Buffer;
  length: number;
  done: (error: Error | null) => void;
}

/** The system resolver's first address for a name. */
async function systemLookup(host: string): Promise<string> {
  return (await lookup(host)).address;
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** A socket's family as dgram names it. */
function socketType(address: string | undefined): 'udp4' | 'udp6' {
  return address !== undefined && isIP(address) === 6 ? 'udp6' : 'udp4';
}

async function closeQuietly(socket: SocketAsPromised): Promise<void> {
  // dgram throws on a second close; closing is all that is wanted here
  await socket.close().catch(() => undefined);
}

/** connect(2) a UDP socket; rejects if it fails, or if the socket is closed meanwhile (its callback would never come). */
function connectSocket(socket: SocketAsPromised, port: number, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const udp = socket.socket;
    const settle = (error: Error | null): void => {
      udp.off('error', onError);
      udp.off('close', onClose);
      if (error === null) resolve();
      else reject(error);
    };
    const onError = (error: Error): void => settle(error);
    const onClose = (): void => settle(codedError('ECANCELED', 'the collector was closed while connecting'));
    udp.once('error', onError);
    udp.once('close', onClose);
    // A failed connect() (no route to the collector) comes to this callback, not
    // to 'error'; ignored, the socket would stay unconnected and the first send throw.
    udp.connect(port, address, (error?: Error) => settle(error ?? null));
  });
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
 * Its socket is bound from the start all the same, so its source port is known
 * before any capture opens (the capture's exclusion filter names it).
 */
export class Collector {
  /** datagrams the kernel accepted for this collector */
  datagramsSent = 0;
  recordsSent = 0;
  /** failed sends by reason (the error code) */
  readonly errors = new Map<string, number>();
  /** lookups that failed so far */
  resolveFailures = 0;

  /** bound from open(); connected once the name resolved (resolvedAddress) */
  private socket: SocketAsPromised | undefined;
  /** a socket of the other family being connected (the name resolved to an address of it) */
  private replacement: SocketAsPromised | undefined;
  private resolvedAddress: string | undefined;
  private local: { address: string | undefined; port: number } | undefined;
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
   * resolve gives an unresolved collector that keeps trying on its own, its socket
   * bound already (a bind failure, an --export-source not on this host, throws).
   */
  static async open(target: CollectorAddress, options: CollectorOptions): Promise<Collector> {
    const collector = new Collector(formatCollector(target), target, options);
    const address = await collector.lookup();
    if (address === undefined) {
      await collector.bindUnresolved();
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

  /**
   * Where our datagrams come from: the socket's local port (fixed from open() on),
   * and its local address once known (connected, or bound with --export-source).
   */
  get source(): { address: string | undefined; port: number } | undefined {
    return this.local;
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
    if (this.resolvedAddress !== undefined && this.socket !== undefined) {
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
    if (this.resolvedAddress !== undefined || this.givenUp) return;
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

  /** Close every socket, also one still connecting (its connect then fails and nothing more is tried). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWaiting();
    clearTimeout(this.retryTimer);
    const sockets = [this.socket, this.replacement].filter((s) => s !== undefined);
    this.socket = undefined;
    this.replacement = undefined;
    await Promise.all(sockets.map(closeQuietly));
  }

  private async lookup(): Promise<string | undefined> {
    if (isIP(this.target.host) !== 0) return this.target.host;
    try {
      return await (this.options.lookup ?? systemLookup)(this.target.host);
    } catch (error) {
      this.resolveFailures++;
      this.lastLookupError = (error as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
      return undefined;
    }
  }

  /** A socket of `type` bound to `port` (0: any) on --export-source (or any address); it follows the collector's error count. */
  private async bound(type: 'udp4' | 'udp6', port: number): Promise<SocketAsPromised> {
    // ipv6Only when a port is asked for: a dual-stack socket would claim the IPv4 port of that number too
    const wrapped = DgramAsPromised.createSocket({ type, sendBufferSize: SEND_BUFFER_BYTES, ipv6Only: type === 'udp6' && port !== 0 });
    try {
      await wrapped.bind(port, this.options.exportSource);
    } catch (error) {
      await closeQuietly(wrapped);
      throw error;
    }
    // A connected socket that is idle reads the ICMP error itself and emits it;
    // dgram-as-promised only stores it for its next promise: count and report it here.
    wrapped.socket.on('error', (error: NodeJS.ErrnoException) => {
      this.countError(error);
      this.options.events?.socketError(this, error);
    });
    return wrapped;
  }

  /** An unresolved name: bind now (the family of --export-source, else IPv4), so the source port is known. */
  private async bindUnresolved(): Promise<void> {
    try {
      this.socket = await this.bound(socketType(this.options.exportSource), 0);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CollectorConnectError(`collector ${this.label}: cannot bind a socket to send from${this.options.exportSource === undefined ? '' : ` ${this.options.exportSource}`} (${code})`, code);
    }
    this.noteSource(this.socket);
  }

  private noteSource(socket: SocketAsPromised): void {
    const { address, port } = socket.address();
    this.local = { address: isWildcard(address) ? undefined : address, port };
  }

  /**
   * Connect to `address`: the socket bound while the name did not resolve if it is of
   * the address's family, else a new one on the same source port. Throws
   * CollectorConnectError; the collector closed meanwhile throws too, its sockets closed.
   */
  private async connect(address: string): Promise<void> {
    const type = socketType(address);
    const reserved = this.socket;
    let socket: SocketAsPromised | undefined;
    try {
      if (reserved !== undefined && socketType(reserved.address().address) === type) {
        socket = reserved;
      } else {
        socket = await this.bound(type, this.local?.port ?? 0);
        this.replacement = socket;
        if (this.closed) throw codedError('ECANCELED', 'the collector was closed while connecting');
      }
      await connectSocket(socket, this.target.port, address);
    } catch (error) {
      if (socket !== undefined && socket !== reserved) {
        this.replacement = undefined;
        await closeQuietly(socket);
      }
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CollectorConnectError(`collector ${this.label}: cannot send to ${address} port ${this.target.port} (${code})`, code);
    }
    if (socket !== reserved) {
      this.replacement = undefined;
      if (reserved !== undefined) await closeQuietly(reserved);
    }
    if (this.closed) {
      // closed while connecting, after the connect had succeeded
      await closeQuietly(socket);
      throw new CollectorConnectError(`collector ${this.label}: closed while connecting`, 'ECANCELED');
    }
    this.socket = socket;
    this.resolvedAddress = address;
    this.noteSource(socket);
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
      if (this.closed) return;
      // resolved, but no route yet: count it as a failed attempt and keep trying
      this.resolveFailures++;
      this.lastLookupError = error instanceof CollectorConnectError ? error.errno : 'EHOSTUNREACH';
      this.scheduleRetry();
      return;
    }
    // Resolved after a signal gave up on it: what was held has failed already, but
    // what the final flush still sends goes out.
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
