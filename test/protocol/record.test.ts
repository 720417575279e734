import { expand as nobleHkdfExpand } from '@noble/hashes/hkdf.js';
import { sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';

import { ProtocolError } from '../../protocol/errors.ts';
import {
  CHANNEL_SESSION_ID,
  ContentType,
  Direction,
  RECORD_HEADER_BYTES,
  RecordSession,
  deriveSessionKeys,
  nextKeys,
  type SessionKeys,
} from '../../protocol/record.ts';
import { aes256CbcDecrypt, hkdfSha256, hmacSha256, wipe } from '../../protocol/crypto.ts';
import { expectCode, fixedRandom, hex } from './fixtures.ts';

const SESSION_ID = Buffer.from('0102030405060708', 'hex');
const MASTER = Buffer.alloc(32, 9);
const TRANSCRIPT = Buffer.alloc(32, 3);

function pair(sessionId = SESSION_ID) {
  const keys = deriveSessionKeys(MASTER, TRANSCRIPT, sessionId);
  return {
    atm: new RecordSession(sessionId, keys, Direction.AtmToBank, fixedRandom(1)),
    bank: new RecordSession(sessionId, keys, Direction.BankToAtm, fixedRandom(2)),
  };
}

const request = (text: string): Buffer => Buffer.from(text);

describe('session keys', () => {
  it('are 128 HKDF bytes split into encryption and MAC keys per direction, bound to the session id', () => {
    const keys = deriveSessionKeys(MASTER, TRANSCRIPT, SESSION_ID);
    const all = [keys.atmToBank.encKey, keys.atmToBank.macKey, keys.bankToAtm.encKey, keys.bankToAtm.macKey];
    for (const key of all) expect(key).toHaveLength(32);
    expect(new Set(all.map((key) => key.toString('hex'))).size).toBe(4);
    const okm = hkdfSha256(
      MASTER,
      TRANSCRIPT,
      Buffer.concat([Buffer.from('atm-bank/v2 session keys'), SESSION_ID]),
      128,
    );
    expect(Buffer.concat(all).equals(okm)).toBe(true);
    const other = deriveSessionKeys(MASTER, TRANSCRIPT, CHANNEL_SESSION_ID);
    expect(other.atmToBank.encKey.equals(keys.atmToBank.encKey)).toBe(false);
    const otherConnection = deriveSessionKeys(MASTER, Buffer.alloc(32, 4), SESSION_ID);
    expect(otherConnection.atmToBank.macKey.equals(keys.atmToBank.macKey)).toBe(false);
  });
});

// Our own vectors for the ratchet (record version 2): encKey 0x11 x 32,
// macKey 0x22 x 32, session 0102030405060708. The expected bytes were made
// with @noble/hashes (an HKDF written apart from OpenSSL's), which each test
// also recomputes.
const RATCHET_VECTORS = [
  {
    direction: Direction.AtmToBank,
    seq: 0n,
    next: `a79d3bb0bbc2df5f4d1be033232f3091b246d252dde34c2d8d03c7f82e3de91c
           c272df1277c1461ba01b610daa5ddf61ccb7d571eadcc6fe91794a86f9009f77`,
  },
  {
    direction: Direction.BankToAtm,
    seq: 0n,
    next: `a5b243e54b28bb515f35ae7a6770971d815071becd9deed259f5d71b3476d423
           bbe91380788fdfac72c5e3cca437fac7785602b2747192d863b80dd4471345ef`,
  },
  {
    direction: Direction.AtmToBank,
    seq: 1n,
    next: `b9a25ee8cbed9780a6f8ad3b5c32f333f262f59d3d9b90db5c73ecf1bd0b8ac1
           8ce154b0f4fe99067e1b4f8a63df6cd4662d4407d44dcd454ef2410011076deb`,
  },
  {
    direction: Direction.AtmToBank,
    seq: 0xffff_ffff_ffff_fffen,
    next: `e9009ec2d9a02cb52079a9c7b2028af394acd7d892d9065eb28855b9cbfcdcb5
           9816aaecb79cd73cf5ea5b550ea5eb56f9df462f6a2a75d2f3a3107c271daf2b`,
  },
];

describe('the key ratchet', () => {
  const keys: SessionKeys = { encKey: Buffer.alloc(32, 0x11), macKey: Buffer.alloc(32, 0x22) };
  for (const vector of RATCHET_VECTORS) {
    it(`is HKDF-Expand-SHA512 over encKey | macKey, info naming session, direction ${vector.direction} and seq ${vector.seq}`, () => {
      const next = nextKeys(keys, SESSION_ID, vector.direction, vector.seq);
      expect(Buffer.concat([next.encKey, next.macKey]).toString('hex')).toBe(hex(vector.next).toString('hex'));
      const seq = Buffer.alloc(8);
      seq.writeBigUInt64BE(vector.seq);
      const info = Buffer.concat([Buffer.from('atm-bank/v2 ratchet'), SESSION_ID, Buffer.of(vector.direction), seq]);
      const independent = nobleHkdfExpand(nobleSha512, Buffer.concat([keys.encKey, keys.macKey]), info, 64);
      expect(Buffer.from(independent).toString('hex')).toBe(hex(vector.next).toString('hex'));
    });
  }

  it('is the step a live session takes: its keys after two records are the vectors chained', () => {
    const start: SessionKeys = { encKey: Buffer.alloc(32, 0x11), macKey: Buffer.alloc(32, 0x22) };
    const atm = new RecordSession(
      SESSION_ID,
      { atmToBank: start, bankToAtm: { encKey: Buffer.alloc(32, 0x33), macKey: Buffer.alloc(32, 0x44) } },
      Direction.AtmToBank,
      fixedRandom(1),
    );
    atm.seal(ContentType.Request, request('one'));
    const afterOne = atm['sending'].keys;
    expect(Buffer.concat([afterOne.encKey, afterOne.macKey]).toString('hex')).toBe(
      hex(RATCHET_VECTORS[0]?.next ?? '').toString('hex'),
    );
    // Computed before the second record, which wipes the keys it replaces.
    const expected = nextKeys(afterOne, SESSION_ID, Direction.AtmToBank, 1n);
    atm.seal(ContentType.Request, request('two'));
    expect(afterOne.encKey.equals(Buffer.alloc(32)) && afterOne.macKey.equals(Buffer.alloc(32))).toBe(true);
    const afterTwo = atm['sending'].keys;
    expect(afterTwo.encKey.equals(expected.encKey) && afterTwo.macKey.equals(expected.macKey)).toBe(true);
  });
});

describe('RecordSession', () => {
  it('opens what the other side sealed, in both directions, many times', () => {
    const { atm, bank } = pair();
    for (let i = 0; i < 5; i += 1) {
      const opened = bank.open(atm.seal(ContentType.Request, request(`deposit ${i}`)));
      expect(opened.plaintext.toString()).toBe(`deposit ${i}`);
      expect(opened.seq).toBe(BigInt(i));
      expect(atm.open(bank.seal(ContentType.Response, request(`ok ${i}`))).plaintext.toString()).toBe(`ok ${i}`);
    }
  });

  it('lays out the header as version, type, session id, direction and sequence', () => {
    const { atm } = pair();
    atm.seal(ContentType.Request, request('first'));
    const record = atm.seal(ContentType.Request, request('second'));
    expect(record.subarray(0, RECORD_HEADER_BYTES).toString('hex')).toBe(
      '0201' + '0102030405060708' + '01' + '0000000000000001',
    );
  });

  it('never shows the plaintext and uses a fresh IV each time', () => {
    const { atm } = pair();
    const a = atm.seal(ContentType.Request, request('same text'));
    const b = atm.seal(ContentType.Request, request('same text'));
    expect(a.includes(Buffer.from('same text'))).toBe(false);
    expect(
      a
        .subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + 16)
        .equals(b.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + 16)),
    ).toBe(false);
  });

  it('rejects a flipped bit anywhere: header, IV, ciphertext or MAC', () => {
    const { atm } = pair();
    const record = atm.seal(ContentType.Request, request('withdraw 100'));
    for (let index = 0; index < record.length; index += 1) {
      const tampered = Buffer.from(record);
      tampered[index] = (tampered[index] ?? 0) ^ 0x80;
      const { bank } = pair();
      let code = '';
      try {
        bank.open(tampered);
      } catch (error) {
        code = (error as ProtocolError).code;
      }
      expect(code, `byte ${index}`).toMatch(/^ERR_(BAD_MAC|RECORD_VERSION|UNKNOWN_SESSION|WRONG_DIRECTION|SEQUENCE)$/);
    }
  });

  it('rejects ciphertext and padding manipulation by the MAC, before decrypting', () => {
    const { atm, bank } = pair();
    const record = atm.seal(ContentType.Request, request('pad me'));
    const lastCipherByte = record.length - 32 - 1;
    const tampered = Buffer.from(record);
    tampered[lastCipherByte - 16] = (tampered[lastCipherByte - 16] ?? 0) ^ 0x01;
    expectCode(() => bank.open(tampered), 'ERR_BAD_MAC');
  });

  it('rejects a reflected bank->ATM record sent back to the bank', () => {
    const { atm, bank } = pair();
    bank.open(atm.seal(ContentType.Request, request('balance')));
    const answer = bank.seal(ContentType.Response, request('balance is 100'));
    expectCode(() => bank.open(answer), 'ERR_WRONG_DIRECTION');
  });

  it('rejects a record whose direction byte was rewritten', () => {
    const answer = pair().bank.seal(ContentType.Response, request('x'));
    answer[RECORD_HEADER_BYTES - 9] = Direction.AtmToBank;
    expectCode(() => pair().bank.open(answer), 'ERR_BAD_MAC');
  });

  it('rejects a replayed record', () => {
    const { atm, bank } = pair();
    const record = atm.seal(ContentType.Request, request('deposit 5'));
    bank.open(record);
    expectCode(() => bank.open(record), 'ERR_SEQUENCE');
  });

  it('rejects a replayed record whose sequence number was rewritten to the expected one', () => {
    const { atm, bank } = pair();
    const record = atm.seal(ContentType.Request, request('deposit 5'));
    bank.open(record);
    const rewritten = Buffer.from(record);
    rewritten.writeBigUInt64BE(1n, 11);
    expectCode(() => bank.open(rewritten), 'ERR_BAD_MAC');
  });

  it('rejects a skipped record (a dropped message desynchronises the session)', () => {
    const { atm, bank } = pair();
    atm.seal(ContentType.Request, request('dropped by the attacker'));
    expectCode(() => bank.open(atm.seal(ContentType.Request, request('next'))), 'ERR_SEQUENCE');
  });

  it('rejects records delivered out of order', () => {
    const { atm, bank } = pair();
    atm.seal(ContentType.Request, request('one'));
    const second = atm.seal(ContentType.Request, request('two'));
    expectCode(() => bank.open(second), 'ERR_SEQUENCE');
  });

  it('rejects truncated and misaligned records', () => {
    const { atm } = pair();
    const record = atm.seal(ContentType.Request, request('withdraw 100'));
    for (const length of [0, 10, RECORD_HEADER_BYTES, record.length - 1, record.length - 32]) {
      expectCode(() => pair().bank.open(record.subarray(0, length)), 'ERR_TRUNCATED');
    }
  });

  it('rejects a record naming another session', () => {
    const record = pair(Buffer.from('ffffffffffffffff', 'hex')).atm.seal(ContentType.Request, request('x'));
    expectCode(() => pair().bank.open(record), 'ERR_UNKNOWN_SESSION');
  });

  it('rejects a record sealed by another session that claims this session id (impersonation)', () => {
    const otherKeys = deriveSessionKeys(Buffer.alloc(32, 1), TRANSCRIPT, SESSION_ID);
    const mallory = new RecordSession(SESSION_ID, otherKeys, Direction.AtmToBank, fixedRandom(5));
    expectCode(() => pair().bank.open(mallory.seal(ContentType.Request, request('withdraw all'))), 'ERR_BAD_MAC');
  });

  it('stops working after a failure and after destroy', () => {
    const { atm, bank } = pair();
    expectCode(() => bank.open(Buffer.alloc(100)), 'ERR_TRUNCATED');
    expectCode(() => bank.open(atm.seal(ContentType.Request, request('x'))), 'ERR_CONNECTION_CLOSED');
    atm.destroy();
    expectCode(() => atm.seal(ContentType.Request, request('x')), 'ERR_CONNECTION_CLOSED');
  });

  it('moves its keys forward after every message, so keys taken at message n cannot open earlier ones', () => {
    const keys = deriveSessionKeys(MASTER, TRANSCRIPT, SESSION_ID);
    const { atm, bank } = pair();
    const records = [0, 1, 2].map((i) => atm.seal(ContentType.Request, request(`message ${i}`)));
    for (const record of records) bank.open(record);
    // What an attacker who dumps memory after message 2 holds: the keys for message 2.
    let stolen = keys.atmToBank;
    for (const seq of [0n, 1n]) stolen = nextKeys(stolen, SESSION_ID, Direction.AtmToBank, seq);
    const macStart = (record: Buffer): number => record.length - 32;
    for (const record of records.slice(0, 2)) {
      const mac = hmacSha256(stolen.macKey, record.subarray(0, macStart(record)));
      expect(mac.equals(record.subarray(macStart(record)))).toBe(false);
      const iv = record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + 16);
      const plain = aes256CbcDecrypt(stolen.encKey, iv, record.subarray(RECORD_HEADER_BYTES + 16, macStart(record)));
      expect(plain?.toString().startsWith('message')).not.toBe(true);
    }
    // ...while the same stolen keys do open message 2, so the test can tell.
    const current = records[2] ?? Buffer.alloc(0);
    const mac = hmacSha256(stolen.macKey, current.subarray(0, macStart(current)));
    expect(mac.equals(current.subarray(macStart(current)))).toBe(true);
  });

  it("starts each direction from its own keys, so neither direction's keys open the other's records", () => {
    const { atm } = pair();
    // The live object's fields, as a memory dump would find them.
    const sending = atm['sending'].keys;
    const receiving = atm['receiving'].keys;
    expect(sending.encKey.equals(receiving.encKey)).toBe(false);
    expect(sending.macKey.equals(receiving.macKey)).toBe(false);
    const record = atm.seal(ContentType.Request, request('deposit 5'));
    const macStart = record.length - 32;
    const forged = hmacSha256(receiving.macKey, record.subarray(0, macStart));
    expect(forged.equals(record.subarray(macStart))).toBe(false);
  });

  it('leaves no superseded record key anywhere in the memory its keys live in, after 40 records', () => {
    // The keys each of the 40 records was sealed with, copied outside Buffer's
    // shared pool (Buffer.alloc never pools), so the scan cannot find the test's own copies.
    // A master secret no other test uses: other tests leave their own keys in the pool on purpose.
    const initial = deriveSessionKeys(fixedRandom(4242)(32), TRANSCRIPT, SESSION_ID);
    const unpooled = (key: Buffer): Buffer => {
      const copy = Buffer.alloc(key.length);
      key.copy(copy);
      return copy;
    };
    const superseded: Buffer[] = [];
    let keys: SessionKeys = { encKey: unpooled(initial.atmToBank.encKey), macKey: unpooled(initial.atmToBank.macKey) };
    for (let seq = 0n; seq < 40n; seq += 1n) {
      superseded.push(unpooled(keys.encKey), unpooled(keys.macKey));
      const next = nextKeys(keys, SESSION_ID, Direction.AtmToBank, seq);
      wipe(keys.encKey, keys.macKey);
      keys = next;
    }
    const current = [unpooled(keys.encKey), unpooled(keys.macKey)];
    wipe(keys.encKey, keys.macKey);

    const atm = new RecordSession(SESSION_ID, initial, Direction.AtmToBank, fixedRandom(1));
    wipe(initial.atmToBank.encKey, initial.atmToBank.macKey, initial.bankToAtm.encKey, initial.bankToAtm.macKey);
    // Every block of memory that ever held the session's live keys (Buffer's
    // 8 KiB pool slabs, where the ratchet's other buffers are allocated too).
    const slabs = new Set<ArrayBufferLike>();
    for (let i = 0; i < 40; i += 1) {
      atm.seal(ContentType.Request, request(`deposit ${i}`));
      slabs.add(atm['sending'].keys.encKey.buffer);
      slabs.add(atm['sending'].keys.macKey.buffer);
    }
    const memory = Buffer.concat([...slabs].map((slab) => Buffer.from(slab)));
    const found = superseded.filter((key) => memory.includes(key));
    expect(found.length, `${found.length} of ${superseded.length} superseded keys found`).toBe(0);
    // The scan does find what is meant to be there: the current keys.
    for (const key of current) expect(memory.includes(key)).toBe(true);
  });
});
