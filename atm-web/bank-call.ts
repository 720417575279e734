/**
 * Runs a call to the bank on behalf of a web request and sorts what can come
 * back: an answer, a refusal the customer should read (BankError), or the
 * bank being unreachable (503).
 */
import type { Request } from 'express';

import type { CallContext } from '../protocol/client.ts';
import { BankError, ProtocolError } from '../protocol/errors.ts';
import { BankUnavailableError } from './bank-link.ts';
import { BANK_UNAVAILABLE_MESSAGE, HttpError } from './http-error.ts';

export type BankOutcome<T> = { ok: true; value: T } | { ok: false; error: BankError };

export async function callBank<T>(work: () => Promise<T>): Promise<BankOutcome<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    if (error instanceof BankError) {
      if (error.code === 'ERR_UNAVAILABLE') throw new HttpError(503, 'BANK_UNAVAILABLE', error.message);
      if (error.code === 'ERR_BUSY') throw new HttpError(503, 'BANK_BUSY', error.message);
      return { ok: false, error };
    }
    if (error instanceof ProtocolError || error instanceof BankUnavailableError) {
      throw new HttpError(503, 'BANK_UNAVAILABLE', BANK_UNAVAILABLE_MESSAGE);
    }
    throw error;
  }
}

/** A form field as a string: anything else (missing, repeated, nested) becomes ''. */
export function formField(body: unknown, name: string): string {
  if (typeof body !== 'object' || body === null || !(name in body)) return '';
  const value: unknown = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : '';
}

/** The customer's address as this ATM sees it, for the bank's audit line of the call. */
export function callerOf(req: Request): CallContext {
  return { client: req.ip };
}
