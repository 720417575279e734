/**
 * What the operator page shows about the last minute: requests per second,
 * the 99th percentile of time in the bank, and the latest refusals and
 * lockouts. Latencies go into one histogram per second (a ring of 60), so a
 * minute's percentile costs 60 merges when the page asks, not a sort of
 * every request; nothing here grows with traffic.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

import type { AuditEvent } from '../audit/event.ts';

export const WINDOW_SECONDS = 60;
/**
 * Nanoseconds up to a minute, two significant figures (a p99 of 1.23 ms
 * reads as 1.2 ms): small enough that 60 of them cost little memory, where
 * the default range (to 2^53 ns, three figures) costs hundreds of KB each.
 */
const LATENCY_RANGE = { lowest: 1, highest: 60e9, figures: 2 };
export const RECENT_EVENTS = 20;

/** A refusal or lockout as the operator page lists it: never an amount or a balance. */
export type NotableEvent = {
  at: string;
  atm: number | null;
  /** Only when the event names an existing account: a name that matched none may be a mistyped password. */
  user: string | null;
  action: string;
  outcome: string;
};

export type ActivitySnapshot = {
  windowSeconds: number;
  requests: number;
  perSecond: number;
  /** Null until something was answered in the window. */
  p99Ms: number | null;
  recent: NotableEvent[];
};

/** Outcomes that are not refusals: the operation happened (or was a replay of one that did). */
const FINE = new Set(['ok', 'replayed_applied']);
/** Outcomes whose `user` field is whatever was typed, not a known account. */
const UNKNOWN_NAME = new Set(['unknown_user', 'invalid_username', 'invalid_password']);
const QUIET_ACTIONS = new Set(['bank_start', 'bank_stop', 'audit_recovered', 'logout']);

/**
 * The event's username when it names an existing account; null when it is
 * whatever someone typed that matched no account (it may be a password typed
 * into the wrong field), so logs and the operator page never show it.
 */
export function accountName(event: AuditEvent): string | null {
  if (event.user === null || event.user === '(malformed)' || UNKNOWN_NAME.has(event.outcome)) return null;
  return event.user;
}

export class RecentActivity {
  private readonly seconds: Array<{ second: number; latencies: RecordableHistogram }>;
  private readonly events: NotableEvent[] = [];
  private readonly startedSecond: number;

  constructor(private readonly nowMs: () => number = Date.now) {
    this.seconds = Array.from({ length: WINDOW_SECONDS }, () => ({
      second: -1,
      latencies: createHistogram(LATENCY_RANGE),
    }));
    this.startedSecond = Math.floor(nowMs() / 1000);
  }

  /** One answered request and how long it took, in nanoseconds. */
  request(nanoseconds: number): void {
    const second = Math.floor(this.nowMs() / 1000);
    const slot = this.seconds[second % WINDOW_SECONDS];
    if (!slot) return;
    if (slot.second !== second) {
      slot.second = second;
      slot.latencies.reset();
    }
    slot.latencies.record(Math.min(LATENCY_RANGE.highest, Math.max(1, Math.round(nanoseconds))));
  }

  /** An audited event: kept if it is a refusal or a lockout. */
  observeAudit(event: AuditEvent): void {
    if (FINE.has(event.outcome) || QUIET_ACTIONS.has(event.action)) return;
    this.events.unshift({
      at: event.at,
      atm: event.atm,
      user: accountName(event),
      action: event.action,
      outcome: event.outcome,
    });
    this.events.length = Math.min(this.events.length, RECENT_EVENTS);
  }

  snapshot(): ActivitySnapshot {
    const now = Math.floor(this.nowMs() / 1000);
    const merged = createHistogram(LATENCY_RANGE);
    for (const slot of this.seconds) {
      if (slot.second > now - WINDOW_SECONDS && slot.second <= now) merged.add(slot.latencies);
    }
    // A bank up for ten seconds has ten seconds of traffic, not sixty.
    const span = Math.max(1, Math.min(WINDOW_SECONDS, now - this.startedSecond + 1));
    return {
      windowSeconds: WINDOW_SECONDS,
      requests: merged.count,
      perSecond: merged.count / span,
      p99Ms: merged.count > 0 ? merged.percentile(99) / 1e6 : null,
      recent: this.events.map((event) => ({ ...event })),
    };
  }
}
