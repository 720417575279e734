import net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { SecureChannel, type SessionId } from '../../protocol/channel.ts';
import { BankClient } from '../../protocol/client.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import { encodeFrame, FrameType } from '../../protocol/frame.ts';
import { FrameReader, type ReadResult } from '../../protocol/frame-reader.ts';
import { ClientHandshake, ServerHandshake, type ChannelSecrets } from '../../protocol/handshake.ts';
import { performClientHandshake, performServerHandshake } from '../../protocol/perform-handshake.ts';
import { hmacSha256, wipe } from '../../protocol/crypto.ts';
import { CHANNEL_SESSION_ID, ContentType, Direction, RecordSession, deriveSessionKeys } from '../../protocol/record.ts';
import { BANK_STATIC_KEY, fixedRandom, testCredential, testTerminalKeys } from './fixtures.ts';

const sockets: net.Socket[] = [];
const servers: net.Server[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) server.close();
});

/** Two ends of a loopback TCP connection: the ATM's and the bank's. */
async function socketPair(): Promise<{ atm: net.Socket; bank: net.Socket }> {
  const server = net.createServer();
  servers.push(server);
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const atm = net.connect({ host: '127.0.0.1', port });
  const bank = await accepted;
  sockets.push(atm, bank);
  return { atm, bank };
}

/** The bank's side of the handshake, with the test bank's static key and terminal keys. */
function bankHandshake(seed: number): ServerHandshake {
  return new ServerHandshake({
    staticKey: BANK_STATIC_KEY,
    terminalKeyFor: testTerminalKeys(),
    random: fixedRandom(seed),
  });
}

type Received = { session: SessionId; text: string };

/** A channel whose messages are UTF-8 text, collecting what arrives and how it ended. */
function textChannel(
  socket: net.Socket,
  role: 'atm' | 'bank',
  secrets: ChannelSecrets,
  reader: FrameReader,
  rest?: ReadResult,
) {
  const received: Received[] = [];
  const notices: string[] = [];
  let closedWith: ProtocolError | null = null;
  const channel = new SecureChannel<string>(socket, {
    role,
    secrets,
    ivRandom: fixedRandom(role === 'atm' ? 11 : 12),
    reader,
    ...(rest ? { rest } : {}),
    decode: (plaintext) => plaintext.toString('utf8'),
    onMessage: (session, text) => received.push({ session, text }),
    ...(role === 'atm' ? { onNotice: (plaintext: Buffer) => notices.push(plaintext.toString('utf8')) } : {}),
    onClose: (reason) => (closedWith = reason),
  });
  return { channel, received, notices, closedWith: () => closedWith };
}

/** Both ends after a real handshake over loopback, each with its channel. */
async function connectedPair() {
  const { atm, bank } = await socketPair();
  const atmReader = new FrameReader(4096);
  const bankReader = new FrameReader(4096);
  const [atmSecrets, bankResult] = await Promise.all([
    performClientHandshake(atm, new ClientHandshake(testCredential(7), fixedRandom(1)), atmReader, 5_000),
    performServerHandshake(bank, bankHandshake(2), bankReader, 5_000),
  ]);
  return {
    atm: { ...textChannel(atm, 'atm', atmSecrets, atmReader), socket: atm },
    bank: textChannel(bank, 'bank', bankResult.secrets, bankReader, bankResult.rest),
  };
}

const text = (value: string): Buffer => Buffer.from(value, 'utf8');

describe('SecureChannel', () => {
  it("carries messages both ways on the connection's own session and on a customer session both ends installed", async () => {
    const { atm, bank } = await connectedPair();
    expect(bank.channel.atmId).toBe(7);
    atm.channel.send(null, text('ping'));
    await expect.poll(() => bank.received).toEqual([{ session: null, text: 'ping' }]);

    const sessionId = Buffer.from('0102030405060708', 'hex');
    const masterSecret = Buffer.alloc(32, 9);
    const id = bank.channel.openSession(sessionId, masterSecret);
    expect(atm.channel.openSession(sessionId, masterSecret)).toBe(id);
    atm.channel.send(id, text('deposit'));
    await expect.poll(() => bank.received.at(-1)).toEqual({ session: id, text: 'deposit' });
    bank.channel.send(id, text('done'));
    await expect.poll(() => atm.received).toEqual([{ session: id, text: 'done' }]);
    expect(bank.closedWith()).toBeNull();
    expect(atm.closedWith()).toBeNull();
  });

  it('ends the connection with ERR_UNKNOWN_SESSION for a session only the sender installed, and the peer hears an alert', async () => {
    const { atm, bank } = await connectedPair();
    const id = atm.channel.openSession(Buffer.from('1111111111111111', 'hex'), Buffer.alloc(32, 1));
    atm.channel.send(id, text('withdraw'));
    await expect.poll(() => bank.closedWith()?.code).toBe('ERR_UNKNOWN_SESSION');
    await expect.poll(() => atm.closedWith()?.code).toBe('ERR_PEER_ALERT');
    expect(bank.received).toEqual([]);
  });

  it('refuses to send once closed, and closes once', async () => {
    const { atm } = await connectedPair();
    atm.channel.close(new ProtocolError('ERR_TIMEOUT'));
    atm.channel.close(new ProtocolError('ERR_BAD_MAC'));
    expect(atm.closedWith()?.code).toBe('ERR_TIMEOUT');
    expect(() => atm.channel.send(null, text('late'))).toThrow(
      expect.objectContaining({ code: 'ERR_CONNECTION_CLOSED' }),
    );
  });

  it('carries notices from the bank to the ATM apart from answers, and only that way', async () => {
    const { atm, bank } = await connectedPair();
    bank.channel.sendNotice(text('checkpoint 1'));
    bank.channel.send(null, text('answer'));
    bank.channel.sendNotice(text('checkpoint 2'));
    await expect.poll(() => atm.notices).toEqual(['checkpoint 1', 'checkpoint 2']);
    expect(atm.received).toEqual([{ session: null, text: 'answer' }]);
    expect(() => atm.channel.sendNotice(text('forged'))).toThrow(/only the bank sends notices/);
    expect(atm.closedWith()).toBeNull();
  });

  it('ends the connection with ERR_PHASE for a handshake frame after the handshake', async () => {
    const { atm, bank } = await connectedPair();
    atm.socket.write(encodeFrame(FrameType.ClientHello, text('x')));
    await expect.poll(() => bank.closedWith()?.code).toBe('ERR_PHASE');
  });
});

describe('performServerHandshake and performClientHandshake', () => {
  it('hands the channel a record that arrived in the same write as ClientFinished', async () => {
    const { atm, bank } = await socketPair();
    const bankReader = new FrameReader(4096);
    const bankSide = performServerHandshake(bank, bankHandshake(2), bankReader, 5_000);
    const client = new ClientHandshake(testCredential(3), fixedRandom(1));
    atm.write(encodeFrame(FrameType.ClientHello, client.start()));
    const serverHello = await new Promise<Buffer>((resolve) => atm.once('data', resolve));
    const { clientFinished, secrets } = client.onServerHello(serverHello.subarray(4));
    const own = new RecordSession(CHANNEL_SESSION_ID, secrets.channelKeys, Direction.AtmToBank, fixedRandom(5));
    const record = own.seal(ContentType.Request, text('first'));
    atm.write(
      Buffer.concat([encodeFrame(FrameType.ClientFinished, clientFinished), encodeFrame(FrameType.Record, record)]),
    );
    const { secrets: bankSecrets, rest } = await bankSide;
    const received = textChannel(bank, 'bank', bankSecrets, bankReader, rest).received;
    await expect.poll(() => received).toEqual([{ session: null, text: 'first' }]);
  });

  it('fails the bank side with ERR_HANDSHAKE when the ATM holds another terminal key', async () => {
    const { atm, bank } = await socketPair();
    const bankSide = performServerHandshake(bank, bankHandshake(2), new FrameReader(4096), 5_000);
    const atmSide = performClientHandshake(
      atm,
      new ClientHandshake({ ...testCredential(1), terminalKey: Buffer.alloc(32, 0x13) }, fixedRandom(1)),
      new FrameReader(4096),
      5_000,
    );
    await expect(atmSide).rejects.toMatchObject({ code: 'ERR_HANDSHAKE' });
    atm.write(encodeFrame(FrameType.ClientFinished, Buffer.alloc(32)));
    await expect(bankSide).rejects.toMatchObject({ code: 'ERR_HANDSHAKE' });
  });

  it('fails with ERR_HANDSHAKE_TIMEOUT when the peer says nothing', async () => {
    const { bank } = await socketPair();
    const started = Date.now();
    await expect(performServerHandshake(bank, bankHandshake(2), new FrameReader(4096), 100)).rejects.toMatchObject({
      code: 'ERR_HANDSHAKE_TIMEOUT',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('reports an Alert during the handshake as ERR_PEER_ALERT and a record as ERR_PHASE', async () => {
    const first = await socketPair();
    const alerted = performServerHandshake(first.bank, bankHandshake(2), new FrameReader(4096), 5_000);
    first.atm.write(encodeFrame(FrameType.Alert, text('connection terminated')));
    await expect(alerted).rejects.toMatchObject({ code: 'ERR_PEER_ALERT' });
    const second = await socketPair();
    const early = performServerHandshake(second.bank, bankHandshake(2), new FrameReader(4096), 5_000);
    second.atm.write(encodeFrame(FrameType.Record, Buffer.alloc(64)));
    await expect(early).rejects.toMatchObject({ code: 'ERR_PHASE' });
  });
});

describe('an ATM the bank refuses during the handshake', () => {
  /** A bank that answers the first bytes with `reply`, records what comes after, and resets the connection on it. */
  async function refusingBank(reply: Buffer): Promise<{ atm: net.Socket; after: Buffer[] }> {
    const { atm, bank } = await socketPair();
    const after: Buffer[] = [];
    bank.once('data', () => {
      bank.write(reply);
      bank.on('data', (chunk: Buffer) => {
        after.push(chunk);
        bank.resetAndDestroy();
      });
    });
    return { atm, after };
  }

  const connectOver = (socket: net.Socket) =>
    BankClient.connect({ socket, credential: testCredential(2), handshakeTimeoutMs: 5_000 });

  it("hears the bank's alert as ERR_PEER_ALERT and sends nothing back", async () => {
    const { atm, after } = await refusingBank(encodeFrame(FrameType.Alert, text('connection terminated')));
    await expect(connectOver(atm)).rejects.toMatchObject({ code: 'ERR_PEER_ALERT' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(after).toEqual([]);
  });

  it('alerts a bank that sent something else, and survives the reset that answers it', async () => {
    const { atm, after } = await refusingBank(encodeFrame(FrameType.Record, Buffer.alloc(64)));
    await expect(connectOver(atm)).rejects.toMatchObject({ code: 'ERR_HANDSHAKE' });
    await expect.poll(() => after.length).toBe(1);
    await expect.poll(() => atm.destroyed).toBe(true);
    // The socket was given up; a late error on it must not become the process's uncaught exception.
    expect(() => atm.emit('error', new Error('read ECONNRESET'))).not.toThrow();
  });
});

/**
 * Every Buffer reachable from `root` through fields, Maps, Sets and arrays:
 * what a memory dump of the live object would hold. Sockets are skipped (they
 * hold only bytes already on the wire).
 */
function reachableBuffers(root: unknown): Buffer[] {
  const found: Buffer[] = [];
  const seen = new Set<unknown>();
  const queue: unknown[] = [root];
  while (queue.length > 0) {
    const value = queue.shift();
    if (value === null || typeof value !== 'object' || seen.has(value)) continue;
    seen.add(value);
    if (Buffer.isBuffer(value)) {
      found.push(value);
    } else if (value instanceof net.Socket) {
      continue;
    } else if (value instanceof Map) {
      queue.push(...value.keys(), ...value.values());
    } else if (value instanceof Set || Array.isArray(value)) {
      queue.push(...value);
    } else {
      queue.push(...Object.values(value));
    }
  }
  return found;
}

/** The record frames in a captured byte stream, in order. */
function recordsIn(chunks: Buffer[]): Buffer[] {
  const { frames } = new FrameReader(4096).push(Buffer.concat(chunks));
  return frames.filter((frame) => frame.type === FrameType.Record).map((frame) => frame.body);
}

/**
 * Does any candidate open `record`: as a secret (with any candidate as the
 * transcript hash) from which its session's first keys derive, or directly as
 * its MAC key? (A record whose MAC verifies is one the attacker can decrypt
 * with the key derived beside it; the MAC is the sharper test.)
 */
function opensWith(candidates: Buffer[], record: Buffer, direction: Direction, sessionId: Buffer): boolean {
  const keys = candidates.filter((candidate) => candidate.length === 32);
  const body = record.subarray(0, record.length - 32);
  const tag = record.subarray(record.length - 32);
  const verifies = (macKey: Buffer): boolean => hmacSha256(macKey, body).equals(tag);
  for (const secret of keys) {
    for (const transcript of keys) {
      const derived = deriveSessionKeys(secret, transcript, sessionId);
      if (verifies((direction === Direction.AtmToBank ? derived.atmToBank : derived.bankToAtm).macKey)) return true;
    }
  }
  return keys.some(verifies);
}

describe('what a memory dump of a live channel finds', () => {
  it('keeps nothing that opens message 0: every buffer reachable from both live channels at message n, tried as a secret and as keys', async () => {
    const { atm: atmSocket, bank: bankSocket } = await socketPair();
    // The attacker's recording of the connection, both ways.
    const toBank: Buffer[] = [];
    const toAtm: Buffer[] = [];
    bankSocket.on('data', (chunk: Buffer) => toBank.push(chunk));
    atmSocket.on('data', (chunk: Buffer) => toAtm.push(chunk));
    const atmReader = new FrameReader(4096);
    const bankReader = new FrameReader(4096);
    const [atmSecrets, bankResult] = await Promise.all([
      performClientHandshake(atmSocket, new ClientHandshake(testCredential(7), fixedRandom(1)), atmReader, 5_000),
      performServerHandshake(bankSocket, bankHandshake(2), bankReader, 5_000),
    ]);
    const atm = textChannel(atmSocket, 'atm', atmSecrets, atmReader);
    const bank = textChannel(bankSocket, 'bank', bankResult.secrets, bankReader, bankResult.rest);
    const sessionId = Buffer.from('0102030405060708', 'hex');
    const masterSecret = fixedRandom(9)(32);
    const id = bank.channel.openSession(sessionId, Buffer.from(masterSecret));
    atm.channel.openSession(sessionId, Buffer.from(masterSecret));
    wipe(masterSecret);
    for (let n = 0; n < 5; n += 1) {
      atm.channel.send(null, text(`login password${n}`));
      atm.channel.send(id, text(`deposit ${n}`));
      await expect.poll(() => bank.received.length).toBe(2 * (n + 1));
      bank.channel.send(null, text(`answer ${n}`));
      await expect.poll(() => atm.received.length).toBe(n + 1);
    }
    // At message n, a dump of both live objects:
    const dump = [...reachableBuffers(atm.channel), ...reachableBuffers(bank.channel)].map((found) =>
      Buffer.from(found),
    );
    const [firstToBank] = recordsIn(toBank);
    const [firstToAtm] = recordsIn(toAtm);
    expect(opensWith(dump, firstToBank ?? Buffer.alloc(0), Direction.AtmToBank, CHANNEL_SESSION_ID)).toBe(false);
    expect(opensWith(dump, firstToAtm ?? Buffer.alloc(0), Direction.BankToAtm, CHANNEL_SESSION_ID)).toBe(false);
    const firstCustomer = recordsIn(toBank).find((record) => record.subarray(2, 10).equals(sessionId));
    expect(opensWith(dump, firstCustomer ?? Buffer.alloc(0), Direction.AtmToBank, sessionId)).toBe(false);
    // ...while the same dump does open the next message, so the test can tell.
    atm.channel.send(null, text('next'));
    await expect.poll(() => bank.received.length).toBe(11);
    expect(opensWith(dump, recordsIn(toBank).at(-1) ?? Buffer.alloc(0), Direction.AtmToBank, CHANNEL_SESSION_ID)).toBe(
      true,
    );
  });
});
