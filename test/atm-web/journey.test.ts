import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { startTestBank, type TestBank } from '../helpers.ts';
import {
  csrfFrom,
  login,
  messages,
  setCookie,
  signup,
  startTestAtm,
  tokenFor,
  transact,
  txIdFrom,
  type TestAtm,
} from './harness.ts';

let bank: TestBank | null = null;
const atms: TestAtm[] = [];
afterEach(async () => {
  for (const atm of atms.splice(0)) await atm.close();
  await bank?.stop();
  bank = null;
});

async function setup(): Promise<TestAtm> {
  bank = await startTestBank();
  const atm = await startTestAtm(bank);
  atms.push(atm);
  return atm;
}

describe('a customer at the ATM', () => {
  it('signs up, logs in, deposits 150, withdraws 50, sees 100, is refused an overdraft, and logs out', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    const loginPage = await agent.get('/login');
    expect(loginPage.status).toBe(200);
    expect(loginPage.text).toContain('<label for="username">Username</label>');
    expect(loginPage.text).toContain('<label for="password">Password</label>');
    expect(loginPage.text).toContain('>Log in</button>');
    expect(loginPage.text).toContain('<a href="/signup">Sign up</a>');
    expect((await agent.get('/signup')).text).toContain('<a href="/login">Back to login</a>');

    await signup(agent, 'austin', 'correct horse');
    expect(messages((await agent.get('/login')).text)).toEqual(['Account created for austin. Log in to continue.']);
    await login(agent, 'austin', 'correct horse');
    const home = await agent.get('/');
    expect(home.text).toContain('Welcome, austin');
    expect(messages(home.text)).toEqual(['Login successful']);
    for (const button of ['Deposit', 'Withdraw', 'Check balance', 'Log out'])
      expect(home.text).toContain(`>${button}</button>`);
    // Deposit and withdraw each have their own screen, so Enter in Amount can only do that screen's action.
    for (const [page, button] of [
      ['/deposit', 'Deposit'],
      ['/withdraw', 'Withdraw'],
    ] as const) {
      const screen = (await agent.get(page)).text;
      expect(screen).toContain('<label for="amount">Amount</label>');
      expect(screen).toContain(`>${button}</button>`);
      expect(screen).toContain(`<input type="hidden" name="action" value="${button.toLowerCase()}">`);
    }

    expect(messages((await transact(agent, 'deposit', '150')).page)).toEqual([
      'Deposited $150.00. New balance: $150.00',
    ]);
    expect(messages((await transact(agent, 'withdraw', '50')).page)).toEqual(['Withdrew $50.00. New balance: $100.00']);
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $100.00']);
    expect(messages((await transact(agent, 'withdraw', '150')).page)).toEqual([
      'Insufficient funds: $100.00 available',
    ]);
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $100.00']);

    const statement = await agent.get('/statement');
    expect(statement.status).toBe(200);
    expect(statement.text).toContain('Current balance: <strong>$100.00</strong>');
    expect(statement.text).toMatch(/Withdrawal<\/td><td class="num">−\$50\.00<\/td><td class="num">\$100\.00/);
    expect(statement.text).toMatch(/Deposit<\/td><td class="num">\+\$150\.00<\/td><td class="num">\$150\.00/);

    const logout = await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfFrom(home.text) });
    expect(logout.status).toBe(303);
    const after = await agent.get('/');
    expect(after.status).toBe(303);
    expect(after.headers.location).toBe('/login');
    expect(messages((await agent.get('/login?loggedOut=1')).text)).toEqual(['You have been logged out.']);
  });

  it('answers every POST with a redirect, so a reload never repeats a deposit', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'reloader', 'password1');
    await login(agent, 'reloader', 'password1');
    const form = await agent.get('/');
    const response = await agent
      .post('/transaction')
      .type('form')
      .send({ _csrf: csrfFrom(form.text), txId: txIdFrom(form.text), action: 'deposit', amount: '10' });
    expect(response.status).toBe(303);
    // Reloading the result page is a GET: the balance stays where it was.
    await agent.get('/');
    await agent.get('/');
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $10.00']);
  });

  it('deposits once when the same form is submitted twice (a double click)', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'clicker', 'password1');
    await login(agent, 'clicker', 'password1');
    const form = await agent.get('/');
    const fields = { _csrf: csrfFrom(form.text), txId: txIdFrom(form.text), action: 'deposit', amount: '25.50' };
    const [first, second] = await Promise.all([
      agent.post('/transaction').type('form').send(fields),
      agent.post('/transaction').type('form').send(fields),
    ]);
    expect([first.status, second.status]).toEqual([303, 303]);
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $25.50']);
    // Each page render offers a fresh id, so a new deposit is a new transaction.
    expect(txIdFrom((await agent.get('/')).text)).not.toBe(fields.txId);
  });

  it('refuses a deposit whose form has a missing or malformed transaction id, and moves no money', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'forger', 'password1');
    await login(agent, 'forger', 'password1');
    const token = csrfFrom((await agent.get('/')).text);
    for (const txId of [undefined, '', 'short', 'has spaces in it', 'x'.repeat(65)]) {
      const response = await agent
        .post('/transaction')
        .type('form')
        .send({ _csrf: token, action: 'deposit', amount: '10', ...(txId === undefined ? {} : { txId }) });
      expect(response.status).toBe(400);
      expect(response.text).toContain('This form is out of date. Nothing was changed; please try again.');
    }
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $0.00']);
  });

  it.each([
    ['-5', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['abc', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['1e3', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['0', 'The amount must be more than $0.00.'],
    ['0.001', 'Amounts can have at most two decimal places.'],
    ['99999999999', 'The amount is too large.'],
    ['NaN', 'Enter the amount as digits with up to two decimals, like 150 or 19.99.'],
    ['', 'Enter an amount.'],
  ])(
    'refuses the amount %j on its screen, saying why and keeping what was typed, and changes nothing',
    async (amount, reason) => {
      const atm = await setup();
      const agent = request.agent(atm.app);
      await signup(agent, 'careful', 'password1');
      await login(agent, 'careful', 'password1');
      await transact(agent, 'deposit', '5');
      for (const action of ['deposit', 'withdraw']) {
        const result = await transact(agent, action, amount);
        // Answered with a redirect, so reloading the refusal does not submit again.
        expect(result.status).toBe(303);
        expect(messages(result.page)).toContain(reason);
        expect(result.page).toContain('aria-invalid="true"');
        expect(result.page).toContain('aria-describedby="amount-error amount-hint"');
        expect(result.page).toContain(`value="${amount}"`);
      }
      expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $5.00']);
    },
  );

  it('refuses an unknown action with 400', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'hacker', 'password1');
    await login(agent, 'hacker', 'password1');
    const result = await transact(agent, 'transfer', '5');
    expect(result.status).toBe(400);
  });

  it('shows the same message for an unknown user and a wrong password, and escapes what was typed', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'victim', 'password1');
    const attempt = async (username: string) => {
      const token = await tokenFor(agent, '/login');
      return agent.post('/login').type('form').send({ _csrf: token, username, password: 'wrong-password' });
    };
    const wrong = await attempt('victim');
    const unknown = await attempt('<script>alert(1)</script>');
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(messages(wrong.text)).toEqual(messages(unknown.text));
    expect(unknown.text).not.toContain('<script>alert(1)</script>');
    expect(unknown.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('shows why a signup was refused', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'taken', 'password1');
    const token = await tokenFor(agent, '/signup');
    const again = await agent
      .post('/signup')
      .type('form')
      .send({ _csrf: token, username: 'TAKEN', password: 'password1' });
    expect(again.status).toBe(409);
    expect(messages(again.text)).toEqual(['That username is taken. Choose another.']);
    const short = await agent
      .post('/signup')
      .type('form')
      .send({ _csrf: token, username: 'newbie', password: 'short' });
    expect(short.status).toBe(400);
    expect(messages(short.text)).toEqual(['Passwords must be at least 8 characters.']);
  });
});

describe('web security', () => {
  it('refuses a POST without a valid CSRF token with 403 and changes nothing', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'csrfvictim', 'password1');
    await login(agent, 'csrfvictim', 'password1');
    const form = await agent.get('/');
    for (const token of [undefined, '', 'forged', csrfFrom(form.text).replace(/.$/, (c) => (c === '0' ? '1' : '0'))]) {
      const response = await agent
        .post('/transaction')
        .type('form')
        .send({ _csrf: token, txId: txIdFrom(form.text), action: 'deposit', amount: '100' });
      expect(response.status).toBe(403);
      expect(response.text).toContain('This form has expired or did not come from this ATM.');
    }
    const noTokenLogin = await request(atm.app)
      .post('/login')
      .type('form')
      .send({ username: 'csrfvictim', password: 'password1' });
    expect(noTokenLogin.status).toBe(403);
    const noTokenLogout = await agent.post('/logout').type('form').send({});
    expect(noTokenLogout.status).toBe(403);
    expect(messages((await transact(agent, 'balance')).page)).toEqual(['Current balance: $0.00']);
  });

  it('gives a new session id at login, so a planted one is worthless (no fixation)', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'fixated', 'password1');
    const before = await agent.get('/login');
    const plantedCookie = setCookie(before, 'atm1.sid').split(';')[0] ?? '';
    expect(plantedCookie).toMatch(/^atm1\.sid=/);
    const response = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(before.text), username: 'fixated', password: 'password1' });
    expect(response.status).toBe(303);
    const newCookie = setCookie(response, 'atm1.sid').split(';')[0] ?? '';
    expect(newCookie).toMatch(/^atm1\.sid=/);
    expect(newCookie).not.toBe(plantedCookie);
    // The attacker who planted the old id is not logged in.
    const attacker = await request(atm.app).get('/').set('Cookie', plantedCookie);
    expect(attacker.status).toBe(303);
    expect(attacker.headers.location).toBe('/login');
  });

  it('ends the session at logout: the old cookie and the old CSRF token no longer work', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    await signup(agent, 'leaver', 'password1');
    const loginForm = await agent.get('/login');
    const loggedIn = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(loginForm.text), username: 'leaver', password: 'password1' });
    // The thief copies both cookies (the session and the CSRF nonce).
    const stolenCookie = ['atm1.sid', 'atm1.csrf'].map((name) => setCookie(loggedIn, name).split(';')[0]).join('; ');
    // The copied cookie works while the customer is logged in...
    const home = await request(atm.app).get('/').set('Cookie', stolenCookie);
    expect(home.status).toBe(200);
    const token = csrfFrom(home.text);
    await agent.post('/logout').type('form').send({ _csrf: token });
    // ...and not after logout.
    const replay = await request(atm.app).get('/').set('Cookie', stolenCookie);
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toBe('/login');
    const oldForm = await request(atm.app)
      .post('/transaction')
      .set('Cookie', stolenCookie)
      .type('form')
      .send({ _csrf: token, txId: txIdFrom(home.text), action: 'deposit', amount: '5' });
    expect(oldForm.status).toBe(403);
    expect(atm.link.customerCount).toBe(0);
  });

  it('sets strict security headers and cookie flags on every page', async () => {
    const atm = await setup();
    const response = await request(atm.app).get('/login');
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['x-powered-by']).toBeUndefined();
    // An anonymous visitor gets only the CSRF nonce cookie (nothing stored at the ATM).
    expect(setCookie(response, 'atm1.sid')).toBe('');
    const nonce = setCookie(response, 'atm1.csrf');
    expect(nonce).toContain('HttpOnly');
    expect(nonce).toContain('SameSite=Strict');
    const agent = request.agent(atm.app);
    await signup(agent, 'flags', 'password1');
    const loginForm = await agent.get('/login');
    const loggedIn = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(loginForm.text), username: 'flags', password: 'password1' });
    const cookie = setCookie(loggedIn, 'atm1.sid');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toMatch(/Expires=/);
    for (const page of ['/login', '/signup']) {
      const html = (await request(atm.app).get(page)).text;
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\sstyle=/);
      expect(html).not.toMatch(/<style/);
    }
  });

  it('refuses bodies over 10 KB with 413', async () => {
    const atm = await setup();
    const agent = request.agent(atm.app);
    const token = await tokenFor(agent, '/login');
    const response = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: token, username: 'x'.repeat(11_000), password: 'y' });
    expect(response.status).toBe(413);
    expect(response.text).not.toMatch(/at \w+ \(|node_modules|Error:/);
  });

  it('answers an unknown page with a 404 page and no internals', async () => {
    const atm = await setup();
    const response = await request(atm.app).get('/admin/../../etc/passwd');
    expect(response.status).toBe(404);
    expect(response.text).toContain('Page not found');
    expect(response.text).not.toMatch(/at \w+ \(|node_modules|Error:/);
  });

  it('rate limits login attempts from one address', async () => {
    bank = await startTestBank();
    const atm = await startTestAtm(bank, 1, { authRateLimit: { windowMs: 60_000, limit: 3 } });
    atms.push(atm);
    const agent = request.agent(atm.app);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const token = await tokenFor(agent, '/login');
      statuses.push(
        (await agent.post('/login').type('form').send({ _csrf: token, username: 'nobody', password: 'password1' }))
          .status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });

  it('rate limits signups from one address on their own, and a refused signup creates nothing', async () => {
    bank = await startTestBank();
    const atm = await startTestAtm(bank, 1, { signupRateLimit: { windowMs: 60_000, limit: 2 } });
    atms.push(atm);
    const agent = request.agent(atm.app);
    const statuses: number[] = [];
    // A taken name counts too: that answer is what someone enumerating names reads.
    for (const username of ['first', 'first', 'third', 'fourth']) {
      const token = await tokenFor(agent, '/signup');
      statuses.push(
        (await agent.post('/signup').type('form').send({ _csrf: token, username, password: 'password1' })).status,
      );
    }
    expect(statuses).toEqual([303, 409, 429, 429]);
    const client = await bank.connect(2);
    await expect(client.login('third', 'password1')).rejects.toMatchObject({ code: 'ERR_AUTH_FAILED' });
    // Logins from the same address are not held back by it.
    const token = await tokenFor(agent, '/login');
    const login = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: token, username: 'first', password: 'password1' });
    expect(login.status).toBe(303);
  });
});
