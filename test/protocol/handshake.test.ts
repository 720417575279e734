import { describe, expect, it } from 'vitest';

import { ProtocolError } from '../../protocol/errors.ts';
import { ClientHandshake, ServerHandshake } from '../../protocol/handshake.ts';
import { TERMINAL_KEY, fixedRandom } from './fixtures.ts';

function run(clientKey = TERMINAL_KEY, serverKey = TERMINAL_KEY) {
  const client = new ClientHandshake(clientKey, 7, fixedRandom(1));
  const server = new ServerHandshake(serverKey, fixedRandom(2));
  const hello = client.start();
  const serverHello = server.onClientHello(hello);
  return { client, server, hello, serverHello };
}

function expectCode(action: () => unknown, code: string): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('handshake', () => {
  it('gives both roles the same secrets and the ATM id', () => {
    const { client, server, serverHello } = run();
    const { clientFinished, secrets: clientSecrets } = client.onServerHello(serverHello);
    const serverSecrets = server.onClientFinished(clientFinished);
    expect(serverSecrets.atmId).toBe(7);
    expect(serverSecrets.channelSecret.equals(clientSecrets.channelSecret)).toBe(true);
    expect(serverSecrets.transcriptHash.equals(clientSecrets.transcriptHash)).toBe(true);
  });

  it('is deterministic for injected randomness and fresh for other randomness', () => {
    const first = run().client.onServerHello(run().serverHello).secrets;
    const second = run().client.onServerHello(run().serverHello).secrets;
    expect(first.channelSecret.equals(second.channelSecret)).toBe(true);
    const other = new ClientHandshake(TERMINAL_KEY, 7, fixedRandom(99));
    const server = new ServerHandshake(TERMINAL_KEY, fixedRandom(2));
    const secrets = other.onServerHello(server.onClientHello(other.start())).secrets;
    expect(secrets.channelSecret.equals(first.channelSecret)).toBe(false);
  });

  it('puts no secret on the wire: only the two ephemeral public keys and MACs', () => {
    const { client, hello, serverHello } = run();
    const { clientFinished, secrets } = client.onServerHello(serverHello);
    const wire = Buffer.concat([hello, serverHello, clientFinished]);
    expect(wire.includes(TERMINAL_KEY)).toBe(false);
    expect(wire.includes(secrets.channelSecret)).toBe(false);
  });

  it('lets an ATM with the wrong terminal key learn nothing and fail', () => {
    const { client, serverHello } = run(Buffer.alloc(32, 1));
    expectCode(() => client.onServerHello(serverHello), 'ERR_HANDSHAKE');
  });

  it('refuses an impostor ATM at ClientFinished', () => {
    const impostor = new ClientHandshake(TERMINAL_KEY, 7, fixedRandom(1));
    const server = new ServerHandshake(TERMINAL_KEY, fixedRandom(2));
    server.onClientHello(impostor.start());
    expectCode(() => server.onClientFinished(Buffer.alloc(32)), 'ERR_HANDSHAKE');
  });

  it('refuses a server hello whose key share or proof was tampered with', () => {
    for (const index of [0, 31, 32, 63]) {
      const { client, serverHello } = run();
      const tampered = Buffer.from(serverHello);
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      expectCode(() => client.onServerHello(tampered), 'ERR_HANDSHAKE');
    }
  });

  it('refuses malformed and low-order client hellos', () => {
    const server = new ServerHandshake(TERMINAL_KEY, fixedRandom(2));
    expectCode(() => server.onClientHello(Buffer.alloc(10)), 'ERR_HANDSHAKE');
    const lowOrder = Buffer.alloc(35);
    lowOrder[0] = 1;
    expectCode(() => new ServerHandshake(TERMINAL_KEY, fixedRandom(2)).onClientHello(lowOrder), 'ERR_HANDSHAKE');
  });

  it('enforces the order of stages', () => {
    const server = new ServerHandshake(TERMINAL_KEY, fixedRandom(2));
    expectCode(() => server.onClientFinished(Buffer.alloc(32)), 'ERR_PHASE');
    const { client, serverHello } = run();
    client.onServerHello(serverHello);
    expectCode(() => client.onServerHello(serverHello), 'ERR_PHASE');
  });
});
