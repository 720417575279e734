/**
 * Money is integer cents end to end. Text from people is parsed once, here,
 * strictly; amounts are formatted for people once, here.
 */
declare const centsBrand: unique symbol;
/** A non-negative whole number of cents. */
export type Cents = number & { readonly [centsBrand]: true };

/** Largest amount one deposit or withdrawal may move: $1,000,000.00. */
export const MAX_TRANSACTION_CENTS = 100_000_000 as Cents;
/**
 * Largest amount one command-line (card) transaction may move: the contract's
 * 4294967295.99. The per-channel limits: web and terminal customers get
 * MAX_TRANSACTION_CENTS, bin/atm gets this.
 */
export const MAX_CLI_TRANSACTION_CENTS = 429_496_729_599 as Cents;
/** Largest balance an account may hold; far inside Number.MAX_SAFE_INTEGER. */
export const MAX_BALANCE_CENTS = 1_000_000_000_000_00 as Cents;

const AMOUNT_PATTERN = /^([0-9]{1,10})(?:\.([0-9]{1,2}))?$/;

export type AmountParse = { ok: true; cents: Cents } | { ok: false; reason: string };

/**
 * Parses an amount typed by a person: digits, optionally a dot and one or two
 * decimals. No sign, exponent, spaces, separators or currency symbol. Every
 * rejection says why, in words a customer understands.
 */
export function parseAmount(input: unknown): AmountParse {
  if (typeof input !== 'string' || input.trim() === '') return { ok: false, reason: 'Enter an amount.' };
  const text = input.trim();
  const match = AMOUNT_PATTERN.exec(text);
  if (!match) {
    if (/^[0-9]*\.[0-9]{3,}$/.test(text)) {
      return { ok: false, reason: 'Amounts can have at most two decimal places.' };
    }
    if (/^[0-9]{11,}(\.[0-9]{0,2})?$/.test(text)) return { ok: false, reason: 'The amount is too large.' };
    return { ok: false, reason: 'Enter the amount as digits with up to two decimals, like 150 or 19.99.' };
  }
  const whole = match[1] ?? '0';
  const fraction = (match[2] ?? '').padEnd(2, '0');
  const cents = Number(whole) * 100 + Number(fraction);
  return checkTransactionCents(cents);
}

/** Validates an amount that is already in cents (e.g. from the wire). */
export function checkTransactionCents(cents: unknown, max: Cents = MAX_TRANSACTION_CENTS): AmountParse {
  if (typeof cents !== 'number' || !Number.isSafeInteger(cents)) {
    return { ok: false, reason: 'The amount must be a whole number of cents.' };
  }
  if (cents <= 0) return { ok: false, reason: 'The amount must be more than $0.00.' };
  if (cents > max) {
    return { ok: false, reason: `The amount may be at most ${formatCents(max)} per transaction.` };
  }
  return { ok: true, cents: cents as Cents };
}

/** `$1,234.56`; negative values (never a balance) get a leading minus sign. */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const dollars = Math.floor(abs / 100).toLocaleString('en-US');
  const rest = String(abs % 100).padStart(2, '0');
  return `${sign}$${dollars}.${rest}`;
}

/** `1234.56` without currency sign or separators, for logs. */
export function plainCents(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}
