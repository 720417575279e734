/**
 * What the bank tells its operators, in one place: every audited event and
 * every answered request feeds the Prometheus metrics, the operator page's
 * last minute, and (for failed logins and lockouts) the console; and the
 * admin HTTP server that serves them on the admin port.
 */
import http from 'node:http';

import type { Registry } from 'prom-client';

import type { AuditEvent } from '../audit/event.ts';
import type { Logger } from '../runtime/logger.ts';
import { createAdminApp, LOOPBACK_HOSTS, type AdminAppDeps } from './admin-app.ts';
import type { AuditObserver } from './audit-tap.ts';
import { BankMetrics, type BankMetricsSources } from './bank-metrics.ts';
import { accountName, RecentActivity } from './recent-activity.ts';

export type AdminOptions = {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  pollMs?: number;
};

export type AdminServer = { url: string; close(): Promise<void> };

export class BankOperations {
  readonly metrics: BankMetrics;
  readonly activity: RecentActivity;
  readonly auditObserver: AuditObserver;

  constructor(
    readonly registry: Registry,
    private readonly logger: Logger,
    sources: BankMetricsSources,
    nowMs: () => number,
  ) {
    this.metrics = new BankMetrics(registry, sources);
    this.activity = new RecentActivity(nowMs);
    this.auditObserver = {
      written: (events) => {
        for (const event of events) this.audited(event);
      },
      failed: () => {
        this.metrics.auditWriteFailed();
        this.logger.error({ action: 'audit', outcome: 'write_failed' }, 'audit log write failed; operation refused');
      },
    };
  }

  /** A request answered after `nanoseconds` inside the bank, `ok` or with an error code. */
  answered(op: string, outcome: string, nanoseconds: number): void {
    this.metrics.request(op, outcome, nanoseconds / 1e9);
    this.activity.request(nanoseconds);
  }

  private audited(event: AuditEvent): void {
    this.metrics.observeAudit(event);
    this.activity.observeAudit(event);
    if (event.action === 'login' && event.outcome !== 'ok') {
      this.logger.warn(
        { atm: event.atm ?? undefined, user: accountName(event) ?? undefined, action: 'login', outcome: event.outcome },
        'login failed',
      );
    } else if (event.action === 'lockout') {
      this.logger.warn(
        {
          atm: event.atm ?? undefined,
          user: accountName(event) ?? undefined,
          action: 'lockout',
          outcome: event.outcome,
        },
        'account locked after repeated failed logins',
      );
    }
  }

  /** Serves the operator interface; on loopback it answers only to loopback host names. */
  async listenAdmin(
    options: AdminOptions,
    deps: Omit<AdminAppDeps, 'registry' | 'allowedHosts'>,
  ): Promise<AdminServer> {
    const loopback = LOOPBACK_HOSTS.includes(options.host) || options.host === '::1';
    const app = createAdminApp({
      ...deps,
      registry: this.registry,
      allowedHosts: loopback ? LOOPBACK_HOSTS : null,
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    });
    const server = http.createServer(app);
    // An operator page needs few connections; keep idle ones from lingering.
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('admin server has no TCP address');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return {
      url: `http://${host}:${address.port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }
}
