/**
 * What operators and load balancers ask an ATM: is it linked to the bank, and
 * its metrics. Mounted before sessions, so these answers set no cookie and
 * need no CSRF token; they show counts and states, never a customer.
 */
import { Router } from 'express';

import type { BankLink } from '../bank-link.ts';
import type { AtmMetrics } from '../metrics.ts';

export function opsRoutes(deps: { bank: Pick<BankLink, 'available'>; metrics: AtmMetrics }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store');
    if (deps.bank.available) {
      res.status(200).type('text/plain').send('ok: linked to the bank\n');
      return;
    }
    res.status(503).type('text/plain').send('unavailable: not linked to the bank; reconnecting\n');
  });
  router.get('/metrics', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
