import { writeSync } from 'node:fs';
export function trace(label: string): void {
  if (process.env.FP_TRACE) writeSync(2, `TRACE ${label} ${(performance.timeOrigin + performance.now()).toFixed(1)}\n`);
}
