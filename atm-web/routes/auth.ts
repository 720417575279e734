/**
 * Login, signup and logout. The session id is regenerated at login (no
 * fixation) and the session destroyed at logout; both forms are rate limited
 * per client address on top of the bank's per-account lockout.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';

import { callBank, callerOf, formField } from '../bank-call.ts';
import type { BankLink } from '../bank-link.ts';
import { lockedNotice } from '../display.ts';
import { takeFlash } from '../flash.ts';
import { HttpError } from '../http-error.ts';
import type { CsrfGuard } from '../middleware/csrf.ts';

export type AuthDeps = {
  bank: BankLink;
  rateLimit?: { windowMs: number; limit: number } | undefined;
  /** Signups per client address per window, before the shared limit above (none unless given). */
  signupRateLimit?: { windowMs: number; limit: number } | undefined;
  csrf: CsrfGuard;
};

const LOGGED_OUT = 'You have been logged out.';
const EXPIRED = 'Your session ended because of inactivity. Please log in again.';

function regenerate(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.regenerate((error) => (error ? reject(error) : resolve())));
}

function destroy(req: Request): Promise<void> {
  return new Promise((resolve) => req.session.destroy(() => resolve()));
}

export function authRoutes(deps: AuthDeps): Router {
  const router = Router();
  const limiter = rateLimit({
    windowMs: deps.rateLimit?.windowMs ?? 15 * 60_000,
    limit: deps.rateLimit?.limit ?? 20,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, _res, next) =>
      next(new HttpError(429, 'RATE_LIMITED', 'Too many attempts from this device. Wait a few minutes and try again.')),
  });

  // Every signup counts, a taken name included: that answer is what enumeration reads.
  const signupLimiter: RequestHandler = deps.signupRateLimit
    ? rateLimit({
        windowMs: deps.signupRateLimit.windowMs,
        limit: deps.signupRateLimit.limit,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        handler: (_req, _res, next) =>
          next(new HttpError(429, 'RATE_LIMITED', 'Too many sign-ups from this device. Try again later.')),
      })
    : (_req, _res, next) => next();

  const renderLogin = (req: Request, res: Response, status: number, error: string | null, username = ''): void => {
    const notice = req.query.loggedOut === '1' ? LOGGED_OUT : req.query.expired === '1' ? EXPIRED : null;
    res.status(status).render('login', { title: 'Log in', error, flash: takeFlash(req), notice, username });
  };
  const renderSignup = (res: Response, status: number, error: string | null, username = ''): void => {
    res.status(status).render('signup', { title: 'Sign up', error, username });
  };

  /** True when the visitor is logged in with a live bank session; forgets a dead one. */
  const loggedIn = (req: Request): boolean => {
    const customer = req.session.customer;
    if (!customer) return false;
    if (deps.bank.hasCustomer(customer.handle)) return true;
    delete req.session.customer;
    return false;
  };

  router.get('/login', (req, res) => {
    if (loggedIn(req)) return res.redirect(303, '/');
    renderLogin(req, res, 200, null);
  });

  router.post('/login', limiter, async (req, res) => {
    const username = formField(req.body, 'username').trim();
    const password = formField(req.body, 'password');
    if (!username || !password) return renderLogin(req, res, 400, 'Enter your username and password.', username);
    const outcome = await callBank(() => deps.bank.login(username, password, callerOf(req)));
    if (!outcome.ok) {
      // Only the right password to a locked account gets this answer from the bank (see SECURITY.md).
      if (outcome.error.code === 'ERR_ACCOUNT_LOCKED') res.locals.locked = lockedNotice(outcome.error, req);
      return renderLogin(
        req,
        res,
        outcome.error.code === 'ERR_ACCOUNT_LOCKED' ? 423 : 401,
        outcome.error.message,
        username,
      );
    }
    // Logging in again from a logged-in page (an old tab) ends the earlier bank session, not leaves it open.
    const previous = req.session.customer;
    if (previous) await deps.bank.logout(previous.handle);
    // A brand-new session id for the logged-in customer: a planted id is worthless.
    await regenerate(req);
    const { username: customer, handle, lastLogin } = outcome.value;
    // The previous login (when and at which ATM) for the account summary; the bank gives it only now.
    req.session.customer = { username: customer, handle, lastLogin };
    req.session.flash = { kind: 'ok', text: 'Login successful' };
    deps.csrf.rotate(req, res);
    res.redirect(303, '/');
  });

  router.get('/signup', (req, res) => {
    if (loggedIn(req)) return res.redirect(303, '/');
    renderSignup(res, 200, null);
  });

  router.post('/signup', signupLimiter, limiter, async (req, res) => {
    const username = formField(req.body, 'username').trim();
    const password = formField(req.body, 'password');
    if (!username || !password) return renderSignup(res, 400, 'Choose a username and a password.', username);
    const outcome = await callBank(() => deps.bank.client().signup(username, password, callerOf(req)));
    if (!outcome.ok)
      return renderSignup(
        res,
        outcome.error.code === 'ERR_USERNAME_TAKEN' ? 409 : 400,
        outcome.error.message,
        username,
      );
    req.session.flash = { kind: 'ok', text: `Account created for ${outcome.value.username}. Log in to continue.` };
    res.redirect(303, '/login');
  });

  router.post('/logout', async (req, res) => {
    const customer = req.session.customer;
    if (customer) await deps.bank.logout(customer.handle, callerOf(req));
    await destroy(req);
    res.clearCookie(`atm${String(req.app.locals.atmId)}.sid`, { path: '/' });
    deps.csrf.clear(res);
    res.redirect(303, '/login?loggedOut=1');
  });

  return router;
}
