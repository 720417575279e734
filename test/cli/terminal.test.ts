/**
 * The terminal ATM as its users run it: `bin/terminal` with a script piped in,
 * and once on a real pseudo-terminal (util-linux `script`), against a real
 * bank in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { encodeAtmCredential } from '../../runtime/key-files.ts';
import { writeCard } from '../../cli/card-file.ts';
import { auditEvents, startTestBank, tempDir, type TestBank } from '../helpers.ts';
import { BIN_TERMINAL } from './harness.ts';

const TIMEOUT = 60_000;
const PASSWORD = 'correct-horse-battery';

type Session = {
  child: ChildProcess;
  output(): string;
  send(text: string): void;
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
};

function track(child: ChildProcess): Session {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    send: (text) => void child.stdin?.write(text),
    waitFor: async (pattern, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      const found = () => (typeof pattern === 'string' ? output.includes(pattern) : pattern.test(output));
      while (!found()) {
        if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    exited,
  };
}

/** A bank with the web customer `lee` and the card account `kim` (its card in the returned directory). */
async function bankWithCustomers(): Promise<{ bank: TestBank; dir: string; args: string[] }> {
  const bank = await startTestBank();
  const dir = tempDir('terminal-');
  fs.writeFileSync(path.join(dir, 'atm-9000.key'), encodeAtmCredential(bank.bank.credentialFor(9_000)));
  const client = await bank.connect();
  await client.signup('lee', PASSWORD);
  const opened = await client.card({ mode: 'open', account: 'kim', amountCents: 5_000, card: '' });
  await client.cardConfirm();
  writeCard(path.join(dir, 'kim.card'), { account: 'kim', secret: opened.card });
  client.close();
  return { bank, dir, args: ['--bank', `127.0.0.1:${bank.bank.port}`, '--auth', 'atm-9000.key'] };
}

function piped(dir: string, args: string[]): Session {
  return track(spawn(BIN_TERMINAL, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] }));
}

describe.concurrent('the terminal ATM', () => {
  it(
    'serves a scripted session through pipes with the web ATM’s rules and messages, and logs in with a card file',
    async () => {
      const { bank, dir, args } = await bankWithCustomers();
      const session = piped(dir, args);
      const script = [
        ...['1', 'lee', PASSWORD],
        ...['2', '150'],
        ...['3', '50.5'],
        ...['3', '1000'],
        ...['2', '12.345'],
        ...['2', '1000001'],
        ...['2', 'abc'],
        '1',
        '4',
        '5',
        ...['2', 'kim.card'],
        ...['2', '0.01'],
        'q',
      ];
      session.send(`${script.join('\n')}\n`);
      session.child.stdin?.end();
      expect(await session.exited).toBe(0);
      const out = session.output();
      for (const line of [
        'Welcome, lee.',
        'Deposited $150.00. New balance: $150.00',
        'Withdrew $50.50. New balance: $99.50',
        'Insufficient funds',
        'Amounts can have at most two decimal places.',
        'The amount may be at most $1,000,000.00 per transaction.',
        'Enter the amount as digits with up to two decimals, like 150 or 19.99.',
        'Current balance: $99.50',
        'Mini statement (newest first)',
        'Logged out.',
        'Welcome, kim.',
        'Deposited $0.01. New balance: $50.01',
        'Goodbye.',
      ]) {
        expect(out).toContain(line);
      }
      expect(out).toMatch(/Withdrawal\s+-\$50\.50\s+balance \$99\.50/);
      expect(out).not.toContain(PASSWORD);
      // One ledger and audit trail for every channel: the terminal's lines say so.
      const terminal = auditEvents(bank.dataDir).filter(
        (event) => event.channel === 'terminal' && event.outcome === 'ok',
      );
      expect(terminal.map((event) => [event.user, event.action])).toEqual(
        expect.arrayContaining([
          ['lee', 'deposit'],
          ['card:kim', 'login'],
          ['card:kim', 'deposit'],
        ]),
      );
      await bank.stop();
    },
    TIMEOUT,
  );

  it(
    'refuses a wrong password and an unreadable card file with the reason, and ends on end of input',
    async () => {
      const { bank, dir, args } = await bankWithCustomers();
      fs.writeFileSync(path.join(dir, 'bad.card'), '{"format":"atm-card/v1","account":"kim","secret":"x"}');
      const session = piped(dir, args);
      session.send(['1', 'lee', 'wrong-password', '2', 'bad.card', '2', 'missing.card', ''].join('\n'));
      session.child.stdin?.end();
      expect(await session.exited).toBe(0);
      expect(session.output()).toContain('Invalid username or password.');
      expect(session.output().match(/That is not a readable card file\./g)).toHaveLength(2);
      await bank.stop();
    },
    TIMEOUT,
  );

  it(
    'logs out after the idle timeout',
    async () => {
      const { bank, dir, args } = await bankWithCustomers();
      const session = piped(dir, [...args, '--idle-timeout-seconds', '1']);
      session.send(`1\nlee\n${PASSWORD}\n`);
      await session.waitFor('Welcome, lee.');
      await session.waitFor('Logged out after 1 seconds without activity.');
      session.send('q\n');
      expect(await session.exited).toBe(0);
      const logouts = auditEvents(bank.dataDir).filter((event) => event.user === 'lee' && event.action === 'logout');
      expect(logouts).toHaveLength(1);
      await bank.stop();
    },
    TIMEOUT,
  );

  it(
    'ends with a clear message when the bank link is lost, and when no bank is there',
    async () => {
      const { bank, dir, args } = await bankWithCustomers();
      const session = piped(dir, args);
      session.send(`1\nlee\n${PASSWORD}\n`);
      await session.waitFor('Choose: ');
      await bank.stop();
      expect(await session.exited).toBe(1);
      expect(session.output()).toContain('The connection to the bank was lost.');

      const none = piped(dir, args);
      expect(await none.exited).toBe(1);
      expect(none.output()).toContain('is unavailable. Please try again later.');
      expect(none.output()).not.toMatch(/at .*\.m?js:\d+/);
    },
    TIMEOUT,
  );

  it(
    'works on a real terminal: prompts, a password never echoed, and Ctrl-C logging out cleanly',
    async () => {
      const { bank, dir, args } = await bankWithCustomers();
      // util-linux `script` runs the program on a new pseudo-terminal and relays our pipe to it.
      const command = [BIN_TERMINAL, ...args].map((word) => `'${word}'`).join(' ');
      const session = track(
        spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] }),
      );
      await session.waitFor('> ');
      session.send('1\r');
      await session.waitFor('Username: ');
      session.send('lee\r');
      await session.waitFor('Password: ');
      session.send(`${PASSWORD}\r`);
      await session.waitFor('Welcome, lee.');
      session.send('2\r');
      await session.waitFor('Amount: ');
      session.send('25\r');
      await session.waitFor('Deposited $25.00. New balance: $25.00');
      await session.waitFor(/Choose: [^\n]*$/);
      session.send('\u0003');
      expect(await session.exited).toBe(130);
      expect(session.output()).toContain('Interrupted. Goodbye.');
      // Typed on a terminal, the username is echoed and the password is not.
      expect(session.output()).toContain('lee');
      expect(session.output()).not.toContain(PASSWORD);
      const logouts = auditEvents(bank.dataDir).filter((event) => event.user === 'lee' && event.action === 'logout');
      expect(logouts).toHaveLength(1);
      await bank.stop();
    },
    TIMEOUT,
  );
});
