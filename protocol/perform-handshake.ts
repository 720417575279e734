/**
 * The socket side of the handshake, for both roles: it feeds frames to the
 * pure state machines in `handshake.ts` and writes what they return, under a
 * deadline (as js-libp2p-noise's performHandshake drives its protocol.ts).
 * It only reads and writes handshake frames; what a failure means for the
 * connection (an alert, an audit line, a retry) is the caller's to decide.
 * On failure it rejects with a ProtocolError and leaves the socket open.
 */
import type net from 'node:net';

import { ProtocolError } from './errors.ts';
import { encodeFrame, FrameType, type Frame } from './frame.ts';
import type { FrameReader, ReadResult } from './frame-reader.ts';
import type { ChannelSecrets, ClientHandshake, ServerHandshake } from './handshake.ts';

/** The secrets, and whatever arrived behind the last handshake frame (the channel reads it first). */
export type HandshakeResult = { secrets: ChannelSecrets; rest: ReadResult };

/** One handshake frame in; the secrets once the handshake is complete, else null. */
type Step = (frame: Frame) => ChannelSecrets | null;

/**
 * The ATM's side: sends ClientHello when the socket connects, answers
 * ServerHello with ClientFinished. The bank sends nothing else before it has
 * ClientFinished, so anything behind ServerHello fails the handshake.
 */
export async function performClientHandshake(
  socket: net.Socket,
  handshake: ClientHandshake,
  reader: FrameReader,
  timeoutMs: number,
): Promise<ChannelSecrets> {
  const sendHello = (): void => void socket.write(encodeFrame(FrameType.ClientHello, handshake.start()));
  if (socket.connecting) socket.once('connect', sendHello);
  else sendHello();
  const { secrets, rest } = await drive(socket, reader, timeoutMs, 'bank', (frame) => {
    // A refused terminal (revoked, unknown) hears an alert; it needs no answer.
    if (frame.type === FrameType.Alert) throw new ProtocolError('ERR_PEER_ALERT', 'the bank sent an alert');
    if (frame.type !== FrameType.ServerHello) {
      throw new ProtocolError('ERR_HANDSHAKE', 'unexpected frame during handshake');
    }
    const { clientFinished, secrets: result } = handshake.onServerHello(frame.body);
    socket.write(encodeFrame(FrameType.ClientFinished, clientFinished));
    return result;
  }).finally(() => socket.off('connect', sendHello));
  if (rest.frames.length > 0 || rest.error) {
    throw rest.error ?? new ProtocolError('ERR_HANDSHAKE', 'unexpected frame during handshake');
  }
  return secrets;
}

/**
 * The bank's side: answers ClientHello with ServerHello and checks
 * ClientFinished. The state machine refuses frames out of order; an Alert
 * from the ATM is reported as ERR_PEER_ALERT, anything else as ERR_PHASE.
 */
export function performServerHandshake(
  socket: net.Socket,
  handshake: ServerHandshake,
  reader: FrameReader,
  timeoutMs: number,
): Promise<HandshakeResult> {
  return drive(socket, reader, timeoutMs, 'ATM', (frame) => {
    switch (frame.type) {
      case FrameType.ClientHello:
        socket.write(encodeFrame(FrameType.ServerHello, handshake.onClientHello(frame.body)));
        return null;
      case FrameType.ClientFinished:
        return handshake.onClientFinished(frame.body);
      case FrameType.Alert:
        // Unauthenticated, so only a note for the auditor.
        throw new ProtocolError('ERR_PEER_ALERT', 'the ATM sent an alert');
      default:
        throw new ProtocolError('ERR_PHASE', 'frame not allowed in this phase');
    }
  });
}

/** Reads frames into `step` until it yields the secrets, the deadline passes, or the socket ends. */
function drive(
  socket: net.Socket,
  reader: FrameReader,
  timeoutMs: number,
  peer: string,
  step: Step,
): Promise<HandshakeResult> {
  return new Promise<HandshakeResult>((resolve, reject) => {
    const settle = (outcome: () => void): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      outcome();
    };
    const fail = (error: ProtocolError): void => settle(() => reject(error));
    const timer = setTimeout(
      () => fail(new ProtocolError('ERR_HANDSHAKE_TIMEOUT', `the ${peer} did not complete the handshake`)),
      timeoutMs,
    );
    const onError = (error: Error): void => fail(new ProtocolError('ERR_CONNECTION_CLOSED', error.message));
    const onClose = (): void => fail(new ProtocolError('ERR_CONNECTION_CLOSED', `the ${peer} closed the connection`));
    const onData = (chunk: Buffer): void => {
      const { frames, error } = reader.push(chunk);
      for (const [index, frame] of frames.entries()) {
        let secrets: ChannelSecrets | null;
        try {
          secrets = step(frame);
        } catch (caught) {
          fail(caught instanceof ProtocolError ? caught : new ProtocolError('ERR_HANDSHAKE'));
          return;
        }
        if (secrets) {
          // Hold further bytes until the channel is listening.
          socket.pause();
          const rest = { frames: frames.slice(index + 1), error };
          settle(() => resolve({ secrets, rest }));
          return;
        }
      }
      if (error) fail(error);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
