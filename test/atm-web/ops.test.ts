/**
 * What an operator asks an ATM: `/healthz` (linked to the bank or not),
 * `/metrics`, and one log line per request that never holds a body or a cookie.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import type { Logger } from '../../runtime/logger.ts';
import { startTestBank, type TestBank } from '../helpers.ts';
import { count, sample } from '../metrics-text.ts';
import { csrfFrom, login, signup, startTestAtm, type TestAtm } from './harness.ts';

let bank: TestBank | null = null;
let atm: TestAtm | null = null;
afterEach(async () => {
  await atm?.close();
  await bank?.stop();
  atm = null;
  bank = null;
});

async function metrics(app: TestAtm['app']): Promise<string> {
  const response = await request(app).get('/metrics');
  expect(response.status).toBe(200);
  expect(response.headers['content-type']).toContain('text/plain');
  return response.text;
}

type Line = { level: string; fields: Record<string, unknown>; message: string };

function capturingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe('an ATM health check', () => {
  it('answers 200 while linked to the bank and 503 once the link drops, setting no cookie', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    const up = await request(atm.app).get('/healthz');
    expect(up.status).toBe(200);
    expect(up.text).toBe('ok: linked to the bank\n');
    expect(up.headers['set-cookie']).toBeUndefined();
    expect(sample(await metrics(atm.app), 'atm_bank_link_up')).toBe(1);

    await bank.stop();
    bank = null;
    await expect.poll(() => atm?.link.available).toBe(false);
    const down = await request(atm.app).get('/healthz');
    expect(down.status).toBe(503);
    expect(down.text).toContain('not linked to the bank');
    expect(sample(await metrics(atm.app), 'atm_bank_link_up')).toBe(0);
  });
});

describe('ATM metrics', () => {
  it('count requests by method, route and status, with unknown paths folded into one label', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    await request(atm.app).get('/login');
    await request(atm.app).get('/login');
    await request(atm.app).get('/no-such-page-1');
    await request(atm.app).get('/no-such-page-2?x=1');
    await request(atm.app).get('/public/styles.css');
    const text = await metrics(atm.app);
    expect(count(text, 'atm_http_requests_total', { method: 'GET', route: '/login', status: '200' })).toBe(2);
    expect(count(text, 'atm_http_requests_total', { method: 'GET', route: 'other', status: '404' })).toBe(2);
    expect(count(text, 'atm_http_requests_total', { method: 'GET', route: '/public', status: '200' })).toBe(1);
    expect(text).not.toContain('no-such-page');
    expect(count(text, 'atm_http_request_duration_seconds_count', { method: 'GET', route: '/login' })).toBe(2);
  });

  it('count CSRF refusals', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    const agent = request.agent(atm.app);
    await agent.get('/login');
    const refused = await agent.post('/login').type('form').send({ _csrf: 'forged', username: 'x', password: 'y' });
    expect(refused.status).toBe(403);
    const text = await metrics(atm.app);
    expect(count(text, 'atm_csrf_refusals_total')).toBe(1);
    expect(count(text, 'atm_http_requests_total', { method: 'POST', route: '/login', status: '403' })).toBe(1);
    expect(count(text, 'atm_rate_limit_refusals_total')).toBe(0);
  });

  it('count rate-limit refusals', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank, 1, { authRateLimit: { windowMs: 60_000, limit: 1 } });
    const agent = request.agent(atm.app);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const token = csrfFrom((await agent.get('/login')).text);
      await agent.post('/login').type('form').send({ _csrf: token, username: 'nobody', password: 'password1' });
    }
    const text = await metrics(atm.app);
    expect(count(text, 'atm_rate_limit_refusals_total')).toBe(1);
    expect(count(text, 'atm_http_requests_total', { method: 'POST', route: '/login', status: '429' })).toBe(1);
    expect(count(text, 'atm_csrf_refusals_total')).toBe(0);
  });

  it('show how many customers are logged in through the ATM', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank);
    const agent = request.agent(atm.app);
    await signup(agent, 'gauged', 'password1');
    expect(sample(await metrics(atm.app), 'atm_customers_logged_in')).toBe(0);
    await login(agent, 'gauged', 'password1');
    expect(sample(await metrics(atm.app), 'atm_customers_logged_in')).toBe(1);
  });
});

describe('the ATM request log', () => {
  it('has one line per request with method, path, status and time, and never a body, cookie or query', async () => {
    bank = await startTestBank();
    const { logger, lines } = capturingLogger();
    atm = await startTestAtm(bank, 1, { logger });
    const agent = request.agent(atm.app);
    await signup(agent, 'logged', 'password1');
    lines.length = 0;
    const token = csrfFrom((await agent.get('/login?loggedOut=1')).text);
    await agent.post('/login').type('form').send({ _csrf: token, username: 'logged', password: 'sesame-secret-9' });

    const requests = lines.filter((line) => line.message === 'request');
    expect(requests.map((line) => [line.fields.method, line.fields.path, line.fields.status])).toEqual([
      ['GET', '/login', 200],
      ['POST', '/login', 401],
    ]);
    for (const line of requests) {
      expect(line.fields.atm).toBe(1);
      expect(typeof line.fields.ms).toBe('number');
    }
    const everything = JSON.stringify(lines);
    expect(everything).not.toContain('sesame-secret-9');
    expect(everything).not.toContain(token);
    expect(everything).not.toContain('atm1.sid');
    expect(everything).not.toContain('loggedOut');
  });
});
