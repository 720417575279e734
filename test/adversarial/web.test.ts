/** Attacks through the ATM's forms: header and HTML injection, brute force against one account. */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { LOGIN_FAILED_MESSAGE } from '../../server/bank.ts';
import { auditEvents, startTestBank, type TestBank } from '../helpers.ts';
import { csrfFrom, messages, signup, startTestAtm, tokenFor, type TestAtm } from '../atm-web/harness.ts';

let bank: TestBank | null = null;
let atm: TestAtm | null = null;
afterEach(async () => {
  await atm?.close();
  await bank?.stop();
});

describe('attacks through the forms', () => {
  it('refuses a username carrying a header or HTML, and echoes it only escaped', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    const agent = request.agent(atm.app);
    for (const username of [
      'evil\r\nSet-Cookie: stolen=1',
      '"><img src=x onerror=alert(1)>',
      "x'); DROP TABLE accounts;--",
    ]) {
      const token = await tokenFor(agent, '/signup');
      const response = await agent.post('/signup').type('form').send({ _csrf: token, username, password: 'password1' });
      expect(response.status).toBe(400);
      expect(messages(response.text)).toEqual(['Usernames are 3 to 32 characters: letters, digits, and . _ -']);
      // No header was injected: nothing the attacker wrote reached the response headers.
      expect(JSON.stringify(response.headers)).not.toMatch(/stolen|evil|onerror|DROP/);
      // Echoed back into the form only as escaped attribute text.
      expect(response.text).not.toContain('<img src=x');
      expect(response.text).not.toMatch(/value="[^"]*"><img/);
    }
  });

  it('locks an account after 5 wrong passwords, even against the right one, telling only the right one it is locked', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    const agent = request.agent(atm.app);
    await signup(agent, 'target', 'password1');
    const attempt = async (password: string) => {
      const token = csrfFrom((await agent.get('/login')).text);
      return agent.post('/login').type('form').send({ _csrf: token, username: 'target', password });
    };
    for (let i = 0; i < 5; i += 1) expect((await attempt(`guess-${i}-wrong`)).status).toBe(401);
    // A guesser without the password cannot tell the lock from a wrong guess.
    const guess = await attempt('guess-after-lock');
    expect(guess.status).toBe(401);
    expect(messages(guess.text)).toEqual([LOGIN_FAILED_MESSAGE]);
    const right = await attempt('password1');
    expect(right.status).toBe(423);
    expect(right.text).toContain('This account is locked because of too many failed login attempts. Try again after');
    expect((await agent.get('/')).headers.location).toBe('/login');
    // The 5th wrong one locked it; the wrong one after it extended the lock (SECURITY.md, "Lockout").
    const lockouts = auditEvents(bank.dataDir).filter((event) => event.action === 'lockout' && event.user === 'target');
    expect(lockouts).toHaveLength(2);
  });

  it('ends the earlier bank session when a logged-in visitor logs in again (an old tab)', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    const agent = request.agent(atm.app);
    await signup(agent, 'twotabs', 'password1');
    for (let i = 0; i < 3; i += 1) {
      // The logged-in page's token: the old tab's login form posts with it.
      const token = csrfFrom((await agent.get(i === 0 ? '/login' : '/')).text);
      const response = await agent
        .post('/login')
        .type('form')
        .send({ _csrf: token, username: 'twotabs', password: 'password1' });
      expect(response.status).toBe(303);
      expect(atm.link.customerCount).toBe(1);
    }
  });
});
