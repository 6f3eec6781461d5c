/**
 * Independent reference for flow totals: let tshark (Wireshark 4.x) dissect a
 * capture file and sum packets and IPv4 octets per 5-tuple, so tests can
 * compare flowprobe's NetFlow output with it.
 *
 * Which packets count ("valid IPv4"):
 *  - IPv4 sits directly on a link layer the probe decodes: Ethernet or Linux
 *    SLL / SLL2 (either with any number of 802.1Q / 802.1ad / 0x9100 tags:
 *    `-i any` records a tagged frame with the TPID in the protocol field and
 *    the tags in the payload), DLT_RAW, LINKTYPE_IPV4. IPv4 inside MPLS,
 *    PPPoE, tunnels, ICMP errors... is not.
 *  - tshark found nothing wrong with that (first) IPv4 header: no bogus
 *    version / header length / total length, and no exception while
 *    dissecting it (e.g. total length past the end of the frame).
 *    Problems deeper in the packet (a malformed HTTP/RTCP payload, the bogus
 *    "inner IP header" of an ICMP error) do not disqualify it; neither does a
 *    snapshot length that cut the packet short after the first 20 IP bytes.
 *  - Total length 0 is invalid: tshark's TSO heuristic (which would take the
 *    frame length instead) is switched off.
 *
 * Key: "src dst proto sport dport". Ports are 0 when tshark decodes no
 * transport header: non-first fragments (defragmentation is off, so first
 * fragments do carry their ports) and packets whose ports were cut off by
 * the snapshot length (tshark needs both ports captured). ICMP: sport 0,
 * dport = type * 256 + code (NetFlow convention); both bytes must be
 * captured. Octets are the sum of the IPv4 total length field.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export interface FlowTotals {
  packets: number;
  octets: number;
}

/** Protocol chains (frame.protocols) that lead to an IPv4 header the probe decodes (tshark calls SLL2 "sll" too). */
const LINK_PREFIX = '^((eth|sll):ethertype:((vlan|ieee8021ad):ethertype:)*|raw:)?ip(:|$)';

/** Display filter selecting exactly the valid IPv4 packets (see module comment). */
export const TSHARK_VALID_IPV4_FILTER = [
  `frame.protocols matches "${LINK_PREFIX}"`,
  'ip.dst#1',
  '!ip.bogus_ip_version#1',
  '!ip.bogus_header_length#1',
  '!ip.bogus_ip_length#1',
  // An exception while dissecting the IPv4 header itself leaves "ip" as the
  // last protocol of the chain; later exceptions belong to upper layers.
  '!(_ws.malformed && frame.protocols matches "(^|:)ip$")',
].join(' && ');

/** Fields printed per packet, in this order. */
export const TSHARK_FIELDS = [
  'ip.src',
  'ip.dst',
  'ip.proto',
  'ip.len',
  'tcp.srcport',
  'tcp.dstport',
  'udp.srcport',
  'udp.dstport',
  'icmp.type',
  'icmp.code',
  'sctp.srcport',
  'sctp.dstport',
] as const;

/** Preferences that make tshark see packets the way a flow probe does. */
export const TSHARK_PREFS = [
  'ip.defragment:FALSE',
  'ip.tso_support:FALSE',
  // Not needed for the fields above; halves the run time on big files.
  'tcp.analyze_sequence_numbers:FALSE',
];

export function flowKey(src: string, dst: string, proto: number, sport: number, dport: number): string {
  return `${src} ${dst} ${proto} ${sport} ${dport}`;
}

let available: boolean | undefined;

/** Whether a tshark binary can be run (for skipping tests where it is missing). */
export function tsharkAvailable(): boolean {
  available ??= spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** Run tshark with `args`, calling `onLine` for each stdout line. */
async function runTshark(args: readonly string[], onLine: (line: string) => void): Promise<void> {
  const child = spawn('tshark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 64 * 1024) stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length > 0) onLine(line);
  }
  const code = await exited;
  if (code !== 0) {
    throw new Error(`tshark ${args.join(' ')} exited with ${String(code)}: ${stderr.trim()}`);
  }
}

function toInt(field: string | undefined): number | undefined {
  if (field === undefined || field === '') return undefined;
  const n = Number(field);
  if (!Number.isInteger(n)) throw new Error(`tshark printed a non-integer field: ${JSON.stringify(field)}`);
  return n;
}

function ports(a: number | undefined, b: number | undefined): [number, number] {
  return a === undefined || b === undefined ? [0, 0] : [a, b];
}

/** Parse one line of `-T fields` output (TSHARK_FIELDS order) into a key and the IP length. */
export function parseFieldsLine(line: string): { key: string; octets: number } {
  const f = line.split(',');
  const [src, dst] = [f[0], f[1]];
  const proto = toInt(f[2]);
  const len = toInt(f[3]);
  if (!src || !dst || proto === undefined || len === undefined) {
    throw new Error(`tshark line without IPv4 header fields: ${JSON.stringify(line)}`);
  }
  let sport = 0;
  let dport = 0;
  switch (proto) {
    case 6:
      [sport, dport] = ports(toInt(f[4]), toInt(f[5]));
      break;
    case 17:
    case 136: // UDP-Lite shares the udp.* fields
      [sport, dport] = ports(toInt(f[6]), toInt(f[7]));
      break;
    case 1: {
      const type = toInt(f[8]);
      const code = toInt(f[9]);
      if (type !== undefined && code !== undefined) dport = type * 256 + code;
      break;
    }
    case 132:
      [sport, dport] = ports(toInt(f[10]), toInt(f[11]));
      break;
    default:
      break;
  }
  return { key: flowKey(src, dst, proto, sport, dport), octets: len };
}

/** The tshark arguments tsharkFlowTotals uses (exported for debugging). */
export function tsharkFlowArgs(file: string): string[] {
  return [
    '-r',
    file,
    '-n',
    ...TSHARK_PREFS.flatMap((p) => ['-o', p]),
    '-Y',
    TSHARK_VALID_IPV4_FILTER,
    '-T',
    'fields',
    '-E',
    'separator=,',
    '-E',
    'occurrence=f',
    ...TSHARK_FIELDS.flatMap((e) => ['-e', e]),
  ];
}

/** Packets and octets (sum of IPv4 total length) per 5-tuple key, valid IPv4 packets only. */
export async function tsharkFlowTotals(file: string): Promise<Map<string, FlowTotals>> {
  const totals = new Map<string, FlowTotals>();
  await runTshark(tsharkFlowArgs(file), (line) => {
    const { key, octets } = parseFieldsLine(line);
    const t = totals.get(key);
    if (t === undefined) {
      totals.set(key, { packets: 1, octets });
    } else {
      t.packets += 1;
      t.octets += octets;
    }
  });
  return totals;
}

/** Number of frames in the file, whatever they contain. */
export async function tsharkPacketCount(file: string): Promise<number> {
  let n = 0;
  await runTshark(['-r', file, '-n', '-T', 'fields', '-e', 'frame.number'], () => {
    n += 1;
  });
  return n;
}

/** `npx tsx test/helpers/tshark.ts FILE...` prints the totals (for eyeballing fixtures). */
async function main(files: string[]): Promise<void> {
  for (const file of files) {
    const totals = await tsharkFlowTotals(file);
    let packets = 0;
    let octets = 0;
    console.log(`== ${file}: ${await tsharkPacketCount(file)} frames, ${totals.size} flows`);
    for (const [key, t] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
      packets += t.packets;
      octets += t.octets;
      console.log(`${key.padEnd(48)} ${String(t.packets).padStart(7)} ${String(t.octets).padStart(12)}`);
    }
    console.log(`total valid IPv4: ${packets} packets, ${octets} octets`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
