import fs from 'node:fs';
import path from 'node:path';

import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { startTestBank, type TestBank } from '../helpers.ts';
import { login, messages, signup, startTestAtm, transact, type TestAtm } from './harness.ts';

let banks: TestBank[] = [];
const atms: TestAtm[] = [];
afterEach(async () => {
  for (const atm of atms.splice(0)) await atm.close();
  for (const bank of banks.splice(0)) await bank.stop();
});

async function bankAt(options: Parameters<typeof startTestBank>[0] = {}): Promise<TestBank> {
  const bank = await startTestBank(options);
  banks.push(bank);
  return bank;
}

async function atmFor(bank: TestBank, atmId = 1): Promise<TestAtm> {
  const atm = await startTestAtm(bank, atmId);
  atms.push(atm);
  return atm;
}

describe('the ATM and the bank connection', () => {
  it('answers 503 while the bank is down, keeps running, and keeps the customer logged in when it is back', async () => {
    const first = await bankAt();
    const atm = await atmFor(first);
    const agent = request.agent(atm.app);
    await signup(agent, 'patient', 'password1');
    await login(agent, 'patient', 'password1');
    await transact(agent, 'deposit', '40');

    await first.stop();
    banks = banks.filter((bank) => bank !== first);
    await expect.poll(() => atm.link.available).toBe(false);
    for (const page of ['/', '/login', '/statement']) {
      const response = await agent.get(page);
      expect(response.status).toBe(503);
      expect(response.text).toContain('The bank is unavailable, try again shortly.');
    }

    // Same data directory and port: the bank restarts, the ATM reconnects by itself, and the
    // customer is still logged in: the session reopens on the new link with its ticket.
    const second = await bankAt({ dataDir: first.dataDir, port: first.bank.port });
    await atm.link.waitUntilAvailable(5_000);
    expect((await agent.get('/')).status).toBe(200);
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $40.00']);

    // A bank that cannot open the ticket (its ticket key was replaced) sends the customer to log in again.
    await second.stop();
    banks = banks.filter((bank) => bank !== second);
    fs.rmSync(path.join(first.dataDir, 'ticket.key'));
    await bankAt({ dataDir: first.dataDir, port: first.bank.port });
    await atm.link.waitUntilAvailable(5_000);
    const home = await agent.get('/');
    expect(home.status).toBe(303);
    expect(home.headers.location).toBe('/login');
    expect(messages((await agent.get('/login')).text)).toEqual(['Your session has ended. Please log in again.']);
    await login(agent, 'patient', 'password1');
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $40.00']);
  });

  it('keeps one connection to the bank, not one per request', async () => {
    const bank = await bankAt();
    const atm = await atmFor(bank);
    const agent = request.agent(atm.app);
    await signup(agent, 'counted', 'password1');
    await login(agent, 'counted', 'password1');
    for (let i = 0; i < 5; i += 1) await transact(agent, 'deposit', '1');
    expect(bank.bank.connectionCount()).toBe(1);
  });

  it('shows ATM 1 and ATM 2 the same balance for the same account', async () => {
    const bank = await bankAt();
    const one = request.agent((await atmFor(bank, 1)).app);
    const two = request.agent((await atmFor(bank, 2)).app);
    await signup(one, 'shared', 'password1');
    await login(one, 'shared', 'password1');
    await login(two, 'shared', 'password1');
    await transact(one, 'deposit', '150');
    expect(messages((await transact(two, 'balance')).page)).toEqual(['Current balance: $150.00']);
    await transact(two, 'withdraw', '50');
    expect(messages((await transact(one, 'balance')).page)).toEqual(['Current balance: $100.00']);
  });

  it('serves 50 customers at once on one ATM', async () => {
    const bank = await bankAt();
    const atm = await atmFor(bank);
    const agents = Array.from({ length: 50 }, () => request.agent(atm.app));
    await Promise.all(agents.map((agent, i) => signup(agent, `crowd${i}`, 'password1')));
    await Promise.all(agents.map((agent, i) => login(agent, `crowd${i}`, 'password1')));
    const results = await Promise.all(agents.map((agent, i) => transact(agent, 'deposit', `${i + 1}.25`)));
    results.forEach((result, i) => {
      expect(messages(result.page)).toEqual([`Deposited $${i + 1}.25. New balance: $${i + 1}.25`]);
    });
    expect(bank.bank.connectionCount()).toBe(1);
    expect(atm.link.customerCount).toBe(50);
    // Generous: 50 customers' pages each ask the bank for the balance too; this catches hangs, not speed.
  }, 30_000);
});
