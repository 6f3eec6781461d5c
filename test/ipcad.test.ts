/**
 * IPCAD compatibility with real parts: flowprobe runs the reference ipcad.conf
 * (interface renamed, paths in a temporary directory) in a network namespace,
 * traffic comes over a veth pair, and Debian's real rsh client drives it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { VethPair } from './helpers/netns.js';
import { isRoot, run, startProbe, waitFor, type Running } from './helpers/processes.js';
import { accountingRows, rsh, rshAvailable } from './helpers/rsh.js';

const skip = !isRoot()
  ? 'needs root for network namespaces and reserved ports (CI runs as root)'
  : !rshAvailable()
    ? 'needs Debian\'s rsh-client (scripts/install-test-deps.sh)'
    : false;

function referenceConfig(iface: string, dir: string): string {
  return `capture-ports disable;
interface ${iface};
rsh enable at 127.0.0.1;
rsh root@127.0.0.1 admin;
dumpfile = ipcad.dump;
chroot = ${dir};
memory_limit = 1m;
netflow export destination 127.0.0.1 9995
`;
}

describe('flowprobe ipcad with the reference ipcad.conf, driven by the real rsh client', { skip }, () => {
  const net = new VethPair('i');
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-'));
  const conf = join(work, 'ipcad.conf');
  const inB = net.exec(net.nsB);
  let probe: Running | undefined;
  before(() => {
    net.create();
    writeFileSync(conf, referenceConfig(net.ifB, work));
  });
  after(() => {
    probe?.child.kill('SIGKILL');
    net.remove();
    rmSync(work, { recursive: true, force: true });
  });

  async function ping(count: number, size: number): Promise<void> {
    const result = await run('ip', ['netns', 'exec', net.nsA, 'ping', '-q', '-c', String(count), '-i', '0.2', '-s', String(size), net.addrB]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  }

  async function show(command = 'show ip accounting'): Promise<string> {
    const result = await rsh('127.0.0.1', command, { prefix: inB });
    assert.equal(result.code, 0, `rsh ${command}: ${result.stderr}`);
    return result.stdout;
  }

  /** Wait until the table holds what was sent (the capture reads every 2 ms; no timing is asserted). */
  async function tableSettles(expected: Record<string, { packets: number; bytes: number }>, command = 'show ip accounting'): Promise<Map<string, { packets: number; bytes: number }>> {
    let last = new Map<string, { packets: number; bytes: number }>();
    const wanted = JSON.stringify(Object.entries(expected).sort());
    await waitFor(
      async () => {
        const rows = accountingRows(await show(command));
        last = new Map([...rows].map(([k, r]) => [k, { packets: r.packets, bytes: r.bytes }]));
        return JSON.stringify([...last].sort()) === wanted;
      },
      10_000,
      `the table to hold ${wanted}`,
    ).catch(() => undefined);
    return last;
  }

  test('start-up messages in IPCAD\'s spirit; the table matches the traffic sent', async () => {
    probe = startProbe(['ipcad', '-c', conf], { prefix: inB });
    await waitFor(() => probe!.stderrSoFar().includes('Configured RSH Server listening at 127.0.0.1') || probe!.child.exitCode !== null, 15_000, 'the rsh server');
    const started = probe.stderrSoFar();
    assert.match(started, new RegExp(`Opening ${net.ifB}\\.\\.\\. Initialized`));
    assert.match(started, /Configured NetFlow destination at 127\.0\.0\.1:9995/);
    assert.match(started, /the process is NOT confined/);
    assert.match(started, /root or CAP_NET_BIND_SERVICE/);

    // 10 echo requests of 84 IP bytes and 5 of 1028; as many replies
    await ping(10, 56);
    await ping(5, 1000);
    const expected = {
      [`${net.addrA} ${net.addrB}`]: { packets: 15, bytes: 10 * 84 + 5 * 1028 },
      [`${net.addrB} ${net.addrA}`]: { packets: 15, bytes: 10 * 84 + 5 * 1028 },
    };
    assert.deepEqual(Object.fromEntries(await tableSettles(expected)), expected);
    const text = await show('sh ip acc');
    assert.match(text, /^\s+Source\s+Destination\s+Packets\s+Bytes\n/);
    for (const line of [
      /^Accounting data age is \d+$/m,
      /^Accounting data age exact \d+$/m,
      /^Accounting data saved 0$/m,
      /^Accounting threshold exceeded for 0 packets and 0 bytes$/m,
      new RegExp(`^Interface ${net.ifB}: received \\d+, 5 m average \\d+ bytes/sec, \\d+ pkts/sec, dropped \\d+$`, 'm'),
      /^Flow entries made: 2$/m,
      /^NetFlow cached flows: 2$/m,
      /^Memory usage: 0% \(\d+ from 1048576\)$/m,
      /^Free slots for rsh clients: 9$/m,
      /^IPCAD uptime is \d+ minutes?$/m,
      /^System uptime is /m,
    ]) {
      assert.match(text, line);
    }
  });
});
