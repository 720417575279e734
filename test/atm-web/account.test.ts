/** The locked-account answer, changing the password, and the statement's pages and CSV, through the ATM's routes. */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { formatTime, processTimeZone } from '../../atm-web/display.ts';
import { LOGIN_FAILED_MESSAGE, WRONG_CURRENT_PASSWORD_MESSAGE } from '../../server/bank.ts';
import { auditEvents, startTestBank, type TestBank } from '../helpers.ts';
import {
  csrfFrom,
  login,
  messages,
  signup,
  startTestAtm,
  tokenFor,
  transact,
  type Agent,
  type TestAtm,
} from './harness.ts';

let bank: TestBank | null = null;
const atms: TestAtm[] = [];
afterEach(async () => {
  for (const atm of atms.splice(0)) await atm.close();
  await bank?.stop();
  bank = null;
});

async function setup(count = 1): Promise<TestAtm[]> {
  bank = await startTestBank();
  for (let i = 1; i <= count; i += 1) atms.push(await startTestAtm(bank, i));
  return atms;
}

async function attemptLogin(agent: Agent, username: string, password: string) {
  const token = await tokenFor(agent, '/login');
  return agent.post('/login').type('form').send({ _csrf: token, username, password });
}

async function changePassword(
  agent: Agent,
  currentPassword: string,
  newPassword: string,
  confirmPassword = newPassword,
) {
  const token = await tokenFor(agent, '/password');
  return agent.post('/password').type('form').send({ _csrf: token, currentPassword, newPassword, confirmPassword });
}

const LOCKED =
  /This account is locked because of too many failed login attempts\. Try again after <time datetime="([^"]+)" data-local>[^<]+<\/time>\./;

describe('a locked account', () => {
  it('is named as locked, with until when, only to someone who gives the right password', async () => {
    const [atm] = await setup();
    const agent = request.agent(atm!.app);
    await signup(agent, 'locked', 'password1');
    for (let i = 0; i < 5; i += 1) expect((await attemptLogin(agent, 'locked', `guess-${i}`)).status).toBe(401);
    const wrong = await attemptLogin(agent, 'locked', 'another-guess');
    expect(wrong.status).toBe(401);
    expect(messages(wrong.text)).toEqual([LOGIN_FAILED_MESSAGE]);
    expect(wrong.text).not.toMatch(/locked because/);
    const right = await attemptLogin(agent, 'locked', 'password1');
    expect(right.status).toBe(423);
    const until = LOCKED.exec(right.text)?.[1];
    expect(until).toBeDefined();
    expect(Date.parse(until ?? '') - Date.now()).toBeGreaterThan(25 * 60_000);
    // Still not logged in.
    expect((await agent.get('/')).headers.location).toBe('/login');
  });
});

describe('changing the password', () => {
  it('refuses a wrong current password, says why, and counts it toward the lockout', async () => {
    const [atm] = await setup();
    const agent = request.agent(atm!.app);
    await signup(agent, 'forgetful', 'password1');
    await login(agent, 'forgetful', 'password1');
    const wrong = await changePassword(agent, 'not-my-password', 'new-password-1');
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain(WRONG_CURRENT_PASSWORD_MESSAGE);
    expect(wrong.text).toMatch(/id="current-password"[^>]*aria-invalid="true"/);
    for (let i = 0; i < 4; i += 1) await changePassword(agent, `not-it-${i}`, 'new-password-1');
    // Five wrong current passwords locked the account, as five wrong logins would.
    const elsewhere = request.agent(atm!.app);
    const locked = await attemptLogin(elsewhere, 'forgetful', 'password1');
    expect(locked.status).toBe(423);
    // And while it is locked the right current password changes nothing.
    expect((await changePassword(agent, 'password1', 'new-password-1')).status).toBe(423);
    const events = auditEvents(bank!.dataDir).filter((event) => event.user === 'forgetful');
    expect(
      events.filter((event) => event.action === 'password_change' && event.outcome === 'bad_password'),
    ).toHaveLength(5);
    expect(events.filter((event) => event.action === 'lockout')).toHaveLength(1);
    expect(events.filter((event) => event.action === 'password_change' && event.outcome === 'ok')).toHaveLength(0);
  });

  it('refuses two different new passwords and a too-short one, changing nothing', async () => {
    const [atm] = await setup();
    const agent = request.agent(atm!.app);
    await signup(agent, 'typo', 'password1');
    await login(agent, 'typo', 'password1');
    const mismatch = await changePassword(agent, 'password1', 'new-password-1', 'new-password-2');
    expect(mismatch.status).toBe(400);
    expect(mismatch.text).toContain('The two new passwords are not the same.');
    const short = await changePassword(agent, 'password1', 'short');
    expect(short.status).toBe(400);
    expect(short.text).toContain('Passwords must be at least 8 characters.');
    expect((await attemptLogin(request.agent(atm!.app), 'typo', 'password1')).status).toBe(303);
  });

  it('re-hashes the password: the old one no longer works, the new one does, and it is audited', async () => {
    const [atm] = await setup();
    const agent = request.agent(atm!.app);
    await signup(agent, 'mover', 'password1');
    await login(agent, 'mover', 'password1');
    const changed = await changePassword(agent, 'password1', 'brand-new-secret');
    expect(changed.status).toBe(303);
    expect(messages((await agent.get('/')).text)).toEqual([
      'Your password was changed. Anywhere else you were logged in has been logged out.',
    ]);
    const old = await attemptLogin(request.agent(atm!.app), 'mover', 'password1');
    expect(old.status).toBe(401);
    expect(messages(old.text)).toEqual([LOGIN_FAILED_MESSAGE]);
    expect((await attemptLogin(request.agent(atm!.app), 'mover', 'brand-new-secret')).status).toBe(303);
    const audited = auditEvents(bank!.dataDir).filter((event) => event.action === 'password_change');
    expect(audited.map((event) => [event.user, event.outcome])).toEqual([['mover', 'ok']]);
    // No password in either audit log.
    expect(JSON.stringify(auditEvents(bank!.dataDir))).not.toMatch(/brand-new-secret|password1/);
  });

  it("ends the customer's other sessions, on this ATM and another, and keeps this one", async () => {
    const [one, two] = await setup(2);
    const here = request.agent(one!.app);
    const sameAtm = request.agent(one!.app);
    const otherAtm = request.agent(two!.app);
    const bystander = request.agent(one!.app);
    await signup(here, 'sharer', 'password1');
    await signup(bystander, 'bystander', 'password1');
    await login(here, 'sharer', 'password1');
    await login(sameAtm, 'sharer', 'password1');
    await login(otherAtm, 'sharer', 'password1');
    await login(bystander, 'bystander', 'password1');
    expect((await changePassword(here, 'password1', 'new-password-1')).status).toBe(303);

    for (const ended of [sameAtm, otherAtm]) {
      const page = await ended.get('/');
      expect(page.status).toBe(303);
      expect(page.headers.location).toBe('/login');
      expect(messages((await ended.get('/login')).text)).toEqual(['Your session has ended. Please log in again.']);
    }
    // The ATM connection that held the ended session still serves everyone else.
    expect((await here.get('/')).status).toBe(200);
    expect(messages((await transact(bystander, 'balance')).page)).toEqual(['Current balance: $0.00']);
    expect(messages((await transact(here, 'deposit', '5')).page)).toEqual(['Deposited $5.00. New balance: $5.00']);
    // The old page's CSRF token died with the old session id.
    const stale = await here.post('/logout').type('form').send({ _csrf: 'stale' });
    expect(stale.status).toBe(403);
  });
});

describe('the statement', () => {
  it('pages back beyond the last 10 with a running balance', async () => {
    const [atm] = await setup();
    const agent = request.agent(atm!.app);
    await signup(agent, 'pager', 'password1');
    await login(agent, 'pager', 'password1');
    for (let i = 1; i <= 12; i += 1) await transact(agent, 'deposit', String(i));
    const first = (await agent.get('/statement')).text;
    const rows = (html: string) =>
      [...html.matchAll(/<td class="num">([^<]+)<\/td><td class="num">([^<]+)<\/td>/g)].map((m) => [m[1], m[2]]);
    expect(rows(first)).toHaveLength(10);
    expect(rows(first)[0]).toEqual(['+$12.00', '$78.00']);
    expect(first).toContain('<a href="/statement?page=2">Older transactions</a>');
    expect(first).not.toContain('Newer transactions');
    const second = (await agent.get('/statement?page=2')).text;
    expect(rows(second)).toEqual([
      ['+$2.00', '$3.00'],
      ['+$1.00', '$1.00'],
    ]);
    expect(second).toContain('<a href="/statement">Newer transactions</a>');
    expect(second).not.toContain('Older transactions');
    expect((await agent.get('/statement?page=abc')).text).toContain('Transactions 1 to 10');
  });

  it("downloads as CSV only the logged-in customer's own transactions", async () => {
    const [atm] = await setup();
    const alice = request.agent(atm!.app);
    const bob = request.agent(atm!.app);
    await signup(alice, 'alice', 'password1');
    await signup(bob, 'bob', 'password1');
    await login(alice, 'alice', 'password1');
    await login(bob, 'bob', 'password1');
    // More than one page of the bank's largest statement answer (20).
    for (let i = 0; i < 25; i += 1) await transact(alice, 'deposit', '1.11');
    await transact(alice, 'withdraw', '0.50');
    await transact(bob, 'deposit', '222.22');
    const csv = await alice.get('/statement.csv');
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe('attachment; filename="statement.csv"');
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('date,type,amount,balance_after');
    expect(lines).toHaveLength(1 + 26);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z,Withdrawal,-0\.50,27\.25$/);
    expect(lines.at(-1)).toMatch(/,Deposit,1\.11,1\.11$/);
    expect(csv.text).not.toContain('222.22');
    const bobs = (await bob.get('/statement.csv')).text.trimEnd().split('\r\n');
    expect(bobs.slice(1).map((line) => line.split(',').slice(1))).toEqual([['Deposit', '222.22', '222.22']]);
    // Nobody logged in: no CSV, just the login page.
    const anonymous = await request(atm!.app).get('/statement.csv');
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.location).toBe('/login');
    expect(csrfFrom((await alice.get('/')).text)).toBeTruthy();
  });
});

describe('the last login in the account summary', () => {
  const LAST_LOGIN = /<dt>Last login<\/dt><dd><time datetime="([^"]+)" data-local>([^<]+)<\/time> at ATM (\d+)<\/dd>/;

  it('says a first login is the first, then shows when and at which ATM the previous login was', async () => {
    const [atmOne, atmTwo] = await setup(2);
    if (!atmOne || !atmTwo) throw new Error('no ATMs');
    const agent = request.agent(atmOne.app);
    await signup(agent, 'returning', 'password1');
    const before = Date.now();
    await login(agent, 'returning', 'password1');
    const after = Date.now();
    const first = await agent.get('/');
    expect(first.text).toContain('<dt>Last login</dt><dd>This is your first login</dd>');
    expect(first.text).not.toMatch(LAST_LOGIN);
    const logout = await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfFrom(first.text) });
    expect(logout.status).toBe(303);

    // Back again, at another ATM: the summary shows the login at ATM 1.
    const elsewhere = request.agent(atmTwo.app);
    await login(elsewhere, 'returning', 'password1');
    const page = (await elsewhere.get('/')).text;
    const [, iso = '', shown = '', atm = ''] = LAST_LOGIN.exec(page) ?? [];
    expect(atm).toBe('1');
    const at = Date.parse(iso);
    expect(at).toBeGreaterThanOrEqual(before - 1_000);
    expect(at).toBeLessThanOrEqual(after + 1_000);
    // In the zone the ATM shows times in, rewritten to the customer's own by public/local-time.js.
    expect(shown).toBe(formatTime(iso, processTimeZone()));
    expect(page).not.toContain('This is your first login');
  });
});
