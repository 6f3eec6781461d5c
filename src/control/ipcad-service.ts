/**
 * The IPCAD commands' meaning, apart from any transport: the rsh server prints
 * what these return as text, the HTTP API as JSON. It reads the data plane by
 * message (snapshots of the accounting table and the flow cache) and by the
 * shared counters; it never touches the packet path.
 */
import { basename } from 'node:path';
import { uptime as systemUptime } from 'node:os';
import { AccountingStat, AccountingView } from '../accounting/table.js';
import {
  formatDump,
  readDump,
  rowsFromSnapshot,
  snapshotFromRows,
  writeFileAtomic,
  type AccountingRow,
} from '../accounting/dump.js';
import { ipv6ToString } from '../export/flow-records.js';
import { ipv4ToString } from '../export/v5.js';
import { FLOW_FIELDS, FlowField, type DataPlaneReply, type DataPlaneRequest } from '../capture/worker-protocol.js';
import { accountingStatsFrom, type AccountingStats, type ProbeStats } from '../stats/probe-stats.js';
import { readSystemInterface, RateSet, type SystemInterface } from './interfaces.js';
import type { RshOutcome } from './rsh-server.js';

export interface DataPlaneAccess {
  request(request: DataPlaneRequest, transfer?: ArrayBuffer[]): Promise<DataPlaneReply>;
}

export interface IpcadServiceOptions {
  dataPlane: DataPlaneAccess;
  stats(): ProbeStats;
  /** the accounting figures (AccountingStat layout), shared with the data plane */
  accounting: Float64Array;
  /** capture sources in slot order: the accounting table's interfaces */
  sources: readonly { label: string; ifIndex: number }[];
  /** some interface accounts with ports (the table prints the SrcPt … IF columns) */
  capturePorts: boolean;
  dumpFile: string | undefined;
  /** NetFlow timeouts, seconds */
  timeouts: { active: number; inactive: number };
  flowCacheCapacity: number;
  rsh(): RshStatus | undefined;
  /** begin the same orderly stop as SIGTERM */
  stop(): void;
  version: string;
  now?: () => number;
}

/** A command that could not be carried out: one line for the user. */
export class ServiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export interface AccountingReport {
  view: 'active' | 'checkpoint';
  rows: AccountingRow[];
  withPorts: boolean;
  ageSeconds: number;
  /** unix seconds of the last dump written, 0 never */
  savedAt: number;
  status: IpcadStatus;
}

export interface InterfaceStatus {
  name: string;
  /** packets read from it */
  received: number;
  /** 5-minute averages of what was read */
  bytesPerSecond: number;
  packetsPerSecond: number;
  /** libpcap's drops (kernel and interface), 32-bit counters as libpcap keeps them */
  dropped: number;
}

export interface IpcadStatus {
  interfaces: InterfaceStatus[];
  accounting: AccountingStats & {
    capacity: number;
    ageSeconds: number;
    savedAt: number;
  };
  netflow: {
    cachedFlows: number;
    capacity: number;
    flowsCreated: number;
    records: number;
    datagrams: number;
  };
  rsh: RshStatus | undefined;
  uptimeSeconds: number;
  systemUptimeSeconds: number;
}

export interface RshStatus {
  freeSlots: number;
  maxClients: number;
  connections: number;
  outcomes: Record<RshOutcome, number>;
  /** commands run, by name; and those not run: invalid, refused (level), failed */
  commands: Record<string, number>;
}

export interface CacheFlow {
  srcInterface: string;
  family: 4 | 6;
  /** IPv4 addresses (IPv6: 0) */
  src: number;
  dst: number;
  /** the addresses as text, either family */
  source: string;
  destination: string;
  protocol: number;
  srcPort: number;
  dstPort: number;
  tos: number;
  packets: number;
  octets: number;
  /** seconds since the first and last packet */
  firstSecondsAgo: number;
  lastSecondsAgo: number;
  tcpFlags: number;
}

const RATE_SAMPLE_MS = 5000;

export class IpcadService {
  private readonly now: () => number;
  private readonly startedAt: number;
  private activeSince: number;
  private checkpointSince: number | undefined;
  private savedAt = 0;
  /** slot → interface name: the sources, then names that dumps brought */
  private readonly names: string[];
  private readonly rates = new RateSet();
  private readonly sampler: NodeJS.Timeout;
  /** interfaces `show interface` asked about, sampled from then on (bounded) */
  private readonly watched = new Set<string>();
  private stopping = false;

  constructor(private readonly options: IpcadServiceOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.activeSince = this.startedAt;
    this.names = options.sources.map((s) => s.label);
    for (const s of options.sources) this.watched.add(s.label);
    this.sample();
    this.sampler = setInterval(() => this.sample(), RATE_SAMPLE_MS);
    this.sampler.unref();
  }

  close(): void {
    clearInterval(this.sampler);
  }

  get dumpFile(): string | undefined {
    return this.options.dumpFile;
  }

  private sample(): void {
    const at = this.now();
    const stats = this.options.stats();
    for (const source of stats.sources) {
      this.rates.sample(`capture:${source.label}:bytes`, at, source.bytes);
      this.rates.sample(`capture:${source.label}:packets`, at, source.packets);
    }
    for (const name of this.watched) {
      const info = readSystemInterface(name);
      if (info === undefined) continue;
      this.rates.sample(`system:${name}:rx_bytes`, at, info.rx.bytes);
      this.rates.sample(`system:${name}:rx_packets`, at, info.rx.packets);
      this.rates.sample(`system:${name}:tx_bytes`, at, info.tx.bytes);
      this.rates.sample(`system:${name}:tx_packets`, at, info.tx.packets);
    }
  }

  status(): IpcadStatus {
    const a = (i: number): number => this.options.accounting[i]!;
    const stats = this.options.stats();
    return {
      interfaces: stats.sources.map((s) => ({
        name: s.label,
        received: s.packets,
        bytesPerSecond: Math.round(this.rates.get(`capture:${s.label}:bytes`)),
        packetsPerSecond: Math.round(this.rates.get(`capture:${s.label}:packets`)),
        dropped: s.pcapDropped + s.pcapInterfaceDropped,
      })),
      accounting: {
        ...accountingStatsFrom(a),
        capacity: a(AccountingStat.capacity),
        ageSeconds: Math.floor((this.now() - this.activeSince) / 1000),
        savedAt: this.savedAt,
      },
      netflow: {
        // IPCAD's figure is IPv4's, as its table (the JSON cache view lists both families)
        cachedFlows: stats.families.ipv4.flowsCached,
        capacity: stats.flows.capacity,
        flowsCreated: stats.flows.created,
        records: stats.export.printedRecords ?? stats.export.records,
        datagrams: stats.export.datagrams,
      },
      rsh: this.options.rsh(),
      uptimeSeconds: Math.floor((this.now() - this.startedAt) / 1000),
      systemUptimeSeconds: Math.floor(systemUptime()),
    };
  }

  async accounting(checkpoint: boolean): Promise<AccountingReport> {
    const reply = await this.ask({ op: 'accounting', view: checkpoint ? AccountingView.checkpoint : AccountingView.active });
    if (reply.op !== 'accounting') throw unexpected(reply);
    const since = checkpoint ? this.checkpointSince : this.activeSince;
    return {
      view: checkpoint ? 'checkpoint' : 'active',
      rows: rowsFromSnapshot(reply.rows, this.names),
      withPorts: this.options.capturePorts,
      ageSeconds: since === undefined ? 0 : Math.floor((this.now() - since) / 1000),
      savedAt: this.savedAt,
      status: this.status(),
    };
  }

  /** `clear ip accounting`: the table moves to the checkpoint. */
  async clear(): Promise<number> {
    const reply = await this.ask({ op: 'clear' });
    if (reply.op !== 'clear') throw unexpected(reply);
    this.checkpointSince = this.activeSince;
    this.activeSince = this.now();
    return reply.checkpointEntries;
  }

  async cache(limit = Number.MAX_SAFE_INTEGER): Promise<{ flows: CacheFlow[]; total: number; ipv4Total: number; capacity: number; timeouts: { active: number; inactive: number } }> {
    const reply = await this.ask({ op: 'cache', limit: Math.min(limit, 2 ** 31) });
    if (reply.op !== 'cache') throw unexpected(reply);
    const f = new Float64Array(reply.rows);
    const byIndex = new Map(this.options.sources.map((s) => [s.ifIndex, s.label]));
    const flows: CacheFlow[] = [];
    for (let o = 0; o + FLOW_FIELDS <= f.length; o += FLOW_FIELDS) {
      const ifIndex = f[o + FlowField.ifIndex]!;
      const family = f[o + FlowField.family] === 6 ? 6 : 4;
      const text = (ipv4: number, words: number): string => {
        if (family === 4) return ipv4ToString(ipv4);
        const bytes = new Uint8Array(16);
        const view = new DataView(bytes.buffer);
        for (let i = 0; i < 4; i++) view.setUint32(4 * i, f[o + words + i]!);
        return ipv6ToString(bytes);
      };
      flows.push({
        srcInterface: byIndex.get(ifIndex) ?? String(ifIndex),
        family,
        src: f[o + FlowField.src]!,
        dst: f[o + FlowField.dst]!,
        source: text(f[o + FlowField.src]!, FlowField.src6),
        destination: text(f[o + FlowField.dst]!, FlowField.dst6),
        protocol: f[o + FlowField.protocol]!,
        srcPort: f[o + FlowField.srcPort]!,
        dstPort: f[o + FlowField.dstPort]!,
        tos: f[o + FlowField.tos]!,
        packets: f[o + FlowField.packets]!,
        octets: f[o + FlowField.octets]!,
        firstSecondsAgo: Math.max(0, (reply.clockMs - f[o + FlowField.first]!) / 1000),
        lastSecondsAgo: Math.max(0, (reply.clockMs - f[o + FlowField.last]!) / 1000),
        tcpFlags: f[o + FlowField.tcpFlags]!,
      });
    }
    return { flows, total: reply.flows, ipv4Total: reply.ipv4Flows, capacity: this.options.flowCacheCapacity, timeouts: this.options.timeouts };
  }

  /** The system's figures for an interface, with 5-minute rates (sampled from the first time it is asked). */
  interface(name: string): (SystemInterface & { rates: { inBitsPerSecond: number; inPacketsPerSecond: number; outBitsPerSecond: number; outPacketsPerSecond: number } }) | undefined {
    const info = readSystemInterface(name);
    if (info === undefined) return undefined;
    if (!this.watched.has(name) && this.watched.size < 64) {
      this.watched.add(name);
      const at = this.now();
      this.rates.sample(`system:${name}:rx_bytes`, at, info.rx.bytes);
      this.rates.sample(`system:${name}:rx_packets`, at, info.rx.packets);
      this.rates.sample(`system:${name}:tx_bytes`, at, info.tx.bytes);
      this.rates.sample(`system:${name}:tx_packets`, at, info.tx.packets);
    }
    return {
      ...info,
      rates: {
        inBitsPerSecond: Math.round(this.rates.get(`system:${name}:rx_bytes`) * 8),
        inPacketsPerSecond: Math.round(this.rates.get(`system:${name}:rx_packets`)),
        outBitsPerSecond: Math.round(this.rates.get(`system:${name}:tx_bytes`) * 8),
        outPacketsPerSecond: Math.round(this.rates.get(`system:${name}:tx_packets`)),
      },
    };
  }

  /** `dump [PATH]`: write the active table (atomically). */
  async dump(path: string | undefined): Promise<{ path: string; entries: number }> {
    const target = this.dumpPath(path);
    const table = await this.accounting(false);
    this.writeDump(target, table.rows);
    return { path: target, entries: table.rows.length };
  }

  /** The table as the data plane ended, to the dump file (`-s`). */
  saveFinal(rows: ArrayBuffer): { path: string; entries: number } {
    const target = this.dumpPath(undefined);
    const table = rowsFromSnapshot(rows, this.names);
    this.writeDump(target, table);
    return { path: target, entries: table.length };
  }

  /** `restore` (replace the table) or `import` (add to it) from a dump. IPCAD's messages. */
  async restore(path: string | undefined, replace: boolean): Promise<{ path: string; added: number; dropped: number; message: string }> {
    const target = this.dumpPath(path);
    let rows: AccountingRow[];
    try {
      rows = readDump(target, this.now()).rows;
    } catch (error) {
      throw new ServiceError((error as { code?: string }).code ?? 'E_DUMP', (error as Error).message);
    }
    const buffer = snapshotFromRows(rows, (name) => this.slotOf(name));
    const reply = await this.ask({ op: 'restore', replace, rows: buffer }, [buffer]);
    if (reply.op !== 'restore') throw unexpected(reply);
    const full = reply.dropped > 0 ? `; ${reply.dropped} did not fit in memory_limit` : '';
    return { path: target, added: reply.added, dropped: reply.dropped, message: `${reply.added} elements got from ${target}${full}` };
  }

  /** `shutdown`: stop as SIGTERM does (NetFlow flushed, the dump saved with -s). */
  shutdown(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.options.stop();
  }

  private slotOf(name: string): number {
    let slot = this.names.indexOf(name);
    if (slot < 0) {
      if (this.names.length >= 0xffff) return 0xffff;
      slot = this.names.push(name) - 1;
    }
    return slot;
  }

  private writeDump(path: string, rows: AccountingRow[]): void {
    const savedAt = Math.floor(this.now() / 1000);
    const text = formatDump(rows, this.options.capturePorts, { ageSeconds: (this.now() - this.activeSince) / 1000, savedAt });
    try {
      writeFileAtomic(path, text);
    } catch (error) {
      throw new ServiceError('E_DUMP_WRITE', (error as Error).message);
    }
    this.savedAt = savedAt;
  }

  /**
   * The dump file: over rsh, dump, restore and import work on it alone, as IPCAD's do. A
   * name is taken only when it names that file (its name, or its full path); any other is
   * refused before anything is read, written or renamed.
   */
  private dumpPath(path: string | undefined): string {
    const dumpFile = this.options.dumpFile;
    if (dumpFile === undefined) throw new ServiceError('E_NO_DUMPFILE', 'No dumpfile is configured (dumpfile = PATH in ipcad.conf)');
    if (path === undefined || path === dumpFile || path === basename(dumpFile)) return dumpFile;
    throw new ServiceError(
      'E_DUMP_PATH',
      `${path}: refused: dump, restore and import use only the dump file ${dumpFile} (dumpfile in ipcad.conf); give no file name`,
    );
  }

  private async ask(request: DataPlaneRequest, transfer?: ArrayBuffer[]): Promise<DataPlaneReply> {
    let reply: DataPlaneReply;
    try {
      reply = await this.options.dataPlane.request(request, transfer);
    } catch (error) {
      throw new ServiceError('E_DATA_PLANE', `the data plane is not answering: ${(error as Error).message}`);
    }
    if (reply.op === 'error') throw new ServiceError('E_DATA_PLANE', reply.message);
    return reply;
  }
}

function unexpected(reply: DataPlaneReply): ServiceError {
  return new ServiceError('E_DATA_PLANE', `unexpected answer from the data plane (${reply.op})`);
}
