import type { ProbeStats } from './probe-stats.js';

/** The end-of-run statistics, in the spirit of softflowd's `statistics`. */
export function formatSummary(stats: ProbeStats): string {
  const lines: string[] = ['statistics:'];
  lines.push(`  packets captured: ${stats.packets} (${stats.bytes} bytes on the wire)`);
  if (stats.readMilliseconds > 0) {
    const rate = Math.round((stats.packets / stats.readMilliseconds) * 1000);
    lines.push(`  read in ${(stats.readMilliseconds / 1000).toFixed(3)} s (${rate} packets/s)`);
  }
  for (const source of stats.sources) {
    if (stats.sources.length > 1) lines.push(`  ${source.label}: ${source.packets} packets (${source.bytes} bytes)`);
    if (source.ifIndexCut > 0) {
      lines.push(`  ${source.label}: ${source.ifIndexCut} packets had an input ifIndex above 65535, sent cut to its low 16 bits`);
    }
    if (source.live) {
      lines.push(
        `  ${source.label} libpcap: received ${source.pcapReceived}, dropped ${source.pcapDropped}, dropped by interface ${source.pcapInterfaceDropped}`,
      );
      if (source.pcapUnprocessed > 0) {
        lines.push(`  ${source.label}: ${source.pcapUnprocessed} packets libpcap received were never processed (still in its buffer when the capture closed)`);
      }
      if (source.interfaceLosses > 0) lines.push(`  ${source.label} went away ${source.interfaceLosses} times (waited for it to come back)`);
    }
  }
  const skipped = Object.entries(stats.skipped)
    .filter(([, s]) => s.packets > 0)
    .map(([reason, s]) => `${reason} ${s.packets} (${s.bytes} bytes)`);
  lines.push(`  packets skipped: ${stats.skippedPackets}${skipped.length > 0 ? ': ' + skipped.join(', ') : ''}`);
  const portless = Object.entries(stats.portsUnavailable).map(([reason, n]) => `${reason} ${n}`);
  lines.push(`  packets counted with ports 0: ${portless.join(', ')}`);
  if (stats.outOfOrder > 0) {
    lines.push(`  packets out of time order (counted at the latest time): ${stats.outOfOrder}`);
  }
  const { ipv4, ipv6 } = stats.families;
  lines.push(`  IPv4: ${ipv4.packets} packets (${ipv4.octets} IP bytes), ${ipv4.flowsCreated} flows`);
  lines.push(`  IPv6: ${ipv6.packets} packets (${ipv6.octets} IP bytes), ${ipv6.flowsCreated} flows`);
  lines.push(`  flows created: ${stats.flows.created}`);
  const expired = Object.entries(stats.flows.expired).map(([reason, n]) => `${reason} ${n}`);
  lines.push(`  flows expired: ${expired.join(', ')}`);
  const e = stats.export;
  if (e.printedRecords !== undefined) {
    lines.push(`  records printed: ${e.printedRecords}`);
  } else {
    lines.push(`  records exported: ${e.records} in ${e.datagrams} datagrams (flow_sequence ${e.flowSequence})`);
  }
  if (e.notExported.ipv6_needs_v9_or_ipfix > 0) {
    lines.push(`  flows not exported: ipv6_needs_v9_or_ipfix ${e.notExported.ipv6_needs_v9_or_ipfix} (NetFlow v5 carries IPv4 only: --export-version 9 or 10)`);
  }
  if (e.droppedDatagrams > 0) {
    lines.push(`  dropped on a full send queue: ${e.droppedDatagrams} datagrams, ${e.droppedRecords} records`);
  }
  if (e.abandonedDatagrams > 0) {
    lines.push(`  not sent, the final flush stopped by a second signal: ${e.abandonedDatagrams} datagrams, ${e.abandonedRecords} records`);
  }
  for (const collector of e.collectors) {
    let errorCount = 0;
    for (const n of Object.values(collector.errors)) errorCount += n;
    const errors = Object.entries(collector.errors).map(([reason, n]) => `${reason} ${n}`).join(', ');
    lines.push(
      `  collector ${collector.label}: ${collector.datagrams} datagrams, ${collector.records} records sent; send errors ${errorCount}${errors === '' ? '' : ` (${errors})`}` +
        (collector.failedLookups > 0 ? `; ${collector.failedLookups} failed lookups${collector.resolved ? '' : ', never resolved'}` : ''),
    );
  }
  return lines.join('\n');
}
