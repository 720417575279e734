/**
 * The ATM in a real browser, driven only through labels and button names,
 * the way a customer (or a screen reader) finds them. Every page state is
 * scanned with axe-core; console errors and CSP violations fail the test.
 * Set UPDATE_SCREENSHOTS=1 to refresh the screenshots in docs/screenshots/.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.ts';
import { axeViolations } from './axe.ts';
import { launchBrowser, newPage, startSystem, type System } from './browser.ts';

const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS
  ? path.resolve(import.meta.dirname, '../../docs/screenshots')
  : tempDir('atm-shots-');
const WIDTHS = [360, 1280] as const;
const PASSWORD = 'correct horse';

let browser: Browser;
let system: System | null = null;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await system?.close();
  system = null;
});

let userCounter = 0;
const newUser = (): string => `shopper${++userCounter}`;

async function clickAndWait(page: Page, action: () => Promise<void>): Promise<void> {
  await Promise.all([page.waitForNavigation(), action()]);
}

async function press(page: Page, name: string): Promise<void> {
  await clickAndWait(page, () => page.getByRole('button', { name, exact: true }).click());
}

async function follow(page: Page, name: string): Promise<void> {
  await clickAndWait(page, () => page.getByRole('link', { name, exact: true }).click());
}

async function status(page: Page): Promise<string> {
  return ((await page.getByRole('status').first().textContent()) ?? '').trim();
}

async function alertText(page: Page): Promise<string> {
  return ((await page.getByRole('alert').first().textContent()) ?? '').trim();
}

async function heading(page: Page): Promise<string> {
  return ((await page.getByRole('heading', { level: 1 }).textContent()) ?? '').trim();
}

/** A label's value in a definition list (summary, confirmation, receipt). */
async function fact(page: Page, term: string): Promise<string> {
  return ((await page.locator(`dt:text-is("${term}") + dd`).first().textContent()) ?? '').trim();
}

async function shoot(page: Page, name: string, width: number): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-${width}.png`), fullPage: true });
}

/** No axe violations in the page as it is now; `scripts` is false when the page runs none (axe cannot run there either). */
async function accessible(page: Page, state: string): Promise<void> {
  expect(await axeViolations(page), `axe on ${state}`).toEqual([]);
}

/** Nothing sticks out sideways: no horizontal scrolling and no element past the right edge. */
async function noHorizontalScroll(page: Page): Promise<boolean> {
  const fits = await page.evaluate(
    `document.documentElement.scrollWidth <= document.documentElement.clientWidth &&
     [...document.querySelectorAll('.screen *')].every((e) => e.getBoundingClientRect().right <= document.querySelector('.screen').getBoundingClientRect().right + 0.5)`,
  );
  return fits === true;
}

/** Presses Tab until the focused element's text is `name`; fails if it never gets there. */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 30; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(
      'document.activeElement ? (document.activeElement.innerText || document.activeElement.value || "").trim() : ""',
    );
    if (focused === name) {
      // Focus must be visible, not just present.
      const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle');
      expect(outline, `focus ring on ${name}`).not.toBe('none');
      return;
    }
  }
  throw new Error(`could not reach "${name}" with the Tab key`);
}

/** Waits until autofocus has put the cursor in the field with this id. */
async function cursorIn(page: Page, id: string): Promise<void> {
  await page.waitForFunction(`document.activeElement && document.activeElement.id === ${JSON.stringify(id)}`);
}

async function signUpAndLogIn(page: Page, url: string, username: string): Promise<void> {
  await page.goto(`${url}/login`);
  await follow(page, 'Sign up');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await press(page, 'Sign up');
  expect(await status(page)).toBe(`Account created for ${username}. Log in to continue.`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await press(page, 'Log in');
  expect(await heading(page)).toBe(`Welcome, ${username}`);
}

/** Deposits from the transaction page through the deposit screen; leaves the browser on the receipt. */
async function deposit(page: Page, amount: string): Promise<void> {
  await press(page, 'Deposit');
  await page.getByLabel('Amount').fill(amount);
  await press(page, 'Deposit');
  expect(await heading(page)).toBe('Receipt');
}

async function openContext(options: Parameters<Browser['newContext']>[0]): Promise<BrowserContext> {
  return browser.newContext(options);
}

describe('a customer in the browser', () => {
  for (const width of WIDTHS) {
    it(`goes through quick cash, confirmation, receipt, refusal and statement pages at ${width} px, all accessible, with no console error or CSP violation`, async () => {
      system = await startSystem();
      const context = await openContext({ viewport: { width, height: 800 } });
      const { page, problems } = await newPage(context);
      const url = system.atm.url;

      await page.goto(`${url}/login`);
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      await accessible(page, 'login');
      await shoot(page, 'login', width);
      await page.goto(`${url}/signup`);
      await accessible(page, 'signup');
      await shoot(page, 'signup', width);
      const username = newUser();
      await signUpAndLogIn(page, url, username);
      expect(await status(page)).toBe('Login successful');
      expect(await fact(page, 'Available balance')).toBe('$0.00');
      // Nothing to take out yet: every quick cash amount is unavailable, and the page says why.
      for (const amount of ['$20', '$40', '$60', '$100', '$200'])
        expect(await page.getByRole('button', { name: amount, exact: true }).isDisabled()).toBe(true);
      await accessible(page, 'transaction page, empty account');

      await press(page, 'Deposit');
      expect(await heading(page)).toBe('Deposit');
      await accessible(page, 'deposit screen');
      await page.getByLabel('Amount').fill('150');
      await press(page, 'Deposit');
      expect(await status(page)).toBe('Deposited $150.00. New balance: $150.00');
      await accessible(page, 'deposit receipt');
      await follow(page, 'Another transaction');

      expect(await fact(page, 'Available balance')).toBe('$150.00');
      expect(await page.getByRole('button', { name: '$200', exact: true }).isDisabled()).toBe(true);
      expect(await page.getByRole('button', { name: '$100', exact: true }).isDisabled()).toBe(false);
      await press(page, '$40');
      expect(await heading(page)).toBe('Confirm withdrawal');
      expect(await fact(page, 'Amount')).toBe('$40.00');
      expect(await fact(page, 'Balance after')).toBe('$110.00');
      await accessible(page, 'withdrawal confirmation');
      await shoot(page, 'confirm', width);
      await press(page, 'Confirm withdrawal');
      expect(await status(page)).toBe('Withdrew $40.00. New balance: $110.00');
      expect(await fact(page, 'Reference')).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
      expect(await fact(page, 'ATM')).toBe('1');
      expect(await fact(page, 'Balance after')).toBe('$110.00');
      await accessible(page, 'withdrawal receipt');
      expect(await noHorizontalScroll(page)).toBe(true);
      await shoot(page, 'receipt', width);
      // Reloading the receipt repeats nothing.
      await page.reload();
      await follow(page, 'Another transaction');
      expect(await fact(page, 'Available balance')).toBe('$110.00');

      await press(page, 'Check balance');
      expect(await status(page)).toBe('Current balance: $110.00');
      expect(await noHorizontalScroll(page)).toBe(true);
      await accessible(page, 'transaction page after a balance check');
      await shoot(page, 'transaction', width);

      // Cancel leaves the account alone.
      await press(page, '$100');
      await press(page, 'Cancel');
      expect(await status(page)).toBe('Withdrawal cancelled. Nothing was withdrawn.');
      expect(await fact(page, 'Available balance')).toBe('$110.00');

      await press(page, 'Withdraw');
      expect(await heading(page)).toBe('Withdraw');
      await accessible(page, 'withdraw screen');
      await page.getByLabel('Amount').fill('150');
      await press(page, 'Withdraw');
      expect(await alertText(page)).toBe('Insufficient funds: $110.00 available');
      const amountField = page.getByLabel('Amount');
      expect(await amountField.inputValue()).toBe('150');
      expect(await amountField.getAttribute('aria-invalid')).toBe('true');
      expect(await amountField.evaluate((input) => input.getAttribute('aria-describedby'))).toContain('amount-error');
      await accessible(page, 'refused withdrawal');
      expect(await noHorizontalScroll(page)).toBe(true);
      await shoot(page, 'amount-error', width);
      // The refusal was reached by a redirect: a reload is a plain GET that asks and changes nothing.
      await page.reload();
      expect(await page.getByRole('alert').count()).toBe(0);
      await page.getByLabel('Amount').fill('1e3');
      await press(page, 'Withdraw');
      expect(await alertText(page)).toBe('Enter the amount as digits with up to two decimals, like 150 or 19.99.');

      // Nine more deposits: eleven movements, so the statement has two pages.
      for (let i = 1; i <= 9; i += 1) {
        await page.goto(`${url}/deposit`);
        await page.getByLabel('Amount').fill(String(i));
        await press(page, 'Deposit');
      }
      await follow(page, 'Another transaction');
      await follow(page, 'Statement');
      expect(await heading(page)).toBe('Statement');
      expect(await page.getByRole('columnheader').allTextContents()).toEqual(['Date', 'Type', 'Amount', 'Balance']);
      const rows = page.getByRole('row').filter({ has: page.getByRole('cell') });
      const rowTexts = async (): Promise<string[][]> =>
        Promise.all((await rows.all()).map((row) => row.getByRole('cell').allInnerTexts()));
      const firstPage = await rowTexts();
      expect(firstPage).toHaveLength(10);
      expect(firstPage[0]?.slice(1)).toEqual(['Deposit', '+$9.00', '$155.00']);
      // Local time, in words, with its zone.
      for (const row of firstPage) expect(row[0]).toMatch(/^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2} [AP]M \S+$/);
      expect(await noHorizontalScroll(page)).toBe(true);
      await accessible(page, 'statement, newest page');
      await shoot(page, 'statement', width);
      await follow(page, 'Older transactions');
      expect((await rowTexts()).map((row) => row.slice(1))).toEqual([['Deposit', '+$150.00', '$150.00']]);
      await accessible(page, 'statement, older page');
      await follow(page, 'Newer transactions');
      expect(await rows.count()).toBe(10);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download CSV' }).click(),
      ]);
      const csv = fs
        .readFileSync((await download.path()) ?? '', 'utf8')
        .trimEnd()
        .split('\r\n');
      expect(csv[0]).toBe('date,type,amount,balance_after');
      expect(csv).toHaveLength(1 + 11);

      await page.goto(`${url}/password`);
      await accessible(page, 'change password');
      await page.getByLabel('Current password').fill('not my password');
      await page.getByLabel('New password', { exact: true }).fill('a new password');
      await page.getByLabel('New password again').fill('a new password');
      await press(page, 'Change password');
      expect(await page.getByLabel('Current password').getAttribute('aria-invalid')).toBe('true');
      await accessible(page, 'change password refused');
      await page.getByLabel('Current password').fill(PASSWORD);
      await page.getByLabel('New password', { exact: true }).fill('a new password');
      await page.getByLabel('New password again').fill('a new password');
      await press(page, 'Change password');
      expect(await status(page)).toBe(
        'Your password was changed. Anywhere else you were logged in has been logged out.',
      );

      await page.goto(`${url}/help`);
      await accessible(page, 'help');
      await page.goto(`${url}/security`);
      await accessible(page, 'security notice');

      await page.goto(`${url}/`);
      await press(page, 'Log out');
      expect(await status(page)).toBe('You have been logged out.');
      await accessible(page, 'logged out');
      await page.goto(`${url}/`);
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.goto(`${url}/no-such-page`);
      await accessible(page, 'not found');
      await shoot(page, 'not-found', width);
      expect(problems).toEqual([]);
      await context.close();
      // Generous: about sixty pages with an axe scan on many; this catches hangs, not speed.
    }, 120_000);
  }

  it('would notice a CSP violation: an injected inline script is blocked and reported', async () => {
    system = await startSystem();
    const context = await openContext({});
    const { page, problems } = await newPage(context);
    await page.goto(`${system.atm.url}/login`);
    await page.evaluate(
      "const s = document.createElement('script'); s.textContent = 'window.pwned = 1'; document.body.append(s)",
    );
    expect(await page.evaluate('window.pwned === undefined')).toBe(true);
    await expect.poll(() => problems.join('\n')).toContain('CSP violation: script-src');
    await context.close();
  });

  it('would notice an accessibility violation: axe reports an unlabelled field', async () => {
    system = await startSystem();
    const context = await openContext({});
    const { page } = await newPage(context);
    await page.goto(`${system.atm.url}/login`);
    await page.evaluate("document.querySelector('label[for=password]').remove()");
    expect((await axeViolations(page)).join('\n')).toContain('label');
    await context.close();
  });

  it('does the whole journey with the keyboard alone, and Enter only ever does the action of its screen', async () => {
    system = await startSystem();
    const context = await openContext({ viewport: { width: 1280, height: 800 } });
    const { page, problems } = await newPage(context);
    const username = newUser();
    await page.goto(`${system.atm.url}/login`);
    await cursorIn(page, 'username');
    await tabTo(page, 'Sign up');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    await cursorIn(page, 'username');
    await page.keyboard.type(username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe(`Account created for ${username}. Log in to continue.`);
    await cursorIn(page, 'username');
    await page.keyboard.type(username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Login successful');

    // Deposit screen: the cursor starts in Amount, and Enter deposits.
    await tabTo(page, 'Deposit');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    await cursorIn(page, 'amount');
    await page.keyboard.type('150');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Deposited $150.00. New balance: $150.00');
    await tabTo(page, 'Another transaction');
    await clickAndWait(page, () => page.keyboard.press('Enter'));

    // Quick cash, then confirm.
    await tabTo(page, '$40');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await heading(page)).toBe('Confirm withdrawal');
    await tabTo(page, 'Confirm withdrawal');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Withdrew $40.00. New balance: $110.00');
    await tabTo(page, 'Another transaction');
    await clickAndWait(page, () => page.keyboard.press('Enter'));

    // Withdraw screen: Enter in Amount asks to withdraw (never deposits).
    await tabTo(page, 'Withdraw');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    await cursorIn(page, 'amount');
    await page.keyboard.type('10');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await heading(page)).toBe('Confirm withdrawal');
    await tabTo(page, 'Cancel');
    await clickAndWait(page, () => page.keyboard.press('Space'));
    expect(await status(page)).toBe('Withdrawal cancelled. Nothing was withdrawn.');

    await tabTo(page, 'Check balance');
    await clickAndWait(page, () => page.keyboard.press('Space'));
    expect(await status(page)).toBe('Current balance: $110.00');
    await tabTo(page, 'Statement');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await heading(page)).toBe('Statement');
    await tabTo(page, 'Log out');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('You have been logged out.');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('works with JavaScript turned off: quick cash, confirmation, receipt, refusal, statement pages, password change, lockout and logout', async () => {
    system = await startSystem();
    const context = await openContext({ viewport: { width: 360, height: 740 }, javaScriptEnabled: false });
    const { page, problems } = await newPage(context);
    const url = system.atm.url;
    const username = newUser();
    await signUpAndLogIn(page, url, username);
    await deposit(page, '150');
    expect(await status(page)).toBe('Deposited $150.00. New balance: $150.00');
    await follow(page, 'Another transaction');
    await press(page, '$60');
    expect(await fact(page, 'Balance after')).toBe('$90.00');
    await press(page, 'Confirm withdrawal');
    expect(await status(page)).toBe('Withdrew $60.00. New balance: $90.00');
    // Without scripts the time is the ATM's own, named.
    expect(await page.locator('time').textContent()).toMatch(/\d{1,2}:\d{2} [AP]M \S+$/);
    await follow(page, 'Another transaction');
    await press(page, 'Withdraw');
    await page.getByLabel('Amount').fill('100');
    await press(page, 'Withdraw');
    expect(await alertText(page)).toBe('Insufficient funds: $90.00 available');
    expect(await page.getByLabel('Amount').inputValue()).toBe('100');
    for (let i = 1; i <= 9; i += 1) {
      await page.goto(`${url}/deposit`);
      await page.getByLabel('Amount').fill(String(i));
      await press(page, 'Deposit');
    }
    await page.goto(`${url}/statement`);
    const rows = page.getByRole('row').filter({ has: page.getByRole('cell') });
    expect(await rows.count()).toBe(10);
    await follow(page, 'Older transactions');
    expect(await rows.count()).toBe(1);
    await follow(page, 'Newer transactions');
    expect(await rows.count()).toBe(10);
    await page.goto(`${url}/password`);
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill('a new password');
    await page.getByLabel('New password again').fill('a new password');
    await press(page, 'Change password');
    expect(await status(page)).toBe('Your password was changed. Anywhere else you were logged in has been logged out.');
    await press(page, 'Log out');
    expect(await status(page)).toBe('You have been logged out.');
    // Five wrong passwords lock the account; only the right one is then told so, and until when.
    for (let i = 0; i < 6; i += 1) {
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(`wrong guess ${i}`);
      await press(page, 'Log in');
      expect(await alertText(page)).toBe(
        'Invalid username or password. After 5 failed attempts an account is locked for 30 minutes.',
      );
    }
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill('a new password');
    await press(page, 'Log in');
    expect(await alertText(page)).toMatch(
      /^This account is locked because of too many failed login attempts\. Try again after [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2} [AP]M \S+\.$/,
    );
    expect(problems).toEqual([]);
    await context.close();
  });

  it("shows times in the customer's own zone when scripts run", async () => {
    system = await startSystem({ timeZone: 'UTC' });
    const context = await openContext({ timezoneId: 'America/New_York' });
    const { page, problems } = await newPage(context);
    await signUpAndLogIn(page, system.atm.url, newUser());
    await deposit(page, '5');
    const time = page.locator('time');
    expect(await time.textContent()).toMatch(/ [AP]M E[SD]T$/);
    const iso = (await time.getAttribute('datetime')) ?? '';
    const expected = new Intl.DateTimeFormat('en-US', {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: 'numeric',
      minute: '2-digit',
      timeZoneName: 'short',
      timeZone: 'America/New_York',
    }).format(new Date(iso));
    expect(await time.textContent()).toBe(expected);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('tells the customer when the bank goes away, and works again, still logged in, when it is back', async () => {
    system = await startSystem();
    const context = await openContext({ viewport: { width: 1280, height: 800 } });
    const { page, problems } = await newPage(context);
    const username = newUser();
    await signUpAndLogIn(page, system.atm.url, username);
    await deposit(page, '40');
    await follow(page, 'Another transaction');

    await system.stopBank();
    await press(page, 'Check balance');
    expect(await heading(page)).toBe('Bank unavailable');
    expect(await alertText(page)).toBe('The bank is unavailable, try again shortly.');
    await accessible(page, 'bank unavailable');
    await shoot(page, 'bank-unavailable', 1280);

    await system.restartBank();
    await follow(page, 'Try again');
    // Still logged in: the ATM reopened the customer's session on the new connection with its ticket.
    expect(await fact(page, 'Available balance')).toBe('$40.00');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('counts down before the idle timeout, lets the customer stay with the keyboard, then asks them to log in again', async () => {
    // 12 s idle: the warning shows for the last 6 s, time enough to check it even on a busy machine.
    const idleMs = 12_000;
    system = await startSystem({ sessionIdleMs: idleMs });
    const context = await openContext({ viewport: { width: 360, height: 740 } });
    const { page, problems } = await newPage(context);
    await signUpAndLogIn(page, system.atm.url, newUser());
    const lastRequest = Date.now();
    const warning = page.getByRole('alert').filter({ hasText: 'Your session will end in' });
    expect(await warning.isVisible()).toBe(false);
    await warning.waitFor({ state: 'visible', timeout: idleMs });
    const countdown = page.getByRole('timer');
    const first = (await countdown.textContent()) ?? '';
    expect(first).toMatch(/^0:0[0-6]$/);
    await expect.poll(async () => (await countdown.textContent()) ?? '', { timeout: 3_000 }).not.toBe(first);
    await shoot(page, 'session-expiring', 360);

    // Stay logged in, by keyboard: focus the link and press Enter.
    await page.getByRole('link', { name: 'Stay logged in' }).focus();
    await page.keyboard.press('Enter');
    await warning.waitFor({ state: 'hidden', timeout: 3_000 });
    expect(await page.locator('#session-status').textContent()).toBe(
      'You are still logged in. Your session was extended.',
    );
    // Past the original deadline the customer is still logged in (the server's idle clock was pushed out).
    await page.waitForTimeout(Math.max(0, lastRequest + idleMs + 500 - Date.now()));
    expect(new URL(page.url()).pathname).toBe('/');
    await page.reload();
    expect(await heading(page)).toMatch(/^Welcome, /);
    // The warning state, scanned now that nothing is racing the clock.
    await warning.waitFor({ state: 'visible', timeout: idleMs });
    await accessible(page, 'session warning');
    // Then, left alone, the session ends and the page says so.
    await page.waitForURL('**/login?expired=1', { timeout: idleMs });
    expect(await status(page)).toBe('Your session ended because of inactivity. Please log in again.');
    expect(problems).toEqual([]);
    await context.close();
  });
});
