/**
 * The ATM's HTTP server under slow and greedy clients (issue 12, finding 3):
 * a cap on open connections in total and per client address, a deadline for
 * a request's headers and body to arrive, and keep-alive limits. Without
 * them a POST whose body trickles one byte every few seconds lived for five
 * minutes, and enough of them used up the process's file descriptors.
 */
import http from 'node:http';
import type net from 'node:net';

export type HttpLimits = {
  /** Open connections in total; more are closed at once. */
  maxConnections: number;
  /** Open connections from one address; more from it are closed at once. */
  maxConnectionsPerAddress: number;
  /** A request whose headers and body have not all arrived by then is answered 408 and closed. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Requests served on one keep-alive connection before it is closed. */
  maxRequestsPerSocket: number;
};

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 2_000,
  maxConnectionsPerAddress: 64,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
};

/** An HTTP server for `handler` with the limits applied; the caller listens. */
export function createLimitedServer(handler: http.RequestListener, limits: HttpLimits): http.Server {
  const server = http.createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(limits.requestTimeoutMs, 30_000),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two deadlines above on this interval (30 s by
      // default, which would let a trickling request live for up to twice
      // its deadline).
      connectionsCheckingInterval: Math.max(250, Math.min(1_000, Math.floor(limits.requestTimeoutMs / 4))),
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  const perAddress = new Map<string, number>();
  server.on('connection', (socket: net.Socket) => {
    const address = socket.remoteAddress ?? '?';
    const open = perAddress.get(address) ?? 0;
    if (open >= limits.maxConnectionsPerAddress) {
      socket.destroy();
      return;
    }
    perAddress.set(address, open + 1);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  return server;
}
