import { describe, expect, it } from 'vitest';

import { startTestBank } from '../helpers.ts';
import { fuzzBankOverTcp } from './bank-wire.ts';
import { FUZZ_TARGETS } from './properties.ts';

// A short, fixed-seed pass on every `npm test`; `npm run fuzz` runs the long one.
describe('fuzzing (short pass)', () => {
  for (const target of FUZZ_TARGETS) {
    it(target.name, () => target.run(1_000, 20261123));
  }
});

describe('fuzzing the bank over TCP (short pass)', () => {
  it('survives 300 hostile connections, including sealed random payloads, and still serves', async () => {
    const internalErrors: string[] = [];
    const logger = {
      info: () => {},
      warn: () => {},
      error: (_fields: object, message: string) => internalErrors.push(message),
    };
    const bank = await startTestBank({ logger });
    try {
      await fuzzBankOverTcp({ port: bank.bank.port, credentialFor: bank.bank.credentialFor }, 300, 42);
    } finally {
      await bank.stop();
    }
    expect(internalErrors).toEqual([]);
  }, 60_000);
});
