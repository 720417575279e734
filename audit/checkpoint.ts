/**
 * Signed checkpoints of the audit chain, and the witness files ATMs keep.
 *
 * The bank signs (line number, chain hash) with its Ed25519 audit signing key
 * and sends the checkpoint to every connected ATM; each ATM keeps the newest
 * one it saw. A log later found shorter than, or different from, what any
 * witness saw was cut or rewritten after the fact (`verify --head`).
 */
import { z } from 'zod';

import { ED25519_SIGNATURE_BYTES, ed25519Verify, type Ed25519Signer } from '../protocol/crypto.ts';
import type { Notice } from '../protocol/messages.ts';
import type { ChainHead } from './chain.ts';

const CHECKPOINT_LABEL = Buffer.from('atm-bank/v2 audit checkpoint');

export type Checkpoint = { lineNumber: number; chainHash: Buffer; signature: Buffer };

/** What is signed: a label, the line number (64 bits big-endian) and the chain hash. */
export function checkpointMessage(head: ChainHead): Buffer {
  const n = Buffer.alloc(8);
  n.writeBigUInt64BE(BigInt(head.lineNumber));
  return Buffer.concat([CHECKPOINT_LABEL, n, head.chainHash]);
}

export function signCheckpoint(signer: Ed25519Signer, head: ChainHead): Checkpoint {
  return { ...head, signature: signer.sign(checkpointMessage(head)) };
}

export function checkpointIsSigned(publicKey: Buffer, checkpoint: Checkpoint): boolean {
  return ed25519Verify(publicKey, checkpointMessage(checkpoint), checkpoint.signature);
}

const WITNESS_FORMAT = 'atm-bank audit head v1';

const WitnessSchema = z.strictObject({
  format: z.literal(WITNESS_FORMAT),
  atm: z.number().int().min(1),
  line: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  chainHash: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.string().regex(/^[0-9a-f]{128}$/),
  receivedAt: z.iso.datetime(),
});

export type Witness = { atm: number; checkpoint: Checkpoint; receivedAt: string };

/** The witness file's text: one JSON object, hex for hashes so an auditor can compare them by eye. */
export function encodeWitness(witness: Witness): string {
  return `${JSON.stringify({
    format: WITNESS_FORMAT,
    atm: witness.atm,
    line: witness.checkpoint.lineNumber,
    chainHash: witness.checkpoint.chainHash.toString('hex'),
    signature: witness.checkpoint.signature.toString('hex'),
    receivedAt: witness.receivedAt,
  })}\n`;
}

/** Parses a witness file; null when it is not one. */
export function parseWitness(text: string): Witness | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = WitnessSchema.safeParse(value);
  if (!parsed.success) return null;
  const signature = Buffer.from(parsed.data.signature, 'hex');
  if (signature.length !== ED25519_SIGNATURE_BYTES) return null;
  return {
    atm: parsed.data.atm,
    receivedAt: parsed.data.receivedAt,
    checkpoint: { lineNumber: parsed.data.line, chainHash: Buffer.from(parsed.data.chainHash, 'hex'), signature },
  };
}

export type CheckpointPublisherOptions = {
  /** The head of every line known to be on disk (`AuditWriter.durableHead`). */
  head: () => ChainHead;
  signer: Ed25519Signer;
  /** Hands a new checkpoint to every witness (the bank: every connected ATM). */
  publish: (checkpoint: Checkpoint) => void;
  intervalMs?: number;
};

/**
 * Signs the durable head at most once per interval (default one second),
 * and only when it moved: while events arrive, witnesses are never more than
 * an interval behind; while none do, nothing is signed or sent. Only durable
 * lines are vouched for, so a power cut cannot make a witness hold a head
 * the log never kept.
 */
export class CheckpointPublisher {
  private latest: Checkpoint | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: CheckpointPublisherOptions) {
    this.timer = setInterval(() => this.tick(), options.intervalMs ?? 1_000);
    this.timer.unref();
  }

  /** The newest checkpoint (signing the current head if none was signed yet); what a newly connected witness gets. */
  current(): Checkpoint {
    const head = this.options.head();
    if (!this.latest || this.latest.lineNumber !== head.lineNumber)
      this.latest = signCheckpoint(this.options.signer, head);
    return this.latest;
  }

  /** Signs and publishes now if the head moved since the last checkpoint. */
  tick(): void {
    const head = this.options.head();
    if (this.latest && this.latest.lineNumber === head.lineNumber) return;
    this.options.publish(this.current());
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The checkpoint as the bank sends it to an ATM (protocol/messages.ts `NoticeSchema`). */
export function checkpointNotice(checkpoint: Checkpoint): Notice {
  return {
    kind: 'audit_checkpoint',
    line: checkpoint.lineNumber,
    chainHash: checkpoint.chainHash.toString('hex'),
    signature: checkpoint.signature.toString('hex'),
  };
}

export function checkpointFromNotice(notice: Notice): Checkpoint {
  return {
    lineNumber: notice.line,
    chainHash: Buffer.from(notice.chainHash, 'hex'),
    signature: Buffer.from(notice.signature, 'hex'),
  };
}
