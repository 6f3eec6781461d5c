/**
 * The data plane of one capture source, in a worker thread: capture → decode →
 * flow cache → v5 records. libpcap's dispatch blocks its thread until a file ends
 * or the live buffer drains, so it must not run on the thread that sends, logs
 * and answers signals.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FlowCache } from '../cache/flow-cache.js';
import { ControlWord, DataPlaneCounter } from '../counters/data-plane.js';
import { DecodeResult, DecodedPacket, decodeFrame } from '../decode/decode.js';
import { RecordBatcher, type DataPlaneClock, type RecordBatch } from '../export/record-batch.js';
import { describeLinkType, linkTypeFromBinding, supportedLinkType } from './link-type.js';
import { pcapBinding, type PcapNativeSession } from './pcap-binding.js';
import type { CaptureWorkerCommand, CaptureWorkerConfig, CaptureWorkerMessage } from './worker-protocol.js';

/** How often the packet path looks at the stop word (a long dispatch never returns otherwise). */
const STOP_CHECK_PACKETS = 1024;
/** Enough for link header, 8 VLAN tags, a 60-byte IP header and the TCP flags. */
const MIN_FRAME_BUFFER = 256;
const LIVE_READ_TIMEOUT_MS = 100;
/**
 * Live reads are driven by a timer on this dedicated thread rather than the
 * binding's start_polling: its poll handle is never closed, and a worker cannot
 * exit with an open handle (node aborts). The kernel ring absorbs the packets
 * that arrive between two polls.
 */
const LIVE_POLL_MS = 2;

const port = parentPort;
if (port === null) throw new Error('worker.ts must run in a worker thread');
const config = workerData as CaptureWorkerConfig;
const { counters, control, source } = config;
const live = source.kind === 'live';

function send(message: CaptureWorkerMessage, transfer?: ArrayBuffer[]): void {
  port!.postMessage(message, transfer);
}

const clock: DataPlaneClock = { now: 0, boot: config.bootMs ?? Number.NaN };
const postBatch = (batch: RecordBatch): void => {
  if (!live) {
    // File mode never drops: wait while the exporter is behind.
    for (;;) {
      const pending = Atomics.load(control, ControlWord.pendingRecords);
      if (pending <= config.maxPendingRecords || Atomics.load(control, ControlWord.stop) !== 0) break;
      Atomics.wait(control, ControlWord.pendingRecords, pending, 250);
    }
  }
  Atomics.add(control, ControlWord.pendingRecords, batch.count);
  counters[DataPlaneCounter.recordsPosted]! += batch.count;
  send({ type: 'records', batch }, [batch.records]);
};
const batcher = new RecordBatcher(clock, postBatch);
const cache = new FlowCache(
  config.maxFlows,
  config.timeouts,
  batcher,
  counters.subarray(DataPlaneCounter.flowCacheBase),
);

const session: PcapNativeSession = new (pcapBinding().PcapSession)();
const frameBuffer = Buffer.alloc(Math.max(MIN_FRAME_BUFFER, source.kind === 'live' ? source.snapLength : 0));
const frameBufferLength = frameBuffer.length;
const headerBuffer = Buffer.alloc(16);
// ts_sec, ts_usec, caplen, len in host order, as the binding copies them.
const header = new Uint32Array(headerBuffer.buffer, headerBuffer.byteOffset, 4);
const packet = new DecodedPacket();
let linkType = 0;
let packetsSinceCheck = 0;
let stopping = false;

function onPacket(): void {
  const caplen = header[2]!;
  const wirelen = header[3]!;
  const time = header[0]! * 1000 + header[1]! / 1000;
  counters[DataPlaneCounter.capturePackets]! += 1;
  counters[DataPlaneCounter.captureBytes]! += wirelen;
  if (time >= clock.now) {
    clock.now = time;
    if (clock.boot !== clock.boot) clock.boot = time; // NaN: first packet of a file
  } else {
    // Record times never go back: an out-of-order packet counts at the current time.
    counters[DataPlaneCounter.clockBackwards]! += 1;
  }
  const result = decodeFrame(
    frameBuffer,
    caplen < frameBufferLength ? caplen : frameBufferLength,
    wirelen,
    linkType,
    packet,
  );
  if (result === DecodeResult.ok) {
    if (packet.portsUnavailable !== 0) {
      counters[DataPlaneCounter.portsUnavailableBase + packet.portsUnavailable - 1]! += 1;
    }
    cache.account(
      packet.srcAddr,
      packet.dstAddr,
      packet.srcPort,
      packet.dstPort,
      packet.protocol,
      packet.tos,
      packet.linkIfIndex !== 0 ? packet.linkIfIndex : source.ifIndex,
      packet.ipLength,
      packet.tcpFlags,
      clock.now,
    );
  } else {
    counters[DataPlaneCounter.skippedPacketsBase + result]! += 1;
    counters[DataPlaneCounter.skippedBytesBase + result]! += wirelen;
  }
  // Timeouts are checked by the cache itself on every packet (one comparison).
  if (++packetsSinceCheck === STOP_CHECK_PACKETS) {
    packetsSinceCheck = 0;
    if (Atomics.load(control, ControlWord.stop) !== 0 && !stopping) {
      stopping = true;
      session.close(); // dispatch returns -2 after this packet
    }
  }
}

function open(): boolean {
  const warn = (message: string): void => {
    // "no IPv4 address assigned" is normal on a SPAN port: say it once, quietly.
    send({ type: 'warning', message });
  };
  let linkTypeName: string;
  try {
    linkTypeName =
      source.kind === 'live'
        ? session.open_live(
            source.device,
            config.filter,
            source.bufferSize,
            source.snapLength,
            '',
            onPacket,
            false,
            LIVE_READ_TIMEOUT_MS,
            warn,
            source.promiscuous,
          )
        : session.open_offline(source.path, config.filter, 0, 0, '', onPacket, false, 0, warn, false);
  } catch (error) {
    const name = source.kind === 'live' ? source.device : source.path;
    const reason = (error as Error).message;
    // libpcap names the file in its own message; not always the device
    send({ type: 'failed', code: 'E_CAPTURE_OPEN', message: reason.startsWith(name) ? reason : `${name}: ${reason}` });
    return false;
  }
  const raw = linkTypeFromBinding(linkTypeName);
  const supported = supportedLinkType(raw);
  if (supported === undefined) {
    const name = source.kind === 'live' ? source.device : source.path;
    send({
      type: 'failed',
      code: 'E_LINK_TYPE',
      message: `${name}: unsupported ${describeLinkType(raw)}; flowprobe reads Ethernet, Linux cooked (SLL, SLL2) and raw IPv4`,
    });
    closeSession();
    return false;
  }
  linkType = supported;
  send({ type: 'opened', linkType: raw, linkTypeName: describeLinkType(raw) });
  return true;
}

function closeSession(): void {
  session.close();
  session.dispatch(frameBuffer, headerBuffer); // returns -2 and releases the handle
}

function refreshPcapStats(): void {
  try {
    const stats = session.stats();
    counters[DataPlaneCounter.pcapReceived] = stats.ps_recv;
    counters[DataPlaneCounter.pcapDropped] = stats.ps_drop;
    counters[DataPlaneCounter.pcapInterfaceDropped] = stats.ps_ifdrop;
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
  // At -2 (stopped) the binding has released the handle itself.
  if (outcome !== 'stopped') closeSession();
  cache.expireAll();
  batcher.flush();
  send(message === undefined ? { type: 'finished', outcome } : { type: 'finished', outcome, message });
  port!.close();
}

/** Read until the file ends or the live buffer is empty; returns true when the source is done. */
function readAvailable(): boolean {
  if (finished) return true;
  const result = session.dispatch(frameBuffer, headerBuffer);
  if (result === 0) {
    if (live) return false;
    finish('end_of_file');
  } else if (result === -2) {
    finish('stopped');
  } else if (result < 0) {
    const name = source.kind === 'live' ? source.device : source.path;
    finish(
      'read_error',
      live
        ? `${name}: capture failed (interface down or gone?)`
        : `${name}: read error after ${counters[DataPlaneCounter.capturePackets]} packets (truncated or corrupt capture file)`,
    );
  }
  return true;
}

function tick(): void {
  if (Date.now() > clock.now) clock.now = Date.now();
  refreshPcapStats();
  cache.expireTimedOut(clock.now);
  batcher.flush();
  if (Atomics.load(control, ControlWord.stop) !== 0) stop();
}

function stop(): void {
  if (finished || stopping) return;
  stopping = true;
  refreshPcapStats();
  session.close();
  readAvailable(); // dispatch sees the break, returns -2, finishes
}

let tickTimer: NodeJS.Timeout | undefined;
let pollTimer: NodeJS.Timeout | undefined;
port.on('message', (command: CaptureWorkerCommand) => {
  if (command.type === 'stop') {
    if (live) stop();
    // a file worker is inside dispatch and sees the stop word from the packet path
  }
});

if (open()) {
  if (live) {
    clock.now = Date.now();
    tickTimer = setInterval(tick, config.tickMs);
    pollTimer = setInterval(readAvailable, LIVE_POLL_MS);
    readAvailable();
  } else {
    // One call reads the whole file; the packet path checks timeouts and the stop word.
    while (!readAvailable());
  }
} else {
  port.close();
}
