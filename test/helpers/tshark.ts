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
 *
 * IPv6 has its own function, tsharkFlowTotals6 (rules at its section below);
 * tsharkFlowTotals stays IPv4-only.
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

// --- IPv6 -------------------------------------------------------------------
//
// Which packets count ("valid IPv6"), following the decoder's rules:
//  - the (first) IPv6 header sits directly on a link layer the probe decodes:
//    Ethernet or Linux SLL / SLL2 (with any 802.1Q / 802.1ad / 0x9100 tags),
//    DLT_RAW, LINKTYPE_IPV6 (229; tshark shows no link protocol there);
//  - version 6 (tshark does not even call it IPv6 otherwise), the 40-byte header
//    captured (tshark flags a shorter one as short or malformed in "IPv6");
//  - payload length 0 only with next header 59 (a jumbogram, next header 0, or
//    any other next header is malformed); payload length + 40 within the frame
//    on the wire (tshark's "payload length exceeds framing length");
//  - no malformed-packet exception inside the IPv6 header or an extension
//    header (one running past the payload length); exceptions further up (a
//    malformed ICMPv6 or ISAKMP body) do not disqualify the packet.
//
// Key: "src dst proto sport dport", addresses in RFC 5952 text as tshark prints
// them. Octets: payload length + 40. Protocol: the upper layer after walking the
// extension headers (hop-by-hop, routing, destination options, fragment, AH) as
// frame.protocols lists them, each one's next-header value taken in order from
// its own field; at most 16 are walked (a 17th ends the walk: its value is the
// protocol, ports 0); a fragment with a non-zero offset ends it with the fragment
// header's next header (ports 0); a header cut off by the snapshot length ends it
// with the value naming that header (ports 0). ESP, 59 and unknown values end it
// as themselves. Ports from TCP / UDP / UDP-Lite / SCTP (both captured, else 0);
// ICMPv6: sport 0, dport = type * 256 + code.

/** Protocol chains (frame.protocols) leading to an IPv6 header the probe decodes (no prefix: LINKTYPE_IPV6). */
const LINK_PREFIX6 = '^((eth|sll):ethertype:((vlan|ieee8021ad):ethertype:)*|raw:)?ipv6(:|$)';

/** Display filter selecting IPv6 packets of which parseFieldsLine6 then keeps the valid ones. */
export const TSHARK_IPV6_FILTER = [
  `frame.protocols matches "${LINK_PREFIX6}"`,
  'ipv6.dst#1',
  'ipv6.version#1 == 6',
  '!(ipv6.plen#1 == 0 && ipv6.nxt#1 != 59)',
  '!(_ws.expert.message contains "IPv6 payload length exceeds framing length")',
].join(' && ');

/** Fields printed per IPv6 packet (every occurrence, joined by ';'), in this order. */
export const TSHARK_FIELDS6 = [
  'ipv6.src',
  'ipv6.dst',
  'ipv6.nxt',
  'ipv6.plen',
  'frame.protocols',
  'ipv6.hopopts.nxt',
  'ipv6.routing.nxt',
  'ipv6.dstopts.nxt',
  'ipv6.fraghdr.nxt',
  'ipv6.fraghdr.offset',
  'ah.next_header',
  'tcp.srcport',
  'tcp.dstport',
  'udp.srcport',
  'udp.dstport',
  'sctp.srcport',
  'sctp.dstport',
  'icmpv6.type',
  'icmpv6.code',
  '_ws.malformed',
  '_ws.short',
] as const;

/** Preferences for IPv6: no reassembly (first fragments keep their ports), no TSO guess for payload length 0. */
export const TSHARK_PREFS6 = ['ipv6.defragment:FALSE', 'ipv6.tso_support:FALSE', 'ip.defragment:FALSE', 'tcp.analyze_sequence_numbers:FALSE'];

/** Extension headers as frame.protocols names them, with the field holding each one's next header. */
const EXTENSION_HEADERS: Record<string, (typeof TSHARK_FIELDS6)[number]> = {
  'ipv6.hopopts': 'ipv6.hopopts.nxt',
  'ipv6.routing': 'ipv6.routing.nxt',
  'ipv6.dstopts': 'ipv6.dstopts.nxt',
  'ipv6.fraghdr': 'ipv6.fraghdr.nxt',
  ah: 'ah.next_header',
};
/** Next-header values the decoder walks over. */
const EXTENSION_VALUES = new Set([0, 43, 44, 51, 60]);
/** The decoder walks at most this many extension headers. */
export const MAX_IPV6_EXTENSION_HEADERS = 16;

/** tshark's names of the IPv6 header and the extension headers, as in "[Malformed Packet: …]" / "[Packet size limited during capture: … truncated]". */
const IPV6_LAYER_NAMES = '(IPv6|IPv6 Hop-by-Hop|IPv6 Routing|IPv6 Destination|IPv6 Fragment|AH)';
const MALFORMED_IN_IPV6 = new RegExp(`^\\[Malformed Packet: ${IPV6_LAYER_NAMES}\\]$`);
const SHORT_IN_IPV6 = new RegExp(`^\\[Packet size limited during capture: ${IPV6_LAYER_NAMES} truncated\\]$`);

/**
 * Parse one line of the IPv6 `-T fields` output (TSHARK_FIELDS6 order, tab-separated,
 * occurrences joined by ';') into a key and the octets, or undefined for a packet that
 * is not valid IPv6 (see above).
 */
export function parseFieldsLine6(line: string): { key: string; octets: number } | undefined {
  const cols = line.split('\t');
  const all = (name: (typeof TSHARK_FIELDS6)[number]): string[] => {
    const v = cols[TSHARK_FIELDS6.indexOf(name)] ?? '';
    return v === '' ? [] : v.split(';');
  };
  const first = (name: (typeof TSHARK_FIELDS6)[number]): number | undefined => toInt(all(name)[0]);
  const src = all('ipv6.src')[0];
  const dst = all('ipv6.dst')[0];
  const nxt = first('ipv6.nxt');
  const plen = first('ipv6.plen');
  if (!src || !dst || nxt === undefined || plen === undefined) {
    throw new Error(`tshark line without IPv6 header fields: ${JSON.stringify(line)}`);
  }
  if (all('_ws.malformed').some((m) => MALFORMED_IN_IPV6.test(m))) return undefined;
  const short = all('_ws.short').find((m) => SHORT_IN_IPV6.test(m));
  // the fixed header itself cut by the snapshot length: truncated_ip_header
  if (short === '[Packet size limited during capture: IPv6 truncated]') return undefined;
  const octets = plen + 40;

  const chain = all('frame.protocols')[0]!.split(':');
  const at = chain.indexOf('ipv6');
  const used: Record<string, number> = {};
  // the last extension header tshark listed is the one cut off, when the cut was in one
  let lastExtension = at + 1;
  while (lastExtension < chain.length && EXTENSION_HEADERS[chain[lastExtension]!] !== undefined) lastExtension++;
  lastExtension--;
  let protocol = nxt;
  let walked = 0;
  let ended = false;
  for (let i = at + 1; i < chain.length && !ended; i++) {
    const field = EXTENSION_HEADERS[chain[i]!];
    if (field === undefined || !EXTENSION_VALUES.has(protocol)) break;
    if (walked === MAX_IPV6_EXTENSION_HEADERS || (short !== undefined && i === lastExtension)) {
      ended = true;
      break;
    }
    walked++;
    const n = used[field] ?? 0;
    used[field] = n + 1;
    const next = toInt(all(field)[n]);
    if (next === undefined) {
      ended = true;
      break;
    }
    if (field === 'ipv6.fraghdr.nxt' && toInt(all('ipv6.fraghdr.offset')[n]) !== 0) {
      protocol = next;
      ended = true;
      break;
    }
    protocol = next;
  }
  let sport = 0;
  let dport = 0;
  if (!ended && !EXTENSION_VALUES.has(protocol)) {
    const pair = (a: (typeof TSHARK_FIELDS6)[number], b: (typeof TSHARK_FIELDS6)[number]): [number, number] => ports(first(a), first(b));
    switch (protocol) {
      case 6:
        [sport, dport] = pair('tcp.srcport', 'tcp.dstport');
        break;
      case 17:
      case 136: // UDP-Lite shares the udp.* fields
        [sport, dport] = pair('udp.srcport', 'udp.dstport');
        break;
      case 132:
        [sport, dport] = pair('sctp.srcport', 'sctp.dstport');
        break;
      case 58: {
        const type = first('icmpv6.type');
        const code = first('icmpv6.code');
        if (type !== undefined && code !== undefined) dport = type * 256 + code;
        break;
      }
      default:
        break;
    }
  }
  return { key: flowKey(src, dst, protocol, sport, dport), octets };
}

/** The tshark arguments tsharkFlowTotals6 uses (exported for debugging). */
export function tsharkFlowArgs6(file: string): string[] {
  return [
    '-r',
    file,
    '-n',
    ...TSHARK_PREFS6.flatMap((p) => ['-o', p]),
    '-Y',
    TSHARK_IPV6_FILTER,
    '-T',
    'fields',
    '-E',
    'separator=/t',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=;',
    ...TSHARK_FIELDS6.flatMap((e) => ['-e', e]),
  ];
}

/** Packets and octets (sum of IPv6 payload length + 40) per 5-tuple key, valid IPv6 packets only. */
export async function tsharkFlowTotals6(file: string): Promise<Map<string, FlowTotals>> {
  const totals = new Map<string, FlowTotals>();
  await runTshark(tsharkFlowArgs6(file), (line) => {
    const parsed = parseFieldsLine6(line);
    if (parsed === undefined) return;
    const t = totals.get(parsed.key);
    if (t === undefined) {
      totals.set(parsed.key, { packets: 1, octets: parsed.octets });
    } else {
      t.packets += 1;
      t.octets += parsed.octets;
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

/** `npx tsx test/helpers/tshark.ts FILE...` prints the totals of both families (for eyeballing fixtures). */
async function main(files: string[]): Promise<void> {
  for (const file of files) {
    const [v4, v6] = await Promise.all([tsharkFlowTotals(file), tsharkFlowTotals6(file)]);
    console.log(`== ${file}: ${await tsharkPacketCount(file)} frames, ${v4.size} IPv4 flows, ${v6.size} IPv6 flows`);
    for (const [family, totals] of [['IPv4', v4], ['IPv6', v6]] as const) {
      let packets = 0;
      let octets = 0;
      for (const [key, t] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
        packets += t.packets;
        octets += t.octets;
        console.log(`${key.padEnd(64)} ${String(t.packets).padStart(7)} ${String(t.octets).padStart(12)}`);
      }
      console.log(`total valid ${family}: ${packets} packets, ${octets} octets`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
