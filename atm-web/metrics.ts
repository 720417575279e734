/**
 * ATM N's Prometheus metrics (prom-client), registered in the registry the
 * process hands in. Route labels come from a fixed set (the route that
 * matched, or the page path when a refusal came before routing), never from
 * the raw URL, so a client requesting random paths cannot grow the number of
 * series.
 */
import type { Request } from 'express';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import type { HttpErrorCode } from './http-error.ts';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The paths the ATM serves, for requests refused before a route matched (CSRF, bank unavailable). */
const PAGE_PATHS: ReadonlySet<string> = new Set([
  '/',
  '/login',
  '/signup',
  '/logout',
  '/deposit',
  '/withdraw',
  '/withdraw/confirm',
  '/withdraw/cancel',
  '/transaction',
  '/receipt',
  '/statement',
  '/help',
  '/security',
  '/session/keepalive',
  '/healthz',
  '/metrics',
]);

export type AtmMetricsSources = {
  /** True while the ATM's secure connection to the bank is up. */
  bankLinkUp: () => boolean;
  /** Customers logged in at the bank through this ATM. */
  customers: () => number;
};

export class AtmMetrics {
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route'>;
  private readonly csrfRefusals: Counter;
  private readonly rateLimitRefusals: Counter;

  constructor(
    readonly registry: Registry,
    sources: AtmMetricsSources,
  ) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'atm_http_requests_total',
      help: 'HTTP requests the ATM answered, by method, route and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'atm_http_request_duration_seconds',
      help: 'Time from an HTTP request arriving to its response being sent, by method and route.',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.csrfRefusals = new Counter({
      name: 'atm_csrf_refusals_total',
      help: 'Form posts refused because they lacked the session’s CSRF token.',
      registers,
    });
    this.rateLimitRefusals = new Counter({
      name: 'atm_rate_limit_refusals_total',
      help: 'Login and signup attempts refused by the per-address rate limit.',
      registers,
    });
    new Gauge({
      name: 'atm_bank_link_up',
      help: '1 while the ATM’s secure connection to the bank is up, 0 while it is reconnecting.',
      registers,
      collect() {
        this.set(sources.bankLinkUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'atm_customers_logged_in',
      help: 'Customers with a live bank session through this ATM.',
      registers,
      collect() {
        this.set(sources.customers());
      },
    });
  }

  /** One answered request; `refusal` is the error the app answered with, if any. */
  observe(method: string, route: string, status: number, seconds: number, refusal: HttpErrorCode | undefined): void {
    this.requests.inc({ method, route, status: String(status) });
    this.duration.observe({ method, route }, seconds);
    if (refusal === 'CSRF') this.csrfRefusals.inc();
    if (refusal === 'RATE_LIMITED') this.rateLimitRefusals.inc();
  }
}

/** A bounded name for the request's route: the matched route, a known page, static files, or `other`. */
export function routeLabel(req: Request): string {
  const matched: unknown = req.route?.path;
  if (typeof matched === 'string') return matched;
  // originalUrl: a mounted middleware (the static files) strips its prefix from req.path.
  const path = requestPath(req)
    .toLowerCase()
    .replace(/(.)\/+$/, '$1');
  if (PAGE_PATHS.has(path)) return path;
  if (path.startsWith('/public/')) return '/public';
  return 'other';
}

/** Only standard methods become labels; anything else is counted as `other`. */
export function methodLabel(method: string): string {
  return ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].includes(method) ? method : 'other';
}

/** The path the client asked for, without the query string. */
export function requestPath(req: Request): string {
  return req.originalUrl.split('?', 1)[0] ?? '';
}
