import net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { BankClient } from '../../protocol/client.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import { encodeFrame, FrameType, type Frame } from '../../protocol/frame.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';
import { ClientHandshake } from '../../protocol/handshake.ts';
import { decodeMessage, encodeMessage, NoticeSchema, ResponseSchema, type Request } from '../../protocol/messages.ts';
import { CHANNEL_SESSION_ID, ContentType, Direction, RecordSession } from '../../protocol/record.ts';
import { auditEvents, protocolErrors, startTestBank, uniqueTxId, type TestBank } from '../helpers.ts';
import { fixedRandom } from '../protocol/fixtures.ts';

let running: TestBank | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
});

/** A raw TCP peer that collects frames and notices when the bank hangs up. */
function rawPeer(bank: TestBank) {
  const socket = net.connect({ host: '127.0.0.1', port: bank.bank.port });
  const reader = new FrameReader(65535);
  const frames: Frame[] = [];
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => frames.push(...reader.push(chunk).frames));
  socket.on('error', () => {});
  const nextFrame = async (): Promise<Frame> => {
    for (let i = 0; i < 200 && frames.length === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    const frame = frames.shift();
    if (!frame) throw new Error('no frame');
    return frame;
  };
  return { socket, frames, closed, nextFrame };
}

/** Completes a real handshake by hand, leaving the test in control of every record. */
async function handshaken(bank: TestBank) {
  const peer = rawPeer(bank);
  const handshake = new ClientHandshake(bank.bank.credentialFor(9), fixedRandom(11));
  peer.socket.write(encodeFrame(FrameType.ClientHello, handshake.start()));
  const { clientFinished, secrets } = handshake.onServerHello((await peer.nextFrame()).body);
  peer.socket.write(encodeFrame(FrameType.ClientFinished, clientFinished));
  const channel = new RecordSession(CHANNEL_SESSION_ID, secrets.channelKeys, Direction.AtmToBank, fixedRandom(12));
  const ask = async (request: Request) => {
    peer.socket.write(encodeFrame(FrameType.Record, channel.seal(ContentType.Request, encodeMessage(request))));
    return decodeMessage(ResponseSchema, channel.open((await peer.nextFrame()).body).plaintext);
  };
  return { ...peer, channel, ask };
}

async function stillServes(bank: TestBank): Promise<void> {
  const client = await bank.connect(2);
  await client
    .signup(`u${Date.now() % 1_000_000}${Math.floor(Math.random() * 1000)}`, 'password1')
    .catch(() => undefined);
  await client.ping();
}

describe('the bank on the wire', () => {
  it('drops random bytes with a generic alert, audits it, and keeps serving', async () => {
    running = await startTestBank();
    const peer = rawPeer(running);
    peer.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: bank\r\n\r\n'));
    await peer.closed;
    expect(peer.frames.map((frame) => [frame.type, frame.body.toString()])).toEqual([
      [FrameType.Alert, 'connection terminated'],
    ]);
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_FRAME_VERSION']);
    await stillServes(running);
  });

  it('drops an absurd length prefix without waiting for the body', async () => {
    running = await startTestBank();
    const peer = rawPeer(running);
    peer.socket.write(Buffer.from('0101ffff', 'hex'));
    await peer.closed;
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_FRAME_TOO_LARGE']);
  });

  it('drops a connection that does not finish the handshake in time', async () => {
    running = await startTestBank({ limits: { handshakeTimeoutMs: 200 } });
    const peer = rawPeer(running);
    const started = Date.now();
    await peer.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_HANDSHAKE_TIMEOUT']);
  });

  it('refuses a record before the handshake (phase violation)', async () => {
    running = await startTestBank();
    const peer = rawPeer(running);
    peer.socket.write(encodeFrame(FrameType.Record, Buffer.alloc(100)));
    await peer.closed;
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_PHASE']);
  });

  it('refuses an ATM that does not hold its terminal key', async () => {
    running = await startTestBank();
    const peer = rawPeer(running);
    const impostor = new ClientHandshake(
      { ...running.bank.credentialFor(9), terminalKey: Buffer.alloc(32, 7) },
      fixedRandom(13),
    );
    peer.socket.write(encodeFrame(FrameType.ClientHello, impostor.start()));
    // The impostor cannot verify the bank's proof...
    const serverHello = await peer.nextFrame();
    expect(() => impostor.onServerHello(serverHello.body)).toThrow(/terminal key/);
    // ...nor produce its own, so the bank ends the connection.
    peer.socket.write(encodeFrame(FrameType.ClientFinished, Buffer.alloc(32)));
    await peer.closed;
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_HANDSHAKE']);
  });

  it('sends audit checkpoints only to a connection that asked with watch_audit, after its answer', async () => {
    running = await startTestBank();
    const peer = await handshaken(running);
    // Something to sign: a signup adds audit lines.
    expect(await peer.ask({ id: 1, op: 'signup', username: 'watcher1', password: 'password1' })).toMatchObject({
      ok: true,
    });
    // Well past the one-second checkpoint interval: still only answers to what it sent.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await peer.ask({ id: 2, op: 'ping' })).toEqual({ id: 2, ok: true, result: { op: 'ping' } });
    expect(peer.frames).toEqual([]);
    expect(await peer.ask({ id: 3, op: 'watch_audit' })).toEqual({ id: 3, ok: true, result: { op: 'watch_audit' } });
    const notice = peer.channel.open((await peer.nextFrame()).body);
    expect(notice.contentType).toBe(ContentType.Notice);
    expect(decodeMessage(NoticeSchema, notice.plaintext)).toMatchObject({ kind: 'audit_checkpoint' });
    peer.socket.destroy();
  });

  it('answers a transaction before login with "Log in first" and audits the phase violation', async () => {
    running = await startTestBank();
    const peer = await handshaken(running);
    const answer = await peer.ask({ id: 1, op: 'deposit', txId: uniqueTxId(), amountCents: 100 });
    expect(answer).toEqual({ id: 1, ok: false, code: 'ERR_NOT_LOGGED_IN', message: 'Log in first.' });
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_PHASE']);
  });

  it('ends the connection for a request that does not match the schema', async () => {
    running = await startTestBank();
    const peer = await handshaken(running);
    peer.socket.write(
      encodeFrame(
        FrameType.Record,
        peer.channel.seal(ContentType.Request, Buffer.from('{"id":1,"op":"deposit","amountCents":-5}')),
      ),
    );
    await peer.closed;
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_BAD_MESSAGE']);
  });

  it('ends the connection for a replayed record and a record for an unknown session', async () => {
    running = await startTestBank();
    const peer = await handshaken(running);
    const record = peer.channel.seal(ContentType.Request, encodeMessage({ id: 1, op: 'ping' }));
    peer.socket.write(encodeFrame(FrameType.Record, record));
    await peer.nextFrame();
    peer.socket.write(encodeFrame(FrameType.Record, record));
    await peer.closed;
    const other = await handshaken(running);
    const forged = Buffer.from(other.channel.seal(ContentType.Request, encodeMessage({ id: 1, op: 'ping' })));
    forged.fill(0xab, 2, 10);
    other.socket.write(encodeFrame(FrameType.Record, forged));
    await other.closed;
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_SEQUENCE', 'ERR_UNKNOWN_SESSION']);
    await stillServes(running);
  });

  it('tells the ATM nothing specific when it ends a connection', async () => {
    running = await startTestBank();
    const peer = await handshaken(running);
    const record = peer.channel.seal(ContentType.Request, encodeMessage({ id: 1, op: 'ping' }));
    record[record.length - 1] = (record[record.length - 1] ?? 0) ^ 1;
    peer.socket.write(encodeFrame(FrameType.Record, record));
    await peer.closed;
    expect(peer.frames.map((frame) => frame.body.toString())).toEqual(['connection terminated']);
    expect(protocolErrors(running.dataDir)).toEqual(['ERR_BAD_MAC']);
  });

  it('fails a request past its deadline alone: the connection and other requests carry on', async () => {
    // bcrypt at cost 13 takes far longer than the 150 ms deadline given to the client.
    running = await startTestBank({ bcryptCost: 13 });
    const client = await BankClient.connect({
      host: '127.0.0.1',
      port: running.bank.port,
      credential: running.bank.credentialFor(1),
      requestTimeoutMs: 150,
    });
    const slow = client.signup('slowpoke', 'password1').catch((error: unknown) => error);
    await client.ping();
    const failure = await slow;
    expect(failure).toBeInstanceOf(ProtocolError);
    expect((failure as ProtocolError).code).toBe('ERR_TIMEOUT');
    expect(client.closed).toBe(false);
    // The bank finishes the signup and answers late; the answer is dropped and the connection still serves.
    const bank = running;
    await expect
      .poll(() => auditEvents(bank.dataDir).some((event) => event.action === 'signup' && event.outcome === 'ok'), {
        timeout: 20_000,
      })
      .toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await client.ping();
    expect(client.closed).toBe(false);
    expect(protocolErrors(running.dataDir)).toEqual([]);
    client.close();
  }, 30_000);
});
