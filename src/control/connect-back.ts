/**
 * The probe's side of the rsh connect-back helper (connect-back-helper.ts). After
 * ipcad.conf's uid/gid drop, the probe holds no capability and cannot bind a reserved
 * port, yet every rsh request needs a connection from one. So before the drop it starts
 * the helper with setpriv(1): as the user it drops to, with CAP_NET_BIND_SERVICE alone
 * (inheritable, ambient and bounding sets), no new privileges. Each connect-back is a
 * message to the helper; the connected socket comes back over the IPC channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { capabilityNames } from '../privileges/drop.js';
import type { Identity } from '../privileges/identity.js';
import { ConnectBackError, type ConnectBack } from './reserved-port.js';

export interface ConnectBackRequest {
  id: number;
  host: string;
  port: number;
  localAddress: string;
}

export type ConnectBackReply =
  | { type: 'ready'; uid: number; capabilities: string }
  | { type: 'dialed'; id: number; ok: true }
  | { type: 'dialed'; id: number; ok: false; code: string; message: string };

/** The helper's bundle, beside this code in dist/. */
const HELPER = fileURLToPath(new URL('./connect-back-helper.js', import.meta.url));
/** A helper that does not say it is up within this long is taken as failed (generous: a loaded machine). */
const READY_TIMEOUT_MS = 60_000;

export class ConnectBackHelper implements ConnectBack {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(socket: Socket): void; reject(error: Error): void }>();
  private gone = false;

  private constructor(
    private readonly child: ChildProcess,
    /** what it runs as, for the start-up line */
    readonly description: string,
  ) {
    child.on('message', (message: ConnectBackReply, handle: unknown) => {
      if (message.type !== 'dialed') return;
      const waiting = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (waiting === undefined) {
        (handle as Socket | undefined)?.destroy();
        return;
      }
      if (message.ok) waiting.resolve(handle as Socket);
      else waiting.reject(new ConnectBackError(message.code, message.message));
    });
    child.once('exit', () => {
      this.gone = true;
      for (const waiting of this.pending.values()) waiting.reject(helperGone());
      this.pending.clear();
    });
  }

  /**
   * Start the helper as `target` with CAP_NET_BIND_SERVICE only; resolves once it has said
   * it is up. Throws an Error saying why it could not start.
   */
  static async start(target: Identity, onExit: (why: string) => void): Promise<ConnectBackHelper> {
    const child = spawn(
      'setpriv',
      [
        `--reuid=${target.uid}`,
        `--regid=${target.gid}`,
        '--clear-groups',
        '--inh-caps=-all,+net_bind_service',
        '--ambient-caps=-all,+net_bind_service',
        '--bounding-set=-all,+net_bind_service',
        '--no-new-privs',
        process.execPath,
        HELPER,
      ],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    const ready = await new Promise<Extract<ConnectBackReply, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`it did not start within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
      child.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(error.code === 'ENOENT' ? 'setpriv (util-linux) is not installed' : error.message));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`it exited at once (${signal ?? `status ${code}`})`));
      });
      child.on('message', (message: ConnectBackReply) => {
        if (message.type !== 'ready') return;
        clearTimeout(timer);
        resolve(message);
      });
    }).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    child.once('exit', (code, signal) => onExit(signal ?? `status ${code}`));
    // the helper must never keep the probe running
    child.unref();
    (child.channel as { unref?: () => void } | null | undefined)?.unref?.();
    const capabilities = capabilityNames(BigInt(`0x${ready.capabilities || '0'}`));
    return new ConnectBackHelper(
      child,
      `pid ${child.pid}, uid ${ready.uid}, capabilities ${capabilities.length === 0 ? 'none' : capabilities.join(', ')}`,
    );
  }

  connect(host: string, port: number, localAddress: string): Promise<Socket> {
    if (this.gone || !this.child.connected) return Promise.reject(helperGone());
    const id = this.nextId++;
    return new Promise<Socket>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: ConnectBackRequest = { id, host, port, localAddress };
      this.child.send(request, (error) => {
        if (error === null || !this.pending.has(id)) return;
        this.pending.delete(id);
        reject(helperGone());
      });
    });
  }

  close(): void {
    this.gone = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }
}

function helperGone(): ConnectBackError {
  return new ConnectBackError('E_HELPER_GONE', 'Cannot connect back to the stderr port (the connect-back helper has exited).');
}
