/**
 * The ATM in a real browser, driven only through labels and button names,
 * the way a customer (or a screen reader) finds them.
 * Set UPDATE_SCREENSHOTS=1 to refresh the screenshots in docs/screenshots/.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.ts';
import { launchBrowser, newPage, startSystem, type System } from './browser.ts';

const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS
  ? path.resolve(import.meta.dirname, '../../docs/screenshots')
  : tempDir('atm-shots-');
const WIDTHS = [360, 1280] as const;

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

async function status(page: Page): Promise<string> {
  return ((await page.getByRole('status').textContent()) ?? '').trim();
}

async function alertText(page: Page): Promise<string> {
  return ((await page.getByRole('alert').first().textContent()) ?? '').trim();
}

async function shoot(page: Page, name: string, width: number): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-${width}.png`), fullPage: true });
}

/** Nothing sticks out sideways: no horizontal scrolling and no element past the right edge. */
async function noHorizontalScroll(page: Page): Promise<boolean> {
  const fits = await page.evaluate(
    `document.documentElement.scrollWidth <= document.documentElement.clientWidth &&
     [...document.querySelectorAll('main *')].every((e) => e.getBoundingClientRect().right <= document.querySelector('main').getBoundingClientRect().right + 0.5)`,
  );
  return fits === true;
}

/** Presses Tab until the focused element's text is `name`; fails if it never gets there. */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 20; i += 1) {
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
  await clickAndWait(page, () => page.getByRole('link', { name: 'Sign up' }).click());
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('correct horse');
  await press(page, 'Sign up');
  expect(await status(page)).toBe(`Account created for ${username}. Log in to continue.`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('correct horse');
  await press(page, 'Log in');
  expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`Welcome, ${username}`);
}

describe('a customer in the browser', () => {
  for (const width of WIDTHS) {
    it(`does the whole journey at ${width} px wide with no console error or CSP violation`, async () => {
      system = await startSystem();
      const context = await browser.newContext({ viewport: { width, height: 800 } });
      const { page, problems } = await newPage(context);
      const url = system.atm.url;

      await page.goto(`${url}/login`);
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      await shoot(page, 'login', width);
      await page.goto(`${url}/signup`);
      await shoot(page, 'signup', width);
      const username = newUser();
      await signUpAndLogIn(page, url, username);
      expect(await status(page)).toBe('Login successful');

      await page.getByLabel('Amount').fill('150');
      await press(page, 'Deposit');
      expect(await status(page)).toBe('Deposited $150.00. New balance: $150.00');
      await page.getByLabel('Amount').fill('50');
      await press(page, 'Withdraw');
      expect(await status(page)).toBe('Withdrew $50.00. New balance: $100.00');
      await press(page, 'Check balance');
      expect(await status(page)).toBe('Current balance: $100.00');
      await shoot(page, 'transaction', width);
      await page.getByLabel('Amount').fill('150');
      await press(page, 'Withdraw');
      expect(await status(page)).toBe('Insufficient funds');
      await page.getByLabel('Amount').fill('1e3');
      await press(page, 'Deposit');
      expect(await alertText(page)).toBe('Enter the amount as digits with up to two decimals, like 150 or 19.99.');
      await shoot(page, 'amount-error', width);
      expect(await noHorizontalScroll(page)).toBe(true);

      await clickAndWait(page, () => page.getByRole('link', { name: 'Mini statement' }).click());
      expect(await page.getByRole('columnheader').allTextContents()).toEqual(['Date', 'Type', 'Amount', 'Balance']);
      const rows = page.getByRole('row').filter({ has: page.getByRole('cell') });
      const cells = await Promise.all((await rows.all()).map((row) => row.getByRole('cell').allInnerTexts()));
      expect(cells.map((row) => row.slice(1))).toEqual([
        ['Withdrawal', '−$50.00', '$100.00'],
        ['Deposit', '+$150.00', '$150.00'],
      ]);
      for (const row of cells) expect(row[0]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/);
      expect(await noHorizontalScroll(page)).toBe(true);
      await shoot(page, 'statement', width);

      await press(page, 'Log out');
      expect(await status(page)).toBe('You have been logged out.');
      await page.goto(`${url}/`);
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.goto(`${url}/no-such-page`);
      await shoot(page, 'not-found', width);
      expect(problems).toEqual([]);
      await context.close();
    });
  }

  it('would notice a CSP violation: an injected inline script is blocked and reported', async () => {
    system = await startSystem();
    const context = await browser.newContext();
    const { page, problems } = await newPage(context);
    await page.goto(`${system.atm.url}/login`);
    await page.evaluate(
      "const s = document.createElement('script'); s.textContent = 'window.pwned = 1'; document.body.append(s)",
    );
    expect(await page.evaluate('window.pwned === undefined')).toBe(true);
    await expect.poll(() => problems.join('\n')).toContain('CSP violation: script-src');
    await context.close();
  });

  it('does the whole journey with the keyboard alone', async () => {
    system = await startSystem();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const { page, problems } = await newPage(context);
    const username = newUser();
    await page.goto(`${system.atm.url}/login`);
    await cursorIn(page, 'username');
    await tabTo(page, 'Sign up');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    // Signup puts the cursor in Username.
    await cursorIn(page, 'username');
    await page.keyboard.type(username);
    await page.keyboard.press('Tab');
    await page.keyboard.type('correct horse');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe(`Account created for ${username}. Log in to continue.`);
    await cursorIn(page, 'username');
    await page.keyboard.type(username);
    await page.keyboard.press('Tab');
    await page.keyboard.type('correct horse');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Login successful');

    // The cursor starts in Amount; Enter deposits.
    await cursorIn(page, 'amount');
    await page.keyboard.type('150');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Deposited $150.00. New balance: $150.00');
    await cursorIn(page, 'amount');
    await page.keyboard.type('50');
    await tabTo(page, 'Withdraw');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Withdrew $50.00. New balance: $100.00');
    await cursorIn(page, 'amount');
    await tabTo(page, 'Check balance');
    await clickAndWait(page, () => page.keyboard.press('Space'));
    expect(await status(page)).toBe('Current balance: $100.00');
    await cursorIn(page, 'amount');
    await page.keyboard.type('150');
    await tabTo(page, 'Withdraw');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('Insufficient funds');
    await cursorIn(page, 'amount');
    await tabTo(page, 'Mini statement');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Mini statement');
    await tabTo(page, 'Log out');
    await clickAndWait(page, () => page.keyboard.press('Enter'));
    expect(await status(page)).toBe('You have been logged out.');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('tells the customer when the bank goes away, and works again when it is back', async () => {
    system = await startSystem();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const { page, problems } = await newPage(context);
    const username = newUser();
    await signUpAndLogIn(page, system.atm.url, username);
    await page.getByLabel('Amount').fill('40');
    await press(page, 'Deposit');

    await system.stopBank();
    await press(page, 'Check balance');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Bank unavailable');
    expect(await alertText(page)).toBe('The bank is unavailable, try again shortly.');
    await shoot(page, 'bank-unavailable', 1280);

    await system.restartBank();
    await clickAndWait(page, () => page.getByRole('link', { name: 'Try again' }).click());
    // The bank session died with the old connection: log in again; the money is there.
    expect(await status(page)).toBe('Your session has ended. Please log in again.');
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill('correct horse');
    await press(page, 'Log in');
    await press(page, 'Check balance');
    expect(await status(page)).toBe('Current balance: $40.00');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('warns before the idle timeout and then asks the customer to log in again', async () => {
    system = await startSystem({ sessionIdleMs: 4_000 });
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const { page, problems } = await newPage(context);
    await signUpAndLogIn(page, system.atm.url, newUser());
    const warning = page.getByText('Your session will end soon because of inactivity.');
    expect(await warning.isVisible()).toBe(false);
    await warning.waitFor({ state: 'visible', timeout: 5_000 });
    await shoot(page, 'session-expiring', 360);
    await page.waitForURL('**/login?expired=1', { timeout: 6_000 });
    expect(await status(page)).toBe('Your session ended because of inactivity. Please log in again.');
    expect(problems).toEqual([]);
    await context.close();
  });
});
