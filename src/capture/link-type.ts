/** The link types the decoder understands (libpcap DLT_/LINKTYPE_ values as `pcap_datalink` returns them). */
export const LinkType = {
  ethernet: 1,
  /** DLT_RAW as libpcap reports it on Linux (files say LINKTYPE_RAW = 101) */
  raw: 12,
  /** DLT_RAW on OpenBSD, seen in files written there */
  rawOpenBsd: 14,
  linuxSll: 113,
  ipv4: 228,
  /** LINKTYPE_IPV6: raw IPv6, no link header */
  ipv6: 229,
  linuxSll2: 276,
} as const;
export type LinkType = (typeof LinkType)[keyof typeof LinkType];

const NAMES_FROM_BINDING: Record<string, number> = {
  LINKTYPE_NULL: 0,
  LINKTYPE_ETHERNET: 1,
  LINKTYPE_IEEE802_11_RADIO: 127,
  LINKTYPE_RAW: 12,
  LINKTYPE_LINUX_SLL: 113,
};

const DESCRIPTIONS: Record<number, string> = {
  0: 'BSD loopback (DLT_NULL)',
  1: 'Ethernet',
  12: 'raw IP',
  14: 'raw IP',
  101: 'raw IP',
  105: 'IEEE 802.11',
  113: 'Linux cooked capture (SLL)',
  127: '802.11 radiotap',
  228: 'raw IPv4',
  229: 'raw IPv6',
  276: 'Linux cooked capture v2 (SLL2)',
};

/** The binding names a few link types and reports the rest as "Unknown linktype N". */
export function linkTypeFromBinding(name: string): number {
  const known = NAMES_FROM_BINDING[name];
  if (known !== undefined) return known;
  const match = /^Unknown linktype (-?\d+)$/.exec(name);
  if (match?.[1] !== undefined) return Number(match[1]);
  return -1;
}

/** Normalise aliases so the decoder sees one value per format. */
export function supportedLinkType(linkType: number): LinkType | undefined {
  switch (linkType) {
    case LinkType.ethernet:
    case LinkType.linuxSll:
    case LinkType.linuxSll2:
    case LinkType.ipv4:
    case LinkType.raw:
      return linkType;
    case LinkType.rawOpenBsd:
    case 101:
      return LinkType.raw;
    default:
      return undefined;
  }
}

export function describeLinkType(linkType: number): string {
  const name = DESCRIPTIONS[linkType];
  return name === undefined ? `link type ${linkType}` : `${name} (link type ${linkType})`;
}
