import { describe, expect, it } from 'vitest';

import type { AuditEvent } from '../../audit/event.ts';
import { RECENT_EVENTS, RecentActivity } from '../../server/recent-activity.ts';

function event(fields: Partial<AuditEvent>): AuditEvent {
  return {
    at: '2026-11-23T12:00:00.000Z',
    atm: 1,
    user: 'dana',
    action: 'login',
    amountCents: null,
    outcome: 'ok',
    ...fields,
  };
}

describe('the last minute of activity', () => {
  it('counts requests and their p99 over the last 60 seconds only', () => {
    let now = 1_000_000;
    const activity = new RecentActivity(() => now);
    for (let i = 0; i < 99; i += 1) activity.request(1_000_000);
    activity.request(50_000_000);
    now += 30_000;
    const half = activity.snapshot();
    expect(half.requests).toBe(100);
    expect(half.perSecond).toBeCloseTo(100 / 31, 5);
    expect(half.p99Ms).toBeGreaterThan(0.99);
    expect(half.p99Ms).toBeLessThan(1.01);
    activity.request(2_000_000);
    now += 31_000;
    // The first second has left the window; the request 31 s ago has not.
    const later = activity.snapshot();
    expect(later.requests).toBe(1);
    expect(later.perSecond).toBeCloseTo(1 / 60, 5);
    now += 60_000;
    expect(activity.snapshot()).toMatchObject({ requests: 0, p99Ms: null });
  });

  it('keeps the latest refusals and lockouts, newest first, and no successes', () => {
    const activity = new RecentActivity(() => 0);
    activity.observeAudit(event({ action: 'deposit', amountCents: 500, outcome: 'ok' }));
    activity.observeAudit(event({ action: 'withdraw', amountCents: 900, outcome: 'insufficient_funds' }));
    activity.observeAudit(event({ action: 'lockout', outcome: 'locked' }));
    const recent = activity.snapshot().recent;
    expect(recent.map((entry) => [entry.action, entry.outcome, entry.user])).toEqual([
      ['lockout', 'locked', 'dana'],
      ['withdraw', 'insufficient_funds', 'dana'],
    ]);
    expect(JSON.stringify(recent)).not.toContain('900');
    for (let i = 0; i < RECENT_EVENTS + 5; i += 1) activity.observeAudit(event({ outcome: 'bad_password' }));
    expect(activity.snapshot().recent).toHaveLength(RECENT_EVENTS);
  });

  it('names the customer only when the name belongs to an account (a name that matched none may be a password)', () => {
    const activity = new RecentActivity(() => 0);
    activity.observeAudit(event({ user: 'hunter2hunter2', outcome: 'unknown_user' }));
    activity.observeAudit(event({ user: '(malformed)', outcome: 'unknown_user' }));
    activity.observeAudit(event({ user: 'dana', outcome: 'bad_password' }));
    expect(activity.snapshot().recent.map((entry) => entry.user)).toEqual(['dana', null, null]);
  });
});
