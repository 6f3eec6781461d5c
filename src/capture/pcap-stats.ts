import { SourceCounter } from '../counters/data-plane.js';

/** libpcap's pcap_stat fields are u_int */
const PCAP_COUNTER_MODULUS = 2 ** 32;

/** The increase of one of libpcap's 32-bit counters from `before` to `after`, across a wrap. */
export function pcapCounterDelta(before: number, after: number): number {
  return (((after - before) % PCAP_COUNTER_MODULUS) + PCAP_COUNTER_MODULUS) % PCAP_COUNTER_MODULUS;
}

/** What pcap_stats() returns. */
export interface PcapStat {
  ps_recv: number;
  ps_drop: number;
  ps_ifdrop: number;
}

/**
 * One libpcap handle's statistics, added to its source's running totals in the
 * shared counters. Each handle counts from 0 in 32 bits that wrap; a capture
 * reopened after its interface came back is a new handle, and a new
 * PcapHandleFigures, so the totals only ever grow (no wrap or restart ever
 * reads as four billion drops).
 */
export class PcapHandleFigures {
  /** pcap_stats as last read from this handle */
  private seenReceived = 0;
  private seenDropped = 0;
  private seenInterfaceDropped = 0;
  /** this handle's own totals */
  private received = 0;
  private dropped = 0;

  constructor(
    private readonly counters: Float64Array,
    private readonly base: number,
    /** the source's packet count when the handle opened */
    private readonly packetsAtOpen: number,
  ) {}

  /** Add what the handle counted since the last read. */
  update(stat: PcapStat): void {
    const received = pcapCounterDelta(this.seenReceived, stat.ps_recv);
    const dropped = pcapCounterDelta(this.seenDropped, stat.ps_drop);
    const interfaceDropped = pcapCounterDelta(this.seenInterfaceDropped, stat.ps_ifdrop);
    this.seenReceived = stat.ps_recv;
    this.seenDropped = stat.ps_drop;
    this.seenInterfaceDropped = stat.ps_ifdrop;
    this.received += received;
    this.dropped += dropped;
    this.counters[this.base + SourceCounter.pcapReceived]! += received;
    this.counters[this.base + SourceCounter.pcapDropped]! += dropped;
    this.counters[this.base + SourceCounter.pcapInterfaceDropped]! += interfaceDropped;
  }

  /**
   * Packets libpcap received and did not drop that the probe has not read (as
   * of the last update): still in its buffer. On a loopback device libpcap is
   * handed each packet twice, as sent and as received, and keeps one; on "any"
   * the loopback's share cannot be told: undefined.
   */
  unread(device: CaptureDeviceKind): number | undefined {
    if (device === 'any') return undefined;
    const read = this.counters[this.base + SourceCounter.packets]! - this.packetsAtOpen;
    const kept = this.received - this.dropped;
    return Math.max(0, (device === 'loopback' ? Math.floor(kept / 2) : kept) - read);
  }

  /** The handle is closing (its figures read last): count what it leaves unread. */
  close(device: CaptureDeviceKind): number {
    const unread = this.unread(device) ?? 0;
    this.counters[this.base + SourceCounter.pcapUnprocessed]! += unread;
    return unread;
  }
}

/** What libpcap's received count means for a device (see PcapHandleFigures.close). */
export type CaptureDeviceKind = 'interface' | 'loopback' | 'any';
