/**
 * The data plane, in a worker thread: capture → decode → flow cache → v5 records.
 * libpcap's dispatch blocks its thread until a file ends or the live buffer
 * drains, so it must not run on the thread that sends, logs and answers signals.
 */
import { parentPort } from 'node:worker_threads';
import { workerConfig } from './worker-config.js';
import { AccountingTable, AccountingView } from '../accounting/table.js';
import { AddressTable } from '../cache/address-table.js';
import { FlowCache } from '../cache/flow-cache.js';
import { PacketBatch } from '../cache/packet-batch.js';
import { ControlWord, DataPlaneCounter, SourceCounter, sourceCounterBase } from '../counters/data-plane.js';
import { DecodeResult, DecodedPacket, decodeFrame } from '../decode/decode.js';
import {
  Ipv6RecordBatcher,
  RecordBatcher,
  ipv6FlowAttributes,
  type DataPlaneClock,
  type RecordBatch,
} from '../export/record-batch.js';
import { captureDeviceKind, defaultDevice, interfaceExists, systemIfIndex } from './interfaces.js';
import { describeLinkType, linkTypeFromBinding, supportedLinkType } from './link-type.js';
import { pcapBinding, type PcapNativeSession } from './pcap-binding.js';
import { LiveClock } from './live-clock.js';
import { PcapHandleFigures, type CaptureDeviceKind } from './pcap-stats.js';
import { ClassicPcapReader, PcapFileReadError } from './pcap-file.js';
import {
  FLOW_FIELDS,
  FlowField,
  type CaptureSourceSpec,
  type CaptureWorkerCommand,
  type CaptureWorkerMessage,
  type DataPlaneReply,
  type DataPlaneRequest,
} from './worker-protocol.js';

/** How often the packet path looks at the stop word (a long dispatch never returns otherwise). */
const STOP_CHECK_PACKETS = 1024;
/** Enough for link header, 8 VLAN tags, a 60-byte IP header and the TCP flags. */
const MIN_FRAME_BUFFER = 256;
const LIVE_READ_TIMEOUT_MS = 100;
/**
 * A live stop reads on before closing: the kernel hands libpcap a TPACKET_V3
 * block when it is full or LIVE_READ_TIMEOUT_MS after it was begun, so the
 * packets of the last, partly filled block (up to 100 ms of traffic) come late.
 * The capture closes once libpcap's received count is all read (see
 * PcapHandleFigures.unread), at most LIVE_DRAIN_MAX_MS after the stop (a busy
 * link always has a block on the way); where that count cannot be compared
 * ("any"), after LIVE_DRAIN_MS (twice the timeout: timers run late).
 */
const LIVE_DRAIN_MS = 2 * LIVE_READ_TIMEOUT_MS;
const LIVE_DRAIN_MAX_MS = 1000;
/**
 * Live reads are driven by a timer on this dedicated thread rather than the
 * binding's start_polling: its poll handle is never closed, and a worker cannot
 * exit with an open handle (node aborts). The kernel ring absorbs the packets
 * that arrive between two polls.
 */
const LIVE_POLL_MS = 2;

const port = parentPort;
if (port === null) throw new Error('worker.ts must run in a worker thread');
const config = workerConfig();
const { counters, control } = config;
const live = config.sources.every((s) => s.kind === 'live');

function send(message: CaptureWorkerMessage, transfer?: ArrayBuffer[]): void {
  port!.postMessage(message, transfer);
}

const clock: DataPlaneClock = { now: 0, boot: config.bootMs ?? Number.NaN, wallOffset: 0 };
/** live: packet timestamps and ages on a monotonic time line (see LiveClock); a file keeps capture time */
const liveClock = live ? new LiveClock() : undefined;
/** a packet's timestamp (ms) as the data plane counts it: capture time (file), or on the live line */
const packetTime: (timestampMs: number) => number = liveClock === undefined ? (ms) => ms : (ms) => liveClock.packetTime(ms);
const postBatch = (batch: RecordBatch): void => {
  if (!live) {
    // A file never drops: wait while the exporter is behind.
    for (;;) {
      const pending = Atomics.load(control, ControlWord.pendingRecords);
      if (pending <= config.maxPendingRecords || Atomics.load(control, ControlWord.stop) !== 0) break;
      Atomics.wait(control, ControlWord.pendingRecords, pending, 250);
    }
  }
  Atomics.add(control, ControlWord.pendingRecords, batch.count);
  counters[DataPlaneCounter.recordsPosted]! += batch.count;
  send({ type: 'records', batch }, [batch.records, batch.attributes]);
  counters[DataPlaneCounter.ipv6Addresses] = addresses.count;
};
const batcher = new RecordBatcher(clock, postBatch);
const cache = new FlowCache(
  config.maxFlows,
  config.timeouts,
  batcher,
  clock,
  counters.subarray(DataPlaneCounter.flowCacheBase),
);
/**
 * IPv6 flows: a cache of their own, keyed by address ids (AddressTable), so
 * IPv4's packet path is untouched. Each flow holds two ids, and a batch of
 * packets interns at most two each before they are held or forgotten: the table
 * never fills.
 */
const addresses = new AddressTable(2 * config.maxFlows + 2 * PacketBatch.SIZE);
const batcher6 = new Ipv6RecordBatcher(addresses, clock, postBatch);
const cache6 = new FlowCache(
  config.maxFlows,
  config.timeouts,
  batcher6,
  clock,
  counters.subarray(DataPlaneCounter.flowCache6Base),
);

const accounting =
  config.accounting === undefined
    ? undefined
    : new AccountingTable(
        config.accounting.memoryLimit,
        config.accounting.rules,
        counters.subarray(DataPlaneCounter.accountingBase),
      );

interface Source {
  spec: CaptureSourceSpec;
  name: string;
  /** libpcap's session, made when libpcap opens the source (the addon loads then) */
  session: PcapNativeSession | undefined;
  /** the live session's pcap_stats, added to the source's totals; a new one with each (re)open, gone once it closes */
  pcapFigures: PcapHandleFigures | undefined;
  /** how libpcap's received count relates to the packets it hands over */
  deviceKind: CaptureDeviceKind;
  linkType: number;
  counterBase: number;
  /** the source's index (the accounting table's interface) */
  slot: number;
  /** 1: the accounting table keeps ports, protocol and interface for this source */
  capturePorts: number;
  /** ifIndex written in records; a recreated interface gets a new one */
  ifIndex: number;
  /** the system's index for the interface when it was (re)opened */
  systemIfIndex: number;
  /** released: libpcap closed it (dispatch returned -2); lost: the interface went away, waiting for it */
  handle: 'unopened' | 'open' | 'released' | 'lost';
  /** a classic pcap file read without libpcap (see pcap-file.ts): no session at all */
  fileReader: ClassicPcapReader | undefined;
}

function resolveDefaultDevice(spec: CaptureSourceSpec): CaptureSourceSpec {
  if (spec.kind !== 'live' || spec.device !== '') return spec;
  const device = defaultDevice();
  return { ...spec, device, ifIndex: spec.ifIndex !== 0 ? spec.ifIndex : systemIfIndex(device) };
}

const sources: Source[] = config.sources.map(resolveDefaultDevice).map((spec, i) => ({
  spec,
  name: spec.kind === 'live' ? spec.device : spec.path,
  session: undefined,
  pcapFigures: undefined,
  deviceKind: spec.kind === 'live' ? captureDeviceKind(spec.device) : 'interface',
  linkType: 0,
  counterBase: sourceCounterBase(i),
  slot: i,
  capturePorts: config.accounting?.capturePorts[i] === true ? 1 : 0,
  ifIndex: spec.ifIndex,
  systemIfIndex: spec.kind === 'live' ? systemIfIndex(spec.device) : 0,
  handle: 'unopened',
  fileReader: undefined,
}));

const snapLength = Math.max(0, ...config.sources.map((s) => (s.kind === 'live' ? s.snapLength : 0)));
const frameBuffer = Buffer.alloc(Math.max(MIN_FRAME_BUFFER, snapLength));
const frameBufferLength = frameBuffer.length;
const headerBuffer = Buffer.alloc(16);
// ts_sec, ts_usec, caplen, len in host order, as the binding copies them.
const header = new Uint32Array(headerBuffer.buffer, headerBuffer.byteOffset, 4);
const packet = new DecodedPacket();
/** decoded packets not yet accounted (see PacketBatch); empty between two reads */
const batch = new PacketBatch();
/** the same for IPv6 packets; at most one of the two holds packets at any time */
const batch6 = new PacketBatch();
let packetsSinceCheck = 0;
/** the capture is closing: a file stops reading, live handles are closed */
let stopping = false;
/** live: when a stop was asked (performance.now()); reading goes on a while (see LIVE_DRAIN_MS) */
let stopAskedAt = Number.POSITIVE_INFINITY;

// The source being dispatched: dispatch is synchronous, so one set of variables
// serves every session and the packet callback needs no closure per source.
let currentLinkType = 0;
let currentIfIndex = 0;
let currentBase = 0;
let currentSlot = 0;
let currentCapturePorts = 0;

/** libpcap's callback: the binding has copied the packet into frameBuffer and its header into header. */
function onPacket(): void {
  const caplen = header[2]!;
  handleFrame(
    frameBuffer,
    0,
    caplen < frameBufferLength ? caplen : frameBufferLength,
    header[3]!,
    header[0]! | 0,
    header[1]!,
  );
}

/**
 * One captured frame, wherever it lies in `data`. Returns false once the capture
 * is stopping. The arguments are small integers (seconds as `| 0`): V8 passes
 * those unboxed, where a double would be a heap number allocated per packet.
 */
function handleFrame(
  data: Uint8Array,
  start: number,
  caplen: number,
  wirelen: number,
  seconds: number,
  microseconds: number,
): boolean {
  const time = packetTime((seconds >>> 0) * 1000 + microseconds / 1000);
  counters[currentBase + SourceCounter.packets]! += 1;
  counters[currentBase + SourceCounter.bytes]! += wirelen;
  // (live, the tick may have moved the clock past the latest packet)
  const floor = batch.latestTime > clock.now ? batch.latestTime : clock.now;
  if (time >= floor) {
    batch.latestTime = time;
    if (clock.boot !== clock.boot) clock.boot = time; // NaN: first packet of a file
  } else {
    // Record times never go back: an out-of-order packet counts at the current time.
    counters[DataPlaneCounter.clockBackwards]! += 1;
    batch.latestTime = floor;
  }
  // The clock moves with every frame, but never past a packet still waiting in a batch.
  if (batch.count === 0 && batch6.count === 0) clock.now = batch.latestTime;
  const result = decodeFrame(data, caplen, wirelen, currentLinkType, packet, start);
  if (result === DecodeResult.ok) {
    if (packet.portsUnavailable !== 0) {
      counters[DataPlaneCounter.portsUnavailableBase + packet.portsUnavailable - 1]! += 1;
    }
    const ifIndex = packet.linkIfIndex !== 0 ? packet.linkIfIndex : currentIfIndex;
    if (ifIndex >>> 16 !== 0) cutIfIndex(ifIndex);
    if (packet.family === 6) {
      accountIpv6(ifIndex);
    } else {
      counters[DataPlaneCounter.ipv4Packets]! += 1;
      counters[DataPlaneCounter.ipv4Octets]! += packet.ipLength;
      if (batch6.count !== 0 || (batch.count === 0 && !cache.worthWarming)) {
        // (IPv6 packets waiting go first: the clock never goes back)
        if (batch6.count !== 0) accountBatch6();
        // A table that fits in the CPU's caches gains nothing from a batch: straight in.
        accountPacket(
          packet.srcAddr | 0,
          packet.dstAddr | 0,
          packet.srcPort,
          packet.dstPort,
          packet.protocol,
          packet.tos,
          ifIndex,
          packet.ipLength,
          packet.tcpFlags,
          packet.vlanId,
        );
      } else {
        const i = batch.count;
        batch.srcAddr[i] = packet.srcAddr | 0;
        batch.dstAddr[i] = packet.dstAddr | 0;
        batch.srcPort[i] = packet.srcPort;
        batch.dstPort[i] = packet.dstPort;
        batch.protocol[i] = packet.protocol;
        batch.tos[i] = packet.tos;
        batch.ifIndex[i] = ifIndex;
        batch.octets[i] = packet.ipLength;
        batch.tcpFlags[i] = packet.tcpFlags;
        batch.attributes[i] = packet.vlanId;
        batch.time[i] = batch.latestTime;
        if ((batch.count = i + 1) === PacketBatch.SIZE) accountBatch();
      }
    }
  } else {
    counters[DataPlaneCounter.skippedPacketsBase + result]! += 1;
    counters[DataPlaneCounter.skippedBytesBase + result]! += wirelen;
  }
  if (++packetsSinceCheck === STOP_CHECK_PACKETS) {
    packetsSinceCheck = 0;
    checkStop();
  }
  return !stopping;
}

/** the cut ifIndexes from Linux cooked v2 headers already named in a notice (a source's own is named when it opens) */
const cutIfIndexesNamed = new Set<number>();
const CUT_IFINDEXES_NAMED_AT_MOST = 16;

/** An input ifIndex above 65535: NetFlow v5 (and the flow key) carry its low 16 bits. Counted, and said once. */
function cutIfIndex(ifIndex: number): void {
  counters[currentBase + SourceCounter.ifIndexCut]! += 1;
  if (ifIndex === currentIfIndex || cutIfIndexesNamed.has(ifIndex) || cutIfIndexesNamed.size === CUT_IFINDEXES_NAMED_AT_MOST) return;
  cutIfIndexesNamed.add(ifIndex);
  const source = sources[currentSlot]!;
  send({ type: 'notice', message: `${source.name}: ${ifIndexTooWide(ifIndex >>> 0)} (in a Linux cooked v2 header)` });
}

function ifIndexTooWide(ifIndex: number): string {
  return `ifIndex ${ifIndex} does not fit NetFlow v5's 16-bit interface fields: its records carry ${ifIndex & 0xffff}`;
}

/** A source opened (or reopened) with an ifIndex above 65535: say once what its records carry. */
function noticeWideIfIndex(source: Source): void {
  if (source.ifIndex >>> 16 === 0) return;
  send({ type: 'notice', message: `${source.name}: ${ifIndexTooWide(source.ifIndex)} (-i INDEX:${source.name} chooses another)` });
}

/**
 * One packet into the flow cache and the accounting table, at clock.now.
 * Addresses as int32 (`| 0`): a uint32 above 2^31 passed on would be boxed per
 * call. Timeouts are checked by the cache itself on every packet (one comparison).
 */
function accountPacket(
  srcAddr: number,
  dstAddr: number,
  srcPort: number,
  dstPort: number,
  protocol: number,
  tos: number,
  ifIndex: number,
  octets: number,
  tcpFlags: number,
  attributes: number,
): void {
  cache.account(srcAddr, dstAddr, srcPort, dstPort, protocol, tos, ifIndex, octets, tcpFlags, attributes);
  // The accounting table is a second, independent consumer of the same fields.
  accounting?.account(srcAddr >>> 0, dstAddr >>> 0, srcPort, dstPort, protocol, currentSlot, currentCapturePorts, octets);
}

/**
 * The decoded IPv6 packet into the IPv6 cache, at the latest packet's time (the
 * IPv4 packets waiting in their batch go first: the clock never goes back). Once
 * the IPv6 cache outgrows the CPU's caches, packets gather in batch6 so that the
 * address table and the cache can warm what they will read (accountBatch6). The
 * IPCAD accounting table is IPv4's, as IPCAD's.
 */
function accountIpv6(ifIndex: number): void {
  if (batch.count !== 0) accountBatch();
  counters[DataPlaneCounter.ipv6Packets]! += 1;
  counters[DataPlaneCounter.ipv6Octets]! += packet.ipLength;
  const attributes = ipv6FlowAttributes(packet.vlanId, packet.flowLabel);
  if (batch6.count === 0 && !cache6.worthWarming) {
    clock.now = batch.latestTime;
    const src = addresses.intern(packet.src6);
    const dst = addresses.intern(packet.dst6);
    accountIpv6Packet(src, dst, packet.srcPort, packet.dstPort, packet.protocol, packet.tos, ifIndex, packet.ipLength, packet.tcpFlags, attributes);
    addresses.forgetReleased();
    return;
  }
  const i = batch6.count;
  batch6.src6.set(packet.src6, i << 2);
  batch6.dst6.set(packet.dst6, i << 2);
  batch6.srcPort[i] = packet.srcPort;
  batch6.dstPort[i] = packet.dstPort;
  batch6.protocol[i] = packet.protocol;
  batch6.tos[i] = packet.tos;
  batch6.ifIndex[i] = ifIndex;
  batch6.octets[i] = packet.ipLength;
  batch6.tcpFlags[i] = packet.tcpFlags;
  batch6.attributes[i] = attributes;
  batch6.time[i] = batch.latestTime;
  if ((batch6.count = i + 1) === PacketBatch.SIZE) accountBatch6();
}

/** One IPv6 packet into the IPv6 cache at clock.now; a new flow holds its two addresses. */
function accountIpv6Packet(
  src: number,
  dst: number,
  srcPort: number,
  dstPort: number,
  protocol: number,
  tos: number,
  ifIndex: number,
  octets: number,
  tcpFlags: number,
  attributes: number,
): void {
  cache6.account(src, dst, srcPort, dstPort, protocol, tos, ifIndex, octets, tcpFlags, attributes);
  if (cache6.createdLast) {
    addresses.hold(src);
    addresses.hold(dst);
  }
}

/**
 * The IPv6 batch: warm the address table, intern every packet's addresses, warm
 * the cache, then account each packet at its own time. Ids interned here stay
 * valid to the end of the batch: nothing is forgotten before forgetReleased().
 */
function accountBatch6(): void {
  const n = batch6.count;
  if (n === 0) return;
  const { src6, dst6, srcAddr, dstAddr, srcPort, dstPort, protocol, tos, ifIndex, octets, tcpFlags, attributes, time } = batch6;
  addresses.warm(src6, dst6, n);
  for (let i = 0; i < n; i++) {
    srcAddr[i] = addresses.internAt(src6, i << 2);
    dstAddr[i] = addresses.internAt(dst6, i << 2);
  }
  cache6.warm(batch6);
  for (let i = 0; i < n; i++) {
    clock.now = time[i]!;
    accountIpv6Packet(srcAddr[i]!, dstAddr[i]!, srcPort[i]!, dstPort[i]!, protocol[i]!, tos[i]!, ifIndex[i]!, octets[i]!, tcpFlags[i]!, attributes[i]!);
  }
  batch6.count = 0;
  addresses.forgetReleased();
  if (batch.latestTime > clock.now) clock.now = batch.latestTime;
}

/**
 * The batch's packets, each at its own time, once the cache has warmed their
 * table slots and records (see PacketBatch). Called when the batch is full and
 * whenever a read ends, so nothing waits between two reads.
 */
function accountBatch(): void {
  // at most one batch holds packets: IPv6's first, should it be that one
  if (batch6.count !== 0) accountBatch6();
  const n = batch.count;
  if (n !== 0) {
    cache.warm(batch);
    const { srcAddr, dstAddr, srcPort, dstPort, protocol, tos, ifIndex, octets, tcpFlags, attributes, time } = batch;
    for (let i = 0; i < n; i++) {
      clock.now = time[i]!;
      accountPacket(
        srcAddr[i]!,
        dstAddr[i]!,
        srcPort[i]!,
        dstPort[i]!,
        protocol[i]!,
        tos[i]!,
        ifIndex[i]!,
        octets[i]!,
        tcpFlags[i]!,
        attributes[i]!,
      );
    }
    batch.count = 0;
  }
  // the clock catches up with every frame seen, skipped ones too
  if (batch.latestTime > clock.now) clock.now = batch.latestTime;
}

function dispatch(source: Source): number {
  currentLinkType = source.linkType;
  currentIfIndex = source.ifIndex;
  currentBase = source.counterBase;
  currentSlot = source.slot;
  currentCapturePorts = source.capturePorts;
  const result = sessionOf(source).dispatch(frameBuffer, headerBuffer);
  accountBatch();
  if (result === -2) source.handle = 'released';
  return result;
}

/**
 * Whether to stop, from the packet path (every STOP_CHECK_PACKETS, even inside
 * one long dispatch) and between reads: a file stops at once; live, a stop
 * begins the drain, and the capture closes once it is over.
 */
function checkStop(): void {
  sampleLiveClock(false);
  if (stopping) return;
  if (stopAskedAt === Number.POSITIVE_INFINITY) {
    if (Atomics.load(control, ControlWord.stop) === 0) return;
    if (!live) {
      breakAll();
      return;
    }
    stopAskedAt = performance.now();
  }
  const draining = performance.now() - stopAskedAt;
  if (draining >= LIVE_DRAIN_MAX_MS) {
    breakAll();
    return;
  }
  // libpcap's received count all read, on every handle that can tell; the others wait LIVE_DRAIN_MS
  let uncertain = false;
  for (const source of sources) {
    if (source.handle !== 'open' || source.pcapFigures === undefined) continue;
    readPcapStats(source);
    const unread = source.pcapFigures.unread(source.deviceKind);
    if (unread === undefined) uncertain = true;
    else if (unread > 0) return;
  }
  if (!uncertain || draining >= LIVE_DRAIN_MS) breakAll();
}

/** Ask every session to stop: a dispatch in progress returns after the current packet. */
function breakAll(): void {
  stopping = true;
  for (const source of sources) {
    if (source.handle !== 'open') continue;
    readPcapStats(source); // the last figures: a released handle has none
    sessionOf(source).close();
  }
}

/**
 * A live handle is done with (read for the last time, or dead): count what it
 * leaves unread against its last figures.
 */
function closePcapFigures(source: Source): void {
  source.pcapFigures?.close(source.deviceKind);
  source.pcapFigures = undefined;
}

function sessionOf(source: Source): PcapNativeSession {
  if (source.session === undefined) throw new Error(`${source.name}: libpcap has not opened it`);
  return source.session;
}

function openSource(source: Source): string | undefined {
  const { spec } = source;
  if (spec.kind === 'file' && spec.path !== '-' && config.filter === '') {
    // a classic pcap file this thread can read itself; anything else goes to libpcap
    source.fileReader = ClassicPcapReader.open(spec.path);
    if (source.fileReader !== undefined) {
      source.linkType = source.fileReader.linkType;
      return undefined;
    }
  }
  if (spec.kind === 'live' && spec.device === '') {
    return 'no capture device: libpcap finds no interface to default to here (name one with -i)';
  }
  const warn = (message: string): void => {
    // "no IPv4 address assigned" is normal on a SPAN port: the main thread says it once, quietly.
    send({ type: 'warning', message: `${source.name}: ${message}` });
  };
  let linkTypeName: string;
  try {
    // a new session for each open: a lost interface's one is dead
    const session = new (pcapBinding().PcapSession)();
    source.session = session;
    linkTypeName =
      spec.kind === 'live'
        ? session.open_live(
            spec.device,
            spec.filter ?? config.filter,
            spec.bufferSize,
            spec.snapLength,
            '',
            onPacket,
            false,
            LIVE_READ_TIMEOUT_MS,
            warn,
            spec.promiscuous,
          )
        : session.open_offline(spec.path, config.filter, 0, 0, '', onPacket, false, 0, warn, false);
  } catch (error) {
    const reason = (error as Error).message;
    // libpcap names the file in its own message; not always the device
    return reason.startsWith(source.name) ? reason : `${source.name}: ${reason}`;
  }
  source.handle = 'open';
  // a new handle counts from 0: its figures add to the totals, never replace them
  if (spec.kind === 'live') {
    source.pcapFigures = new PcapHandleFigures(counters, source.counterBase, counters[source.counterBase + SourceCounter.packets]!);
  }
  const raw = linkTypeFromBinding(linkTypeName);
  const supported = supportedLinkType(raw);
  if (supported === undefined) {
    return `${source.name}: unsupported ${describeLinkType(raw)}; flowprobe reads Ethernet, Linux cooked (SLL, SLL2) and raw IPv4`;
  }
  source.linkType = supported;
  return undefined;
}

function releaseAll(): void {
  for (const source of sources) {
    if (source.handle !== 'open') continue;
    sessionOf(source).close();
    // -2 releases the handle. A live ring that is empty returns 0 instead (libpcap
    // checks the break only while packets are pending): that handle stays until exit.
    dispatch(source);
  }
}

/**
 * Live: read the clocks (every poll, tick and STOP_CHECK_PACKETS packets), so
 * packets are put on the line by a fresh offset. Only the tick moves the data
 * plane's time on by itself (when idle): packets read at a poll were captured
 * before it, and would count as out of time order behind a clock moved there.
 */
function sampleLiveClock(advance: boolean): void {
  if (liveClock === undefined) return;
  const now = liveClock.sample();
  clock.wallOffset = liveClock.wallOffset;
  // never past a packet still waiting in the batch (see handleFrame)
  if (advance && batch.count === 0 && batch6.count === 0 && now > clock.now) clock.now = now;
}

function refreshPcapStats(): void {
  for (const source of sources) if (source.handle === 'open') readPcapStats(source);
}

/** libpcap's figures for a live source's open handle, into the totals. */
function readPcapStats(source: Source): void {
  if (source.pcapFigures === undefined) return;
  try {
    source.pcapFigures.update(sessionOf(source).stats());
  } catch {
    // closed already: the last figures stay
  }
}

let finished = false;
function finish(outcome: 'end_of_file' | 'stopped' | 'read_error', message?: string): void {
  if (finished) return;
  finished = true;
  if (tickTimer !== undefined) clearInterval(tickTimer);
  if (pollTimer !== undefined) clearInterval(pollTimer);
  refreshPcapStats();
  releaseAll();
  for (const source of sources) closePcapFigures(source);
  accountBatch();
  cache.expireAll();
  batcher.flush();
  cache6.expireAll();
  addresses.forgetReleased();
  batcher6.flush();
  if (accounting !== undefined) {
    const rows = accounting.snapshot(AccountingView.active);
    send({ type: 'accounting-final', rows }, [rows]);
  }
  send(message === undefined ? { type: 'finished', outcome } : { type: 'finished', outcome, message });
  port!.close();
}

/** Whether the interface is gone, or goes within `withinMs` (the kernel fails the capture socket before sysfs forgets the device). */
function interfaceGone(name: string, withinMs: number): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 20) {
    if (!interfaceExists(name)) return true;
    if (waited >= withinMs) return false;
    Atomics.wait(pause, 0, 0, 20);
  }
}

function readError(source: Source): string {
  if (source.spec.kind === 'live') {
    // libpcap says only "error"; the system says whether the device still exists
    return interfaceGone(source.name, 1000)
      ? `${source.name}: the interface went away (capture read error)`
      : `${source.name}: capture read error (the interface is still there)`;
  }
  return `${source.name}: read error after ${counters[source.counterBase + SourceCounter.packets]} packets (truncated or corrupt capture file)`;
}

/** Live: read what every interface has buffered. */
function pollLive(): void {
  if (finished) return;
  sampleLiveClock(false);
  for (const source of sources) {
    if (source.handle !== 'open') continue;
    const result = dispatch(source);
    if (result < 0 && result !== -2) {
      const message = readError(source);
      if (config.onInterfaceLoss === 'retry' && !interfaceExists(source.name)) {
        loseInterface(source);
        continue;
      }
      finish('read_error', message);
      return;
    }
  }
  // after the reads: a drain that is over closes the capture with everything read
  checkStop();
  if (stopping) finish('stopped');
}

/** --on-interface-loss retry: drop the dead session and look for the interface every tick. */
function loseInterface(source: Source): void {
  // what the dead handle counted last, while its socket is still open
  readPcapStats(source);
  closePcapFigures(source);
  source.handle = 'lost';
  counters[source.counterBase + SourceCounter.interfaceLosses]! += 1;
  // libpcap's handle on a vanished device is dead: it is dropped, not reused
  sessionOf(source).close();
  send({ type: 'notice', message: `${source.name}: the interface went away; waiting for it to come back (--on-interface-loss retry)` });
}

function reopenLostInterfaces(): void {
  for (const source of sources) {
    if (source.handle !== 'lost' || source.spec.kind !== 'live' || !interfaceExists(source.name)) continue;
    const failure = openSource(source);
    if (failure !== undefined) {
      source.handle = 'lost';
      continue; // still coming up: try again next tick
    }
    // a recreated interface has a new index (one given as IFINDEX:NAME stays)
    const index = systemIfIndex(source.name);
    if (source.ifIndex === source.systemIfIndex) source.ifIndex = index;
    source.systemIfIndex = index;
    send({ type: 'notice', message: `${source.name}: the interface is back; capturing again` });
    noticeWideIfIndex(source);
  }
}

/** A file: one dispatch reads it all (the packet path watches the stop word). */
function readFile(source: Source): void {
  if (source.fileReader !== undefined) {
    readClassicFile(source, source.fileReader);
    return;
  }
  const began = performance.now();
  const result = dispatch(source);
  counters[DataPlaneCounter.readMilliseconds] = performance.now() - began;
  if (result === -2 || (stopping && result >= 0)) finish('stopped');
  else if (result >= 0) finish('end_of_file');
  else finish('read_error', readError(source));
}

function readClassicFile(source: Source, reader: ClassicPcapReader): void {
  currentLinkType = source.linkType;
  currentIfIndex = source.ifIndex;
  currentBase = source.counterBase;
  currentSlot = source.slot;
  currentCapturePorts = source.capturePorts;
  const began = performance.now();
  let outcome: 'end_of_file' | 'stopped' | 'read_error';
  let message: string | undefined;
  try {
    outcome = reader.readAll(handleFrame);
  } catch (error) {
    outcome = 'read_error';
    const packets = counters[source.counterBase + SourceCounter.packets];
    message =
      error instanceof PcapFileReadError
        ? `${source.name}: read error after ${packets} packets (truncated or corrupt capture file): ${error.message}`
        : `${source.name}: read error after ${packets} packets (${(error as Error).message})`;
  } finally {
    accountBatch();
    counters[DataPlaneCounter.readMilliseconds] = performance.now() - began;
    reader.close();
  }
  finish(outcome, message);
}

function tick(): void {
  sampleLiveClock(true);
  reopenLostInterfaces();
  refreshPcapStats();
  cache.expireTimedOut(clock.now);
  batcher.flush();
  cache6.expireTimedOut(clock.now);
  addresses.forgetReleased();
  batcher6.flush();
  checkStop(); // the stop word, should its message be late
}

let tickTimer: NodeJS.Timeout | undefined;
let pollTimer: NodeJS.Timeout | undefined;
port.on('message', (command: CaptureWorkerCommand) => {
  switch (command.type) {
    case 'stop':
      // live: the drain begins (the next polls read on, then close); a file is read
      // inside one dispatch and sees the stop word from the packet path
      if (live) checkStop();
      break;
    case 'request': {
      // Live, the thread is idle between two polls: the answer comes at once.
      const reply = answer(command.request);
      const transfer = 'rows' in reply ? [reply.rows] : [];
      send({ type: 'reply', id: command.id, reply }, transfer);
      break;
    }
  }
});

/** The control plane's questions (show ip accounting, clear, restore, show ip cache flow). */
function answer(request: DataPlaneRequest): DataPlaneReply {
  switch (request.op) {
    case 'accounting':
      if (accounting === undefined) return { op: 'error', message: 'no accounting table' };
      return { op: 'accounting', rows: accounting.snapshot(request.view) };
    case 'clear':
      if (accounting === undefined) return { op: 'error', message: 'no accounting table' };
      accounting.clear();
      return { op: 'clear', checkpointEntries: accounting.entries(AccountingView.checkpoint) };
    case 'restore': {
      if (accounting === undefined) return { op: 'error', message: 'no accounting table' };
      if (request.replace) accounting.clearActive();
      return { op: 'restore', ...accounting.restore(new Float64Array(request.rows)) };
    }
    case 'cache':
      return cacheSnapshot(request.limit);
  }
}

function cacheSnapshot(limit: number): DataPlaneReply {
  const total = cache.flowCount + cache6.flowCount;
  const flows = Math.min(limit, total);
  const rows = new Float64Array(flows * FLOW_FIELDS);
  let o = 0;
  const row = (from: FlowCache, id: number, family: 4 | 6): void => {
    if (o >= rows.length) return;
    rows[o + FlowField.src] = family === 4 ? from.srcAddr(id) : 0;
    rows[o + FlowField.dst] = family === 4 ? from.dstAddr(id) : 0;
    rows[o + FlowField.srcPort] = from.srcPort(id);
    rows[o + FlowField.dstPort] = from.dstPort(id);
    rows[o + FlowField.protocol] = from.protocol(id);
    rows[o + FlowField.tos] = from.tos(id);
    rows[o + FlowField.ifIndex] = from.ifIndex(id);
    rows[o + FlowField.packets] = from.packets(id);
    rows[o + FlowField.octets] = from.octets(id);
    rows[o + FlowField.first] = from.firstSeen(id);
    rows[o + FlowField.last] = from.lastSeen(id);
    rows[o + FlowField.tcpFlags] = from.tcpFlags(id);
    rows[o + FlowField.family] = family;
    if (family === 6) {
      for (let i = 0; i < 4; i++) {
        rows[o + FlowField.src6 + i] = addresses.word(from.srcAddr(id), i);
        rows[o + FlowField.dst6 + i] = addresses.word(from.dstAddr(id), i);
      }
    }
    o += FLOW_FIELDS;
  };
  cache.forEachFlow((id) => row(cache, id, 4));
  cache6.forEachFlow((id) => row(cache6, id, 6));
  return { op: 'cache', rows: rows.buffer, flows: total, ipv4Flows: cache.flowCount, clockMs: clock.now };
}

function start(): void {
  for (const source of sources) {
    const failure = openSource(source);
    if (failure !== undefined) {
      send({ type: 'failed', code: 'E_CAPTURE_OPEN', message: failure });
      releaseAll();
      port!.close();
      return;
    }
  }
  send({
    type: 'opened',
    sources: sources.map((s) => ({
      name: s.name,
      linkType: s.linkType,
      linkTypeName: describeLinkType(s.linkType),
      reader: s.fileReader === undefined ? 'libpcap' : 'classic-pcap',
    })),
  });
  for (const source of sources) noticeWideIfIndex(source);
  if (liveClock !== undefined) {
    clock.now = liveClock.sample();
    clock.wallOffset = liveClock.wallOffset;
    // the main thread's boot, read a moment earlier, on the line (a wall clock stepped meanwhile would put it after now)
    clock.boot = Math.min(clock.boot, clock.now);
    tickTimer = setInterval(tick, config.tickMs);
    pollTimer = setInterval(pollLive, LIVE_POLL_MS);
    pollLive();
  } else {
    readFile(sources[0]!);
  }
}

start();
