/**
 * Seeded fuzz frames for every link type the decoder knows: pure noise, and real
 * frames (TCP with options, UDP, ICMP, a fragment, VLAN and QinQ tags, IPv6, ARP)
 * with bytes flipped, header fields set to edge values, cut short, or with a wire
 * length beyond what was captured. One reused buffer: a visitor must not keep it.
 */
import { LinkType } from '../../src/capture/link-type.js';
import { prng } from './synthetic-pcap.js';

/** The link types fuzzed, with the number a pcap file's header gives each. */
export const FUZZ_LINK_TYPES = [
  { linkType: LinkType.ethernet, fileLinkType: 1, name: 'ethernet' },
  { linkType: LinkType.linuxSll, fileLinkType: 113, name: 'sll' },
  { linkType: LinkType.linuxSll2, fileLinkType: 276, name: 'sll2' },
  { linkType: LinkType.raw, fileLinkType: 101, name: 'raw' },
  { linkType: LinkType.ipv4, fileLinkType: 228, name: 'ipv4' },
] as const;

export const MAX_FUZZ_FRAME = 160;

function ipv4Packet(proto: number, l4: number[], opts: { ihlWords?: number; fragment?: number; tos?: number } = {}): number[] {
  const ihl = opts.ihlWords ?? 5;
  const options = new Array<number>((ihl - 5) * 4).fill(1);
  const total = ihl * 4 + l4.length;
  const frag = opts.fragment ?? 0;
  return [
    0x40 | ihl, opts.tos ?? 0, total >> 8, total & 0xff,
    0x12, 0x34, frag >> 8, frag & 0xff,
    64, proto, 0, 0,
    192, 0, 2, 1,
    198, 51, 100, 2,
    ...options,
    ...l4,
  ];
}

const TCP = [0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x12, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0xb4, ...new Array<number>(16).fill(0)];
const UDP = [0x13, 0x88, 0x00, 0x35, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
const ICMP = [8, 0, 0, 0, 0, 1, 0, 1, ...new Array<number>(8).fill(0x61)];

/** IPv4 packets (and a few non-IPv4 payloads, marked with their ethertype). */
const PAYLOADS: { ethertype: number; bytes: number[] }[] = [
  { ethertype: 0x0800, bytes: ipv4Packet(6, TCP) },
  { ethertype: 0x0800, bytes: ipv4Packet(17, UDP, { ihlWords: 7, tos: 0xb8 }) },
  { ethertype: 0x0800, bytes: ipv4Packet(1, ICMP) },
  { ethertype: 0x0800, bytes: ipv4Packet(17, UDP, { fragment: 0x2000 | 185 }) },
  { ethertype: 0x0800, bytes: ipv4Packet(132, [0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]) },
  { ethertype: 0x86dd, bytes: [0x60, 0, 0, 0, 0, 8, 17, 64, ...new Array<number>(32).fill(0), ...UDP.slice(0, 8)] },
  { ethertype: 0x0806, bytes: [0, 1, 8, 0, 6, 4, 0, 1, ...new Array<number>(20).fill(0)] },
];

function withLinkHeader(linkType: number, payload: { ethertype: number; bytes: number[] }, tags: number): number[] {
  const et = [payload.ethertype >> 8, payload.ethertype & 0xff];
  switch (linkType) {
    case LinkType.ethernet: {
      const vlan: number[] = [];
      for (let t = 0; t < tags; t++) vlan.push(...(t === 0 && tags > 1 ? [0x88, 0xa8] : [0x81, 0x00]), 0, t + 1);
      return [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ...vlan, ...et, ...payload.bytes];
    }
    case LinkType.linuxSll:
      return [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, ...et, ...payload.bytes];
    case LinkType.linuxSll2:
      return [...et, 0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, ...payload.bytes];
    default:
      return payload.bytes;
  }
}

/** Offsets of the IPv4 header's interesting fields, relative to its start. */
const IP_FIELDS = [0, 1, 2, 3, 6, 7, 9];
const EDGE_VALUES = [0, 1, 0x0f, 0x40, 0x45, 0x4f, 0x5f, 0x7f, 0x80, 0xfe, 0xff];

export interface FuzzVisitor {
  (frame: Uint8Array, caplen: number, wirelen: number, index: number): void;
}

/**
 * Call `visit` for `count` seeded fuzz frames of one link type. The frame array is
 * MAX_FUZZ_FRAME bytes and reused; caplen says how much of it is the frame.
 */
export function fuzzFrames(linkType: number, count: number, seed: number, visit: FuzzVisitor): void {
  const random = prng(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const templates = PAYLOADS.flatMap((p) => [0, 1, 2, 9].map((tags) => Uint8Array.from(withLinkHeader(linkType, p, linkType === LinkType.ethernet ? tags : 0))))
    .filter((t, i, all) => all.findIndex((u) => u.length === t.length && u.every((b, j) => b === t[j])) === i);
  const linkHeader = linkType === LinkType.ethernet ? 14 : linkType === LinkType.linuxSll ? 16 : linkType === LinkType.linuxSll2 ? 20 : 0;
  const frame = new Uint8Array(MAX_FUZZ_FRAME);
  for (let i = 0; i < count; i++) {
    let length: number;
    const kind = i % 5;
    if (kind === 0) {
      // noise of a random length
      length = int(MAX_FUZZ_FRAME + 1);
      for (let j = 0; j < length; j++) frame[j] = int(256);
    } else {
      const template = templates[int(templates.length)]!;
      length = template.length;
      frame.set(template);
      if (kind === 1 || kind === 4) {
        // a few random bytes anywhere
        const flips = 1 + int(4);
        for (let k = 0; k < flips; k++) frame[int(length)] = int(256);
      } else if (kind === 2) {
        // an IPv4 header field set to an edge value (the link header is fixed but for VLAN tags)
        const at = linkHeader + IP_FIELDS[int(IP_FIELDS.length)]!;
        if (at < length) frame[at] = EDGE_VALUES[int(EDGE_VALUES.length)]!;
      } else {
        // a flipped bit in the link header or the first IPv4 bytes
        const at = int(Math.min(length, linkHeader + 24));
        frame[at] = frame[at]! ^ (1 << int(8));
      }
    }
    const caplen = kind === 4 ? int(length + 1) : random() < 0.2 ? int(length + 1) : length;
    const wirelen = random() < 0.7 ? caplen : caplen + int(1600);
    visit(frame, caplen, wirelen, i);
  }
}
