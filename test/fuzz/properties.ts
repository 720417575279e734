/**
 * Fuzz properties for everything that parses bytes from the network. Each
 * holds for random input and for valid input with random mutations: nothing
 * escapes but a ProtocolError (or a null result), and no state is corrupted.
 * `fuzz.test.ts` runs a short pass in `npm test`; `npm run fuzz` runs 100,000+.
 */
import fc from 'fast-check';

import { ProtocolError } from '../../protocol/errors.ts';
import { encodeFrame, FrameType } from '../../protocol/frame.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';
import { ClientHandshake, ServerHandshake } from '../../protocol/handshake.ts';
import { decodeMessage, RequestSchema, ResponseSchema } from '../../protocol/messages.ts';
import { ContentType, Direction, RecordSession, deriveSessionKeys } from '../../protocol/record.ts';
import { BANK_STATIC_KEY, fixedRandom, testCredential, testTerminalKeys } from '../protocol/fixtures.ts';

export type FuzzTarget = { name: string; run: (numRuns: number, seed: number) => void };

/** Runs `action`; anything thrown other than a ProtocolError fails the property. */
function onlyProtocolErrors(action: () => unknown): boolean {
  try {
    action();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
  }
  return true;
}

const MAX_BODY = 4096;

/** A valid stream of frames, then mutated: flipped bits, dropped or inserted bytes, re-chunked. */
const mutatedStream = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom(...Object.values(FrameType)), fc.uint8Array({ maxLength: 300 })), {
      maxLength: 6,
    }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 4 }),
    fc.array(fc.nat({ max: 400 }), { maxLength: 8 }),
  )
  .map(([frames, flips, cuts]) => {
    const stream = Buffer.concat(frames.map(([type, body]) => encodeFrame(type, Buffer.from(body))));
    for (const [at, bit] of flips)
      if (stream.length > 0) stream[at % stream.length] = (stream[at % stream.length] ?? 0) ^ (1 << bit);
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const cut of cuts) {
      chunks.push(stream.subarray(offset, offset + cut));
      offset += cut;
    }
    chunks.push(stream.subarray(offset));
    return chunks;
  });

const randomChunks = fc.array(
  fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)),
  { maxLength: 8 },
);

function record(seed: number, count: number): { records: Buffer[]; fresh: () => RecordSession } {
  const keys = deriveSessionKeys(Buffer.alloc(32, seed), Buffer.alloc(32, 1), Buffer.alloc(8, 2));
  const sender = new RecordSession(Buffer.alloc(8, 2), keys, Direction.AtmToBank, fixedRandom(seed));
  const records = Array.from({ length: count }, (_, i) =>
    sender.seal(ContentType.Request, Buffer.from(`{"id":${i},"op":"ping"}`)),
  );
  return {
    records,
    fresh: () => new RecordSession(Buffer.alloc(8, 2), keys, Direction.BankToAtm, fixedRandom(seed + 1)),
  };
}

export const FUZZ_TARGETS: FuzzTarget[] = [
  {
    name: 'frame reader: any chunks, random or mutated, never throw and never over-buffer',
    run: (numRuns, seed) =>
      fc.assert(
        fc.property(fc.oneof(mutatedStream, randomChunks), (chunks) => {
          const reader = new FrameReader(MAX_BODY);
          for (const chunk of chunks) {
            const result = reader.push(chunk);
            for (const frame of result.frames) if (frame.body.length > MAX_BODY) return false;
            if (reader.bufferedBytes > MAX_BODY + 4 + 600) return false;
          }
          return true;
        }),
        { numRuns, seed },
      ),
  },
  {
    name: 'handshake: random hellos and finished messages only ever raise ProtocolError',
    run: (numRuns, seed) =>
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 80 }),
          fc.uint8Array({ maxLength: 80 }),
          fc.nat(),
          (hello, finished, flip) => {
            const server = new ServerHandshake({
              staticKey: BANK_STATIC_KEY,
              terminalKeyFor: testTerminalKeys(),
              random: fixedRandom(1),
            });
            onlyProtocolErrors(() => server.onClientHello(Buffer.from(hello)));
            onlyProtocolErrors(() => server.onClientFinished(Buffer.from(finished)));
            const client = new ClientHandshake(testCredential(1), fixedRandom(2));
            const valid = client.start();
            const server2 = new ServerHandshake({
              staticKey: BANK_STATIC_KEY,
              terminalKeyFor: testTerminalKeys(),
              random: fixedRandom(3),
            });
            const serverHello = Buffer.from(server2.onClientHello(valid));
            if (serverHello.length > 0)
              serverHello[flip % serverHello.length] = (serverHello[flip % serverHello.length] ?? 0) ^ 1;
            // A flipped server hello must always be refused.
            let refused = false;
            try {
              client.onServerHello(serverHello);
            } catch (error) {
              if (!(error instanceof ProtocolError)) throw error;
              refused = true;
            }
            return refused;
          },
        ),
        { numRuns, seed },
      ),
  },
  {
    name: 'record opener: mutated records are always rejected with ProtocolError, never opened',
    run: (numRuns, seed) => {
      const { records, fresh } = record(7, 3);
      fc.assert(
        fc.property(
          fc.nat({ max: 2 }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }),
          fc.option(fc.nat(), { nil: undefined }),
          (which, flips, truncate) => {
            const receiver = fresh();
            for (let i = 0; i < which; i += 1) receiver.open(records[i] ?? Buffer.alloc(0));
            const mutated = Buffer.from(records[which] ?? Buffer.alloc(0));
            for (const [at, bit] of flips)
              mutated[at % mutated.length] = (mutated[at % mutated.length] ?? 0) ^ (1 << bit);
            const input = truncate === undefined ? mutated : mutated.subarray(0, truncate % mutated.length);
            // Two flips of the same bit cancel out; an unchanged record is not a mutation.
            fc.pre(!input.equals(records[which] ?? Buffer.alloc(0)));
            try {
              receiver.open(input);
            } catch (error) {
              if (error instanceof ProtocolError) return true;
              throw error;
            }
            return false;
          },
        ),
        { numRuns, seed },
      );
    },
  },
  {
    name: 'record opener: random bytes only ever raise ProtocolError',
    run: (numRuns, seed) => {
      const { fresh } = record(9, 0);
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) =>
          onlyProtocolErrors(() => fresh().open(Buffer.from(bytes))),
        ),
        { numRuns, seed },
      );
    },
  },
  {
    name: 'message decoder: random bytes and random JSON decode to null or a valid message',
    run: (numRuns, seed) =>
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
            fc.json().map((j) => Buffer.from(j)),
          ),
          (bytes) => {
            const request = decodeMessage(RequestSchema, bytes);
            const response = decodeMessage(ResponseSchema, bytes);
            return (
              (request === null || RequestSchema.safeParse(request).success) &&
              (response === null || ResponseSchema.safeParse(response).success)
            );
          },
        ),
        { numRuns, seed },
      ),
  },
];
