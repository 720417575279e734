/**
 * Fuzzes a running bank over TCP: random bytes, a valid hello followed by
 * junk, and - the deep end - correctly sealed records whose payloads are
 * random JSON or random requests, so the bank's decoder and dispatcher see
 * hostile input that passed the MAC. Afterwards the bank must still serve.
 */
import net from 'node:net';

import fc from 'fast-check';

import { BankClient } from '../../protocol/client.ts';
import { encodeFrame, FrameType } from '../../protocol/frame.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';
import { ClientHandshake, type AtmCredential } from '../../protocol/handshake.ts';
import { CHANNEL_SESSION_ID, ContentType, Direction, RecordSession } from '../../protocol/record.ts';
import { fixedRandom } from '../protocol/fixtures.ts';

type Target = { port: number; credentialFor(atmId: number): AtmCredential };

const payloads = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      {
        id: fc.oneof(fc.integer(), fc.constant(1)),
        op: fc.constantFrom('signup', 'login', 'ping', 'deposit', 'withdraw', 'balance', 'statement', 'logout', 'hack'),
        username: fc.string({ maxLength: 40 }),
        password: fc.string({ maxLength: 80 }),
        txId: fc.string({ maxLength: 70 }),
        amountCents: fc.oneof(fc.integer(), fc.double(), fc.constant(-1)),
      },
      { requiredKeys: ['id', 'op'] },
    )
    .map((value) => JSON.stringify(value)),
);

type Case =
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'hello-then-garbage'; bytes: Uint8Array }
  | { kind: 'sealed'; payloads: string[] };

const cases: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 2_000 }) }),
  fc.record({ kind: fc.constant('hello-then-garbage' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('sealed' as const),
      payloads: fc.array(payloads, { minLength: 1, maxLength: 4 }),
    }),
  },
);

async function runCase(target: Target, testCase: Case, seed: number): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port: target.port });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const reader = new FrameReader(65535);
  const frames: Buffer[] = [];
  let notify: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    for (const frame of reader.push(chunk).frames) frames.push(frame.body);
    notify?.();
  });
  const nextFrame = (): Promise<Buffer | null> =>
    new Promise((resolve) => {
      const take = (): void => resolve(frames.shift() ?? null);
      if (frames.length > 0) return take();
      notify = take;
      void closed.then(() => resolve(null));
    });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const handshake = new ClientHandshake(target.credentialFor(99), fixedRandom(seed));
  if (testCase.kind === 'garbage') {
    socket.write(Buffer.from(testCase.bytes));
  } else {
    socket.write(encodeFrame(FrameType.ClientHello, handshake.start()));
    const serverHello = await nextFrame();
    if (testCase.kind === 'hello-then-garbage' || !serverHello) {
      socket.write(Buffer.from(testCase.kind === 'hello-then-garbage' ? testCase.bytes : []));
    } else {
      const { clientFinished, secrets } = handshake.onServerHello(serverHello);
      socket.write(encodeFrame(FrameType.ClientFinished, clientFinished));
      const channel = new RecordSession(
        CHANNEL_SESSION_ID,
        secrets.channelKeys,
        Direction.AtmToBank,
        fixedRandom(seed + 1),
      );
      for (const payload of testCase.payloads) {
        if (socket.destroyed) break;
        socket.write(encodeFrame(FrameType.Record, channel.seal(ContentType.Request, Buffer.from(payload))));
      }
    }
  }
  // Give the bank a moment to answer or hang up, then leave.
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 30))]);
  socket.destroy();
}

/** Runs `count` cases against the bank, then proves it still serves a real ATM. */
export async function fuzzBankOverTcp(target: Target, count: number, seed: number): Promise<void> {
  const samples = fc.sample(cases, { numRuns: count, seed });
  const parallel = 16;
  for (let i = 0; i < samples.length; i += parallel) {
    await Promise.all(samples.slice(i, i + parallel).map((testCase, j) => runCase(target, testCase, seed + i + j)));
  }
  const client = await BankClient.connect({
    host: '127.0.0.1',
    port: target.port,
    credential: target.credentialFor(1),
  });
  await client.ping();
  client.close();
}
