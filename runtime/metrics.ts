/**
 * The one Prometheus registry of a process (prom-client), with Node's own
 * metrics in it: event-loop delay (`nodejs_eventloop_lag_*`), garbage
 * collection pauses (`nodejs_gc_duration_seconds`), heap, CPU, file
 * descriptors. The commands create it once and hand it to the bank and the
 * ATMs they start (`npm start` runs both in one process, so both register
 * in it); tests pass a fresh `Registry` of their own instead.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createProcessRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
