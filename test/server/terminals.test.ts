import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import net from 'node:net';

import { BankClient } from '../../protocol/client.ts';
import { x25519KeyPair } from '../../protocol/crypto.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import { encodeFrame, FrameType } from '../../protocol/frame.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';
import { ClientHandshake, deriveTerminalKey, ServerHandshake, type AtmCredential } from '../../protocol/handshake.ts';
import { performServerHandshake } from '../../protocol/perform-handshake.ts';
import { readAtmCredential, readBankKeys } from '../../runtime/key-files.ts';
import { createBankKeys, Terminals } from '../../server/terminals.ts';
import { auditEvents, startTestBank, type TestBank } from '../helpers.ts';
import { fixedRandom } from '../protocol/fixtures.ts';

const dirs: string[] = [];
function bankDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'terminals-'));
  dirs.push(dir);
  createBankKeys(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('Terminals', () => {
  it("provisions ATM N with only its own derived key and the bank's public key, 0600", () => {
    const dir = bankDir();
    const terminals = Terminals.open(dir);
    const { file, created } = terminals.provision(3);
    expect(created).toBe(true);
    expect(file).toBe(path.join(dir, 'atm-3.key'));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const credential = readAtmCredential(file, 3);
    const { terminalMasterKey, staticPrivateKey } = readBankKeys(path.join(dir, 'bank.keys'));
    expect(credential.terminalKey.equals(deriveTerminalKey(terminalMasterKey, 3))).toBe(true);
    expect(credential.bankPublicKey.equals(terminals.staticKey.publicKey)).toBe(true);
    const text = fs.readFileSync(file, 'utf8');
    for (const secret of [terminalMasterKey, staticPrivateKey]) {
      expect(text.includes(secret.toString('base64'))).toBe(false);
    }
    // Provisioning again keeps the same file.
    expect(terminals.provision(3).created).toBe(false);
  });

  it('refuses to overwrite a credential from another bank', () => {
    const dir = bankDir();
    const other = bankDir();
    Terminals.open(other).provision(4, path.join(dir, 'atm-4.key'));
    expect(() => Terminals.open(dir).provision(4)).toThrow('credential from another bank');
  });

  it('revokes a terminal: no key for it from the next lookup on, in this process and in a running bank', () => {
    const dir = bankDir();
    const running = Terminals.open(dir);
    expect(running.terminalKeyFor(5)).not.toBeNull();
    // The operator's command is another process with its own Terminals.
    expect(Terminals.open(dir).revoke(5, new Date('2026-01-02T03:04:05Z'))).toBe(true);
    expect(running.terminalKeyFor(5)).toBeNull();
    expect(running.terminalKeyFor(6)).not.toBeNull();
    expect(running.revocations()).toEqual([{ atm: 5, at: '2026-01-02T03:04:05.000Z' }]);
    expect(Terminals.open(dir).revoke(5, new Date())).toBe(false);
    expect(() => running.provision(5)).toThrow('ATM 5 is revoked');
  });

  it('fails closed when the revocation list is damaged', () => {
    const dir = bankDir();
    const terminals = Terminals.open(dir);
    fs.writeFileSync(path.join(dir, 'revoked-atms'), 'not json');
    expect(() => terminals.terminalKeyFor(1)).toThrow('revocation list');
  });
});

describe('terminal keys on the wire', () => {
  let running: TestBank | null = null;
  const servers: net.Server[] = [];
  afterEach(async () => {
    await running?.stop();
    running = null;
    for (const server of servers.splice(0)) server.close();
  });

  /** A raw peer that completes ClientHello and then forges a ClientFinished, as a thief without the key must. */
  async function forgedHandshake(bank: TestBank, credential: AtmCredential): Promise<void> {
    const socket = net.connect({ host: '127.0.0.1', port: bank.bank.port });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const reader = new FrameReader(4096);
    const serverHello = new Promise<Buffer>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        const frame = reader.push(chunk).frames[0];
        if (frame) resolve(frame.body);
      }),
    );
    const handshake = new ClientHandshake(credential, fixedRandom(21));
    socket.write(encodeFrame(FrameType.ClientHello, handshake.start()));
    // The thief cannot check the bank's proof with the wrong key...
    const hello = await serverHello;
    expect(() => handshake.onServerHello(hello)).toThrow(ProtocolError);
    // ...nor produce the finished MAC for the number it claims, so the bank hangs up.
    socket.write(encodeFrame(FrameType.ClientFinished, Buffer.alloc(32, 1)));
    await closed;
  }

  /** A fake bank on loopback that answers ATMs with `terminalKey` and a static key of its own. */
  async function fakeBank(terminalKey: Buffer): Promise<number> {
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      const handshake = new ServerHandshake({
        staticKey: x25519KeyPair(fixedRandom(77)),
        terminalKeyFor: () => Buffer.from(terminalKey),
        random: fixedRandom(78),
      });
      performServerHandshake(socket, handshake, new FrameReader(4096), 5_000).catch(() => socket.destroy());
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  it('refuses key N connecting as ATM M, and audits the number only as claimed', async () => {
    running = await startTestBank();
    await forgedHandshake(running, { ...running.bank.credentialFor(2), atmId: 1 });
    const failure = auditEvents(running.dataDir).find((event) => event.action === 'protocol_error');
    expect(failure).toMatchObject({ atm: null, outcome: 'ERR_HANDSHAKE' });
    expect(failure?.detail).toMatch(/^claimed:1@127\.0\.0\.1:\d+$/);
    expect(fs.readFileSync(path.join(running.dataDir, 'audit', 'audit_log.txt'), 'utf8')).toMatch(
      /atm=- user=- action=protocol_error amount=- outcome=ERR_HANDSHAKE detail=claimed:1@/,
    );
    // The genuine ATM 1 still connects.
    await (await running.connect(1)).ping();
  });

  it('cuts a revoked ATM that is connected, refuses it from then on, audits both, and keeps serving others', async () => {
    running = await startTestBank();
    const atm3 = await running.connect(3);
    const atm4 = await running.connect(4);
    await atm3.ping();
    // What `npm run bank -- revoke-atm 3` does, from another process's view of the data dir.
    Terminals.open(running.dataDir).revoke(3, new Date('2026-11-23T12:00:00Z'));
    await expect.poll(() => atm3.closed, { timeout: 10_000 }).toBe(true);
    await expect(running.connect(3)).rejects.toBeInstanceOf(ProtocolError);
    await atm4.ping();
    const events = auditEvents(running.dataDir);
    expect(events).toContainEqual(
      expect.objectContaining({ action: 'atm_revoked', atm: 3, outcome: 'ok', detail: '2026-11-23T12:00:00.000Z' }),
    );
    // Cut while connected: its number was proven.
    expect(events).toContainEqual(
      expect.objectContaining({ action: 'protocol_error', atm: 3, outcome: 'ERR_ATM_REVOKED' }),
    );
    // Refused at its next ClientHello: only claimed.
    await expect
      .poll(() =>
        auditEvents(running?.dataDir ?? '').some(
          (event) =>
            event.outcome === 'ERR_ATM_REVOKED' && event.atm === null && /^claimed:3@/.test(event.detail ?? ''),
        ),
      )
      .toBe(true);
    // A restart audits the revocations in force.
    const dataDir = running.dataDir;
    await running.stop();
    running = await startTestBank({ dataDir });
    expect(auditEvents(dataDir)).toContainEqual(
      expect.objectContaining({ action: 'atm_revoked', atm: 3, outcome: 'in_force' }),
    );
    await expect(running.connect(3)).rejects.toBeInstanceOf(ProtocolError);
  });

  it('a stolen terminal key cannot pose as the bank: the ATM refuses a bank without the static private key', async () => {
    running = await startTestBank();
    const stolen = running.bank.credentialFor(1);
    const port = await fakeBank(stolen.terminalKey);
    await expect(
      BankClient.connect({
        host: '127.0.0.1',
        port,
        credential: running.bank.credentialFor(1),
        handshakeTimeoutMs: 5_000,
      }),
    ).rejects.toMatchObject({ code: 'ERR_HANDSHAKE' });
  });

  it("ATM 2's key cannot open ATM 1's traffic: a man in the middle holding it cannot complete ATM 1's handshake", async () => {
    running = await startTestBank();
    // Everything a holder of ATM 2's credential has: K_2 and the bank's public key.
    const port = await fakeBank(running.bank.credentialFor(2).terminalKey);
    await expect(
      BankClient.connect({
        host: '127.0.0.1',
        port,
        credential: running.bank.credentialFor(1),
        handshakeTimeoutMs: 5_000,
      }),
    ).rejects.toMatchObject({ code: 'ERR_HANDSHAKE' });
  });
});
