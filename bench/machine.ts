/**
 * How steady the machine itself is. A busy loop on an otherwise idle machine
 * should see the clock advance smoothly; any gap is time the thread was not
 * running (the hypervisor or the kernel took the CPU). On a shared VM these
 * gaps land in every latency tail measured here, so the bench reports them.
 */
export function schedulingGaps(ms: number, thresholdMs = 1): { gaps: number; maxMs: number; totalMs: number } {
  const end = performance.now() + ms;
  let last = performance.now();
  let gaps = 0;
  let maxMs = 0;
  let totalMs = 0;
  while (last < end) {
    const now = performance.now();
    const gap = now - last;
    if (gap > thresholdMs) {
      gaps += 1;
      totalMs += gap;
      maxMs = Math.max(maxMs, gap);
    }
    last = now;
  }
  return { gaps, maxMs, totalMs };
}
