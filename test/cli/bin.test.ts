/**
 * Every line of the command-line contract (`../shared/specs/cli-atm.md`),
 * through the compiled programs exactly as the contest's scripts run them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { auditEvents, tempDir } from '../helpers.ts';
import { atm, atmDir, BIN_BANK, dataDirOf, freePort, startCliBank, type CliBank } from './harness.ts';

const TIMEOUT = 120_000;
// One bank for the tests that only need one; tests that read its stdout start their own.
let bank: CliBank;
let dir: string;

beforeAll(async () => {
  bank = await startCliBank();
  dir = atmDir(bank);
}, TIMEOUT);

afterAll(async () => {
  await bank?.stop();
});

const refused = { code: 255, stdout: '', stderr: '' };

describe.concurrent('bin/atm against bin/bank', () => {
  it(
    'opens an account, deposits, withdraws and reports the balance, each with its one JSON line and exit 0',
    async () => {
      // A bank of its own, so its stdout holds exactly this test's lines.
      const bank = await startCliBank();
      const dir = atmDir(bank);
      const call = (...args: string[]) => atm(dir, [...bank.at, ...args]);
      expect(await call('-a', 'ted', '-n', '10.00')).toEqual({
        code: 0,
        stdout: '{"account":"ted","initial_balance":10.00}\n',
        stderr: '',
      });
      expect(fs.existsSync(path.join(dir, 'ted.card'))).toBe(true);
      expect((fs.statSync(path.join(dir, 'ted.card')).mode & 0o777).toString(8)).toBe('600');
      expect(await call('-a', 'ted', '-d', '20.00')).toMatchObject({
        code: 0,
        stdout: '{"account":"ted","deposit":20.00}\n',
      });
      expect(await call('-a', 'ted', '-w', '15.00')).toMatchObject({
        code: 0,
        stdout: '{"account":"ted","withdraw":15.00}\n',
      });
      expect(await call('-a', 'ted', '-g')).toMatchObject({ code: 0, stdout: '{"account":"ted","balance":15.00}\n' });
      // The bank printed the same lines, in order, after `created`.
      expect(await bank.waitForLines(5)).toEqual([
        'created',
        '{"account":"ted","initial_balance":10.00}',
        '{"account":"ted","deposit":20.00}',
        '{"account":"ted","withdraw":15.00}',
        '{"account":"ted","balance":15.00}',
      ]);
      // Shared ledger and audit trail: every line says the channel and the card account.
      const cli = auditEvents(dataDirOf(bank)).filter((event) => event.channel === 'cli' && event.outcome === 'ok');
      expect(cli.map((event) => [event.user, event.action, event.amountCents])).toEqual(
        expect.arrayContaining([
          ['card:ted', 'deposit', 1000],
          ['card:ted', 'deposit', 2000],
          ['card:ted', 'withdraw', 1500],
          ['card:ted', 'balance', null],
        ]),
      );
      await bank.stop();
    },
    TIMEOUT,
  );

  it(
    'exits 255 printing nothing for a refused withdrawal, an unknown account, a taken account and a missing card, and changes nothing',
    async () => {
      const work = atmDir(bank);
      const at = (...args: string[]) => atm(work, [...bank.at, ...args]);
      expect((await at('-a', 'amy', '-n', '50.00')).code).toBe(0);
      const results = await Promise.all([
        at('-a', 'amy', '-w', '50.01'),
        at('-a', 'nobody', '-g', '-c', 'amy.card'),
        at('-a', 'nobody', '-g'),
        at('-a', 'amy', '-n', '10.00', '-c', 'other.card'),
        at('-a', 'amy', '-g', '-c', 'missing.card'),
        at('-a', 'amy', '-g', '-s', 'missing.auth'),
      ]);
      for (const result of results) expect(result).toEqual(refused);
      expect(fs.existsSync(path.join(work, 'other.card'))).toBe(false);
      expect(await at('-a', 'amy', '-g')).toMatchObject({ code: 0, stdout: '{"account":"amy","balance":50.00}\n' });
      // The bank printed amy's opening and this balance, nothing for the refusals.
      expect(bank.lines().filter((line) => line.includes('"amy"'))).toEqual([
        '{"account":"amy","initial_balance":50.00}',
        '{"account":"amy","balance":50.00}',
      ]);
    },
    TIMEOUT,
  );

  it(
    'refuses -n when the card file exists, before asking the bank, and writes the card only after the bank opened the account',
    async () => {
      const work = atmDir(bank);
      fs.writeFileSync(path.join(work, 'kim.card'), 'mine');
      expect(await atm(work, [...bank.at, '-a', 'kim', '-n', '10.00'])).toEqual(refused);
      expect(fs.readFileSync(path.join(work, 'kim.card'), 'utf8')).toBe('mine');
      // The account was not opened, so it can be opened with another card file.
      expect((await atm(work, [...bank.at, '-a', 'kim', '-n', '10.00', '-c', 'kim2.card'])).code).toBe(0);
      // A refused open writes no card.
      expect(await atm(work, [...bank.at, '-a', 'kim', '-n', '10.00', '-c', 'kim3.card'])).toEqual(refused);
      expect(fs.existsSync(path.join(work, 'kim3.card'))).toBe(false);
    },
    TIMEOUT,
  );

  it(
    'opens nothing with an empty card, another account’s card, or a card with guessed contents',
    async () => {
      const work = atmDir(bank);
      const at = (...args: string[]) => atm(work, [...bank.at, ...args]);
      expect((await at('-a', 'pat', '-n', '100.00')).code).toBe(0);
      expect((await at('-a', 'sam', '-n', '100.00')).code).toBe(0);
      const card = JSON.parse(fs.readFileSync(path.join(work, 'pat.card'), 'utf8')) as Record<string, string>;
      fs.writeFileSync(path.join(work, 'empty.card'), '');
      fs.writeFileSync(path.join(work, 'guess.card'), JSON.stringify({ ...card, secret: `${'A'.repeat(43)}=` }));
      fs.writeFileSync(path.join(work, 'blank.card'), JSON.stringify({ ...card, secret: '' }));
      fs.writeFileSync(path.join(work, 'renamed.card'), JSON.stringify({ ...card, account: 'sam' }));
      const attempts = await Promise.all([
        at('-a', 'pat', '-w', '1.00', '-c', 'empty.card'),
        at('-a', 'pat', '-w', '1.00', '-c', 'guess.card'),
        at('-a', 'pat', '-w', '1.00', '-c', 'blank.card'),
        at('-a', 'pat', '-w', '1.00', '-c', 'sam.card'),
        at('-a', 'sam', '-w', '1.00', '-c', 'pat.card'),
        at('-a', 'sam', '-w', '1.00', '-c', 'renamed.card'),
      ]);
      for (const attempt of attempts) expect(attempt).toEqual(refused);
      expect((await at('-a', 'pat', '-g')).stdout).toBe('{"account":"pat","balance":100.00}\n');
      expect((await at('-a', 'sam', '-g')).stdout).toBe('{"account":"sam","balance":100.00}\n');
    },
    TIMEOUT,
  );

  it(
    'takes amounts up to 4294967295.99 and keeps balances past it exact',
    async () => {
      const work = atmDir(bank);
      const at = (...args: string[]) => atm(work, [...bank.at, ...args]);
      expect((await at('-a', 'big', '-n', '4294967295.99')).stdout).toBe(
        '{"account":"big","initial_balance":4294967295.99}\n',
      );
      expect((await at('-a', 'big', '-d', '4294967295.99')).code).toBe(0);
      expect((await at('-a', 'big', '-d', '0.03')).code).toBe(0);
      expect((await at('-a', 'big', '-g')).stdout).toBe('{"account":"big","balance":8589934592.01}\n');
      expect(await at('-a', 'big', '-d', '4294967296.00')).toEqual(refused);
      // Past the per-transaction limit on the way out too, but exact to the cent.
      expect(await at('-a', 'big', '-w', '8589934592.01')).toEqual(refused);
      expect((await at('-a', 'big', '-w', '4294967295.99')).code).toBe(0);
      expect((await at('-a', 'big', '-g')).stdout).toBe('{"account":"big","balance":4294967296.02}\n');
    },
    TIMEOUT,
  );

  it(
    'accepts the account names ., .. and 250 characters, with their default card files',
    async () => {
      const work = atmDir(bank);
      const long = 'z'.repeat(250);
      const opened = await Promise.all(
        ['.', '..', long].map((name) => atm(work, [...bank.at, '-a', name, '-n', '12.34'])),
      );
      expect(opened.map((result) => result.code)).toEqual([0, 0, 0]);
      expect(fs.existsSync(path.join(work, '..card'))).toBe(true);
      expect(fs.existsSync(path.join(work, '...card'))).toBe(true);
      expect((await atm(work, [...bank.at, '-a', long, '-g'])).stdout).toBe(`{"account":"${long}","balance":12.34}\n`);
      // The audit trail holds the longest name whole, and still verifies.
      expect(auditEvents(dataDirOf(bank)).some((event) => event.user === `card:${long}`)).toBe(true);
    },
    TIMEOUT,
  );

  it(
    'exits 255 printing nothing on invalid command lines, without contacting the bank',
    async () => {
      let contacted = 0;
      const sentinel = net.createServer((socket) => {
        contacted += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => sentinel.listen(0, '127.0.0.1', () => resolve()));
      const address = sentinel.address();
      if (address === null || typeof address === 'string') throw new Error('no address');
      const at = ['-p', String(address.port)];
      const invalid = [
        [],
        ['-a', 'ted'],
        ['-g'],
        ['-a', 'ted', '-g', '-d', '1.00'],
        ['-a', 'ted', '-g', '-g'],
        ['-a', 'ted', '-n', '9.99'],
        ['-a', 'ted', '-d', '0.00'],
        ['-a', 'ted', '-d', '4294967296.00'],
        ['-a', 'ted', '-d', '1.5'],
        ['-a', 'ted', '-g', 'extra'],
        ['-a', 'TED', '-g'],
        ['-a', 'ted', '-g', '-i', '127.0.0.01'],
        ['-a', 'ted', '-g', '-p', '1023'],
        ['-a', 'ted', '-g', '-p', '65536'],
        ['-a', 'ted', '-g', '-c', '..'],
        ['-a', 'ted', '-g', '-s', '/etc/passwd'],
        ['-a', 'ted', '-g', '-s', 'x'.repeat(4097)],
        ['-a', 'ted', '-g', '-q'],
      ];
      const results = await Promise.all(invalid.map((args) => atm(dir, [...args, ...(args.includes('-p') ? [] : at)])));
      for (const result of results) expect(result).toEqual(refused);
      sentinel.close();
      expect(contacted).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'takes attached values and any order (-p3000 style, -a last)',
    async () => {
      const work = atmDir(bank);
      expect((await atm(work, ['-n10.00', '-cmy.card', `-p${bank.port}`, '-aval'])).code).toBe(0);
      expect(
        (await atm(work, ['-g', `-p${bank.port}`, '-i127.0.0.1', '-sbank.auth', '-cmy.card', '-aval'])).stdout,
      ).toBe('{"account":"val","balance":10.00}\n');
    },
    TIMEOUT,
  );

  it(
    'exits 255 when no bank listens, and 63 when the bank does not answer within 10 seconds',
    async () => {
      const port = await freePort();
      const silent = net.createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
      const address = silent.address();
      if (address === null || typeof address === 'string') throw new Error('no address');
      // A well-formed card, so the only thing wrong is the bank's silence.
      fs.writeFileSync(
        path.join(dir, 'ted.card'),
        JSON.stringify({ format: 'atm-card/v1', account: 'ted', secret: `${'A'.repeat(43)}=` }),
      );
      try {
        const started = Date.now();
        const [none, mute] = await Promise.all([
          atm(dir, ['-p', String(port), '-a', 'ted', '-g']),
          atm(dir, ['-p', String(address.port), '-a', 'ted', '-g']),
        ]);
        expect(none).toEqual(refused);
        expect(mute).toEqual({ code: 63, stdout: '', stderr: '' });
        expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
      } finally {
        silent.close();
      }
    },
    TIMEOUT,
  );
});

describe.concurrent('bin/bank', () => {
  it(
    'refuses to start (255) on invalid arguments or an existing auth file, and writes the auth file then prints created',
    async () => {
      const work = tempDir('cli-bank-args-');
      const run = (args: string[]) =>
        new Promise<number | null>((resolve) => {
          spawn(BIN_BANK, args, { cwd: work, stdio: 'ignore' }).on('exit', (code) => resolve(code));
        });
      const codes = await Promise.all([
        run(['-p', '80']),
        run(['-p', '3000', '-p', '3001']),
        run(['-x']),
        run(['-s']),
        run(['extra']),
        run(['-s', '..']),
        run(['-s', 'a/b']),
      ]);
      expect(codes).toEqual([255, 255, 255, 255, 255, 255, 255]);
      fs.writeFileSync(path.join(work, 'bank.auth'), 'someone else’s');
      expect(await run(['-p', String(await freePort())])).toBe(255);
      expect(fs.readFileSync(path.join(work, 'bank.auth'), 'utf8')).toBe('someone else’s');

      const other = await startCliBank(tempDir('cli-bank-s-'), ['-s', 'other.auth']);
      try {
        expect(other.lines()).toEqual(['created']);
        expect((fs.statSync(path.join(other.dir, 'other.auth')).mode & 0o777).toString(8)).toBe('600');
        expect(fs.existsSync(path.join(other.dir, 'bank.auth'))).toBe(false);
        // An atm holding this bank's auth file talks to it; one holding another bank's does not (63: the handshake fails).
        const mine = atmDir(bank);
        fs.copyFileSync(path.join(other.dir, 'other.auth'), path.join(mine, 'other.auth'));
        expect((await atm(mine, [...other.at, '-s', 'other.auth', '-a', 'x', '-n', '10.00'])).code).toBe(0);
        expect(await atm(mine, [...other.at, '-a', 'x', '-g'])).toEqual({ code: 63, stdout: '', stderr: '' });
      } finally {
        await other.stop();
      }
    },
    TIMEOUT,
  );

  it(
    'exits 0 on SIGTERM with everything it acknowledged durable, and a new start is a new bank',
    async () => {
      const own = await startCliBank();
      const work = atmDir(own);
      expect((await atm(work, [...own.at, '-a', 'eve', '-n', '10.00'])).code).toBe(0);
      expect((await atm(work, [...own.at, '-a', 'eve', '-d', '5.00'])).code).toBe(0);
      const data = dataDirOf(own);
      expect(await own.stop()).toBe(0);
      expect(own.stderr()).not.toMatch(/Error|at .*\.m?js/);
      const deposits = auditEvents(data).filter((event) => event.user === 'card:eve' && event.action === 'deposit');
      expect(deposits.map((event) => event.amountCents)).toEqual([1000, 500]);
      // Same directory, auth file removed: a fresh bank with its own ledger, so eve is unknown there.
      fs.rmSync(path.join(own.dir, 'bank.auth'));
      const again = await startCliBank(own.dir);
      try {
        const next = atmDir(again);
        fs.copyFileSync(path.join(work, 'eve.card'), path.join(next, 'eve.card'));
        expect(await atm(next, [...again.at, '-a', 'eve', '-g'])).toEqual(refused);
      } finally {
        await again.stop();
      }
    },
    TIMEOUT,
  );
});
