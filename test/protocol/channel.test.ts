import net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { SecureChannel, type SessionId } from '../../protocol/channel.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import { encodeFrame, FrameType } from '../../protocol/frame.ts';
import { FrameReader, type ReadResult } from '../../protocol/frame-reader.ts';
import { ClientHandshake, ServerHandshake, type ChannelSecrets } from '../../protocol/handshake.ts';
import { performClientHandshake, performServerHandshake } from '../../protocol/perform-handshake.ts';
import { CHANNEL_SESSION_ID, ContentType, Direction, RecordSession, deriveSessionKeys } from '../../protocol/record.ts';
import { fixedRandom, TERMINAL_KEY } from './fixtures.ts';

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
  let closedWith: ProtocolError | null = null;
  const channel = new SecureChannel<string>(socket, {
    role,
    secrets,
    random: fixedRandom(role === 'atm' ? 11 : 12),
    reader,
    ...(rest ? { rest } : {}),
    decode: (plaintext) => plaintext.toString('utf8'),
    onMessage: (session, text) => received.push({ session, text }),
    onClose: (reason) => (closedWith = reason),
  });
  return { channel, received, closedWith: () => closedWith };
}

/** Both ends after a real handshake over loopback, each with its channel. */
async function connectedPair() {
  const { atm, bank } = await socketPair();
  const atmReader = new FrameReader(4096);
  const bankReader = new FrameReader(4096);
  const [atmSecrets, bankResult] = await Promise.all([
    performClientHandshake(atm, new ClientHandshake(TERMINAL_KEY, 7, fixedRandom(1)), atmReader, 5_000),
    performServerHandshake(bank, new ServerHandshake(TERMINAL_KEY, fixedRandom(2)), bankReader, 5_000),
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
    const bankSide = performServerHandshake(bank, new ServerHandshake(TERMINAL_KEY, fixedRandom(2)), bankReader, 5_000);
    const client = new ClientHandshake(TERMINAL_KEY, 3, fixedRandom(1));
    atm.write(encodeFrame(FrameType.ClientHello, client.start()));
    const serverHello = await new Promise<Buffer>((resolve) => atm.once('data', resolve));
    const { clientFinished, secrets } = client.onServerHello(serverHello.subarray(4));
    const keys = deriveSessionKeys(secrets.channelSecret, secrets.transcriptHash, CHANNEL_SESSION_ID);
    const own = new RecordSession(CHANNEL_SESSION_ID, keys, Direction.AtmToBank, fixedRandom(5));
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
    const bankSide = performServerHandshake(
      bank,
      new ServerHandshake(TERMINAL_KEY, fixedRandom(2)),
      new FrameReader(4096),
      5_000,
    );
    const atmSide = performClientHandshake(
      atm,
      new ClientHandshake(Buffer.alloc(32, 0x13), 1, fixedRandom(1)),
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
    await expect(
      performServerHandshake(bank, new ServerHandshake(TERMINAL_KEY, fixedRandom(2)), new FrameReader(4096), 100),
    ).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('reports an Alert during the handshake as ERR_PEER_ALERT and a record as ERR_PHASE', async () => {
    const first = await socketPair();
    const alerted = performServerHandshake(
      first.bank,
      new ServerHandshake(TERMINAL_KEY, fixedRandom(2)),
      new FrameReader(4096),
      5_000,
    );
    first.atm.write(encodeFrame(FrameType.Alert, text('connection terminated')));
    await expect(alerted).rejects.toMatchObject({ code: 'ERR_PEER_ALERT' });
    const second = await socketPair();
    const early = performServerHandshake(
      second.bank,
      new ServerHandshake(TERMINAL_KEY, fixedRandom(2)),
      new FrameReader(4096),
      5_000,
    );
    second.atm.write(encodeFrame(FrameType.Record, Buffer.alloc(64)));
    await expect(early).rejects.toMatchObject({ code: 'ERR_PHASE' });
  });
});
