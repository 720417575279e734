/**
 * The line the bank prints on `kill -USR2` and at shutdown: how long
 * requests spent inside it and how often garbage collection paused it.
 * Operators read it; the benchmark parses it, with `parseServiceReports`.
 */
import type { ServiceTimes } from './bank-server.ts';

export function formatServiceReport(served: ServiceTimes): string {
  return (
    `bank served ${served.count} requests; time in the bank p50 ${served.p50.toFixed(3)} ms, ` +
    `p99 ${served.p99.toFixed(3)} ms, max ${served.max.toFixed(3)} ms; ` +
    `garbage collection paused it ${served.gc.pauses} times, ${served.gc.totalMs.toFixed(1)} ms in all, ` +
    `longest ${served.gc.maxMs.toFixed(3)} ms`
  );
}

const REPORT =
  /bank served (\d+) requests; time in the bank p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms; garbage collection paused it (\d+) times, ([0-9.]+) ms in all, longest ([0-9.]+) ms/g;

/** Every report found in a stretch of the bank's output, oldest first. */
export function parseServiceReports(output: string): ServiceTimes[] {
  return [...output.matchAll(REPORT)].map((match) => {
    const [count, p50, p99, max, pauses, totalMs, maxMs] = match.slice(1).map(Number);
    return {
      count: count ?? 0,
      p50: p50 ?? Number.NaN,
      p99: p99 ?? Number.NaN,
      max: max ?? Number.NaN,
      gc: { pauses: pauses ?? 0, totalMs: totalMs ?? 0, maxMs: maxMs ?? 0 },
    };
  });
}
