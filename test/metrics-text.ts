/**
 * Reads one sample out of a Prometheus text exposition, so tests assert on
 * what a scraper would see rather than on prom-client's internals.
 */
export function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [pair[1], pair[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return null;
}

/** Like `sample`, but a series that does not exist yet counts as zero (a counter never incremented). */
export function count(exposition: string, name: string, labels: Record<string, string> = {}): number {
  return sample(exposition, name, labels) ?? 0;
}
