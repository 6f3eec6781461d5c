/**
 * Outgoing TCP connections from a reserved local port (512–1023), as the rsh server's
 * connect-back to a client's stderr port needs (the client refuses any other). Binding
 * one takes root or CAP_NET_BIND_SERVICE: the rsh server dials in-process while it has
 * that, and through the connect-back helper (connect-back.ts) once privileges are dropped.
 */
import { connect, type Socket } from 'node:net';

export const RESERVED_LOW = 512;
export const RESERVED_HIGH = 1023;

/** A connect-back that did not happen: `code` is the errno name, or E_NO_RESERVED_PORT, or E_HELPER_GONE. */
export class ConnectBackError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectBackError';
  }
}

/** What the rsh server connects back with. */
export interface ConnectBack {
  connect(host: string, port: number, localAddress: string): Promise<Socket>;
}

/** Dials from reserved ports, from the top down as rresvport(3) does, skipping those in use. */
export class ReservedPortDialer implements ConnectBack {
  private nextLocalPort = RESERVED_HIGH;

  async connect(host: string, port: number, localAddress: string): Promise<Socket> {
    for (let tries = 0; tries <= RESERVED_HIGH - RESERVED_LOW; tries++) {
      const localPort = this.nextLocalPort;
      this.nextLocalPort = localPort === RESERVED_LOW ? RESERVED_HIGH : localPort - 1;
      const channel = await new Promise<Socket | NodeJS.ErrnoException>((resolve) => {
        const s = connect({ host, port, localAddress, localPort });
        s.once('connect', () => {
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', (error: NodeJS.ErrnoException) => {
          s.destroy();
          resolve(error);
        });
      });
      if (!(channel instanceof Error)) return channel;
      if (channel.code !== 'EADDRINUSE' && channel.code !== 'EADDRNOTAVAIL') {
        const code = channel.code ?? 'error';
        throw new ConnectBackError(code, `Cannot connect back to the stderr port (${code}).`);
      }
    }
    throw new ConnectBackError('E_NO_RESERVED_PORT', 'No reserved port free to connect back from.');
  }
}
