/**
 * Listening on a TCP port and reading back the port actually bound (port 0
 * asks the system for a free one, which is how tests run side by side). A
 * failure to bind rejects instead of surfacing as an unhandled 'error' event.
 */
import type { AddressInfo, Server } from 'node:net';

export async function listenOn(server: Server, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string')
    throw new Error(`no TCP address after listening on ${host}:${port}`);
  return address;
}
