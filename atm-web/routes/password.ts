/**
 * Change password: the current password and the new one twice. The bank
 * checks the current one under the login rules (a wrong one counts toward
 * the lockout), re-hashes, and ends the customer's other bank sessions; this
 * ATM forgets its other web sessions of the customer, and this one gets a
 * new session id and CSRF token.
 */
import { Router, type Request, type Response } from 'express';

import { callBank, formField } from '../bank-call.ts';
import type { BankLink } from '../bank-link.ts';
import { liveCustomer, refuse, requireCustomer } from '../customer.ts';
import { lockedNotice } from '../display.ts';
import type { CsrfGuard } from '../middleware/csrf.ts';

export type PasswordDeps = { bank: BankLink; sessionIdleSeconds: number; csrf: CsrfGuard };

export const PASSWORD_CHANGED = 'Your password was changed. Anywhere else you were logged in has been logged out.';

function regenerate(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.regenerate((error) => (error ? reject(error) : resolve())));
}

export function passwordRoutes(deps: PasswordDeps): Router {
  const router = Router();
  const customerOnly = requireCustomer(deps.bank, deps.sessionIdleSeconds);

  const renderForm = (res: Response, status: number, error: string | null, field: string | null = null): void => {
    res.status(status).render('password', { title: 'Change password', error, field });
  };

  router.get('/password', customerOnly, (_req, res) => renderForm(res, 200, null));

  router.post('/password', customerOnly, async (req, res) => {
    const current = formField(req.body, 'currentPassword');
    const next = formField(req.body, 'newPassword');
    const again = formField(req.body, 'confirmPassword');
    if (!current) return renderForm(res, 400, 'Enter your current password.', 'current');
    if (!next) return renderForm(res, 400, 'Choose a new password.', 'new');
    if (next !== again) return renderForm(res, 400, 'The two new passwords are not the same.', 'confirm');
    const live = liveCustomer(res);
    const outcome = await callBank(() => live.run((client, session) => client.changePassword(session, current, next)));
    if (!outcome.ok) {
      const { code } = outcome.error;
      if (code === 'ERR_NOT_LOGGED_IN') return refuse(req, res, outcome.error);
      if (code === 'ERR_ACCOUNT_LOCKED') res.locals.locked = lockedNotice(outcome.error, req);
      const status = code === 'ERR_AUTH_FAILED' ? 401 : code === 'ERR_ACCOUNT_LOCKED' ? 423 : 400;
      return renderForm(res, status, outcome.error.message, code === 'ERR_INVALID_PASSWORD' ? 'new' : 'current');
    }
    const customer = req.session.customer;
    if (customer) deps.bank.endOtherSessions(customer.username, customer.handle);
    // A new session id and CSRF token after the change, as after a login.
    await regenerate(req);
    if (customer) req.session.customer = customer;
    req.session.flash = { kind: 'ok', text: PASSWORD_CHANGED };
    deps.csrf.rotate(req, res);
    res.redirect(303, '/');
  });

  return router;
}
