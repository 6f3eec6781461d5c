/**
 * The commands' answers as text, in IPCAD's and Cisco IOS's formats (what
 * users' scripts grep), and as JSON for the HTTP API.
 */
import { formatAccountingRows, formatIpv4, protocolName, type AccountingRow } from '../accounting/dump.js';
import { ciscoMac } from './interfaces.js';
import type { AccountingReport, CacheFlow, IpcadService, IpcadStatus } from './ipcad-service.js';

/** 3 days 7 hours 56 minutes */
export function formatUptime(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const unit = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts: string[] = [];
  if (days > 0) parts.push(unit(days, 'day'));
  if (days > 0 || hours > 0) parts.push(unit(hours, 'hour'));
  parts.push(unit(minutes, 'minute'));
  return parts.join(' ');
}

/** The lines `stat` prints, and `show ip accounting` after its table. */
export function formatStatusLines(status: IpcadStatus): string[] {
  const a = status.accounting;
  const lines: string[] = [];
  for (const i of status.interfaces) {
    lines.push(
      `Interface ${i.name}: received ${i.received}, 5 m average ${i.bytesPerSecond} bytes/sec, ${i.packetsPerSecond} pkts/sec, dropped ${i.dropped}`,
    );
  }
  lines.push(`Flow entries made: ${a.entriesMade}`);
  lines.push(`NetFlow cached flows: ${status.netflow.cachedFlows}`);
  const percent = a.capacity === 0 ? 0 : Math.floor(((a.entries + a.checkpointEntries) * 100) / a.capacity);
  lines.push(`Memory usage: ${percent}% (${a.memoryUsed} from ${a.memoryLimit})`);
  if (status.rsh !== undefined) lines.push(`Free slots for rsh clients: ${status.rsh.freeSlots}`);
  lines.push(`IPCAD uptime is ${formatUptime(status.uptimeSeconds)}`);
  lines.push(`System uptime is ${formatUptime(status.systemUptimeSeconds)}`);
  return lines;
}

export function formatAccounting(report: AccountingReport): string {
  const a = report.status.accounting;
  return (
    formatAccountingRows(report.rows, report.withPorts) +
    [
      `Accounting data age is ${Math.floor(report.ageSeconds / 60)}`,
      `Accounting data age exact ${report.ageSeconds}`,
      `Accounting data saved ${report.savedAt}`,
      `Accounting threshold exceeded for ${a.unaccountedPackets} packets and ${a.unaccountedBytes} bytes`,
      ...formatStatusLines(report.status),
    ].join('\n') +
    '\n'
  );
}

export function formatStat(status: IpcadStatus): string {
  const a = status.accounting;
  const lines = formatStatusLines(status);
  const extra = [
    `Accounting entries: ${a.entries} (checkpoint ${a.checkpointEntries}), capacity ${a.capacity}`,
    `Accounted: ${a.packets} packets, ${a.bytes} bytes; not accounted (table full): ${a.unaccountedPackets} packets, ${a.unaccountedBytes} bytes`,
    `NetFlow: ${status.netflow.flowsCreated} flows created, ${status.netflow.records} records in ${status.netflow.datagrams} datagrams`,
  ];
  if (status.rsh !== undefined) {
    const outcomes = Object.entries(status.rsh.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    extra.push(`rsh: ${status.rsh.connections} connections (${outcomes})`);
    const commands = Object.entries(status.rsh.commands)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    extra.push(`rsh commands: ${commands}`);
  }
  // IPCAD's lines first, so scripts find them where they were
  return [...lines.slice(0, -2), ...extra, ...lines.slice(-2)].join('\n') + '\n';
}

const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0');

/** Cisco's `show ip cache flow` listing (protocol and ports in hex, as IOS prints them). */
export function formatCache(cache: { flows: CacheFlow[]; ipv4Total: number; capacity: number; timeouts: { active: number; inactive: number } }): string {
  const lines = [
    `IP Flow Switching Cache, ${cache.ipv4Total} active flows, capacity ${cache.capacity}`,
    `  inactive timeout ${cache.timeouts.inactive} seconds, active timeout ${Math.round(cache.timeouts.active / 60)} minutes`,
    '',
    `${'SrcIf'.padEnd(13)} ${'SrcIPaddress'.padEnd(15)} ${'DstIf'.padEnd(13)} ${'DstIPaddress'.padEnd(15)} Pr SrcP DstP ${'Pkts'.padStart(10)} ${'Bytes'.padStart(14)}`,
  ];
  // IPCAD's table is IPv4's (the JSON API lists both families)
  for (const f of cache.flows.filter((flow) => flow.family === 4)) {
    lines.push(
      `${f.srcInterface.padEnd(13)} ${formatIpv4(f.src).padEnd(15)} ${'Null'.padEnd(13)} ${formatIpv4(f.dst).padEnd(15)} ${hex(f.protocol, 2)} ${hex(f.srcPort, 4)} ${hex(f.dstPort, 4)} ${String(f.packets).padStart(10)} ${String(f.octets).padStart(14)}`,
    );
  }
  return lines.join('\n') + '\n';
}

export function formatInterface(info: NonNullable<ReturnType<IpcadService['interface']>>): string {
  const lines = [`${info.name} is ${info.up ? 'up' : 'administratively down'}, line protocol is ${info.up && info.running ? 'up' : 'down'}`];
  lines.push(`  Hardware is ${info.hardware}${info.address === undefined ? '' : `, address is ${ciscoMac(info.address)} (${info.address})`}`);
  if (info.ipv4.length === 0) lines.push('  Internet address is not set');
  for (const a of info.ipv4) lines.push(`  Internet address is ${a.address}/${a.prefixLength}, mask ${a.netmask}`);
  lines.push(`  MTU ${info.mtu} bytes, ifIndex ${info.ifIndex}`);
  lines.push(`  5 minute input rate ${info.rates.inBitsPerSecond} bits/sec, ${info.rates.inPacketsPerSecond} packets/sec`);
  lines.push(`  5 minute output rate ${info.rates.outBitsPerSecond} bits/sec, ${info.rates.outPacketsPerSecond} packets/sec`);
  lines.push(`     ${info.rx.packets} packets input, ${info.rx.bytes} bytes, ${info.rx.dropped} dropped`);
  lines.push(`     Received ${info.rx.multicast} multicasts, ${info.rx.errors} input errors`);
  lines.push(`     ${info.tx.packets} packets output, ${info.tx.bytes} bytes, ${info.tx.dropped} dropped`);
  lines.push(`     ${info.tx.errors} output errors, ${info.tx.collisions} collisions`);
  return lines.join('\n') + '\n';
}

/** A row as the HTTP API gives it. */
export function accountingRowJson(row: AccountingRow): Record<string, unknown> {
  const json: Record<string, unknown> = {
    source: formatIpv4(row.src),
    destination: formatIpv4(row.dst),
    packets: row.packets,
    bytes: row.bytes,
  };
  if (row.ports !== undefined) {
    json['srcPort'] = row.ports.srcPort;
    json['dstPort'] = row.ports.dstPort;
    json['protocol'] = protocolName(row.ports.protocol);
    json['interface'] = row.ports.interface;
  }
  return json;
}

export function cacheFlowJson(flow: CacheFlow): Record<string, unknown> {
  return {
    srcInterface: flow.srcInterface,
    family: flow.family,
    source: flow.source,
    destination: flow.destination,
    protocol: flow.protocol,
    srcPort: flow.srcPort,
    dstPort: flow.dstPort,
    tos: flow.tos,
    packets: flow.packets,
    bytes: flow.octets,
    firstSecondsAgo: flow.firstSecondsAgo,
    lastSecondsAgo: flow.lastSecondsAgo,
    tcpFlags: flow.tcpFlags,
  };
}
