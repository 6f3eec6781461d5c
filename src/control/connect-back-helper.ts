/**
 * The rsh connect-back helper, a process of its own (dist/connect-back-helper.js).
 *
 * Started by `flowprobe ipcad` through setpriv(1) before it drops privileges (ipcad.conf's
 * uid/gid), as the user it drops to and with one capability, CAP_NET_BIND_SERVICE: all an
 * rsh connect-back needs (a connection from a reserved port). It dials what the probe asks
 * over the IPC channel and hands the connected socket back; it exits when the probe goes.
 */
import { isIP, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { ConnectBackReply, ConnectBackRequest } from './connect-back.js';
import { ConnectBackError, RESERVED_HIGH, RESERVED_LOW, ReservedPortDialer } from './reserved-port.js';

const dialer = new ReservedPortDialer();
const send = (reply: ConnectBackReply, socket?: Socket): void => {
  if (socket === undefined) process.send?.(reply);
  else process.send?.(reply, socket);
};

function valid(request: ConnectBackRequest): boolean {
  return (
    Number.isInteger(request.id) &&
    isIP(request.host) !== 0 &&
    isIP(request.localAddress) !== 0 &&
    Number.isInteger(request.port) &&
    request.port >= RESERVED_LOW &&
    request.port <= RESERVED_HIGH
  );
}

process.on('message', (message: ConnectBackRequest) => {
  if (!valid(message)) {
    send({ type: 'dialed', id: message.id, ok: false, code: 'EINVAL', message: 'Cannot connect back to the stderr port (a malformed request).' });
    return;
  }
  dialer.connect(message.host, message.port, message.localAddress).then(
    (socket) => send({ type: 'dialed', id: message.id, ok: true }, socket),
    (error: unknown) =>
      send({
        type: 'dialed',
        id: message.id,
        ok: false,
        code: error instanceof ConnectBackError ? error.code : 'error',
        message: error instanceof ConnectBackError ? error.message : `Cannot connect back to the stderr port (${String(error)}).`,
      }),
  );
});
process.on('disconnect', () => process.exit(0));

// who it runs as, for the probe's start-up line
const status = readFileSync('/proc/self/status', 'utf8');
send({
  type: 'ready',
  uid: Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1]),
  capabilities: /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '',
});
