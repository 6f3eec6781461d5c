/**
 * The collector's socket over its life: bound from open() even while its name does
 * not resolve (the capture's exclusion filter names that source port), connected
 * once the name resolves, and closed by close() whatever it is doing — waiting for a
 * lookup, or connecting. The name's lookup is the test's own here, so that close()
 * lands exactly inside the connect: dgram finishes a connect on a later tick, and the
 * retry starts it in the microtasks that follow the lookup's answer.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Collector } from '../src/export/collector.js';
import { waitFor } from './helpers/processes.js';

/** UDP sockets this process holds open (node lists each as a UDPWrap). */
function openUdpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

/** Let every timer, tick and close callback due now run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
}

function notFound(): Promise<string> {
  return Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND collector.test'), { code: 'ENOTFOUND' }));
}

/** A lookup that fails first, then hangs until the test answers it (`answer`). */
function controlledLookup(): { lookup: (host: string) => Promise<string>; answer?: (address: string) => void; calls: number } {
  const control: { lookup: (host: string) => Promise<string>; answer?: (address: string) => void; calls: number } = {
    calls: 0,
    lookup: () => {
      control.calls++;
      if (control.calls === 1) return notFound();
      return new Promise<string>((resolve) => (control.answer = resolve));
    },
  };
  return control;
}

describe('collector socket', () => {
  it('an unresolved name has its socket bound at open; once resolved, datagrams come from that source port', async () => {
    const receiver = createSocket('udp4');
    receiver.bind(0, '127.0.0.1');
    await once(receiver, 'listening');
    const control = controlledLookup();
    const collector = await Collector.open(
      { host: 'collector.test', port: receiver.address().port },
      { holdWhileUnresolved: 10, retryMs: 1, lookup: control.lookup },
    );
    try {
      assert.equal(collector.resolved, false);
      const portAtOpen = collector.source?.port;
      assert.ok(portAtOpen !== undefined && portAtOpen > 0, 'a source port from the start');
      const sent = new Promise<Error | null>((resolve) => collector.send(Buffer.from('held'), 4, resolve));
      await waitFor(() => control.answer !== undefined, 5000, 'the retried lookup');
      control.answer!('127.0.0.1');
      const [message, from] = (await once(receiver, 'message')) as [Buffer, { port: number; address: string }];
      assert.equal(await sent, null);
      assert.equal(message.toString(), 'held');
      assert.equal(from.port, portAtOpen, 'the held datagram left from the port bound at open');
      assert.deepEqual(collector.source, { address: '127.0.0.1', port: portAtOpen });
    } finally {
      await collector.close();
      await new Promise<void>((resolve) => receiver.close(resolve));
    }
  });

  it('close() while the name is being looked up again: no socket stays open, and the answer opens none', async () => {
    await settle();
    const before = openUdpSockets();
    const control = controlledLookup();
    const collector = await Collector.open({ host: 'collector.test', port: 9 }, { holdWhileUnresolved: 10, retryMs: 1, lookup: control.lookup });
    await waitFor(() => control.answer !== undefined, 5000, 'the retried lookup');
    await collector.close();
    control.answer!('127.0.0.1');
    await settle();
    assert.equal(collector.resolved, false);
    assert.equal(openUdpSockets(), before, 'UDP sockets open after close()');
  });

  for (const [family, address] of [
    ['its socket\'s family', '127.0.0.1'],
    ['the other family (a new socket on the same port)', '::1'],
  ] as const) {
    it(`close() while a reconnect is connecting, to ${family}: every socket is closed`, async () => {
      await settle();
      const before = openUdpSockets();
      const control = controlledLookup();
      const collector = await Collector.open({ host: 'collector.test', port: 9 }, { holdWhileUnresolved: 10, retryMs: 1, lookup: control.lookup });
      await waitFor(() => control.answer !== undefined, 5000, 'the retried lookup');
      const socketsBeforeAnswer = openUdpSockets();
      control.answer!(address);
      // Still in this microtask run the retry takes the answer and starts connecting (a
      // new socket, where it needs one); dgram completes a connect on a later tick only.
      for (let i = 0; i < 50 && openUdpSockets() === socketsBeforeAnswer; i++) await Promise.resolve();
      assert.equal(collector.resolved, false, 'the connect has not completed yet');
      await collector.close();
      await settle();
      assert.equal(collector.resolved, false);
      assert.equal(openUdpSockets(), before, 'UDP sockets open after close()');
    });
  }
});
