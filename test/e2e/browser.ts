/**
 * Real Chromium (Debian's /usr/bin/chromium) driven by playwright-core,
 * against a real bank and a real ATM on ephemeral ports and a temp data dir.
 */
import fs from 'node:fs';

import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

import { startAtm, type RunningAtm } from '../../atm-web/atm.ts';
import { Terminals } from '../../server/terminals.ts';
import { startBankServer, type RunningBank } from '../../server/bank-server.ts';
import { tempDir } from '../helpers.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}

export type System = {
  dataDir: string;
  bank: RunningBank;
  atm: RunningAtm;
  stopBank(): Promise<void>;
  restartBank(): Promise<void>;
  close(): Promise<void>;
};

export async function startSystem(options: { sessionIdleMs?: number; timeZone?: string } = {}): Promise<System> {
  const dataDir = tempDir('atm-e2e-');
  const startBank = (port: number) => startBankServer({ host: '127.0.0.1', port, dataDir, bcryptCost: 4 });
  let bank: RunningBank | null = await startBank(0);
  const bankPort = bank.port;
  // ATM 1 shares the bank's data directory, so it gets its key file there, as `npm start` does.
  Terminals.open(dataDir).provision(1);
  const atm = await startAtm({
    atmId: 1,
    banks: [{ host: '127.0.0.1', port: bankPort }],
    dataDir,
    host: '127.0.0.1',
    port: 0,
    link: { initialBackoffMs: 50, maxBackoffMs: 250 },
    ...(options.sessionIdleMs === undefined ? {} : { sessionIdleMs: options.sessionIdleMs }),
    ...(options.timeZone === undefined ? {} : { timeZone: options.timeZone }),
  });
  const system: System = {
    dataDir,
    get bank() {
      if (!bank) throw new Error('bank is down');
      return bank;
    },
    atm,
    async stopBank() {
      await bank?.close();
      bank = null;
    },
    async restartBank() {
      bank = await startBank(bankPort);
      await atm.link.waitUntilAvailable(10_000);
    },
    async close() {
      await atm.close();
      await bank?.close();
    },
  };
  return system;
}

/**
 * Console errors, page errors, CSP violations and failed subresources seen by
 * a page. A page itself answering 400, 404 or 503 is the app working as
 * designed, so failed *document* loads are not problems; anything else is.
 */
export function watchForProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() !== 'error' && message.type() !== 'warning') return;
    if (message.text().startsWith('Failed to load resource')) return; // judged by the response listener below
    problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && response.request().resourceType() !== 'document') {
      problems.push(`${response.status()} for ${response.request().resourceType()} ${response.url()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

/** A page that reports CSP violations through a listener registered before any script runs. */
export async function newPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));`,
  });
  return { page, problems: watchForProblems(page) };
}
