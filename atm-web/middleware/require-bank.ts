import type { NextFunction, Request, Response } from 'express';

import type { BankLink } from '../bank-link.ts';
import { BANK_UNAVAILABLE_MESSAGE, HttpError } from '../http-error.ts';

/**
 * While the bank link is down pages answer 503; the ATM keeps running and
 * reconnects. A link that is moving to another node is waited for (up to
 * `waitMs`), so a failover shows the customer their page, not an error.
 */
export function requireBank(bank: BankLink, waitMs = 3_000) {
  return (_req: Request, _res: Response, next: NextFunction): void => {
    if (bank.available) return next();
    bank.waitUntilAvailable(waitMs).then(
      () => next(),
      () => next(new HttpError(503, 'BANK_UNAVAILABLE', BANK_UNAVAILABLE_MESSAGE)),
    );
  };
}
