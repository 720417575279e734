/**
 * A man in the middle on loopback between an ATM and the bank. It splits
 * both byte streams into frames, records every frame, and lets a test drop,
 * replace, or inject frames, or cut a connection.
 */
import net from 'node:net';

import { encodeFrame, type Frame } from '../../protocol/frame.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';

export type Way = 'toBank' | 'toAtm';

export type Seen = { connection: number; way: Way; frame: Frame; raw: Buffer };

/** Return null to forward the frame untouched, [] to drop it, or the raw bytes to send instead. */
export type Tamper = (seen: Seen) => Buffer[] | null;

type Link = { atm: net.Socket; bank: net.Socket };

export class MitmProxy {
  readonly seen: Seen[] = [];
  /** Every byte that crossed, per direction, exactly as sent. */
  readonly wire: Record<Way, Buffer[]> = { toBank: [], toAtm: [] };
  tamper: Tamper | null = null;
  private readonly links = new Map<number, Link>();
  private nextConnection = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(bankPort: number): Promise<MitmProxy> {
    let proxy: MitmProxy | null = null;
    const server = net.createServer((atm) => proxy?.accept(atm, bankPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    proxy = new MitmProxy(server, address.port);
    return proxy;
  }

  /** The number of the newest ATM connection through the proxy. */
  get latestConnection(): number {
    return this.nextConnection - 1;
  }

  /** Sends raw bytes on a connection as if the ATM (toBank) or the bank (toAtm) had sent them. */
  inject(connection: number, way: Way, raw: Buffer): void {
    const link = this.links.get(connection);
    if (!link) throw new Error(`no connection ${connection}`);
    (way === 'toBank' ? link.bank : link.atm).write(raw);
  }

  /** Cuts one connection, as a network failure would. */
  cut(connection: number): void {
    const link = this.links.get(connection);
    link?.atm.destroy();
    link?.bank.destroy();
  }

  frames(filter: Partial<Pick<Seen, 'connection' | 'way'>> & { type?: number } = {}): Seen[] {
    return this.seen.filter(
      (seen) =>
        (filter.connection === undefined || seen.connection === filter.connection) &&
        (filter.way === undefined || seen.way === filter.way) &&
        (filter.type === undefined || seen.frame.type === filter.type),
    );
  }

  async close(): Promise<void> {
    for (const connection of this.links.keys()) this.cut(connection);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(atm: net.Socket, bankPort: number): void {
    const connection = this.nextConnection;
    this.nextConnection += 1;
    const bank = net.connect({ host: '127.0.0.1', port: bankPort });
    this.links.set(connection, { atm, bank });
    this.pipe(connection, 'toBank', atm, bank);
    this.pipe(connection, 'toAtm', bank, atm);
    const end = (): void => {
      atm.destroy();
      bank.destroy();
    };
    atm.on('close', end).on('error', end);
    bank.on('close', end).on('error', end);
  }

  private pipe(connection: number, way: Way, from: net.Socket, to: net.Socket): void {
    const reader = new FrameReader(0xffff);
    from.on('data', (chunk: Buffer) => {
      const { frames, error } = reader.push(chunk);
      for (const frame of frames) {
        const raw = encodeFrame(frame.type, frame.body);
        const seen = { connection, way, frame, raw };
        this.seen.push(seen);
        const replacement = this.tamper?.(seen) ?? null;
        for (const bytes of replacement ?? [raw]) {
          this.wire[way].push(bytes);
          to.write(bytes);
        }
      }
      // Not a frame stream (an attacker's garbage): pass the bytes on untouched.
      if (error) {
        this.wire[way].push(chunk);
        to.write(chunk);
      }
    });
  }
}
