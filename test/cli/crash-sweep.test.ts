/**
 * Whatever a client sends, bin/bank keeps serving: garbage, absurd lengths,
 * half-open and half-written connections, slow senders, a valid handshake
 * followed by nonsense. Afterwards an honest atm still gets its answers, and
 * the bank's stdout still holds nothing but its three kinds of line.
 */
import net from 'node:net';

import { expect, it } from 'vitest';

import { FRAME_VERSION, FrameType, encodeFrame } from '../../protocol/frame.ts';
import { atm, atmDir, startCliBank } from './harness.ts';

const TIMEOUT = 120_000;

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    socket.resume();
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

const closed = (socket: net.Socket): Promise<void> =>
  new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

it(
  'keeps serving after garbage, huge lengths, half-open connections and slow senders',
  async () => {
    const bank = await startCliBank();
    const dir = atmDir(bank);
    expect((await atm(dir, [...bank.at, '-a', 'ann', '-n', '10.00'])).code).toBe(0);
    const port = bank.port;
    const attackers: Array<Promise<void>> = [];

    // Random bytes, and frames that declare the largest length the header allows.
    for (let i = 0; i < 5; i += 1) {
      const socket = await open(port);
      socket.write(Buffer.from(Array.from({ length: 65_536 }, (_, n) => (n * 7919 + i) % 256)));
      attackers.push(closed(socket));
    }
    for (const type of [FrameType.ClientHello, FrameType.Record, 0x55]) {
      const socket = await open(port);
      socket.write(Buffer.from([FRAME_VERSION, type, 0xff, 0xff, 1, 2, 3]));
      attackers.push(closed(socket));
    }
    // Half-open: half a frame, then our side stops writing.
    const half = await open(port);
    half.end(Buffer.from([FRAME_VERSION, FrameType.ClientHello, 0x00]));
    attackers.push(closed(half));
    // A hello and then silence; and a hello sent one byte at a time, too slowly.
    const silent = await open(port);
    silent.write(encodeFrame(FrameType.ClientHello, Buffer.alloc(35, 1)));
    attackers.push(closed(silent));
    const slow = await open(port);
    const hello = encodeFrame(FrameType.ClientHello, Buffer.alloc(35, 9));
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < hello.length && !slow.destroyed) slow.write(hello.subarray(sent, ++sent));
    }, 400);
    attackers.push(closed(slow).finally(() => clearInterval(drip)));
    // Alerts and records before any handshake.
    const early = await open(port);
    early.write(
      Buffer.concat([encodeFrame(FrameType.Record, Buffer.alloc(80)), encodeFrame(FrameType.Alert, Buffer.alloc(4))]),
    );
    attackers.push(closed(early));

    // While all that is going on, honest calls are answered.
    expect((await atm(dir, [...bank.at, '-a', 'ann', '-d', '1.00'])).stdout).toBe('{"account":"ann","deposit":1.00}\n');
    // The bank ends every attacking connection by itself (handshake deadline 5 s).
    await Promise.all(attackers);
    expect(bank.child.exitCode).toBeNull();
    expect((await atm(dir, [...bank.at, '-a', 'ann', '-g'])).stdout).toBe('{"account":"ann","balance":11.00}\n');
    for (const line of bank.lines()) expect(line).toMatch(/^(created|protocol_error|\{"account":"ann",.*\})$/);
    expect(bank.lines().filter((line) => line === 'protocol_error').length).toBeGreaterThanOrEqual(9);
    expect(await bank.stop()).toBe(0);
  },
  TIMEOUT,
);
