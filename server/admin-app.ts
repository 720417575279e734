/**
 * `createAdminApp(deps)`: the bank's operator HTTP interface, built without
 * listening so tests drive it with supertest (`bank-server.ts` listens on the
 * admin port). Read-only: GET and HEAD only, no cookies, no forms.
 *
 *   GET /healthz      200 when the bank can commit (a real probe through the ledger), else 503
 *   GET /metrics      Prometheus text format
 *   GET /status.json  what the operator page shows, for its script
 *   GET /             the operator page
 */
import path from 'node:path';

import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';

import { pageSecurityHeaders } from '../runtime/page-headers.ts';
import { operatorPage, type OperatorStatus } from './operator-page.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
export const DEFAULT_POLL_MS = 2_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 5_000;

export type AdminAppDeps = {
  registry: Registry;
  status: () => OperatorStatus;
  /** Resolves when a commit through the ledger (and its audit log) succeeded; rejects saying why not. */
  probe: () => Promise<void>;
  /** How often the page asks for fresh figures. */
  pollMs?: number;
  /** A probe slower than this counts as a failure (a stalled disk must not hang the health check). */
  healthTimeoutMs?: number;
  /**
   * Host names the page answers to. On loopback only loopback names, so a web
   * page cannot read it through DNS rebinding; null accepts any (the operator
   * bound the admin port elsewhere on purpose).
   */
  allowedHosts?: readonly string[] | null;
};

export const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

export function createAdminApp(deps: AdminAppDeps): express.Express {
  const app = express();
  const allowed = deps.allowedHosts === undefined ? LOOPBACK_HOSTS : deps.allowedHosts;
  app.set('view engine', 'ejs');
  app.set('views', path.join(ROOT, 'views'));
  app.set('x-powered-by', false);

  // The same policy as the ATM pages; this page has no forms.
  app.use(pageSecurityHeaders({ formAction: "'none'", secure: false }));
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    if (allowed !== null && !allowed.includes(hostName(req.headers.host))) {
      res.status(421).type('text/plain').send('This operator interface answers only to its loopback address.\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).set('Allow', 'GET, HEAD').type('text/plain').send('The operator interface is read-only.\n');
      return;
    }
    next();
  });

  app.get('/healthz', async (_req, res) => {
    const outcome = await withDeadline(deps.probe(), deps.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS);
    if (outcome === null) {
      res.status(200).type('text/plain').send('ok: the bank can commit\n');
      return;
    }
    res.status(503).type('text/plain').send(`unavailable: the bank cannot commit (${outcome})\n`);
  });

  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  app.get('/status.json', (_req, res) => {
    res.json(operatorPage(deps.status()));
  });

  app.get('/', (_req, res) => {
    res.render('operator', { page: operatorPage(deps.status()), pollMs: deps.pollMs ?? DEFAULT_POLL_MS });
  });

  app.use('/public', express.static(path.join(ROOT, 'public'), { index: false, fallthrough: true, maxAge: '1h' }));
  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('Not found. The operator interface has /, /healthz, /metrics.\n');
  });
  app.use((_error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).type('text/plain').send('The operator interface failed to answer.\n');
  });
  return app;
}

/** The host name of a Host header, without its port ("[::1]:8080" -> "[::1]"). */
function hostName(header: string | undefined): string {
  if (!header) return '';
  const match = /^(\[[^\]]*\]|[^:]*)(?::[0-9]*)?$/.exec(header.toLowerCase());
  return match?.[1] ?? '';
}

/** Null when the probe succeeded in time; otherwise a short, secret-free reason. */
async function withDeadline(probe: Promise<void>, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no commit within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      probe.then(
        () => null,
        (error: unknown) => (error instanceof Error ? error.message : 'probe failed'),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
