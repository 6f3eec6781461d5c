import { closeSync, openSync, readSync } from 'node:fs';
import { supportedLinkType, type LinkType } from './link-type.js';

/**
 * Classic pcap files (the format libpcap writes, 24-byte file header, 16-byte record
 * headers), read in large chunks and handed to the decoder in place.
 *
 * Why not libpcap: the `pcap` binding calls JavaScript once per packet (~160 ns per
 * call, more than the decoder and the flow cache together at 1k flows); reading the
 * file here costs a few ns per packet. libpcap still reads everything this reader
 * declines: pcapng, stdin, BPF filters, other versions and link types, odd headers.
 * Record handling follows libpcap 1.10's (sf-pcap.c) so both paths count the same.
 */

const MAGIC_MICROSECONDS = 0xa1b2c3d4;
const MAGIC_NANOSECONDS = 0xa1b23c4d;
const FILE_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
/** libpcap's MAXIMUM_SNAPLEN: a larger captured length is a corrupt file. */
const MAXIMUM_SNAPLEN = 262_144;
/** Link types (LINKTYPE_ values as files store them) read here; libpcap maps the rest. */
const LINK_TYPES_READ_HERE = new Set([1, 101, 113, 228, 276]);
/**
 * Reads fill the whole buffer: this much plus room for one record of the largest
 * size (512 KiB in all). Small enough to stay in L2 and to cost few first-touch page
 * faults; at ~80-byte records still ~6,000 packets per read(2).
 */
const CHUNK_BYTES = 1 << 18;

/**
 * Called for every record; returns false to stop reading. The time comes as
 * libpcap hands it out, seconds and microseconds, but seconds as int32 (`>>> 0`
 * restores it after 2038): V8 passes small integers to a function unboxed, where
 * a double (milliseconds) would be a heap number allocated per packet.
 */
export type FrameSink = (
  data: Uint8Array,
  start: number,
  caplen: number,
  wirelen: number,
  seconds: number,
  microseconds: number,
) => boolean;

export class PcapFileReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PcapFileReadError';
  }
}

export type ReadOutcome = 'end_of_file' | 'stopped';

export class ClassicPcapReader {
  private fd: number | undefined;
  private readonly chunk = Buffer.allocUnsafe(CHUNK_BYTES + RECORD_HEADER_BYTES + MAXIMUM_SNAPLEN);
  private readonly view = new DataView(this.chunk.buffer, this.chunk.byteOffset, this.chunk.byteLength);

  private constructor(
    fd: number,
    readonly linkType: LinkType,
    /** what libpcap calls the snapshot: the file's snaplen, 0 or oversized meaning the maximum */
    readonly snapshot: number,
    private readonly littleEndian: boolean,
    /** 1 for a microsecond file, 1000 for a nanosecond one */
    private readonly fractionPerMicrosecond: number,
  ) {
    this.fd = fd;
  }

  /**
   * Open `path` if it is a classic pcap file this reader takes; undefined otherwise
   * (libpcap then opens it, and reports whatever is wrong with it in its own words).
   */
  static open(path: string): ClassicPcapReader | undefined {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return undefined; // libpcap names the problem
    }
    const header = Buffer.alloc(FILE_HEADER_BYTES);
    let got: number;
    try {
      got = readSync(fd, header, 0, FILE_HEADER_BYTES, null);
    } catch {
      got = 0; // a directory, say: libpcap says what it is
    }
    const parsed = got === FILE_HEADER_BYTES ? parseFileHeader(header) : undefined;
    if (parsed === undefined) {
      closeSync(fd);
      return undefined;
    }
    return new ClassicPcapReader(fd, parsed.linkType, parsed.snapshot, parsed.littleEndian, parsed.fractionPerMicrosecond);
  }

  /**
   * Hand every record to `sink` until the file ends or `sink` returns false.
   * Throws PcapFileReadError on a truncated or corrupt record, as libpcap fails.
   */
  readAll(sink: FrameSink): ReadOutcome {
    const fd = this.fd;
    if (fd === undefined) throw new PcapFileReadError('the file is closed');
    const { chunk, view, littleEndian } = this;
    let filled = 0;
    for (;;) {
      const n = readSync(fd, chunk, filled, chunk.length - filled, null);
      if (n === 0) {
        if (filled === 0) return 'end_of_file';
        throw new PcapFileReadError(
          filled < RECORD_HEADER_BYTES
            ? `truncated dump file; tried to read ${RECORD_HEADER_BYTES} header bytes, only got ${filled}`
            : `truncated dump file; tried to read ${view.getUint32(8, littleEndian)} captured bytes, only got ${filled - RECORD_HEADER_BYTES}`,
        );
      }
      filled += n;
      const consumed = this.deliver(filled, sink);
      if (consumed < 0) return 'stopped';
      // keep the partial record at the front; the next read completes it
      if (consumed > 0) chunk.copyWithin(0, consumed, filled);
      filled -= consumed;
    }
  }

  /**
   * Hand the whole records among the first `filled` bytes of the chunk to `sink`;
   * returns the bytes they took, or -1 if the sink stopped. A function of its own
   * so that V8 optimizes the record loop alone (on-stack replacement of readAll
   * would deoptimize at the first chunk's end).
   */
  private deliver(filled: number, sink: FrameSink): number {
    const { chunk, view, littleEndian, fractionPerMicrosecond, snapshot } = this;
    let at = 0;
    while (at + RECORD_HEADER_BYTES <= filled) {
      const caplen = view.getUint32(at + 8, littleEndian);
      if (caplen > MAXIMUM_SNAPLEN) {
        throw new PcapFileReadError(`invalid packet capture length ${caplen}, bigger than maximum of ${MAXIMUM_SNAPLEN}`);
      }
      const next = at + RECORD_HEADER_BYTES + caplen;
      if (next > filled) break;
      const seconds = view.getInt32(at, littleEndian);
      const fraction = view.getUint32(at + 4, littleEndian);
      const wirelen = view.getUint32(at + 12, littleEndian);
      // a nanosecond file's fraction is truncated to microseconds, as libpcap does
      const microseconds = fractionPerMicrosecond === 1 ? fraction : Math.floor(fraction / fractionPerMicrosecond);
      // a record longer than the snapshot is cut to it; the rest is skipped
      const kept = caplen > snapshot ? snapshot : caplen;
      if (!sink(chunk, at + RECORD_HEADER_BYTES, kept, wirelen, seconds, microseconds)) return -1;
      at = next;
    }
    return at;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

interface FileHeader {
  linkType: LinkType;
  snapshot: number;
  littleEndian: boolean;
  fractionPerMicrosecond: number;
}

function parseFileHeader(header: Buffer): FileHeader | undefined {
  const magicLe = header.readUInt32LE(0);
  const magicBe = header.readUInt32BE(0);
  let littleEndian: boolean;
  let fractionPerMicrosecond: number;
  if (magicLe === MAGIC_MICROSECONDS || magicBe === MAGIC_MICROSECONDS) {
    littleEndian = magicLe === MAGIC_MICROSECONDS;
    fractionPerMicrosecond = 1;
  } else if (magicLe === MAGIC_NANOSECONDS || magicBe === MAGIC_NANOSECONDS) {
    littleEndian = magicLe === MAGIC_NANOSECONDS;
    fractionPerMicrosecond = 1000;
  } else {
    return undefined;
  }
  const u16 = (at: number): number => (littleEndian ? header.readUInt16LE(at) : header.readUInt16BE(at));
  const u32 = (at: number): number => (littleEndian ? header.readUInt32LE(at) : header.readUInt32BE(at));
  // 2.4 only: libpcap has quirks for older files (2.3 swapped caplen and len)
  if (u16(4) !== 2 || u16(6) !== 4) return undefined;
  const linkTypeField = u32(20);
  // the upper bits carry FCS information, which libpcap interprets
  if (!LINK_TYPES_READ_HERE.has(linkTypeField)) return undefined;
  const linkType = supportedLinkType(linkTypeField);
  if (linkType === undefined) return undefined;
  const snaplen = u32(16);
  const snapshot = snaplen === 0 || snaplen > MAXIMUM_SNAPLEN ? MAXIMUM_SNAPLEN : snaplen;
  return { linkType, snapshot, littleEndian, fractionPerMicrosecond };
}
