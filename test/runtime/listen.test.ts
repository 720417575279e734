import net from 'node:net';

import { describe, expect, it } from 'vitest';

import { listenOn } from '../../runtime/listen.ts';

describe('listenOn', () => {
  it('resolves with the port the system chose for port 0', async () => {
    const server = net.createServer();
    const address = await listenOn(server, 0, '127.0.0.1');
    expect(address.port).toBeGreaterThan(0);
    expect((server.address() as net.AddressInfo).port).toBe(address.port);
    server.close();
  });

  it('rejects (instead of an unhandled error event) when the port is taken', async () => {
    const first = net.createServer();
    const { port } = await listenOn(first, 0, '127.0.0.1');
    const second = net.createServer();
    await expect(listenOn(second, port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
    first.close();
  });
});
