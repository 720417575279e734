/**
 * Signed checkpoints of the audit chain, and the witness files ATMs keep.
 *
 * The bank signs (line number, chain hash) with its Ed25519 audit signing key
 * and sends the checkpoint to every connected ATM; each ATM keeps the newest
 * one it saw. A log later found shorter than, or different from, what any
 * witness saw was cut or rewritten after the fact (`verify --head`).
 *
 * Nodes sharing a PostgreSQL ledger each keep their own chain (their own
 * audit files, numbered on their own), so a checkpoint names its node and a
 * witness keeps the newest checkpoint of each node: line 900 of one node
 * says nothing about another node's line 900. A lone bank (SQLite ledger)
 * names none.
 */
import { z } from 'zod';

import { ED25519_SIGNATURE_BYTES, ed25519Verify, type Ed25519Signer } from '../protocol/crypto.ts';
import { NODE_ID_PATTERN, type Notice } from '../protocol/messages.ts';
import type { ChainHead } from './chain.ts';

const CHECKPOINT_LABEL = Buffer.from('atm-bank/v2 audit checkpoint');

/** `node`: the signing node's id in a shared ledger; null for a lone bank. */
export type Checkpoint = { lineNumber: number; chainHash: Buffer; signature: Buffer; node: string | null };

/**
 * What is signed: a label, the line number (64 bits big-endian), the chain
 * hash and, for a node of a shared ledger, its id (ASCII; everything before
 * it has a fixed length, so no two checkpoints share a message). The node is
 * signed so a checkpoint of one node cannot be passed off as another's.
 */
export function checkpointMessage(head: ChainHead, node: string | null): Buffer {
  const n = Buffer.alloc(8);
  n.writeBigUInt64BE(BigInt(head.lineNumber));
  return Buffer.concat([CHECKPOINT_LABEL, n, head.chainHash, Buffer.from(node ?? '', 'ascii')]);
}

export function signCheckpoint(signer: Ed25519Signer, head: ChainHead, node: string | null = null): Checkpoint {
  return {
    lineNumber: head.lineNumber,
    chainHash: head.chainHash,
    node,
    signature: signer.sign(checkpointMessage(head, node)),
  };
}

export function checkpointIsSigned(publicKey: Buffer, checkpoint: Checkpoint): boolean {
  return ed25519Verify(publicKey, checkpointMessage(checkpoint, checkpoint.node), checkpoint.signature);
}

const WITNESS_FORMAT = 'atm-bank audit head v2';

const WitnessHeadSchema = z.strictObject({
  node: z.string().regex(NODE_ID_PATTERN).nullable(),
  line: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  chainHash: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.string().regex(/^[0-9a-f]{128}$/),
  receivedAt: z.iso.datetime(),
});

const WitnessSchema = z.strictObject({
  format: z.literal(WITNESS_FORMAT),
  atm: z.number().int().min(1),
  /** One per node the ATM has been connected to (one, with node null, for a lone bank). */
  heads: z.array(WitnessHeadSchema).max(1_024),
});

/** One node's newest checkpoint as a witness kept it. */
export type WitnessHead = { checkpoint: Checkpoint; receivedAt: string };

export type Witness = { atm: number; heads: WitnessHead[] };

/** The witness file's text: one JSON object, hex for hashes so an auditor can compare them by eye. */
export function encodeWitness(witness: Witness): string {
  return `${JSON.stringify({
    format: WITNESS_FORMAT,
    atm: witness.atm,
    heads: witness.heads.map(({ checkpoint, receivedAt }) => ({
      node: checkpoint.node,
      line: checkpoint.lineNumber,
      chainHash: checkpoint.chainHash.toString('hex'),
      signature: checkpoint.signature.toString('hex'),
      receivedAt,
    })),
  })}\n`;
}

/** Parses a witness file; null when it is not one (or names a node twice). */
export function parseWitness(text: string): Witness | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = WitnessSchema.safeParse(value);
  if (!parsed.success) return null;
  const heads: WitnessHead[] = [];
  for (const head of parsed.data.heads) {
    const signature = Buffer.from(head.signature, 'hex');
    if (signature.length !== ED25519_SIGNATURE_BYTES) return null;
    if (heads.some((kept) => kept.checkpoint.node === head.node)) return null;
    heads.push({
      receivedAt: head.receivedAt,
      checkpoint: { lineNumber: head.line, chainHash: Buffer.from(head.chainHash, 'hex'), signature, node: head.node },
    });
  }
  return { atm: parsed.data.atm, heads };
}

/** The witness's head for one node's chain (null: a lone bank's), if it saw that chain at all. */
export function witnessHeadOf(witness: Witness, node: string | null): WitnessHead | null {
  return witness.heads.find((head) => head.checkpoint.node === node) ?? null;
}

export type CheckpointPublisherOptions = {
  /** The head of every line known to be on disk (`AuditWriter.durableHead`). */
  head: () => ChainHead;
  signer: Ed25519Signer;
  /** This node's id in a shared ledger, signed into every checkpoint; null for a lone bank. */
  node?: string | null;
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
      this.latest = signCheckpoint(this.options.signer, head, this.options.node ?? null);
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
    ...(checkpoint.node === null ? {} : { node: checkpoint.node }),
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
    node: notice.node ?? null,
  };
}
