/** The plaintext audit line (audit/event.ts). */
import { describe, expect, it } from 'vitest';

import { formatPlainLine } from '../../audit/event.ts';
import { event } from './fixtures.ts';

describe('plaintext audit line', () => {
  it('is timestamp, ATM, user, action, amount, outcome', () => {
    expect(formatPlainLine(event(1))).toBe(
      '2026-01-01T00:00:01.000Z atm=1 user=alice action=deposit amount=1.00 outcome=ok',
    );
  });

  it('quotes attacker-chosen text so it cannot forge a line or a field', () => {
    const line = formatPlainLine(event(1, { user: 'x\n2026 atm=9 user=admin', action: 'login', amountCents: null }));
    expect(line).not.toContain('\n');
    expect(line).toContain('user="x\\n2026 atm=9 user=admin"');
  });
});
