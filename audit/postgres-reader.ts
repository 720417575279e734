/**
 * Reads every node's audit chain from a shared PostgreSQL ledger and
 * verifies each one line by line, as `reader.ts` does for a file: the lines
 * of node N, in sequence order, must open one after the other from the
 * chain's start, so a changed, deleted or reordered row is named.
 */
import pg from 'pg';

import { AuditKeys, CHAIN_START, headOf, openLine } from './chain.ts';
import type { VerifiedEntry } from './reader.ts';

export type VerifiedChain = {
  nodeId: string;
  entries: VerifiedEntry[];
  /** The first sequence number that failed; null when the chain is intact. */
  firstBad: { seq: number; reason: string } | null;
};

export async function verifyLedgerChains(url: string, key: Buffer): Promise<VerifiedChain[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query<{ node_id: string; seq: string; line: string }>(
      'SELECT node_id, seq, line FROM audit_lines ORDER BY node_id, seq',
    );
    const chains = new Map<string, Array<{ seq: number; line: string }>>();
    for (const row of rows.rows) {
      const lines = chains.get(row.node_id) ?? [];
      lines.push({ seq: Number(row.seq), line: row.line });
      chains.set(row.node_id, lines);
    }
    const keys = new AuditKeys(key);
    return [...chains].map(([nodeId, lines]) => verifyChain(keys, nodeId, lines));
  } finally {
    await client.end();
  }
}

function verifyChain(keys: AuditKeys, nodeId: string, lines: Array<{ seq: number; line: string }>): VerifiedChain {
  const entries: VerifiedEntry[] = [];
  let position = CHAIN_START;
  for (const { seq, line } of lines) {
    // A row whose seq disagrees with the number sealed inside its line was moved.
    const opened = line.startsWith(`${seq}.`)
      ? openLine(keys, position, line)
      : { ok: false as const, reason: 'sequence number does not match the sealed line' };
    if (!opened.ok) return { nodeId, entries, firstBad: { seq, reason: opened.reason } };
    position = opened.next;
    entries.push({ lineNumber: position.lineNumber, event: opened.event, head: headOf(position) });
  }
  return { nodeId, entries, firstBad: null };
}
