/**
 * The rsh server's side of the protocol, seen from a client made here (the
 * end-to-end test uses Debian's real client): reserved ports, the connect-back,
 * the access lines, slots, timeouts. Binding reserved ports needs root.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RshAccess } from '../src/control/access.js';
import { allowed, CommandError, parseCommand } from '../src/control/commands.js';
import { RshServer } from '../src/control/rsh-server.js';
import { waitFor } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';

let nextPort = 1000;
/** A socket bound to a free reserved port, connected to the server. */
async function reservedConnect(port: number, sourcePort?: number): Promise<Socket> {
  for (;;) {
    const localPort = sourcePort ?? nextPort--;
    if (nextPort < 600) nextPort = 1000;
    const socket = await new Promise<Socket | Error>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', localPort });
      s.once('connect', () => resolve(s));
      s.once('error', (e) => resolve(e));
    });
    if (!(socket instanceof Error)) return socket;
    if (sourcePort !== undefined || (socket as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw socket;
  }
}

/** A listener for the server's connect-back, on a reserved port. */
async function stderrListener(): Promise<{ server: Server; port: number; accepted: Promise<Socket> }> {
  for (;;) {
    const port = nextPort--;
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) return { server, port, accepted: once(server, 'connection').then(([s]) => s as Socket) };
  }
}

function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

describe('rsh server protocol', { skip: needsRoot('binding reserved ports') }, () => {
  let rsh: RshServer;
  before(async () => {
    const access = await RshAccess.resolve([{ user: 'root', host: '127.0.0.1', level: 'admin', line: 1 }], () => undefined);
    rsh = await RshServer.listen({
      addresses: ['127.0.0.1'],
      port: 0,
      timeoutMs: 400,
      maxClients: 1,
      access,
      run: (command, level) => Promise.resolve({ stdout: `ran "${command}" at ${level}\n`, stderr: 'on stderr\n' }),
    });
  });
  after(() => rsh.close());

  it('the full exchange: connect-back from a reserved port before anything else, then 0 and the output', async () => {
    const listener = await stderrListener();
    const socket = await reservedConnect(rsh.port);
    const output = collect(socket);
    socket.write(`${listener.port}\0`);
    const back = await listener.accepted; // the server comes back before we send the rest
    assert.ok(back.remotePort! >= 512 && back.remotePort! <= 1023, `connect-back from ${back.remotePort}`);
    const errors = collect(back);
    socket.end('root\0root\0show ip accounting\0');
    assert.equal((await output).toString(), '\0ran "show ip accounting" at admin\n');
    assert.equal((await errors).toString(), 'on stderr\n');
    listener.server.close();
  });

  it('stderr port 0: no second connection, stderr on the one connection', async () => {
    const socket = await reservedConnect(rsh.port);
    const output = collect(socket);
    socket.end('0\0root\0root\0stat\0');
    assert.equal((await output).toString(), '\0on stderr\nran "stat" at admin\n');
  });

  it('a user not listed: 1 and "Permission denied."', async () => {
    const socket = await reservedConnect(rsh.port);
    const output = collect(socket);
    socket.end('0\0mallory\0root\0stat\0');
    assert.equal((await output).toString(), '\x01Permission denied.\n');
    assert.ok(rsh.outcomes.denied >= 1);
  });

  it('a client from an unreserved port is refused at once, as rshd does', async () => {
    const socket = connect({ host: '127.0.0.1', port: rsh.port });
    const output = collect(socket);
    assert.ok((await output).toString().startsWith('\x01Permission denied: connect from an unreserved port'));
    assert.ok(rsh.outcomes.unreserved_port >= 1);
  });

  it('a stderr port that is not reserved is refused', async () => {
    const socket = await reservedConnect(rsh.port);
    const output = collect(socket);
    socket.write('40000\0');
    assert.ok((await output).toString().startsWith('\x01Permission denied: the stderr port is not reserved'));
    assert.equal(rsh.outcomes.bad_stderr_port, 1);
  });

  it('a stalled client times out; while it holds the only slot, another is told the server is busy', async () => {
    const before = rsh.outcomes.timeout;
    const stalled = await reservedConnect(rsh.port);
    const stalledClosed = collect(stalled);
    await waitFor(() => rsh.freeSlots === 0, 5000, 'the slot to be taken');
    const other = await reservedConnect(rsh.port);
    const output = collect(other);
    other.end('0\0root\0root\0stat\0');
    assert.equal((await output).toString(), '\x01Too many rsh clients; try again later.\n');
    assert.equal(rsh.outcomes.busy, 1);
    await stalledClosed; // the server drops it after its timeout
    assert.equal(rsh.outcomes.timeout, before + 1);
    await waitFor(() => rsh.freeSlots === 1, 5000, 'the slot to come back');
  });

  it('a request that is not rsh (no NUL within the limits) is a protocol error', async () => {
    const socket = await reservedConnect(rsh.port);
    const output = collect(socket);
    socket.write('0\0' + 'x'.repeat(300));
    assert.ok((await output).toString().startsWith('\x01Protocol error: request too long'));
    assert.equal(rsh.outcomes.protocol_error, 1);
  });
});

describe('commands: Cisco-style abbreviations and levels', () => {
  it('shortened words', () => {
    assert.deepEqual(parseCommand('sh ip acc'), { name: 'show-accounting', checkpoint: false });
    assert.deepEqual(parseCommand('show ip accounting checkpoint'), { name: 'show-accounting', checkpoint: true });
    assert.deepEqual(parseCommand('sh ip a c'), { name: 'show-accounting', checkpoint: true });
    assert.deepEqual(parseCommand('sh ip cache flow'), { name: 'show-cache' });
    assert.deepEqual(parseCommand('sh int eth0'), { name: 'show-interface', interface: 'eth0' });
    assert.deepEqual(parseCommand('sh ver'), { name: 'show-version' });
    assert.deepEqual(parseCommand('clear ip accounting'), { name: 'clear-accounting' });
    assert.deepEqual(parseCommand('cl ip acc'), { name: 'clear-accounting' });
    assert.deepEqual(parseCommand('stat'), { name: 'stat' });
    assert.deepEqual(parseCommand('status'), { name: 'stat' });
    assert.deepEqual(parseCommand('dump'), { name: 'dump', path: undefined });
    assert.deepEqual(parseCommand('import old.dump'), { name: 'import', path: 'old.dump' });
    assert.deepEqual(parseCommand('restore'), { name: 'restore', path: undefined });
    assert.deepEqual(parseCommand('shutdown'), { name: 'shutdown' });
    assert.deepEqual(parseCommand('  '), { name: 'help' });
  });

  it('"sh" is show, never shutdown; wrong words are one-line errors', () => {
    assert.equal(parseCommand('sh ip acc').name, 'show-accounting');
    assert.throws(() => parseCommand('s ip acc'), CommandError);
    assert.throws(() => parseCommand('show ip'), /Incomplete command: show ip … \(accounting, cache\)/);
    assert.throws(() => parseCommand('show ip accounting now'), /Invalid input "now" after "show ip accounting"/);
    assert.throws(() => parseCommand('shutdown now'), /Invalid input "now"/);
    assert.throws(() => parseCommand('reboot'), /Invalid input "reboot"/);
  });

  it('levels: view-only looks, default also clears, backup also dumps and restores, admin also shuts down', () => {
    assert.ok(allowed('view-only', 'show-accounting'));
    assert.ok(!allowed('view-only', 'clear-accounting'));
    assert.ok(allowed('default', 'clear-accounting'));
    assert.ok(!allowed('default', 'dump'));
    assert.ok(allowed('backup', 'restore'));
    assert.ok(!allowed('backup', 'shutdown'));
    assert.ok(allowed('admin', 'shutdown'));
    assert.ok(!allowed('deny', 'help'));
  });
});

describe('access lines', () => {
  it('first match wins; a line without a user is any user; a host name is resolved; nothing listed is denied', async () => {
    const access = await RshAccess.resolve(
      [
        { user: 'root', host: '127.0.0.1', level: 'admin', line: 1 },
        { user: undefined, host: 'localhost', level: 'view-only', line: 2 },
        { user: undefined, host: 'no-such-host.invalid', level: 'admin', line: 3 },
      ],
      () => undefined,
    );
    assert.equal(access.levelOf('127.0.0.1', 'root'), 'admin');
    assert.equal(access.levelOf('::ffff:127.0.0.1', 'root'), 'admin');
    assert.equal(access.levelOf('127.0.0.1', 'bob'), 'view-only');
    assert.equal(access.levelOf('10.0.0.9', 'root'), 'deny');
  });

  it('a host is admitted (connected back to) only when some line may let one of its users in', async () => {
    const access = await RshAccess.resolve(
      [
        { user: 'bob', host: '10.0.0.1', level: 'deny', line: 1 },
        { user: undefined, host: '10.0.0.1', level: 'view-only', line: 2 },
        { user: 'alice', host: '10.0.0.2', level: 'deny', line: 3 },
        { user: undefined, host: '10.0.0.3', level: 'deny', line: 4 },
        { user: 'carol', host: '10.0.0.3', level: 'admin', line: 5 },
        { user: 'dave', host: '10.0.0.4', level: 'backup', line: 6 },
      ],
      () => undefined,
    );
    assert.equal(access.admitsHost('10.0.0.1'), true, 'bob is denied, anyone else may look');
    assert.equal(access.admitsHost('10.0.0.2'), false, 'only a deny line');
    assert.equal(access.admitsHost('10.0.0.3'), false, 'a deny line for any user comes first');
    assert.equal(access.admitsHost('::ffff:10.0.0.4'), true, 'one user may');
    assert.equal(access.admitsHost('10.0.0.9'), false, 'not listed');
  });
});
