import path from 'node:path';

import request from 'supertest';
import { expect } from 'vitest';

import { createApp } from '../../atm-web/app.ts';
import type { AuditWitness } from '../../atm-web/audit-witness.ts';
import { BankLink, type BankEndpoint } from '../../atm-web/bank-link.ts';
import { SqliteSessionStore } from '../../atm-web/session-store.ts';
import type { AtmCredential } from '../../protocol/handshake.ts';
import { silentLogger, type Logger } from '../../runtime/logger.ts';
import { tempDir, type TestBank } from '../helpers.ts';

export type TestAtm = {
  app: ReturnType<typeof createApp>;
  link: BankLink;
  close(): Promise<void>;
};

/** ATM N's web app wired to a real bank link, with a temp session store; nothing listens. */
export async function startTestAtm(
  bank: TestBank,
  atmId = 1,
  options: {
    port?: number;
    authRateLimit?: { windowMs: number; limit: number };
    signupRateLimit?: { windowMs: number; limit: number };
    requestTimeoutMs?: number;
    logger?: Logger;
    inDoubtBudgetMs?: number;
    witness?: AuditWitness;
  } = {},
): Promise<TestAtm> {
  return startAtmApp(
    [{ host: '127.0.0.1', port: options.port ?? bank.bank.port }],
    bank.bank.credentialFor(atmId),
    options,
  );
}

/** Like `startTestAtm`, for a bank of several nodes (the link fails over between them). */
export async function startAtmApp(
  banks: BankEndpoint[],
  credential: AtmCredential,
  options: {
    authRateLimit?: { windowMs: number; limit: number };
    signupRateLimit?: { windowMs: number; limit: number };
    requestTimeoutMs?: number;
    bankWaitMs?: number;
    inDoubtBudgetMs?: number;
    logger?: Logger;
    witness?: AuditWitness;
  } = {},
): Promise<TestAtm> {
  const link = new BankLink({
    banks,
    credential,
    logger: silentLogger,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    ...(options.inDoubtBudgetMs === undefined ? {} : { inDoubtBudgetMs: options.inDoubtBudgetMs }),
    ...(options.witness ? { witness: options.witness } : {}),
  });
  await link.start();
  const store = new SqliteSessionStore(path.join(tempDir(), 'sessions.db'), 15 * 60_000);
  const app = createApp({
    atmId: credential.atmId,
    bank: link,
    sessionStore: store,
    sessionSecret: 'test-session-secret-not-used-in-production',
    authRateLimit: options.authRateLimit ?? { windowMs: 60_000, limit: 1_000 },
    signupRateLimit: options.signupRateLimit,
    ...(options.logger ? { logger: options.logger } : {}),
    bankWaitMs: options.bankWaitMs,
  });
  return {
    app,
    link,
    async close() {
      await link.stop();
      store.close();
    },
  };
}

export type Agent = ReturnType<typeof request.agent>;

/** The `name=value` pair of the cookie a response sets under `name`, or '' when it sets none. */
export function setCookie(response: { headers: Record<string, unknown> }, name: string): string {
  const header = response.headers['set-cookie'];
  const all = Array.isArray(header) ? header.map(String) : header === undefined ? [] : [String(header)];
  return all.find((cookie) => cookie.startsWith(`${name}=`)) ?? '';
}

export function csrfFrom(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no CSRF token on the page');
  return match[1];
}

export function txIdFrom(html: string): string {
  const match = /name="txId" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no transaction id on the page');
  return match[1];
}

/** GETs a page and returns its CSRF token. */
export async function tokenFor(agent: Agent, page: string): Promise<string> {
  return csrfFrom((await agent.get(page)).text);
}

export async function signup(agent: Agent, username: string, password: string): Promise<void> {
  const token = await tokenFor(agent, '/signup');
  const response = await agent.post('/signup').type('form').send({ _csrf: token, username, password });
  expect(response.status, response.text).toBe(303);
}

export async function login(agent: Agent, username: string, password: string): Promise<void> {
  const token = await tokenFor(agent, '/login');
  const response = await agent.post('/login').type('form').send({ _csrf: token, username, password });
  expect(response.status, response.text).toBe(303);
  expect(response.headers.location).toBe('/');
}

/**
 * Submits the transaction form as the page offers it, confirming a withdrawal
 * when the ATM asks; returns the status of the POST and the page shown after
 * the redirects (the receipt, or the screen that says why not). `beforeMoney`
 * runs just before the request that makes the bank move money (tests that
 * tamper with that one request arm themselves there).
 */
export async function transact(
  agent: Agent,
  action: string,
  amount = '',
  beforeMoney?: () => void,
): Promise<{ status: number; page: string }> {
  const form = await agent.get('/');
  if (form.status !== 200) return { status: form.status, page: form.text };
  const fields = { _csrf: csrfFrom(form.text), txId: txIdFrom(form.text), action, amount };
  if (action !== 'withdraw') beforeMoney?.();
  const response = await agent.post('/transaction').type('form').send(fields);
  if (response.status !== 303) return { status: response.status, page: response.text };
  if (response.headers.location === '/withdraw/confirm') {
    const confirmed = await confirmWithdrawal(agent, beforeMoney);
    return { status: confirmed.status, page: confirmed.text };
  }
  const page = await agent.get(response.headers.location ?? '/');
  return { status: response.status, page: page.text };
}

/**
 * Presses "Confirm withdrawal" on the confirmation page; returns the status
 * and page after the redirect (or the refusal, if there was no confirmation).
 */
export async function confirmWithdrawal(
  agent: Agent,
  beforeMoney?: () => void,
): Promise<{ status: number; text: string; txId: string }> {
  const confirmation = await agent.get('/withdraw/confirm');
  if (confirmation.status === 303) {
    const refusal = await agent.get(confirmation.headers.location ?? '/');
    return { status: 303, text: refusal.text, txId: '' };
  }
  if (confirmation.status !== 200) return { status: confirmation.status, text: confirmation.text, txId: '' };
  const txId = txIdFrom(confirmation.text);
  beforeMoney?.();
  const response = await agent
    .post('/withdraw/confirm')
    .type('form')
    .send({ _csrf: csrfFrom(confirmation.text), txId });
  if (response.status !== 303) return { status: response.status, text: response.text, txId };
  const page = await agent.get(response.headers.location ?? '/');
  return { status: 303, text: page.text, txId };
}

/** The text of the page's result message(s). */
export function messages(html: string): string[] {
  return [...html.matchAll(/<p class="message message-\w+"[^>]*>([^<]*)<\/p>/g)].map((match) => match[1] ?? '');
}
