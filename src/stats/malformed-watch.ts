import { FIRST_MALFORMED_RESULT, SKIP_REASONS, type SkipReason } from '../decode/decode.js';
import type { ProbeStats } from './probe-stats.js';

const MALFORMED_REASONS = SKIP_REASONS.slice(FIRST_MALFORMED_RESULT) as SkipReason[];

/**
 * Says when malformed packets arrive: the first at once, then at most one line
 * per interval, counting every packet since the previous line, so a burst is
 * one warning and nothing is lost from the count.
 */
export class MalformedWatch {
  private reported: Record<string, number>;
  private reportedAt: number | undefined;

  constructor(
    start: ProbeStats,
    private readonly emit: (message: string, fields: { malformedPackets: number; reasons: Record<string, number> }) => void,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.reported = counts(start);
  }

  check(stats: ProbeStats): void {
    const current = counts(stats);
    const reasons: Record<string, number> = {};
    let total = 0;
    for (const reason of MALFORMED_REASONS) {
      const delta = current[reason]! - this.reported[reason]!;
      if (delta > 0) reasons[reason] = delta;
      total += delta;
    }
    if (total === 0) return;
    const t = this.now();
    if (this.reportedAt !== undefined && t - this.reportedAt < this.intervalMs) return;
    const detail = Object.entries(reasons)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    const since = this.reportedAt === undefined ? '' : ` in the last ${Math.round((t - this.reportedAt) / 1000)} s`;
    this.emit(`skipped ${total} malformed packets${since} (${detail})`, { malformedPackets: total, reasons });
    this.reported = current;
    this.reportedAt = t;
  }
}

function counts(stats: ProbeStats): Record<string, number> {
  return Object.fromEntries(MALFORMED_REASONS.map((reason) => [reason, stats.skipped[reason].packets]));
}
