/**
 * A server of the BSD rsh protocol (rshd's side), so that an unmodified `rsh`
 * client can run the probe's commands:
 *
 *   client (from a reserved port) → server:514
 *   client sends "STDERR_PORT\0" and waits; the server connects back to that
 *   port from a reserved port of its own (512–1023) — the client refuses any
 *   other, and answers "protocol failure in circuit setup" if nobody comes;
 *   then the client sends "CLIENT_USER\0SERVER_USER\0COMMAND\0"; the server
 *   answers one byte: 0 then the output (stdout on this connection, stderr on
 *   the second one), or 1 then a one-line error.
 *
 * As rshd does, a client whose source port (or stderr port) is not reserved is
 * turned away, and the user is checked against the access lines. A host no
 * access line admits is turned away at once, before any connect-back. Sessions are
 * limited in number; one that does not send its request within the timeout is
 * dropped. Every outcome is counted.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { RshLevel } from '../config/ipcad-conf.js';
import type { RshAccess } from './access.js';
import { ConnectBackError, RESERVED_HIGH, RESERVED_LOW, ReservedPortDialer, type ConnectBack } from './reserved-port.js';

export const RSH_OUTCOMES = [
  /** a command ran (or was answered with its own error) */
  'served',
  /** no access line lets this user from this host in */
  'denied',
  /** the client's source port is not reserved */
  'unreserved_port',
  /** the stderr port it asked for is not reserved */
  'bad_stderr_port',
  /** could not connect back to its stderr port */
  'connect_back_failed',
  /** every slot taken */
  'busy',
  /** the request did not come within the timeout */
  'timeout',
  /** not the rsh protocol (strings too long, no NUL, the connection closed early) */
  'protocol_error',
] as const;
export type RshOutcome = (typeof RSH_OUTCOMES)[number];

export interface RshReply {
  stdout: string;
  /** written on the stderr connection (command errors) */
  stderr?: string;
  /** called once both connections have been written and closed (shutdown goes here) */
  afterReply?: () => void;
}

export interface RshClient {
  address: string;
  port: number;
  user: string;
  serverUser: string;
}

export interface RshServerOptions {
  addresses: readonly string[];
  /** 514 unless a test asks otherwise */
  port: number;
  timeoutMs: number;
  maxClients: number;
  access: RshAccess;
  run(command: string, level: RshLevel, client: RshClient): Promise<RshReply>;
  /** how to connect back from a reserved port; in-process unless privileges are to be dropped */
  connectBack?: ConnectBack | undefined;
}

const MAX_PORT_STRING = 5;
const MAX_USER = 256;
const MAX_COMMAND = 4096;

export class RshListenError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RshListenError';
  }
}

export class RshServer {
  readonly outcomes: Record<RshOutcome, number> = Object.fromEntries(RSH_OUTCOMES.map((o) => [o, 0])) as Record<RshOutcome, number>;
  connections = 0;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private sessions = 0;
  private readonly connectBack: ConnectBack;

  private constructor(private readonly options: RshServerOptions) {
    this.connectBack = options.connectBack ?? new ReservedPortDialer();
  }

  static async listen(options: RshServerOptions): Promise<RshServer> {
    const rsh = new RshServer(options);
    try {
      for (const address of options.addresses) {
        const server = createServer({ allowHalfOpen: true }, (socket) => rsh.session(socket));
        // a hard bound beside the slots: refusals are answered, but not without limit
        server.maxConnections = options.maxClients * 2 + 4;
        await new Promise<void>((resolve, reject) => {
          server.once('error', (error: NodeJS.ErrnoException) => {
            const code = error.code ?? 'error';
            const hint =
              code === 'EACCES'
                ? ' (port 514 needs root or CAP_NET_BIND_SERVICE)'
                : code === 'EADDRINUSE'
                  ? ' (another rshd or ipcad?)'
                  : '';
            reject(new RshListenError(code, `rsh enable at ${address}: cannot listen on port ${options.port}: ${code}${hint}`));
          });
          server.listen(options.port, address, () => resolve());
        });
        rsh.servers.push(server);
      }
    } catch (error) {
      await rsh.close();
      throw error;
    }
    return rsh;
  }

  /** The port the first listener got (the one asked for, or the system's choice for 0). */
  get port(): number {
    const address = this.servers[0]?.address();
    return typeof address === 'object' && address !== null ? address.port : this.options.port;
  }

  get maxClients(): number {
    return this.options.maxClients;
  }

  /** Slots not taken by a client being served. */
  get freeSlots(): number {
    return Math.max(0, this.options.maxClients - this.sessions);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
  }

  private count(outcome: RshOutcome): void {
    this.outcomes[outcome]++;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // a reset client: the close that follows ends the session
  }

  private session(socket: Socket): void {
    this.connections++;
    this.track(socket);
    this.sessions++;
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        this.sessions--;
      }
    };
    socket.once('close', release);
    const busy = this.sessions > this.options.maxClients;
    const clientPort = socket.remotePort ?? 0;
    const clientAddress = socket.remoteAddress ?? '';
    if (clientPort < RESERVED_LOW || clientPort > RESERVED_HIGH) {
      // rshd's answer to a client that is not a real rsh (it could not bind a reserved port)
      this.count('unreserved_port');
      socket.end('\x01Permission denied: connect from an unreserved port.\n');
      socket.destroySoon();
      return;
    }
    if (!this.options.access.admitsHost(clientAddress)) {
      // No line lets anyone in from there: turned away before the connect-back, so a host
      // that may not use the server cannot make it open connections to ports of its choosing.
      // (A real client reports "protocol failure in circuit setup": it waits for that connection.)
      this.count('denied');
      socket.end('\x01Permission denied.\n');
      socket.destroySoon();
      return;
    }

    let stderr: Socket | undefined;
    let finished = false;
    const fail = (outcome: RshOutcome, message?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      this.count(outcome);
      if (message !== undefined && socket.writable) socket.end(`\x01${message}\n`);
      else socket.destroy();
      stderr?.end();
      socket.setTimeout(this.options.timeoutMs, () => socket.destroy());
    };
    const timer = setTimeout(() => {
      fail('timeout');
      socket.destroy();
      stderr?.destroy();
    }, this.options.timeoutMs);

    let buffered: Buffer = Buffer.alloc(0);
    const strings: string[] = [];
    let waitingForConnectBack = false;
    const limits = [MAX_PORT_STRING, MAX_USER, MAX_USER, MAX_COMMAND];
    const take = (): void => {
      while (!finished && !waitingForConnectBack && strings.length < 4) {
        const nul = buffered.indexOf(0);
        const limit = limits[strings.length]!;
        if (nul < 0) {
          if (buffered.length > limit) fail('protocol_error', 'Protocol error: request too long.');
          return;
        }
        if (nul > limit) {
          fail('protocol_error', 'Protocol error: request too long.');
          return;
        }
        strings.push(buffered.subarray(0, nul).toString('utf8'));
        buffered = buffered.subarray(nul + 1);
        if (strings.length === 1) {
          waitingForConnectBack = true;
          this.stderrChannel(socket, strings[0]!).then(
            (channel) => {
              waitingForConnectBack = false;
              if (finished) {
                channel?.destroy();
                return;
              }
              stderr = channel;
              take();
            },
            (error: Error & { outcome?: RshOutcome }) => fail(error.outcome ?? 'connect_back_failed', error.message),
          );
          return;
        }
      }
      if (strings.length === 4 && !finished) {
        clearTimeout(timer);
        socket.off('data', onData);
        void this.answer(socket, stderr, strings as [string, string, string, string], busy, clientAddress, clientPort, () => {
          finished = true;
        });
      }
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      take();
    };
    socket.on('data', onData);
    socket.once('end', () => {
      if (strings.length < 4) fail('protocol_error');
    });
  }

  /** Connect back to the client's stderr port from a reserved port; undefined for port 0 (no stderr). */
  private async stderrChannel(socket: Socket, portText: string): Promise<Socket | undefined> {
    const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
    if (port === 0) return undefined;
    if (!(port >= RESERVED_LOW && port <= RESERVED_HIGH)) {
      throw Object.assign(new Error('Permission denied: the stderr port is not reserved.'), { outcome: 'bad_stderr_port' as const });
    }
    let channel: Socket;
    try {
      channel = await this.connectBack.connect(socket.remoteAddress!, port, socket.localAddress!);
    } catch (error) {
      const message = error instanceof ConnectBackError ? error.message : `Cannot connect back to the stderr port (${(error as Error).message}).`;
      throw Object.assign(new Error(message), { outcome: 'connect_back_failed' as const });
    }
    this.track(channel);
    channel.on('data', () => undefined); // the client's signal numbers: not acted on
    return channel;
  }

  private async answer(
    socket: Socket,
    stderr: Socket | undefined,
    [, user, serverUser, command]: [string, string, string, string],
    busy: boolean,
    address: string,
    port: number,
    done: () => void,
  ): Promise<void> {
    done();
    const refuse = (outcome: RshOutcome, message: string): void => {
      this.count(outcome);
      socket.end(`\x01${message}\n`);
      stderr?.end();
      socket.setTimeout(this.options.timeoutMs, () => socket.destroy());
    };
    if (busy) {
      refuse('busy', 'Too many rsh clients; try again later.');
      return;
    }
    const level = this.options.access.levelOf(address, user);
    if (level === 'deny') {
      refuse('denied', 'Permission denied.');
      return;
    }
    let reply: RshReply;
    try {
      reply = await this.options.run(command, level, { address, port, user, serverUser });
    } catch (error) {
      reply = { stdout: '', stderr: `% ${(error as Error).message}\n` };
    }
    this.count('served');
    // A stalled reader: no progress for the timeout ends the session.
    socket.setTimeout(this.options.timeoutMs, () => {
      socket.destroy();
      stderr?.destroy();
    });
    const closed = [socket, ...(stderr === undefined ? [] : [stderr])].map(
      (s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve()))),
    );
    socket.write(Buffer.from([0]));
    if (stderr !== undefined) stderr.end(reply.stderr ?? '');
    else if (reply.stderr !== undefined) socket.write(reply.stderr);
    socket.end(reply.stdout);
    if (reply.afterReply !== undefined) {
      const after = reply.afterReply;
      // run it once the client has had its answer (or gave up on it)
      void Promise.all(closed).then(after);
    }
  }
}
