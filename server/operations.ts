/**
 * What the bank tells its operators, in one place: every audited event and
 * every answered request feeds the Prometheus metrics, the operator page's
 * last minute, and (for failed logins and lockouts) the console; and the
 * admin HTTP server that serves them on the admin port.
 */
import http from 'node:http';

import type { Registry } from 'prom-client';

import type { AuditEvent } from '../audit/event.ts';
import { listenOn } from '../runtime/listen.ts';
import type { Logger } from '../runtime/logger.ts';
import type { AdminAppDeps } from './admin-app.ts';
import type { AuditObserver } from './audit-tap.ts';
import type { BankMetrics, BankMetricsSources } from './bank-metrics.ts';
import { accountName, RecentActivity } from './recent-activity.ts';

export type AdminOptions = {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  pollMs?: number;
};

export type AdminServer = { url: string; close(): Promise<void> };

/** What the bank reports to its metrics; `BankMetrics` when something can read them. */
export type BankMeter = Pick<BankMetrics, 'request' | 'observeAudit' | 'auditWriteFailed' | 'commitGroup' | 'fsync'>;

const UNREAD: BankMeter = {
  request: () => {},
  observeAudit: () => {},
  auditWriteFailed: () => {},
  commitGroup: () => {},
  fsync: () => {},
};

export class BankOperations {
  readonly activity: RecentActivity;
  readonly auditObserver: AuditObserver;

  /**
   * Metrics exist only where they can be read (a registry was handed in, or
   * an admin port will serve one): a bank without either does not load
   * prom-client, which costs about 11 MB of memory.
   */
  static async create(
    registry: Registry | null,
    logger: Logger,
    sources: BankMetricsSources,
    nowMs: () => number,
  ): Promise<BankOperations> {
    const metrics = registry ? new (await import('./bank-metrics.ts')).BankMetrics(registry, sources) : UNREAD;
    return new BankOperations(registry, metrics, logger, nowMs);
  }

  private constructor(
    private readonly registry: Registry | null,
    readonly metrics: BankMeter,
    private readonly logger: Logger,
    nowMs: () => number,
  ) {
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
    // Loaded only when asked for: a bank without an admin port does not load Express.
    const { createAdminApp, LOOPBACK_HOSTS } = await import('./admin-app.ts');
    if (!this.registry) throw new Error('an admin port needs a metrics registry');
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
    const address = await listenOn(server, options.port, options.host);
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
