/**
 * Seed 004's ten attacks, made by a man in the middle between a real ATM
 * (web app + bank link) and the real bank. For each: the message is
 * rejected, no balance changes, an audit line records it, the bank keeps
 * serving another ATM, and the attacked ATM reconnects by itself while its
 * customer sees an error page, never a crash.
 */
import net from 'node:net';

import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import type { BankClient, CustomerSession } from '../../protocol/client.ts';
import { FrameType } from '../../protocol/frame.ts';
import { Direction, RECORD_HEADER_BYTES } from '../../protocol/record.ts';
import { protocolErrors, startTestBank, uniqueTxId, type TestBank } from '../helpers.ts';
import { login, messages, signup, startTestAtm, transact, type Agent, type TestAtm } from '../atm-web/harness.ts';
import { MitmProxy, type Seen } from './mitm-proxy.ts';

const SESSION_ID_AT = 2;
const DIRECTION_AT = 10;
const SEQ_AT = 11;
const MAC_BYTES = 32;

type Scene = {
  bank: TestBank;
  proxy: MitmProxy;
  atm: TestAtm;
  alice: Agent;
  bystander: { client: BankClient; session: CustomerSession };
};

let scenes: Scene[] = [];
afterEach(async () => {
  for (const scene of scenes) {
    await scene.atm.close();
    await scene.proxy.close();
    await scene.bank.stop();
  }
  scenes = [];
});

/** Alice at ATM 1 (through the proxy) with $100.00; Bob at ATM 2 (direct) as the bystander. */
async function scene(options: { requestTimeoutMs?: number } = {}): Promise<Scene> {
  const bank = await startTestBank();
  const proxy = await MitmProxy.start(bank.bank.port);
  // Each attack is judged on the request it hit: no re-send of that request on the next link.
  const atm = await startTestAtm(bank, 1, { port: proxy.port, inDoubtBudgetMs: 0, ...options });
  const alice = request.agent(atm.app);
  await signup(alice, 'alice', 'password1');
  await login(alice, 'alice', 'password1');
  await transact(alice, 'deposit', '100');
  const client = await bank.connect(2);
  await client.signup('bob', 'password1');
  const session = await client.login('bob', 'password1');
  const built = { bank, proxy, atm, alice, bystander: { client, session } };
  scenes.push(built);
  return built;
}

const isCustomerRecord = (seen: Seen): boolean =>
  seen.frame.type === FrameType.Record &&
  !seen.frame.body.subarray(SESSION_ID_AT, SESSION_ID_AT + 8).equals(Buffer.alloc(8));

/** Tampers with the next ATM->bank customer record only; everything else passes. */
function onNextCustomerRecord(proxy: MitmProxy, change: (record: Buffer, seen: Seen) => Buffer[]): void {
  proxy.tamper = (seen) => {
    if (seen.way !== 'toBank' || !isCustomerRecord(seen)) return null;
    proxy.tamper = null;
    return change(Buffer.from(seen.frame.body), seen);
  };
}

function frame(body: Buffer): Buffer {
  const header = Buffer.from([1, FrameType.Record, 0, 0]);
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function flip(record: Buffer, index: number): Buffer {
  record[index] = (record[index] ?? 0) ^ 0x01;
  return record;
}

/** Everything that must hold after any attack. */
async function expectContained(
  s: Scene,
  code: string,
  attackPage?: { status: number; page: string },
  expected = { balance: '$100.00' },
): Promise<void> {
  if (attackPage) {
    // The customer saw an error page, not a crash and not a success.
    expect(attackPage.status).toBe(503);
    expect(attackPage.page).toContain('The bank is unavailable, try again shortly.');
  }
  await expect.poll(() => protocolErrors(s.bank.dataDir)).toContain(code);
  // The bank keeps serving every other ATM.
  await s.bystander.client.deposit(s.bystander.session, uniqueTxId(), 1);
  // The attacked ATM reconnects by itself; Alice is still logged in (her session reopens with
  // its ticket on the new connection) and finds her money untouched.
  await s.atm.link.waitUntilAvailable(5_000);
  expect((await s.alice.get('/')).status).toBe(200);
  expect(messages((await transact(s.alice, 'balance')).page)).toEqual([`Current balance: ${expected.balance}`]);
}

/**
 * The ATM's link is up and the proxy has passed its last handshake message on to the bank: the ATM
 * counts the link up as soon as it sent that message, and a record injected before the proxy
 * forwards it would reach the bank mid-handshake (ERR_PHASE), not the attack a test is about.
 */
async function handshakeForwarded(s: Scene): Promise<void> {
  await s.atm.link.waitUntilAvailable(5_000);
  await expect
    .poll(
      () =>
        s.proxy.frames({ connection: s.proxy.latestConnection, way: 'toBank', type: FrameType.ClientFinished }).length,
    )
    .toBe(1);
}

describe('a man in the middle', () => {
  it('cannot replay a deposit on the same connection', async () => {
    const s = await scene();
    let captured: Buffer | null = null;
    s.proxy.tamper = (seen) => {
      if (seen.way === 'toBank' && isCustomerRecord(seen)) captured = seen.raw;
      return null;
    };
    await transact(s.alice, 'deposit', '5');
    s.proxy.tamper = null;
    expect(captured).not.toBeNull();
    s.proxy.inject(s.proxy.latestConnection, 'toBank', captured ?? Buffer.alloc(0));
    // The original deposit counted once; the replay changed nothing.
    await expectContained(s, 'ERR_SEQUENCE', undefined, { balance: '$105.00' });
  });

  it('cannot replay a deposit or a login on a new connection', async () => {
    const s = await scene();
    const oldConnection = s.proxy.latestConnection;
    const deposit = s.proxy.frames({ connection: oldConnection, way: 'toBank' }).filter(isCustomerRecord).at(-1);
    const loginRecord = s.proxy
      .frames({ connection: oldConnection, way: 'toBank', type: FrameType.Record })
      .find((seen) => !isCustomerRecord(seen));
    s.proxy.cut(oldConnection);
    await expect.poll(() => s.proxy.latestConnection).toBeGreaterThan(oldConnection);
    await handshakeForwarded(s);
    s.proxy.inject(s.proxy.latestConnection, 'toBank', deposit?.raw ?? Buffer.alloc(0));
    await expect.poll(() => protocolErrors(s.bank.dataDir)).toEqual(['ERR_UNKNOWN_SESSION']);
    await s.atm.link.waitUntilAvailable(5_000);
    await expect.poll(() => s.proxy.latestConnection).toBeGreaterThan(oldConnection + 1);
    await handshakeForwarded(s);
    s.proxy.inject(s.proxy.latestConnection, 'toBank', loginRecord?.raw ?? Buffer.alloc(0));
    await expect.poll(() => protocolErrors(s.bank.dataDir)).toEqual(['ERR_UNKNOWN_SESSION', 'ERR_BAD_MAC']);
    await expectContained(s, 'ERR_BAD_MAC');
  });

  it('cannot flip a bit in the ciphertext', async () => {
    const s = await scene();
    await expectContained(
      s,
      'ERR_BAD_MAC',
      await transact(s.alice, 'withdraw', '60', () =>
        onNextCustomerRecord(s.proxy, (record) => [frame(flip(record, RECORD_HEADER_BYTES + 20))]),
      ),
    );
  });

  it('cannot flip a bit in the MAC', async () => {
    const s = await scene();
    await expectContained(
      s,
      'ERR_BAD_MAC',
      await transact(s.alice, 'deposit', '60', () =>
        onNextCustomerRecord(s.proxy, (record) => [frame(flip(record, record.length - 1))]),
      ),
    );
  });

  it('cannot manipulate CBC padding: the MAC fails before anything is decrypted', async () => {
    const s = await scene();
    // Flipping the second-to-last ciphertext block changes the last block's padding bytes.
    await expectContained(
      s,
      'ERR_BAD_MAC',
      await transact(s.alice, 'deposit', '60', () =>
        onNextCustomerRecord(s.proxy, (record) => [frame(flip(record, record.length - MAC_BYTES - 17))]),
      ),
    );
  });

  it('cannot drop a message without the next one exposing the gap (desynchronisation)', async () => {
    const s = await scene({ requestTimeoutMs: 2_000 });
    const customerRecords = (): number => s.proxy.frames({ way: 'toBank' }).filter(isCustomerRecord).length;
    let before = -1;
    const dropped = transact(s.alice, 'deposit', '60', () => {
      before = customerRecords();
      onNextCustomerRecord(s.proxy, () => []);
    });
    await expect.poll(() => before >= 0 && customerRecords() === before + 1).toBe(true);
    const next = await transact(s.alice, 'balance');
    await expectContained(s, 'ERR_SEQUENCE', next);
    expect((await dropped).status).toBe(503);
  });

  it('cannot reflect a bank->ATM message back to the bank', async () => {
    const s = await scene();
    const answer = s.proxy.frames({ way: 'toAtm' }).filter(isCustomerRecord).at(-1);
    s.proxy.inject(s.proxy.latestConnection, 'toBank', answer?.raw ?? Buffer.alloc(0));
    await expectContained(s, 'ERR_WRONG_DIRECTION');
  });

  it('cannot send a transaction before the handshake (phase violation)', async () => {
    const s = await scene();
    const deposit = s.proxy.frames({ way: 'toBank' }).filter(isCustomerRecord).at(-1);
    const raw = net.connect({ host: '127.0.0.1', port: s.bank.bank.port });
    raw.on('error', () => {});
    raw.write(deposit?.raw ?? Buffer.alloc(0));
    // Alice's own ATM connection was never touched.
    await expectContained(s, 'ERR_PHASE', undefined, { balance: '$100.00' });
    raw.destroy();
  });

  it("cannot use customer A's session for customer B (impersonation)", async () => {
    const s = await scene();
    const mallory = request.agent(s.atm.app);
    await signup(mallory, 'mallory', 'password1');
    await login(mallory, 'mallory', 'password1');
    const aliceRecords = s.proxy.frames({ way: 'toBank' }).filter(isCustomerRecord);
    const aliceSessionId = aliceRecords.at(-1)?.frame.body.subarray(SESSION_ID_AT, SESSION_ID_AT + 8);
    // Mallory has money of her own, so the ATM offers her withdrawal for confirmation.
    await transact(mallory, 'deposit', '100');
    // Mallory's withdrawal, relabelled as Alice's session with the sequence number Alice's session expects next.
    const arm = (): void =>
      onNextCustomerRecord(s.proxy, (record) => {
        aliceSessionId?.copy(record, SESSION_ID_AT);
        record.writeBigUInt64BE(BigInt(aliceRecords.length), SEQ_AT);
        return [frame(record)];
      });
    const attack = await transact(mallory, 'withdraw', '100', arm);
    await expectContained(s, 'ERR_BAD_MAC', attack);
  });

  it('cannot truncate a record', async () => {
    const s = await scene();
    await expectContained(
      s,
      'ERR_TRUNCATED',
      await transact(s.alice, 'deposit', '60', () =>
        onNextCustomerRecord(s.proxy, (record) => [frame(record.subarray(0, record.length - 5))]),
      ),
    );
  });

  it('cannot rewrite the direction flag', async () => {
    const s = await scene();
    const arm = (): void =>
      onNextCustomerRecord(s.proxy, (record) => {
        record[DIRECTION_AT] = Direction.BankToAtm;
        return [frame(record)];
      });
    await expectContained(s, 'ERR_WRONG_DIRECTION', await transact(s.alice, 'deposit', '60', arm));
  });

  it('cannot point a record at another session id', async () => {
    const s = await scene();
    const arm = (): void =>
      onNextCustomerRecord(s.proxy, (record) => {
        record.fill(0x5a, SESSION_ID_AT, SESSION_ID_AT + 8);
        return [frame(record)];
      });
    await expectContained(s, 'ERR_UNKNOWN_SESSION', await transact(s.alice, 'deposit', '60', arm));
  });

  it('cannot tamper with what the bank answers: the ATM rejects it and reconnects', async () => {
    const s = await scene();
    const armAnswer = (): void => {
      s.proxy.tamper = (seen) => {
        if (seen.way !== 'toAtm' || !isCustomerRecord(seen)) return null;
        s.proxy.tamper = null;
        return [frame(flip(Buffer.from(seen.frame.body), RECORD_HEADER_BYTES + 3))];
      };
    };
    // The bank applied the withdrawal, but the ATM cannot trust the tampered answer: it shows an error.
    const attack = await transact(s.alice, 'withdraw', '1', armAnswer);
    expect(attack.status).toBe(503);
    // The ATM told the bank it hung up over a failure, so the auditor sees it too.
    await expect.poll(() => protocolErrors(s.bank.dataDir)).toEqual(['ERR_PEER_ALERT']);
    await s.atm.link.waitUntilAvailable(5_000);
    // Alice is still logged in (her session reopened with its ticket). The withdrawal was applied once (the answer was lost, not the transaction).
    expect(messages((await transact(s.alice, 'balance')).page)).toEqual(['Current balance: $99.00']);
  });
});
