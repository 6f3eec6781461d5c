import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeUdpPort, run, start, waitFor, type Running } from './processes.js';

export interface FlowTotals {
  packets: number;
  octets: number;
}

/** "src dst proto sport dport" */
export type FlowKey = string;

export interface FlowRecordRow {
  key: FlowKey;
  packets: number;
  octets: number;
  tcpFlags: string;
  input: number;
  /** first and last seen, seconds since the epoch, to the millisecond */
  first: number;
  last: number;
}

/**
 * A real nfcapd on 127.0.0.1 (or `bind`; inside a namespace via `prefix`), writing
 * into a temporary directory; stop() ends it so it writes its last file.
 */
export class Nfcapd {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly running: Running,
  ) {}

  static async start(options: { prefix?: string[]; port?: number; bind?: string } = {}): Promise<Nfcapd> {
    const port = options.port ?? (await freeUdpPort());
    const dir = mkdtempSync(join(tmpdir(), 'flowprobe-nfcapd-'));
    const prefix = options.prefix ?? [];
    const bind = options.bind ?? '127.0.0.1';
    const args = [...prefix, 'nfcapd', '-b', bind, '-p', String(port), '-w', dir, '-B', '8388608', '-t', '3600'];
    const running = start(args[0]!, args.slice(1));
    const nfcapd = new Nfcapd(port, dir, running);
    // It binds after printing Startup: wait until its socket is there, however slow the machine
    // (`ip netns exec` execs nfcapd in place, so the pid's /proc/PID/net is nfcapd's namespace's).
    try {
      await waitFor(() => running.child.exitCode !== null || udpBound(running.child.pid, bind, port), 30_000, `nfcapd to bind ${bind}:${port}`);
    } catch (error) {
      // no handle is returned: end it here, or it outlives the test and keeps its process alive
      running.child.kill('SIGTERM');
      throw error;
    }
    if (running.child.exitCode !== null) throw new Error(`nfcapd failed to start: ${running.stderrSoFar()}`);
    return nfcapd;
  }

  /** Stop nfcapd (SIGTERM by its pid) and return its log. */
  async stop(): Promise<string> {
    this.running.child.kill('SIGTERM');
    const result = await this.running.result;
    return result.stderr + result.stdout;
  }

  files(): string[] {
    return readdirSync(this.dir).filter((f) => f.startsWith('nfcapd.') && !f.includes('current'));
  }

  /** Every flow record nfdump reads back; first and last seen in seconds since the epoch (ms precision). */
  async records(): Promise<FlowRecordRow[]> {
    const result = await run('nfdump', ['-R', this.dir, '-q', '-N', '-6', '-o', 'fmt:%sa %da %pr %sp %dp %pkt %byt %flg %in %tsr %td']);
    if (result.code !== 0) throw new Error(`nfdump failed: ${result.stderr}`);
    const rows: FlowRecordRow[] = [];
    for (const line of result.stdout.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 7) continue;
      // nfdump prints ICMP type.code in the destination port column for ICMP.
      const proto = protocolNumber(f[2]!);
      let dport = f[4]!;
      if (dport.includes('.')) {
        const [type, code] = dport.split('.').map(Number);
        dport = String(type! * 256 + code!);
      }
      rows.push({
        key: `${f[0]} ${f[1]} ${proto} ${f[3]} ${dport}`,
        packets: Number(f[5]),
        octets: Number(f[6]),
        tcpFlags: f[7] ?? '',
        input: Number(f[8] ?? 0),
        first: Number(f[9]),
        // nfdump 1.7.1's %ter drops the hundreds of the milliseconds: first + duration
        last: Math.round((Number(f[9]) + Number(f[10])) * 1000) / 1000,
      });
    }
    return rows;
  }

  /** Packets and octets per 5-tuple, summed over records (timeouts split flows). */
  async totals(): Promise<Map<FlowKey, FlowTotals>> {
    const totals = new Map<FlowKey, FlowTotals>();
    for (const row of await this.records()) {
      const t = totals.get(row.key) ?? { packets: 0, octets: 0 };
      t.packets += row.packets;
      t.octets += row.octets;
      totals.set(row.key, t);
    }
    return totals;
  }

  /** nfdump's file statistics: flows, packets, bytes, sequence failures. */
  async stat(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const file of this.files()) {
      const result = await run('nfdump', ['-r', join(this.dir, file), '-I']);
      for (const line of result.stdout.split('\n')) {
        const m = /^([A-Za-z_ ]+):\s*(\d+)$/.exec(line.trim());
        if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
      }
    }
    return out;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For `finally`: stop it if it still runs, then delete its files. */
  async dispose(): Promise<void> {
    await this.stop().catch(() => undefined);
    this.remove();
  }
}

/** Whether the process's network namespace has a UDP socket bound to 127.0.0.1:port. */
/** Whether the process's namespace has a UDP socket bound to the IPv4 address and port. */
function udpBound(pid: number | undefined, ipv4: string, port: number): boolean {
  if (pid === undefined) return false;
  let table: string;
  try {
    table = readFileSync(`/proc/${pid}/net/udp`, 'utf8');
  } catch {
    return false;
  }
  // local_address: the address's four bytes read as one host-order word, then the port, in hex
  const bytes = ipv4.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'));
  const address = (endianness() === 'LE' ? bytes.reverse() : bytes).join('');
  const local = `${address}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1] === local);
}

const PROTOCOLS: Record<string, number> = { TCP: 6, UDP: 17, ICMP: 1, GRE: 47, ESP: 50, AH: 51, SCTP: 132, IGMP: 2 };
function protocolNumber(text: string): number {
  return PROTOCOLS[text] ?? Number(text);
}
