import { describe, expect, it } from 'vitest';

import { hkdfSha256, x25519KeyPair, type X25519KeyPair } from '../../protocol/crypto.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import {
  ClientHandshake,
  ServerHandshake,
  deriveTerminalKey,
  type AtmCredential,
  type ChannelSecrets,
  type TerminalKeyLookup,
} from '../../protocol/handshake.ts';
import {
  BANK_STATIC_KEY,
  MASTER_TERMINAL_KEY,
  expectCode,
  fixedRandom,
  testCredential,
  testTerminalKeys,
} from './fixtures.ts';

type Bank = { staticKey?: X25519KeyPair; terminalKeyFor?: TerminalKeyLookup; seed?: number };

function bankHandshake({ staticKey = BANK_STATIC_KEY, terminalKeyFor = testTerminalKeys(), seed = 2 }: Bank = {}) {
  return new ServerHandshake({ staticKey, terminalKeyFor, random: fixedRandom(seed) });
}

function run(credential: AtmCredential = testCredential(7), bank: Bank = {}) {
  const client = new ClientHandshake(credential, fixedRandom(1));
  const server = bankHandshake(bank);
  const hello = client.start();
  const serverHello = server.onClientHello(hello);
  return { client, server, hello, serverHello };
}

function complete(credential?: AtmCredential): { atm: ChannelSecrets; bank: ChannelSecrets; wire: Buffer } {
  const { client, server, hello, serverHello } = run(credential);
  const { clientFinished, secrets } = client.onServerHello(serverHello);
  return {
    atm: secrets,
    bank: server.onClientFinished(clientFinished),
    wire: Buffer.concat([hello, serverHello, clientFinished]),
  };
}

const allKeys = (result: ChannelSecrets): Buffer[] => [
  result.channelKeys.atmToBank.encKey,
  result.channelKeys.atmToBank.macKey,
  result.channelKeys.bankToAtm.encKey,
  result.channelKeys.bankToAtm.macKey,
];

describe('terminal keys (one per ATM, derived from the master key)', () => {
  it('are HKDF-SHA256 of the master key with the ATM number in info, one per number', () => {
    const key = deriveTerminalKey(MASTER_TERMINAL_KEY, 258);
    const info = Buffer.concat([Buffer.from('atm-bank/v2 terminal key'), Buffer.from('0102', 'hex')]);
    expect(key.equals(hkdfSha256(MASTER_TERMINAL_KEY, Buffer.alloc(0), info, 32))).toBe(true);
    const keys = new Set([0, 1, 2, 3, 65535].map((n) => deriveTerminalKey(MASTER_TERMINAL_KEY, n).toString('hex')));
    expect(keys.size).toBe(5);
    expect(keys.has(MASTER_TERMINAL_KEY.toString('hex'))).toBe(false);
    expect(() => deriveTerminalKey(MASTER_TERMINAL_KEY, 65536)).toThrow(ProtocolError);
  });
});

describe('handshake', () => {
  it('gives both roles the same channel keys and the ATM number', () => {
    const { atm, bank } = complete();
    expect(bank.atmId).toBe(7);
    expect(atm.atmId).toBe(7);
    expect(bank.transcriptHash.equals(atm.transcriptHash)).toBe(true);
    allKeys(atm).forEach((key, index) => expect(key.equals(allKeys(bank)[index] ?? Buffer.alloc(0))).toBe(true));
  });

  it('derives separate keys for each direction from the start', () => {
    const { atm } = complete();
    const keys = allKeys(atm).map((key) => key.toString('hex'));
    expect(new Set(keys).size).toBe(4);
  });

  it('is deterministic for injected randomness and fresh for other randomness', () => {
    const first = complete().atm;
    expect(allKeys(complete().atm)[0]?.equals(allKeys(first)[0] ?? Buffer.alloc(0))).toBe(true);
    const other = new ClientHandshake(testCredential(7), fixedRandom(99));
    const result = other.onServerHello(bankHandshake().onClientHello(other.start())).secrets;
    expect(allKeys(result)[0]?.equals(allKeys(first)[0] ?? Buffer.alloc(0))).toBe(false);
  });

  it('puts no secret on the wire: only the two ephemeral public keys and MACs', () => {
    const { atm, wire } = complete();
    expect(wire.includes(testCredential(7).terminalKey)).toBe(false);
    expect(wire.includes(MASTER_TERMINAL_KEY)).toBe(false);
    for (const key of allKeys(atm)) expect(wire.includes(key)).toBe(false);
  });

  it('lets an ATM with the wrong terminal key learn nothing and fail', () => {
    const wrong = { ...testCredential(7), terminalKey: Buffer.alloc(32, 1) };
    const { client, serverHello } = run(wrong);
    expectCode(() => client.onServerHello(serverHello), 'ERR_HANDSHAKE');
  });

  it('refuses an impostor ATM at ClientFinished', () => {
    const { server } = run();
    expectCode(() => server.onClientFinished(Buffer.alloc(32)), 'ERR_HANDSHAKE');
  });

  it('refuses ATM key N used to connect as number M', () => {
    const asM = { ...testCredential(2), atmId: 1 };
    const client = new ClientHandshake(asM, fixedRandom(1));
    const server = bankHandshake();
    const serverHello = server.onClientHello(client.start());
    // The ATM itself cannot even check the bank's proof: it lacks key M...
    expectCode(() => client.onServerHello(serverHello), 'ERR_HANDSHAKE');
    // ...and a peer that forges on regardless cannot produce M's ClientFinished.
    expect(server.claimedAtmId).toBe(1);
    expectCode(() => server.onClientFinished(Buffer.alloc(32, 7)), 'ERR_HANDSHAKE');
  });

  it('refuses a revoked terminal at its ClientHello', () => {
    const server = bankHandshake({ terminalKeyFor: testTerminalKeys(new Set([4])) });
    const revoked = new ClientHandshake(testCredential(4), fixedRandom(5));
    expectCode(() => server.onClientHello(revoked.start()), 'ERR_ATM_REVOKED');
    expect(server.claimedAtmId).toBe(4);
    const other = new ClientHandshake(testCredential(3), fixedRandom(6));
    expect(() =>
      bankHandshake({ terminalKeyFor: testTerminalKeys(new Set([4])) }).onClientHello(other.start()),
    ).not.toThrow();
  });

  it('refuses a bank that holds the stolen terminal key but not the bank static private key', () => {
    // The thief has ATM 1's whole credential, so it knows K_1 and the pinned
    // public key, and answers with a static key of its own.
    const stolen = testCredential(1);
    const thiefStatic = x25519KeyPair(fixedRandom(66));
    const thief = bankHandshake({ staticKey: thiefStatic, terminalKeyFor: () => Buffer.from(stolen.terminalKey) });
    const victim = new ClientHandshake(testCredential(1), fixedRandom(1));
    expectCode(() => victim.onServerHello(thief.onClientHello(victim.start())), 'ERR_HANDSHAKE');
    // Posing with the real public key (all a thief can copy) changes nothing: the X25519 with it needs s.
    const copied = { ...thiefStatic, publicKey: BANK_STATIC_KEY.publicKey };
    const thief2 = bankHandshake({ staticKey: copied, terminalKeyFor: () => Buffer.from(stolen.terminalKey) });
    const victim2 = new ClientHandshake(testCredential(1), fixedRandom(1));
    expectCode(() => victim2.onServerHello(thief2.onClientHello(victim2.start())), 'ERR_HANDSHAKE');
  });

  it("lets no holder of ATM 2's key sit between ATM 1 and the bank to read ATM 1's traffic", () => {
    // Man in the middle with K_2 and everything public: it must answer ATM 1 as the bank.
    const k2 = testCredential(2).terminalKey;
    const mitm = bankHandshake({ staticKey: x25519KeyPair(fixedRandom(67)), terminalKeyFor: () => Buffer.from(k2) });
    const atm1 = new ClientHandshake(testCredential(1), fixedRandom(1));
    expectCode(() => atm1.onServerHello(mitm.onClientHello(atm1.start())), 'ERR_HANDSHAKE');
  });

  it('refuses a server hello whose key share or proof was tampered with', () => {
    for (const index of [0, 31, 32, 63]) {
      const { client, serverHello } = run();
      const tampered = Buffer.from(serverHello);
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      expectCode(() => client.onServerHello(tampered), 'ERR_HANDSHAKE');
    }
  });

  it('refuses malformed, old-version and low-order client hellos', () => {
    expectCode(() => bankHandshake().onClientHello(Buffer.alloc(10)), 'ERR_HANDSHAKE');
    const lowOrder = Buffer.alloc(35);
    lowOrder[0] = 2;
    expectCode(() => bankHandshake().onClientHello(lowOrder), 'ERR_HANDSHAKE');
    const version1 = new ClientHandshake(testCredential(7), fixedRandom(1)).start();
    version1[0] = 1;
    expectCode(() => bankHandshake().onClientHello(version1), 'ERR_HANDSHAKE');
  });

  it('enforces the order of stages', () => {
    expectCode(() => bankHandshake().onClientFinished(Buffer.alloc(32)), 'ERR_PHASE');
    const { client, serverHello } = run();
    client.onServerHello(serverHello);
    expectCode(() => client.onServerHello(serverHello), 'ERR_PHASE');
  });

  it('keeps no scalar or key material in either state machine once done', () => {
    const { client, server, serverHello } = run();
    const { clientFinished } = client.onServerHello(serverHello);
    server.onClientFinished(clientFinished);
    // What a memory dump of the live objects would find: no KeyObject, no pending schedule.
    const fields = (object: object): unknown[] => Object.values(object);
    expect(
      fields(client).filter((value) => value !== null && typeof value === 'object' && 'privateKey' in value),
    ).toEqual([]);
    expect(
      fields(server).filter((value) => value !== null && typeof value === 'object' && 'schedule' in value),
    ).toEqual([]);
  });
});
