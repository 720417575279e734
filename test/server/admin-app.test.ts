/**
 * The bank's operator interface on its own (no bank behind it): routes,
 * the loopback Host check, read-only methods, the CSP, and what the page
 * and its JSON show.
 */
import { Registry } from 'prom-client';
import request from 'supertest';
import { describe, expect, it } from 'vitest';

import { createAdminApp, type AdminAppDeps } from '../../server/admin-app.ts';
import { BankMetrics } from '../../server/bank-metrics.ts';
import { witnessLags, type OperatorStatus } from '../../server/operator-page.ts';
import { RecentActivity } from '../../server/recent-activity.ts';
import { count } from '../metrics-text.ts';

const NOW = Date.parse('2026-11-23T12:00:00Z');

function status(activity = new RecentActivity(() => NOW)): OperatorStatus {
  return {
    nowMs: NOW,
    atms: [
      { atm: 2, peer: '127.0.0.1:40002', connectedAtMs: NOW - 3_725_000, requests: 7 },
      { atm: 1, peer: '127.0.0.1:40001', connectedAtMs: NOW - 42_000, requests: 12 },
    ],
    activity: activity.snapshot(),
    auditHead: { line: 1234, hash: 'ab'.repeat(32) },
    witnesses: [
      { atm: 1, lines: 0, seconds: 0 },
      { atm: 2, lines: 37, seconds: 2.4 },
    ],
  };
}

function app(overrides: Partial<AdminAppDeps> = {}) {
  return createAdminApp({ registry: new Registry(), status, probe: async () => {}, ...overrides });
}

describe('the operator interface', () => {
  it('answers /healthz 200 when the probe commits and 503 saying why when it cannot', async () => {
    expect((await request(app()).get('/healthz')).status).toBe(200);
    const failing = await request(app({ probe: async () => Promise.reject(new Error('database is locked')) })).get(
      '/healthz',
    );
    expect(failing.status).toBe(503);
    expect(failing.text).toBe('unavailable: the bank cannot commit (database is locked)\n');
  });

  it('answers /healthz 503 when the probe hangs past its deadline', async () => {
    const hanging = app({ probe: () => new Promise(() => {}), healthTimeoutMs: 50 });
    const response = await request(hanging).get('/healthz');
    expect(response.status).toBe(503);
    expect(response.text).toContain('no commit within 50 ms');
  });

  it('serves the registry in Prometheus text format at /metrics', async () => {
    const registry = new Registry();
    const metrics = new BankMetrics(registry, { connectedAtms: () => 3 });
    metrics.request('deposit', 'ok', 0.002);
    const response = await request(app({ registry })).get('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(registry.contentType);
    expect(count(response.text, 'bank_connected_atms')).toBe(3);
    expect(count(response.text, 'bank_requests_total', { op: 'deposit', outcome: 'ok' })).toBe(1);
    expect(count(response.text, 'bank_request_duration_seconds_bucket', { op: 'deposit', le: '0.0025' })).toBe(1);
    expect(count(response.text, 'bank_request_duration_seconds_bucket', { op: 'deposit', le: '0.001' })).toBe(0);
  });

  it('renders the page with connected ATMs (sorted, with uptime), figures and the audit head, under the strict CSP', async () => {
    const response = await request(app()).get('/');
    expect(response.status).toBe(200);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(response.text).not.toMatch(/\sstyle=/);
    const rows = [
      ...response.text.matchAll(/<tr><td>(\d+)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>(\d+)<\/td><\/tr>/g),
    ];
    expect(response.text).toContain('2 witnesses; 37 lines (2 s) behind at worst, ATM 2');
    expect(rows.map((row) => row.slice(1))).toEqual([
      ['1', '127.0.0.1:40001', '42 s', '12'],
      ['2', '127.0.0.1:40002', '1 h 02 min', '7'],
    ]);
    expect(response.text).toContain('line 1234, chain hash abababababababab…');
    expect(response.text).toContain('no requests in the last minute');
  });

  it('serves the same figures as JSON for the page’s script', async () => {
    const activity = new RecentActivity(() => NOW);
    activity.request(3_000_000);
    activity.observeAudit({
      at: '2026-11-23T11:59:58.000Z',
      atm: 1,
      user: 'dana',
      action: 'lockout',
      amountCents: null,
      outcome: 'locked',
    });
    const response = await request(app({ status: () => status(activity) })).get('/status.json');
    expect(response.status).toBe(200);
    expect(response.body.figures.connectedAtms).toBe('2');
    expect(response.body.figures.throughput).toBe('1.0 requests/s (1 in the last 60 s)');
    expect(response.body.figures.p99).toMatch(/^3\.0\d ms$/);
    expect(response.body.recent).toEqual([
      { time: '11:59:58 UTC', atm: '1', user: 'dana', action: 'lockout', outcome: 'locked' },
    ]);
  });

  it('answers only to loopback host names by default (no DNS rebinding), and any when told', async () => {
    expect((await request(app()).get('/status.json').set('Host', 'localhost:9000')).status).toBe(200);
    expect((await request(app()).get('/status.json').set('Host', '[::1]:9000')).status).toBe(200);
    const rebound = await request(app()).get('/status.json').set('Host', 'attacker.example:9000');
    expect(rebound.status).toBe(421);
    expect(rebound.text).not.toContain('ATM');
    const open = app({ allowedHosts: null });
    expect((await request(open).get('/status.json').set('Host', 'bank-ops.internal')).status).toBe(200);
  });

  it('is read-only: anything but GET and HEAD gets 405', async () => {
    const response = await request(app()).post('/healthz');
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD');
  });

  it('serves its script and stylesheet, and a plain 404 for anything else', async () => {
    expect((await request(app()).get('/public/operator.js')).status).toBe(200);
    expect((await request(app()).get('/public/styles.css')).status).toBe(200);
    expect((await request(app()).get('/nothing')).status).toBe(404);
  });

  it('measures each witness’s lag from the newest checkpoint line it was sent: in lines, and in seconds only while behind', () => {
    const witnesses = [
      { atm: 1, line: 120, sentAtMs: NOW - 5_000 },
      { atm: 2, line: 100, sentAtMs: NOW - 2_500 },
    ];
    expect(witnessLags(witnesses, 120, NOW)).toEqual([
      { atm: 1, lines: 0, seconds: 0 },
      { atm: 2, lines: 20, seconds: 2.5 },
    ]);
  });
});
