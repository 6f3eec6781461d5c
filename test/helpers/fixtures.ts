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

export const fixture = (name: string): string => join(PROJECT_ROOT, 'test/fixtures', name);
