/**
 * The bank's operator page in a real browser: no console error or CSP
 * violation, no axe-core accessibility violation, and figures that change
 * without a reload as the bank works.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';

import type { Browser, Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { BankClient } from '../../protocol/client.ts';
import { startBankServer, type RunningBank } from '../../server/bank-server.ts';
import { tempDir, uniqueTxId } from '../helpers.ts';
import { launchBrowser, newPage } from './browser.ts';

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let browser: Browser;
let bank: RunningBank | null = null;
const clients: BankClient[] = [];
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await bank?.close();
  bank = null;
});

async function startBank(): Promise<{ bank: RunningBank; url: string }> {
  bank = await startBankServer({
    host: '127.0.0.1',
    port: 0,
    dataDir: tempDir('operator-e2e-'),
    bcryptCost: 4,
    metricsRegistry: new Registry(),
    admin: { host: '127.0.0.1', port: 0, pollMs: 200 },
  });
  if (!bank.adminUrl) throw new Error('no admin port');
  return { bank, url: bank.adminUrl };
}

async function connect(running: RunningBank, atmId: number): Promise<BankClient> {
  const client = await BankClient.connect({
    host: running.host,
    port: running.port,
    credential: running.credentialFor(atmId),
  });
  clients.push(client);
  return client;
}

/** axe-core's WCAG 2.1 A/AA and best-practice rules; evaluated through the debugger, so the page's CSP stays strict. */
async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(`axe
    .run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
    .then((result) => result.violations.map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))`);
  return violations as string[];
}

async function text(page: Page, id: string): Promise<string> {
  return ((await page.locator(`#${id}`).textContent()) ?? '').trim();
}

describe('the operator page in the browser', () => {
  it('updates itself without a reload, with no console error, CSP violation or accessibility violation', async () => {
    const { bank: running, url } = await startBank();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, problems } = await newPage(context);
    let loads = 0;
    page.on('load', () => (loads += 1));
    await page.goto(`${url}/`);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Bank operator');
    expect(await text(page, 'connected-atms')).toBe('0');
    expect(await page.getByText('No ATM is connected.').isVisible()).toBe(true);
    expect(await axeViolations(page)).toEqual([]);

    const client = await connect(running, 4);
    await client.signup('watched', 'password1');
    const session = await client.login('watched', 'password1');
    await client.deposit(session, uniqueTxId(), 31_415);
    await client.withdraw(session, uniqueTxId(), 99_999_999).catch(() => undefined);

    await expect.poll(() => text(page, 'connected-atms'), { timeout: 10_000 }).toBe('1');
    const atmRows = page.locator('#atm-rows').getByRole('row');
    await expect.poll(() => atmRows.count(), { timeout: 10_000 }).toBe(1);
    expect((await atmRows.getByRole('cell').allInnerTexts()).slice(0, 1)).toEqual(['4']);
    expect(await page.getByText('No ATM is connected.').isVisible()).toBe(false);
    const refusal = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'insufficient_funds' }) });
    await expect.poll(() => refusal.count(), { timeout: 10_000 }).toBe(1);
    expect(await refusal.getByRole('cell').allInnerTexts()).toEqual([
      expect.stringMatching(/^\d{2}:\d{2}:\d{2} UTC$/),
      '4',
      'watched',
      'withdraw',
      'insufficient_funds',
    ]);
    expect(await text(page, 'throughput')).toMatch(/^\d+\.\d requests\/s \([1-9]\d* in the last 60 s\)$/);
    expect(await text(page, 'p99')).toMatch(/^\d+\.\d\d ms$/);
    expect(await text(page, 'audit-head')).toMatch(/^line \d+, chain hash [0-9a-f]{16}…$/);
    // No customer's balance or amount anywhere on the page.
    expect(await page.locator('body').innerText()).not.toMatch(/314|\$/);

    expect(loads).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('says so when the bank stops answering, and stays accessible', async () => {
    const { bank: running, url } = await startBank();
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const { page, problems } = await newPage(context);
    await page.goto(`${url}/`);
    await running.close();
    bank = null;
    await expect.poll(() => text(page, 'updated'), { timeout: 10_000 }).toMatch(/^The bank is not answering\. /);
    expect(await axeViolations(page)).toEqual([]);
    // A refused poll is the page working as designed; nothing else may go wrong.
    expect(
      problems.filter((problem) => !problem.includes('/status.json') && !problem.includes('Failed to fetch')),
    ).toEqual([]);
    await context.close();
  });
});
