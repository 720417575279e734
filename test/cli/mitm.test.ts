/**
 * The contract's network attacker between bin/atm and bin/bank: it records,
 * replays across runs, swaps, reflects, flips, drops and injects. Whatever it
 * does, the bank carries out only what a run asked for in that run, the atm
 * prints only what the bank answered (or nothing and exits 63), and a
 * conversation the bank sees break prints `protocol_error` and changes
 * nothing. The wire shows no name, amount, balance or card, and its lengths
 * do not depend on them.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { FrameType } from '../../protocol/frame.ts';
import { MitmProxy, type Seen, type Tamper } from '../adversarial/mitm-proxy.ts';
import { atm, atmDir, startCliBank, type CliBank, type Run } from './harness.ts';

const TIMEOUT = 120_000;
const broken = { code: 63, stdout: '', stderr: '' };

type Scene = {
  bank: CliBank;
  proxy: MitmProxy;
  dir: string;
  /** bin/atm through the attacker. */
  via(...args: string[]): Promise<Run>;
  /** bin/atm straight to the bank (the honest check afterwards). */
  direct(...args: string[]): Promise<Run>;
  balance(account: string): Promise<string>;
  protocolErrors(): number;
};

/** A bank, a proxy in front of it and accounts of 100.00 each; stopped when the test finishes. */
async function scene(onTestFinished: (fn: () => Promise<void>) => void, ...accounts: string[]): Promise<Scene> {
  const bank = await startCliBank();
  const proxy = await MitmProxy.start(bank.port);
  onTestFinished(async () => {
    await proxy.close();
    await bank.stop();
  });
  const dir = atmDir(bank);
  const direct = (...args: string[]) => atm(dir, [...bank.at, ...args]);
  for (const account of accounts) expect((await direct('-a', account, '-n', '100.00')).code).toBe(0);
  const made: Scene = {
    bank,
    proxy,
    dir,
    via: (...args) => atm(dir, ['-p', String(proxy.port), ...args]),
    direct,
    balance: async (account) => (await direct('-a', account, '-g')).stdout.trim(),
    protocolErrors: () => bank.lines().filter((line) => line === 'protocol_error').length,
  };
  return made;
}

const balanceLine = (account: string, amount: string) => `{"account":"${account}","balance":${amount}}`;

/** The nth record of a direction on a connection (0: the request, 1: the confirm; or the two answers). */
function nthRecord(seen: Seen, way: Seen['way'], n: number, counter: Map<number, number>): boolean {
  if (seen.way !== way || seen.frame.type !== FrameType.Record) return false;
  const index = counter.get(seen.connection) ?? 0;
  counter.set(seen.connection, index + 1);
  return index === n;
}

function flipped(raw: Buffer, at: number): Buffer {
  const copy = Buffer.from(raw);
  const index = Math.min(copy.length - 1, at);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

/** Waits until the bank has printed `count` protocol_error lines. */
async function protocolErrorsReach(made: Scene, count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (made.protocolErrors() < count) {
    if (Date.now() > deadline) throw new Error(`bank printed ${made.bank.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.concurrent('bin/atm and bin/bank through a man in the middle', () => {
  it(
    'cannot replay a recorded deposit, neither on a later run nor on a connection of its own',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished, 'ted');
      expect(await made.via('-a', 'ted', '-d', '20.00')).toMatchObject({ code: 0 });
      const recorded = made.proxy.frames({ connection: made.proxy.latestConnection, way: 'toBank' });
      const records = recorded.filter((seen) => seen.frame.type === FrameType.Record).map((seen) => seen.raw);
      expect(records).toHaveLength(2);

      // A later run's request and confirm replaced by the recorded ones.
      let index = 0;
      made.proxy.tamper = (seen) => {
        if (seen.way !== 'toBank' || seen.frame.type !== FrameType.Record) return null;
        const replay = records[index];
        index += 1;
        return replay ? [replay] : null;
      };
      expect(await made.via('-a', 'ted', '-g')).toEqual(broken);
      made.proxy.tamper = null;

      // The attacker's own connection, sending the whole recorded conversation.
      const socket = net.connect({ host: '127.0.0.1', port: made.bank.port });
      socket.on('error', () => {});
      // Read what the bank says, so its closing is seen.
      socket.resume();
      await new Promise((resolve) => socket.once('connect', resolve));
      for (const seen of recorded) socket.write(seen.raw);
      await new Promise((resolve) => socket.once('close', resolve));

      await protocolErrorsReach(made, 2);
      expect(await made.balance('ted')).toBe(balanceLine('ted', '120.00'));
      expect(made.bank.lines().filter((line) => line.includes('"deposit"'))).toEqual([
        '{"account":"ted","deposit":20.00}',
      ]);
    },
    TIMEOUT,
  );

  it(
    'cannot swap the requests of two runs in flight',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished, 'amy', 'bob');
      // Hold each run's request until both have one, then send each on the other's connection.
      const held: Seen[] = [];
      made.proxy.tamper = (seen) => {
        if (seen.way !== 'toBank' || seen.frame.type !== FrameType.Record || held.length >= 2) return null;
        held.push(seen);
        if (held.length < 2) return [];
        const [first, second] = held;
        if (!first || !second) return [];
        made.proxy.inject(first.connection, 'toBank', second.raw);
        return [first.raw];
      };
      const [amy, bob] = await Promise.all([made.via('-a', 'amy', '-w', '60.00'), made.via('-a', 'bob', '-d', '1.00')]);
      expect(amy).toEqual(broken);
      expect(bob).toEqual(broken);
      await protocolErrorsReach(made, 2);
      expect(await made.balance('amy')).toBe(balanceLine('amy', '100.00'));
      expect(await made.balance('bob')).toBe(balanceLine('bob', '100.00'));
    },
    TIMEOUT,
  );

  it(
    'cannot reflect the bank’s answer back to it as a confirm: the held withdrawal is rolled back',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished, 'cat');
      const answers = new Map<number, number>();
      const requests = new Map<number, number>();
      let answer: Buffer | null = null;
      made.proxy.tamper = (seen) => {
        if (nthRecord(seen, 'toAtm', 0, answers)) answer = seen.raw;
        if (nthRecord(seen, 'toBank', 1, requests) && answer) return [answer];
        return null;
      };
      expect(await made.via('-a', 'cat', '-w', '30.00')).toEqual(broken);
      await protocolErrorsReach(made, 1);
      expect(await made.balance('cat')).toBe(balanceLine('cat', '100.00'));
      expect(made.bank.lines().some((line) => line.includes('"withdraw"'))).toBe(false);
    },
    TIMEOUT,
  );

  it(
    'cannot change a byte of the handshake, the request or the confirm on the way to the bank',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished, 'dan');
      const targets: Array<[string, Tamper]> = [];
      for (const type of [FrameType.ClientHello, FrameType.ClientFinished]) {
        targets.push([
          `frame ${type}`,
          (seen) => (seen.way === 'toBank' && seen.frame.type === type ? [flipped(seen.raw, 20)] : null),
        ]);
      }
      for (const n of [0, 1]) {
        for (const at of [5, 30, 60, 200]) {
          const counter = new Map<number, number>();
          targets.push([
            `record ${n} byte ${at}`,
            (seen) => (nthRecord(seen, 'toBank', n, counter) ? [flipped(seen.raw, at)] : null),
          ]);
        }
      }
      for (const [, tamper] of targets) {
        made.proxy.tamper = tamper;
        // "Inflating" the amount means changing ciphertext bytes: the MAC refuses them.
        expect(await made.via('-a', 'dan', '-d', '1.00')).toEqual(broken);
      }
      made.proxy.tamper = null;
      await protocolErrorsReach(made, targets.length);
      expect(await made.balance('dan')).toBe(balanceLine('dan', '100.00'));
    },
    TIMEOUT,
  );

  it(
    'cannot change a byte of the bank’s answers: the atm prints nothing and exits 63',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished, 'eve');
      // The first answer: the atm never confirms, so the bank rolls back.
      const first = new Map<number, number>();
      made.proxy.tamper = (seen) => (nthRecord(seen, 'toAtm', 0, first) ? [flipped(seen.raw, 40)] : null);
      expect(await made.via('-a', 'eve', '-w', '10.00')).toEqual(broken);
      await protocolErrorsReach(made, 1);
      expect(await made.balance('eve')).toBe(balanceLine('eve', '100.00'));

      // The final answer: the bank has applied what this run asked for; the atm, unable to
      // trust the answer, reports nothing rather than anything the bank did not say.
      const last = new Map<number, number>();
      made.proxy.tamper = (seen) => (nthRecord(seen, 'toAtm', 1, last) ? [flipped(seen.raw, 40)] : null);
      expect(await made.via('-a', 'eve', '-w', '10.00')).toEqual(broken);
      made.proxy.tamper = null;
      expect(await made.balance('eve')).toBe(balanceLine('eve', '90.00'));
    },
    TIMEOUT,
  );

  it(
    'cannot drop the confirm: the bank lets go after its deadline and rolls back; the atm exits 63',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished, 'fay');
      const counter = new Map<number, number>();
      made.proxy.tamper = (seen) => (nthRecord(seen, 'toBank', 1, counter) ? [] : null);
      expect(await made.via('-a', 'fay', '-d', '5.00')).toEqual(broken);
      made.proxy.tamper = null;
      await protocolErrorsReach(made, 1);
      expect(await made.balance('fay')).toBe(balanceLine('fay', '100.00'));
    },
    TIMEOUT,
  );

  it(
    'shows no account name, amount, balance or card on the wire, and every run is the same number of bytes',
    async ({ onTestFinished }) => {
      const made = await scene(onTestFinished);
      const long = 'q'.repeat(250);
      const runs: Array<[string[], string[]]> = [
        [
          ['-a', 'zanzibar', '-n', '1234.56'],
          ['zanzibar', '1234.56', '123456'],
        ],
        [
          ['-a', 'zanzibar', '-d', '4294967295.99'],
          ['4294967295.99', '429496729599'],
        ],
        [['-a', 'zanzibar', '-w', '0.01'], []],
        [
          ['-a', 'zanzibar', '-g'],
          ['4294968531.54', '429496853154'],
        ],
        [['-a', long, '-n', '10.00'], [long]],
        [['-a', 'y', '-n', '99999.00'], []],
      ];
      const sizes: string[] = [];
      for (const [args, secrets] of runs) {
        made.proxy.wire.toBank.length = 0;
        made.proxy.wire.toAtm.length = 0;
        expect({ args: args.join(' '), code: (await made.via(...args)).code }).toEqual({
          args: args.join(' '),
          code: 0,
        });
        const wire = Buffer.concat([...made.proxy.wire.toBank, ...made.proxy.wire.toAtm]);
        const card = fs.readFileSync(path.join(made.dir, 'zanzibar.card'), 'utf8');
        const secret = (JSON.parse(card) as { secret: string }).secret;
        for (const text of [...secrets, secret, Buffer.from(secret, 'base64').toString('hex')]) {
          for (const form of [text, Buffer.from(text).toString('hex'), Buffer.from(text).toString('base64')]) {
            expect(wire.includes(Buffer.from(form))).toBe(false);
          }
        }
        expect(wire.includes(Buffer.from(secret, 'base64'))).toBe(false);
        const frames = made.proxy.frames({ connection: made.proxy.latestConnection });
        sizes.push(frames.map((seen) => `${seen.way}:${seen.raw.length}`).join(' '));
      }
      // Opening, depositing, withdrawing and asking, with any name and amount, look alike.
      expect(new Set(sizes).size).toBe(1);
    },
    TIMEOUT,
  );
});
