/**
 * NetFlow traffic on the wire that is not the probe's own: another exporter sending
 * to the probe's collector, and tshark as the witness of which datagrams crossed an
 * interface (by source address and port).
 */
import assert from 'node:assert/strict';
import { V5_HEADER_BYTES, V5_RECORD_BYTES, writeV5Header, writeV5Record } from '../../src/export/v5.js';
import type { FlowKey, FlowTotals } from './nfcapd.js';
import { start, waitFor, type Running } from './processes.js';

/** IP length of each of otherExporterScript's datagrams (a v5 header and one record). */
export const OTHER_EXPORTER_IP_BYTES = 20 + 8 + V5_HEADER_BYTES + V5_RECORD_BYTES;

/** Another exporter's NetFlow v5 datagram: one record of a TEST-NET flow, engine 7/7. */
function otherExportersDatagram(sequence: number): Buffer {
  const datagram = Buffer.alloc(V5_HEADER_BYTES + V5_RECORD_BYTES);
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  writeV5Header(view, 0, {
    count: 1,
    sysUptime: 60_000,
    unixSecs: Math.floor(Date.now() / 1000),
    unixNsecs: 0,
    flowSequence: sequence,
    engineType: 7,
    engineId: 7,
    samplingInterval: 0,
  });
  writeV5Record(view, V5_HEADER_BYTES, 0xc0000201, 0xc0000202, 1, 1, 100, 59_000, 59_000, 1111, 2222, 0, 17, 0);
  return datagram;
}

/** node -e: `count` v5 datagrams from `from`:`fromPort` to `to`:`toPort`, `gapMs` apart. */
export function otherExporterScript(from: string, fromPort: number, to: string, toPort: number, count: number, gapMs = 20): string {
  const datagrams = Array.from({ length: count }, (_, i) => otherExportersDatagram(i).toString('hex'));
  return `
    const s = require('node:dgram').createSocket('udp4');
    s.bind(${fromPort}, '${from}', async () => {
      for (const hex of ${JSON.stringify(datagrams)}) {
        await new Promise((r) => s.send(Buffer.from(hex, 'hex'), ${toPort}, '${to}', r));
        await new Promise((r) => setTimeout(r, ${gapMs}));
      }
      s.close();
    });`;
}

/** tshark on an interface (inside a namespace with `prefix`): "source-address\tsource-port" of each UDP datagram the filter passes. */
export class UdpWitness {
  private text = '';

  private constructor(private readonly running: Running) {
    running.child.stdout!.on('data', (d: string) => (this.text += d));
  }

  static async start(prefix: string[], device: string, filter: string): Promise<UdpWitness> {
    const args = [...prefix, 'tshark', '-i', device, '-n', '-l', '-f', filter, '-T', 'fields', '-e', 'ip.src', '-e', 'udp.srcport'];
    const witness = new UdpWitness(start(args[0]!, args.slice(1)));
    await waitFor(() => witness.running.stderrSoFar().includes('Capturing on') || witness.running.child.exitCode !== null, 15_000, 'tshark to start capturing');
    if (witness.running.child.exitCode !== null) throw new Error(`tshark failed: ${witness.running.stderrSoFar()}`);
    return witness;
  }

  /** Datagrams seen so far, by "address\tport". */
  sources(): Map<string, number> {
    const seen = new Map<string, number>();
    for (const line of this.text.split('\n')) if (line !== '') seen.set(line, (seen.get(line) ?? 0) + 1);
    return seen;
  }

  /** Whether it saw a datagram from anywhere but `address`:`port`. */
  sawOtherThan(address: string, port: number): boolean {
    return [...this.sources().keys()].some((source) => source !== `${address}\t${port}`);
  }

  async stop(): Promise<void> {
    if (this.running.child.exitCode === null) this.running.child.kill('SIGTERM');
    await this.running.result.catch(() => undefined);
  }
}

/**
 * What the probe counted of the datagrams `witness` saw going to `collector`: the
 * other exporter's `datagrams` (otherExporterScript's) exactly, and none of ours,
 * which are all the others tshark saw (at least one, or the check would be empty).
 */
export function assertOnlyTheOtherExporterCounted(
  witness: UdpWitness,
  probeFlows: Map<FlowKey, FlowTotals>,
  other: { address: string; port: number; datagrams: number },
  collector: { address: string; port: number },
): void {
  const seen = witness.sources();
  const otherSource = `${other.address}\t${other.port}`;
  assert.equal(seen.get(otherSource), other.datagrams, 'tshark saw every datagram of the other exporter');
  const ours = [...seen.keys()].filter((source) => source !== otherSource).map((source) => source.split('\t'));
  assert.ok(ours.length >= 1, 'tshark saw our own datagrams');
  assert.deepEqual(
    probeFlows.get(`${other.address} ${collector.address} 17 ${other.port} ${collector.port}`),
    { packets: other.datagrams, octets: other.datagrams * OTHER_EXPORTER_IP_BYTES },
    "the other exporter's datagrams were captured and counted",
  );
  for (const [address, port] of ours) {
    const key = `${address} ${collector.address} 17 ${port} ${collector.port}`;
    assert.equal(probeFlows.get(key), undefined, `our own datagrams (${key}) were captured`);
  }
}
