import { join } from 'node:path';
import { PROJECT_ROOT } from './processes.js';

/** Every capture fixture (test/fixtures/README.md says what each covers). bigflow.pcap is generated, not committed. */
export const FIXTURE_FILES = [
  'basic.pcap',
  'vlan.pcap',
  'ipoptions.pcap',
  'fragments.pcap',
  'icmp.pcap',
  'padding.pcap',
  'snaplen.pcap',
  'sll.pcap',
  'sll2.pcap',
  'sll-vlan.pcap',
  'sll2-vlan.pcap',
  'rawip.pcap',
  'ipv4.pcap',
  'mixed.pcapng',
  'malformed.pcap',
  'bigflow.pcap',
] as const;

/**
 * The IPv6 fixtures (test/fixtures/README.md), kept out of FIXTURE_FILES until the
 * probe decodes IPv6. Each has a ledger `<stem>.flows.json` written by generate.py:
 * per family, the packets and octets per 5-tuple built to be counted.
 */
export const IPV6_FIXTURE_FILES = [
  'ipv6.pcap',
  'ipv6-exthdr.pcap',
  'ipv6-fragments.pcap',
  'ipv6-qinq.pcap',
  'mixed-v4v6.pcap',
  'ipv6-sll2.pcap',
  'ipv6-sll.pcap',
  'ipv6-raw.pcap',
  'ipv6-linktype229.pcap',
  'ipv6-malformed.pcap',
] as const;

/** The ledger generate.py wrote for an IPv6 fixture: family → "src dst proto sport dport" → totals. */
export const flowsLedgerOf = (name: string): string => fixture(`${name.split('.')[0]!}.flows.json`);

export const fixture = (name: string): string => join(PROJECT_ROOT, 'test/fixtures', name);
