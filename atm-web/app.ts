/**
 * `createApp(deps)` builds ATM number N's web app without listening, so tests
 * drive it with supertest. Middleware order matters and is the security
 * story: headers, body limits, session, CSRF, then routes, then one 404 and
 * one error handler.
 */
import path from 'node:path';

import express, { type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import { Registry } from 'prom-client';

import type { Logger } from '../runtime/logger.ts';
import { silentLogger } from '../runtime/logger.ts';
import { pageSecurityHeaders } from '../runtime/page-headers.ts';
import type { BankLink } from './bank-link.ts';
import { processTimeZone } from './display.ts';
import type { Flash } from './flash.ts';
import { createCsrfGuard } from './middleware/csrf.ts';
import { errorHandler, notFound } from './middleware/errors.ts';
import { observeRequests } from './middleware/observe.ts';
import { requireBank } from './middleware/require-bank.ts';
import { AtmMetrics } from './metrics.ts';
import { authRoutes } from './routes/auth.ts';
import { infoRoutes } from './routes/info.ts';
import { opsRoutes } from './routes/ops.ts';
import { passwordRoutes } from './routes/password.ts';
import { statementRoutes } from './routes/statement.ts';
import { transactionRoutes, type PendingWithdrawal, type Receipt } from './routes/transactions.ts';

export const SESSION_IDLE_MS = 15 * 60_000;
export const BODY_LIMIT = '10kb';
const ROOT = path.resolve(import.meta.dirname, '..');

export type AtmAppDeps = {
  atmId: number;
  bank: BankLink;
  sessionStore: session.Store;
  sessionSecret: string;
  /** Set when served over TLS (directly or behind a TLS proxy): Secure cookies and HSTS. */
  secureCookies?: boolean;
  /** Idle time after which a web session ends (default 15 minutes). */
  sessionIdleMs?: number;
  /** Login and signup attempts allowed per client address per window. */
  authRateLimit?: { windowMs: number; limit: number };
  /**
   * Signups (taken names included) allowed per client address per window,
   * on top of `authRateLimit`: signup must say whether a name is taken, so
   * this slows enumeration. None unless given (the command's default is 5 an hour).
   */
  signupRateLimit?: { windowMs: number; limit: number } | undefined;
  /** How long a page waits for a bank link that is moving to another node before answering 503 (default 3 s). */
  bankWaitMs?: number;
  logger?: Logger;
  /** When receipts say a transaction happened (default: the system clock). */
  clock?: () => Date;
  /** The zone times are shown in when the browser runs no script (default: this process's zone). */
  timeZone?: string;
  /** The process's metrics registry (one per process); a fresh one when omitted. */
  metricsRegistry?: Registry;
};

declare module 'express-session' {
  interface SessionData {
    customer?: { username: string; handle: string; lastLogin?: LastLogin | null };
    flash?: Flash;
    pendingWithdrawal?: PendingWithdrawal;
    receipt?: Receipt;
  }
}

/** The customer's previous login, as the bank told it at this login; null for a first login. */
export type LastLogin = { at: string; atmId: number | null };

export function createApp(deps: AtmAppDeps): express.Express {
  const app = express();
  const logger = deps.logger ?? silentLogger;
  const secure = deps.secureCookies ?? false;
  const idleMs = deps.sessionIdleMs ?? SESSION_IDLE_MS;
  app.set('view engine', 'ejs');
  app.set('views', path.join(ROOT, 'views'));
  app.set('x-powered-by', false);
  if (secure) app.set('trust proxy', 'loopback');
  app.locals.atmId = deps.atmId;
  const metrics = new AtmMetrics(deps.metricsRegistry ?? new Registry(), {
    bankLinkUp: () => deps.bank.available,
    customers: () => deps.bank.customerCount,
  });
  app.use(observeRequests(deps.atmId, logger, metrics));

  app.use(pageSecurityHeaders({ formAction: "'self'", secure }));
  app.use('/public', express.static(path.join(ROOT, 'public'), { index: false, fallthrough: true, maxAge: '1h' }));
  // Before sessions: health checks and scrapes set no cookie and need no CSRF token.
  app.use(opsRoutes({ bank: deps.bank, metrics }));
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT, parameterLimit: 20 }));
  app.use(
    session({
      name: `atm${deps.atmId}.sid`,
      secret: deps.sessionSecret,
      store: deps.sessionStore,
      resave: false,
      saveUninitialized: false,
      // Idle timeout: each request pushes expiry 15 minutes out.
      rolling: true,
      cookie: { httpOnly: true, sameSite: 'strict', secure, maxAge: idleMs, path: '/' },
    }),
  );
  app.use((_req: Request, res: Response, next: NextFunction) => {
    // Pages show balances: never cache them, so Back after logout shows nothing.
    res.set('Cache-Control', 'no-store');
    next();
  });
  const csrf = createCsrfGuard({ secret: deps.sessionSecret, cookieName: `atm${deps.atmId}.csrf`, secure });
  app.use(csrf.protect);
  app.use(csrf.expose);
  app.use(requireBank(deps.bank, deps.bankWaitMs));
  app.use(authRoutes({ bank: deps.bank, rateLimit: deps.authRateLimit, signupRateLimit: deps.signupRateLimit, csrf }));
  const sessionIdleSeconds = Math.round(idleMs / 1000);
  const timeZone = deps.timeZone ?? processTimeZone();
  app.locals.timeZone = timeZone;
  app.use(infoRoutes());
  app.use(
    transactionRoutes({
      bank: deps.bank,
      sessionIdleSeconds,
      clock: deps.clock ?? (() => new Date()),
      timeZone,
    }),
  );
  app.use(statementRoutes({ bank: deps.bank, sessionIdleSeconds, timeZone }));
  app.use(passwordRoutes({ bank: deps.bank, sessionIdleSeconds, csrf }));
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
