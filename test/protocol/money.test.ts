import { describe, expect, it } from 'vitest';

import { formatCents, parseAmount } from '../../protocol/money.ts';

describe('parseAmount', () => {
  it.each([
    ['150', 15_000],
    ['150.5', 15_050],
    ['150.05', 15_005],
    ['0.01', 1],
    [' 19.99 ', 1_999],
    ['1000000', 100_000_000],
    ['1000000.00', 100_000_000],
    ['0000000001', 100],
  ])('reads %j as %i cents', (input, cents) => {
    expect(parseAmount(input)).toEqual({ ok: true, cents });
  });

  it.each([
    ['', 'Enter an amount.'],
    ['   ', 'Enter an amount.'],
    ['0', 'The amount must be more than $0.00.'],
    ['0.00', 'The amount must be more than $0.00.'],
    ['0.001', 'Amounts can have at most two decimal places.'],
    ['1.234', 'Amounts can have at most two decimal places.'],
    ['99999999999', 'The amount is too large.'],
    ['1000000.01', 'The amount may be at most $1,000,000.00 per transaction.'],
    ['9999999999', 'The amount may be at most $1,000,000.00 per transaction.'],
    ['-5', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['abc', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['1e3', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['NaN', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['Infinity', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['0x10', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['1,000', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['$5', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['5.', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['.5', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['١٢', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
  ])('refuses %j and says why', (input, reason) => {
    expect(parseAmount(input)).toEqual({ ok: false, reason });
  });

  it('refuses anything that is not a string', () => {
    for (const input of [5, null, undefined, ['5'], { amount: 5 }]) expect(parseAmount(input).ok).toBe(false);
  });
});

describe('formatCents', () => {
  it.each([
    [0, '$0.00'],
    [5, '$0.05'],
    [15_000, '$150.00'],
    [100_000_000, '$1,000,000.00'],
    [-250, '-$2.50'],
  ])('shows %i cents as %s', (cents, text) => {
    expect(formatCents(cents)).toBe(text);
  });
});
