/** The account summary, quick cash, the withdrawal confirmation and the receipt, through the ATM's routes. */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { auditEvents, startTestBank, type TestBank } from '../helpers.ts';
import {
  confirmWithdrawal,
  csrfFrom,
  login,
  messages,
  signup,
  startTestAtm,
  transact,
  txIdFrom,
  type Agent,
  type TestAtm,
} from './harness.ts';

let bank: TestBank | null = null;
let atm: TestAtm | null = null;
afterEach(async () => {
  await atm?.close();
  atm = null;
  await bank?.stop();
  bank = null;
});

async function customerWith(deposit: string): Promise<Agent> {
  bank = await startTestBank();
  atm = await startTestAtm(bank);
  const agent = request.agent(atm.app);
  await signup(agent, 'saver', 'password1');
  await login(agent, 'saver', 'password1');
  await transact(agent, 'deposit', deposit);
  return agent;
}

/** Asks for a withdrawal from the transaction page; returns the confirmation page. */
async function askToWithdraw(agent: Agent, amount: string): Promise<string> {
  const home = await agent.get('/');
  const response = await agent
    .post('/transaction')
    .type('form')
    .send({ _csrf: csrfFrom(home.text), txId: txIdFrom(home.text), action: 'withdraw', amount });
  expect(response.status).toBe(303);
  expect(response.headers.location).toBe('/withdraw/confirm');
  return (await agent.get('/withdraw/confirm')).text;
}

const balanceOf = async (agent: Agent): Promise<string[]> => messages((await transact(agent, 'balance')).page);

describe('the transaction page', () => {
  it('shows the balance read from the bank on arrival, with quick cash above it disabled and why', async () => {
    const agent = await customerWith('50');
    const home = (await agent.get('/')).text;
    expect(home).toMatch(/<dt>Available balance<\/dt><dd>\$50\.00<\/dd>/);
    for (const dollars of [20, 40]) expect(home).toMatch(new RegExp(`value="${dollars}" class="quick">`));
    for (const dollars of [60, 100, 200])
      expect(home).toMatch(
        new RegExp(`value="${dollars}" class="quick" disabled aria-describedby="quick-cash-limit">`),
      );
    expect(home).toContain(
      'id="quick-cash-limit">Amounts shown greyed out are more than your available balance of $50.00.',
    );
    // Not cached in the web session: money moved at another ATM shows on the next page.
    const other = await bank!.connect(2);
    const session = await other.login('saver', 'password1');
    await other.deposit(session, 'elsewhere-1', 1000);
    expect((await agent.get('/')).text).toMatch(/<dt>Available balance<\/dt><dd>\$60\.00<\/dd>/);
  });
});

describe('a withdrawal', () => {
  it('asks for confirmation, showing the amount and the balance after, and moves nothing until confirmed', async () => {
    const agent = await customerWith('100');
    const confirmation = await askToWithdraw(agent, '40');
    expect(confirmation).toMatch(/<dt>Amount<\/dt><dd>\$40\.00<\/dd>/);
    expect(confirmation).toMatch(/<dt>Balance after<\/dt><dd>\$60\.00<\/dd>/);
    expect(confirmation).toContain('>Confirm withdrawal</button>');
    expect(confirmation).toContain('>Cancel</button>');
    expect(await balanceOf(agent)).toEqual(['Current balance: $100.00']);
  });

  it('carries the same transaction id from the form to the confirmation to the bank', async () => {
    const agent = await customerWith('100');
    const home = await agent.get('/');
    const formTxId = txIdFrom(home.text);
    await agent
      .post('/transaction')
      .type('form')
      .send({ _csrf: csrfFrom(home.text), txId: formTxId, action: 'withdraw', amount: '20' });
    const { txId } = await confirmWithdrawal(agent);
    expect(txId).toBe(formTxId);
    const withdrawals = auditEvents(bank!.dataDir).filter((event) => event.action === 'withdraw');
    expect(withdrawals.map((event) => event.detail)).toEqual([formTxId]);
  });

  it('moves money once when the confirmation is submitted twice, at once and again later', async () => {
    const agent = await customerWith('100');
    const confirmation = await askToWithdraw(agent, '30');
    const fields = { _csrf: csrfFrom(confirmation), txId: txIdFrom(confirmation) };
    const [first, second] = await Promise.all([
      agent.post('/withdraw/confirm').type('form').send(fields),
      agent.post('/withdraw/confirm').type('form').send(fields),
    ]);
    expect([first.status, second.status]).toEqual([303, 303]);
    const replay = await agent.post('/withdraw/confirm').type('form').send(fields);
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toBe('/receipt');
    expect(messages((await agent.get('/receipt')).text)).toEqual(['Withdrew $30.00. New balance: $70.00']);
    expect(await balanceOf(agent)).toEqual(['Current balance: $70.00']);
    const applied = auditEvents(bank!.dataDir).filter((event) => event.action === 'withdraw' && event.outcome === 'ok');
    expect(applied).toHaveLength(1);
  });

  it('is cancelled by Cancel, and a stale confirmation afterwards withdraws nothing', async () => {
    const agent = await customerWith('100');
    const confirmation = await askToWithdraw(agent, '30');
    const cancel = await agent
      .post('/withdraw/cancel')
      .type('form')
      .send({ _csrf: csrfFrom(confirmation) });
    expect(cancel.status).toBe(303);
    expect(messages((await agent.get(cancel.headers.location ?? '/')).text)).toEqual([
      'Withdrawal cancelled. Nothing was withdrawn.',
    ]);
    const stale = await agent
      .post('/withdraw/confirm')
      .type('form')
      .send({ _csrf: csrfFrom(confirmation), txId: txIdFrom(confirmation) });
    expect(stale.headers.location).toBe('/withdraw');
    expect(await balanceOf(agent)).toEqual(['Current balance: $100.00']);
  });

  it('is refused before confirmation when it is over the balance, saying what is available and keeping the amount', async () => {
    const agent = await customerWith('12.50');
    const result = await transact(agent, 'withdraw', '20');
    expect(result.status).toBe(303);
    expect(messages(result.page)).toEqual(['Insufficient funds: $12.50 available']);
    expect(result.page).toContain('value="20"');
    expect(result.page).toContain('aria-invalid="true"');
    // The refusal is a page reached by a redirect: reloading it submits nothing.
    expect((await agent.get('/withdraw')).text).not.toContain('Insufficient funds');
  });

  it('is refused at confirmation if the money went elsewhere in between', async () => {
    const agent = await customerWith('50');
    const confirmation = await askToWithdraw(agent, '40');
    const other = await bank!.connect(2);
    const session = await other.login('saver', 'password1');
    await other.withdraw(session, 'elsewhere-2', 2000);
    const response = await agent
      .post('/withdraw/confirm')
      .type('form')
      .send({ _csrf: csrfFrom(confirmation), txId: txIdFrom(confirmation) });
    expect(response.headers.location).toBe('/withdraw');
    const page = (await agent.get('/withdraw')).text;
    expect(messages(page)).toEqual(['Insufficient funds: $30.00 available']);
    expect(page).toContain('value="40"');
  });
});

describe('the receipt', () => {
  it('shows the reference, time, ATM, amount and balance after, with Another transaction and Log out', async () => {
    const agent = await customerWith('75');
    const deposit = await agent.get('/receipt');
    expect(messages(deposit.text)).toEqual(['Deposited $75.00. New balance: $75.00']);
    const confirmation = await askToWithdraw(agent, '20');
    const txId = txIdFrom(confirmation);
    await agent
      .post('/withdraw/confirm')
      .type('form')
      .send({ _csrf: csrfFrom(confirmation), txId });
    const receipt = (await agent.get('/receipt')).text;
    expect(txId).toMatch(/^[0-9A-HJKMNP-TV-Z]{16}$/);
    const reference = txId.match(/.{4}/g)!.join('-');
    expect(receipt).toContain(`<dd class="reference">${reference}</dd>`);
    expect(receipt).toMatch(/<dt>ATM<\/dt><dd>1<\/dd>/);
    expect(receipt).toMatch(/<dt>Amount<\/dt><dd>\$20\.00<\/dd>/);
    expect(receipt).toMatch(/<dt>Balance after<\/dt><dd>\$55\.00<\/dd>/);
    expect(receipt).toMatch(
      /<time datetime="\d{4}-\d\d-\d\dT[^"]+Z" data-local>[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M /,
    );
    expect(receipt).toContain('<a class="button primary" href="/">Another transaction</a>');
    expect(receipt).toContain('>Log out</button>');
    expect(receipt).toContain('href="/public/print.css" media="print"');
  });
});
