import { describe, expect, it } from 'vitest';

import { NoticeSchema, RequestSchema, decodeMessage } from '../../protocol/messages.ts';

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
