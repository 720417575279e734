import type { NextFunction, Request, Response } from 'express';

import type { BankLink } from '../bank-link.ts';
import { BANK_UNAVAILABLE_MESSAGE, HttpError } from '../http-error.ts';

/** While the bank link is down every page answers 503; the ATM keeps running and reconnects. */
export function requireBank(bank: BankLink) {
  return (_req: Request, _res: Response, next: NextFunction): void => {
    next(bank.available ? undefined : new HttpError(503, 'BANK_UNAVAILABLE', BANK_UNAVAILABLE_MESSAGE));
  };
}
