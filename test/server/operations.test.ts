/**
 * The bank as its operators see it: the admin port's /healthz, /metrics and
 * operator page, and the console lines for failed logins and lockouts,
 * against a real bank, ledger and audit log.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { BankClient } from '../../protocol/client.ts';
import { BankError } from '../../protocol/errors.ts';
import type { Notice } from '../../protocol/messages.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { BankServerOptions } from '../../server/bank-server.ts';
import { LEDGER_FILE } from '../../server/data-dir.ts';
import { auditEvents, startTestBank, uniqueTxId, type TestBank } from '../helpers.ts';
import { count, sample } from '../metrics-text.ts';
import { SKIP_POSTGRES_REASON, createTestDatabase, type TestDatabase } from '../postgres.ts';

let running: TestBank | null = null;
let database: TestDatabase | null = null;
const realWriteSync = fs.writeSync;
afterEach(async () => {
  fs.writeSync = realWriteSync;
  await running?.stop();
  running = null;
  await database?.drop();
  database = null;
});

type Line = { level: string; fields: Record<string, unknown>; message: string };

async function bankWithAdmin(
  options: Partial<BankServerOptions> = {},
): Promise<{ bank: TestBank; url: string; lines: Line[] }> {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  running = await startTestBank({
    admin: { host: '127.0.0.1', port: 0 },
    metricsRegistry: new Registry(),
    logger,
    ...options,
  });
  const url = running.bank.adminUrl;
  if (!url) throw new Error('no admin server');
  return { bank: running, url, lines };
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url);
  return { status: response.status, text: await response.text() };
}

async function metrics(url: string): Promise<string> {
  const response = await get(`${url}/metrics`);
  expect(response.status).toBe(200);
  return response.text;
}

async function refused(attempt: Promise<unknown>): Promise<string> {
  const error = await attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BankError);
  return (error as BankError).code;
}

describe('the bank’s admin port', () => {
  it('listens on loopback only unless told otherwise', async () => {
    const { url } = await bankWithAdmin();
    expect(new URL(url).hostname).toBe('127.0.0.1');
  });

  it('answers /healthz 200 while the ledger commits, 503 while another process holds it locked, then 200 again', async () => {
    const { bank, url } = await bankWithAdmin();
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, text: 'ok: the bank can commit\n' });
    const intruder = new Database(path.join(bank.dataDir, LEDGER_FILE));
    try {
      intruder.exec('BEGIN EXCLUSIVE');
      const locked = await get(`${url}/healthz`);
      expect(locked.status).toBe(503);
      expect(locked.text).toContain('database is locked');
      intruder.exec('ROLLBACK');
    } finally {
      intruder.close();
    }
    expect((await get(`${url}/healthz`)).status).toBe(200);
  }, 30_000);

  it('answers /healthz 503 while the audit log cannot be written, and 200 (audited) once it can', async () => {
    const { bank, url } = await bankWithAdmin();
    const client = await bank.connect();
    await client.signup('careful', 'password1');
    const session = await client.login('careful', 'password1');
    fs.writeSync = (() => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    }) as typeof fs.writeSync;
    expect(await refused(client.deposit(session, uniqueTxId(), 100))).toBe('ERR_UNAVAILABLE');
    const failing = await get(`${url}/healthz`);
    expect(failing.status).toBe(503);
    expect(failing.text).toContain('no space left on device');
    expect(count(await metrics(url), 'bank_audit_write_failures_total')).toBeGreaterThanOrEqual(1);

    fs.writeSync = realWriteSync;
    expect((await get(`${url}/healthz`)).status).toBe(200);
    expect(auditEvents(bank.dataDir).at(-1)).toMatchObject({ action: 'audit_recovered', outcome: 'ok' });
  });

  it('counts a deposit by type and outcome, its time, its group commit and its fsyncs', async () => {
    const { bank, url } = await bankWithAdmin();
    const client = await bank.connect();
    await client.signup('counted', 'password1');
    const session = await client.login('counted', 'password1');
    const before = await metrics(url);
    await client.deposit(session, uniqueTxId(), 2_500);
    expect(await refused(client.withdraw(session, uniqueTxId(), 9_999_999))).toBe('ERR_INSUFFICIENT_FUNDS');
    const after = await metrics(url);
    const moved = (name: string, labels: Record<string, string> = {}): number =>
      count(after, name, labels) - count(before, name, labels);
    expect(moved('bank_transactions_total', { type: 'deposit', outcome: 'ok' })).toBe(1);
    expect(moved('bank_transactions_total', { type: 'withdraw', outcome: 'insufficient_funds' })).toBe(1);
    expect(moved('bank_requests_total', { op: 'deposit', outcome: 'ok' })).toBe(1);
    expect(moved('bank_requests_total', { op: 'withdraw', outcome: 'ERR_INSUFFICIENT_FUNDS' })).toBe(1);
    expect(moved('bank_request_duration_seconds_count', { op: 'deposit' })).toBe(1);
    expect(moved('bank_commit_group_size_count')).toBeGreaterThanOrEqual(2);
    expect(moved('bank_fsync_duration_seconds_count', { file: 'wal' })).toBeGreaterThanOrEqual(1);
    expect(moved('bank_fsync_duration_seconds_count', { file: 'audit' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'bank_connected_atms')).toBe(1);
  });

  it('logs each answered transaction at debug (off by default: a line per transaction is costly) and a refusal at info', async () => {
    const { bank, lines } = await bankWithAdmin();
    const client = await bank.connect();
    await client.signup('logged', 'password1');
    const session = await client.login('logged', 'password1');
    await client.deposit(session, uniqueTxId(), 2_500);
    expect(await refused(client.withdraw(session, uniqueTxId(), 9_999_999))).toBe('ERR_INSUFFICIENT_FUNDS');
    const about = (action: string): Line[] => lines.filter((line) => line.fields['action'] === action);
    expect(about('deposit')).toEqual([
      {
        level: 'debug',
        fields: expect.objectContaining({ user: 'logged', outcome: 'ok' }),
        message: 'deposit of 2500 cents applied',
      },
    ]);
    expect(about('withdraw')).toEqual([
      {
        level: 'info',
        fields: expect.objectContaining({ user: 'logged', outcome: 'ERR_INSUFFICIENT_FUNDS' }),
        message: 'refused',
      },
    ]);
  });

  it('counts failed logins and a lockout, and logs both naming the account, but never an unknown name', async () => {
    const { bank, url, lines } = await bankWithAdmin();
    const client = await bank.connect();
    await client.signup('target', 'password1');
    expect(await refused(client.login('hunter2hunter2', 'password1'))).toBe('ERR_AUTH_FAILED');
    for (let attempt = 0; attempt < 5; attempt += 1) {
      expect(await refused(client.login('target', 'wrong-password'))).toBe('ERR_AUTH_FAILED');
    }
    const text = await metrics(url);
    expect(count(text, 'bank_logins_total', { outcome: 'bad_password' })).toBe(5);
    expect(count(text, 'bank_logins_total', { outcome: 'unknown_user' })).toBe(1);
    expect(count(text, 'bank_lockouts_total')).toBe(1);

    const security = lines.filter((line) => line.level === 'warn');
    expect(security.filter((line) => line.message === 'login failed').map((line) => line.fields.user)).toEqual([
      undefined,
      'target',
      'target',
      'target',
      'target',
      'target',
    ]);
    expect(security.filter((line) => line.message.startsWith('account locked'))).toMatchObject([
      { fields: { user: 'target', action: 'lockout' } },
    ]);
    expect(JSON.stringify(lines)).not.toContain('hunter2hunter2');
  });

  it('shows connected ATMs, last-minute figures, refusals and the audit head, and never a balance', async () => {
    const { bank, url } = await bankWithAdmin();
    const client = await bank.connect(7);
    await client.signup('private', 'password1');
    const session = await client.login('private', 'password1');
    await client.deposit(session, uniqueTxId(), 987_654);
    expect(await refused(client.withdraw(session, uniqueTxId(), 99_999_999))).toBe('ERR_INSUFFICIENT_FUNDS');
    await client.balance(session);

    const status = (await (await fetch(`${url}/status.json`)).json()) as {
      figures: Record<string, string>;
      atms: Array<Record<string, string>>;
      recent: Array<Record<string, string>>;
    };
    expect(status.figures.connectedAtms).toBe('1');
    expect(status.atms).toMatchObject([{ atm: '7', requests: expect.stringMatching(/^[5-9]$/) }]);
    expect(status.recent).toMatchObject([
      { atm: '7', user: 'private', action: 'withdraw', outcome: 'insufficient_funds' },
    ]);
    const lines = auditEvents(bank.dataDir).length;
    expect(status.figures.auditHead).toMatch(new RegExp(`^line ${lines}, chain hash [0-9a-f]{16}…$`));
    expect(status.figures.p99).toMatch(/ ms$/);

    const page = await get(`${url}/`);
    expect(page.status).toBe(200);
    for (const shown of [page.text, JSON.stringify(status)]) {
      expect(shown).not.toMatch(/9876|98765|987654|9,876/);
    }
  });

  it.skipIf(SKIP_POSTGRES_REASON)(
    'counts a PostgreSQL node’s group commits in the same group-size metric as SQLite’s',
    { timeout: 30_000 },
    async () => {
      database = await createTestDatabase();
      const { bank, url } = await bankWithAdmin({ ledgerUrl: database.url, nodeId: 'node-1' });
      const client = await bank.connect();
      await client.signup('grouped', 'password1');
      const session = await client.login('grouped', 'password1');
      const before = await metrics(url);
      await Promise.all([1, 2, 3].map(() => client.deposit(session, uniqueTxId(), 100)));
      const after = await metrics(url);
      const moved = (name: string): number => count(after, name) - count(before, name);
      // Three deposits settled by one or more groups: every request counted once, in some group.
      expect(moved('bank_commit_group_size_count')).toBeGreaterThanOrEqual(1);
      expect(moved('bank_commit_group_size_sum')).toBeGreaterThanOrEqual(3);
    },
  );

  it('shows how far each watching ATM’s newest checkpoint trails the audit head, on the page and in /metrics', async () => {
    // No timed signing during the test: the witness holds what it got when it asked, and falls behind.
    const { bank, url } = await bankWithAdmin({ checkpointIntervalMs: 3_600_000 });
    const status = async () =>
      ((await (await fetch(`${url}/status.json`)).json()) as { figures: Record<string, string> }).figures;
    const client = await bank.connect(3);
    await client.signup('watched', 'password1');
    expect((await status()).witnessLag).toBe('no connected ATM is witnessing the audit chain');
    expect(sample(await metrics(url), 'bank_audit_witnesses')).toBe(0);

    const notices: Notice[] = [];
    const witness = await BankClient.connect({
      host: bank.bank.host,
      port: bank.bank.port,
      credential: bank.bank.credentialFor(5),
      onNotice: (notice) => notices.push(notice),
    });
    try {
      await witness.watchAudit();
      await expect.poll(() => notices.length, { timeout: 10_000, interval: 10 }).toBeGreaterThan(0);
      const seen = notices.at(-1)?.line ?? 0;
      const session = await client.login('watched', 'password1');
      await client.deposit(session, uniqueTxId(), 100);
      const figures = await status();
      const head = Number(/^line (\d+),/.exec(figures.auditHead ?? '')?.[1]);
      expect(head).toBeGreaterThan(seen);
      expect(figures.witnessLag).toMatch(
        new RegExp(`^1 witness; ${head - seen} lines \\(\\d+ s\\) behind at worst, ATM 5$`),
      );
      const text = await metrics(url);
      expect(sample(text, 'bank_audit_witnesses')).toBe(1);
      expect(sample(text, 'bank_audit_witness_lag_lines')).toBe(head - seen);
    } finally {
      witness.close();
    }
  });
});
