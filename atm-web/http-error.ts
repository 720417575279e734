/**
 * Errors the web app turns into pages. The code is stable (tests and logs use
 * it); the message is what the customer reads and never holds internals.
 */
export type HttpErrorCode =
  'BAD_REQUEST' | 'CSRF' | 'NOT_FOUND' | 'TOO_LARGE' | 'RATE_LIMITED' | 'BANK_UNAVAILABLE' | 'BANK_BUSY' | 'INTERNAL';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const BANK_UNAVAILABLE_MESSAGE = 'The bank is unavailable, try again shortly.';
