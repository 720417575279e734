import { describe, expect, it } from 'vitest';

import { AES_BLOCK_BYTES, MAC_BYTES } from '../../protocol/crypto.ts';
import { DEFAULT_MAX_FRAME_BODY } from '../../protocol/frame.ts';
import {
  decodeMessage,
  encodeMessage,
  NoticeSchema,
  RequestSchema,
  ResponseSchema,
  STATEMENT_MAX_PAGE,
  type Response,
} from '../../protocol/messages.ts';
import { RECORD_HEADER_BYTES } from '../../protocol/record.ts';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('the client address a request carries', () => {
  it.each(['203.0.113.7', '::1', '::ffff:127.0.0.1', 'fe80::1%eth0', '2001:db8::42'])('accepts %s', (client) => {
    expect(decodeMessage(RequestSchema, json({ id: 1, op: 'balance', client }))).toEqual({
      id: 1,
      op: 'balance',
      client,
    });
  });

  it.each(['', 'a b', 'x\nuser=admin', '"quoted"', 'a'.repeat(65), 'é'])('refuses %j', (client) => {
    expect(
      decodeMessage(RequestSchema, json({ id: 1, op: 'deposit', txId: 'tx-000001', amountCents: 5, client })),
    ).toBeNull();
  });

  it('is optional, and a ping carries none', () => {
    expect(decodeMessage(RequestSchema, json({ id: 1, op: 'balance' }))).toEqual({ id: 1, op: 'balance' });
    expect(decodeMessage(RequestSchema, json({ id: 1, op: 'ping', client: '::1' }))).toBeNull();
  });
});

describe('the audit checkpoint notice', () => {
  const notice = { kind: 'audit_checkpoint', line: 42, chainHash: 'ab'.repeat(32), signature: 'cd'.repeat(64) };

  it('carries a line number, a SHA-256 chain hash and an Ed25519 signature in hex', () => {
    expect(decodeMessage(NoticeSchema, json(notice))).toEqual(notice);
  });

  it.each([
    { ...notice, line: -1 },
    { ...notice, chainHash: 'AB'.repeat(32) },
    { ...notice, signature: 'cd'.repeat(63) },
    { ...notice, extra: 1 },
    { ...notice, kind: 'other' },
  ])('refuses a malformed one (%#)', (bad) => {
    expect(decodeMessage(NoticeSchema, json(bad))).toBeNull();
  });
});

/** Bytes of the sealed record carrying `plaintext`: header, IV, CBC-padded ciphertext, MAC. */
const sealedBytes = (plaintext: number): number =>
  RECORD_HEADER_BYTES + AES_BLOCK_BYTES + (Math.floor(plaintext / AES_BLOCK_BYTES) + 1) * AES_BLOCK_BYTES + MAC_BYTES;

describe('messages', () => {
  it('fit the largest statement answer, every field at its longest, in one default frame', () => {
    const entry = {
      at: '2026-11-23T16:27:08.123Z',
      kind: 'withdraw',
      amountCents: 100_000_000,
      balanceAfterCents: Number.MAX_SAFE_INTEGER,
    } as const;
    const response: Response = {
      id: 0x7fff_ffff,
      ok: true,
      result: {
        op: 'statement',
        balanceCents: Number.MAX_SAFE_INTEGER,
        entries: Array.from({ length: STATEMENT_MAX_PAGE }, () => entry),
        more: true,
      },
    };
    const bytes = encodeMessage(response);
    expect(decodeMessage(ResponseSchema, bytes)).toEqual(response);
    expect(sealedBytes(bytes.length)).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BODY);
  });

  it('refuse a statement page larger than the bank may answer, and carry until when an account is locked', () => {
    const page = (limit: number) => encodeMessage({ id: 1, op: 'statement', offset: 0, limit });
    expect(decodeMessage(RequestSchema, page(STATEMENT_MAX_PAGE))).not.toBeNull();
    expect(decodeMessage(RequestSchema, page(STATEMENT_MAX_PAGE + 1))).toBeNull();
    const locked = {
      id: 1,
      ok: false,
      code: 'ERR_ACCOUNT_LOCKED',
      message: 'locked',
      lockedUntil: '2026-01-01T00:30:00.000Z',
    };
    expect(decodeMessage(ResponseSchema, Buffer.from(JSON.stringify(locked)))).toEqual(locked);
    const garbled = { ...locked, lockedUntil: 'soon' };
    expect(decodeMessage(ResponseSchema, Buffer.from(JSON.stringify(garbled)))).toBeNull();
  });
});

describe("the login answer's last login", () => {
  const answer = (lastLogin: unknown) =>
    json({
      id: 1,
      ok: true,
      result: {
        op: 'login',
        username: 'grace',
        sessionId: '0123456789abcdef',
        masterSecret: `${'A'.repeat(43)}=`,
        lastLogin,
      },
    });

  it.each([null, { at: '2026-01-01T08:00:00.000Z', atmId: 1 }, { at: '2026-01-01T08:00:00.000Z', atmId: null }])(
    'accepts %j',
    (lastLogin) => {
      expect(decodeMessage(ResponseSchema, answer(lastLogin))).toMatchObject({ result: { lastLogin } });
    },
  );

  it.each([
    undefined,
    { at: 'yesterday', atmId: 1 },
    { at: '2026-01-01T08:00:00.000Z', atmId: 1.5 },
    { at: '2026-01-01T08:00:00.000Z', atmId: '1' },
    { at: '2026-01-01T08:00:00.000Z' },
    { at: '2026-01-01T08:00:00.000Z', atmId: 1, where: 'x' },
  ])('refuses %j', (lastLogin) => {
    expect(decodeMessage(ResponseSchema, answer(lastLogin))).toBeNull();
  });
});
