/**
 * Live capture's time line. Flow ages and timeouts run on a monotonic clock, so a
 * step of the wall clock (NTP, an operator, a VM resumed) neither freezes them
 * (a step back: the later of packet and wall time stood still until the wall
 * clock caught up) nor rushes them (a step forward). The line starts at the wall
 * clock's reading and runs monotonically from there, so its times are still
 * unix-like ms; `wallOffset` (wall clock − line, sampled) turns a time on it back
 * into wall-clock ms for a datagram's header.
 *
 * Packets carry the kernel's wall-clock timestamps: each is put on the line by
 * the offset between the two clocks at the last sample (taken every poll, tick
 * and 1024 packets), and never later than the line at that sample, so a packet
 * captured before a step and read after it lands at the read, not an hour away.
 */
export class LiveClock {
  /** added to a packet's wall-clock timestamp to put it on the line */
  private offset = 0;
  /** the line at the last sample: no packet read since is later */
  private latest = 0;
  /** wall-clock ms − line ms, at the last sample */
  wallOffset = 0;
  private readonly origin: number;

  constructor(
    private readonly wall: () => number = Date.now,
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.origin = wall() - monotonic();
    this.sample();
  }

  /** Read both clocks; returns the line's time now. */
  sample(): number {
    const now = this.origin + this.monotonic();
    this.wallOffset = this.wall() - now;
    this.offset = -this.wallOffset;
    this.latest = now;
    return now;
  }

  /** A packet's wall-clock timestamp (ms) on the line. */
  packetTime(wallMs: number): number {
    const time = wallMs + this.offset;
    return time < this.latest ? time : this.latest;
  }
}
