/**
 * Everything between an ATM and the bank during signup, login, deposit and
 * statement, captured byte for byte: no username, password, amount or balance
 * appears in it, as text, as hex or as base64.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { startTestBank, type TestBank } from '../helpers.ts';
import { login, signup, startTestAtm, transact, type TestAtm } from '../atm-web/harness.ts';
import { MitmProxy } from './mitm-proxy.ts';

let bank: TestBank | null = null;
let proxy: MitmProxy | null = null;
let atm: TestAtm | null = null;
afterEach(async () => {
  await atm?.close();
  await proxy?.close();
  await bank?.stop();
});

/** Each secret as it might leak: the text itself, and its hex and base64 spellings. */
function spellings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [
    secret,
    bytes.toString('hex'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url').replace(/=+$/, ''),
  ];
}

describe('the wire', () => {
  it('carries nothing readable: no username, password, amount or balance', async () => {
    bank = await startTestBank();
    proxy = await MitmProxy.start(bank.bank.port);
    atm = await startTestAtm(bank, 1, { port: proxy.port });
    const agent = request.agent(atm.app);
    await signup(agent, 'wiretapped.customer', 'Sup3r-Secret-Passw0rd');
    await login(agent, 'wiretapped.customer', 'Sup3r-Secret-Passw0rd');
    await transact(agent, 'deposit', '987654.32');
    await transact(agent, 'withdraw', '123.45');
    await transact(agent, 'balance');
    expect((await agent.get('/statement')).text).toContain('$987,530.87');

    const captured = Buffer.concat([...proxy.wire.toBank, ...proxy.wire.toAtm]);
    expect(captured.length).toBeGreaterThan(1_000);
    const asText = captured.toString('latin1');
    const secrets = [
      'wiretapped.customer',
      'wiretapped',
      'Sup3r-Secret-Passw0rd',
      '98765432', // the deposit in cents
      '987654.32',
      '12345', // the withdrawal in cents
      '98753087', // the balance in cents
      '987530.87',
      'deposit',
      'withdraw',
      'balance',
      'amountCents',
    ];
    for (const secret of secrets) {
      for (const spelling of spellings(secret))
        expect(asText.includes(spelling), `${secret} as ${spelling}`).toBe(false);
    }
    // Mostly ciphertext: about 37% of random bytes are printable; JSON or text would be near 100%.
    const printable = captured.filter((byte) => byte >= 0x20 && byte < 0x7f).length / captured.length;
    expect(printable).toBeLessThan(0.5);
  });
});
