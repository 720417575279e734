/**
 * The bank's Prometheus metrics (prom-client), registered in the registry the
 * process hands in (one per process; tests pass their own). Names, units and
 * labels follow Prometheus conventions: counters end in `_total`, durations
 * are histograms in seconds, and every label takes values from a fixed set
 * chosen by the bank, never from what a peer sent, so no client can grow the
 * number of series.
 *
 * Most counters are driven by audit events (`observeAudit`): every decision
 * the bank makes is audited, so counting what was audited counts exactly
 * what happened, with the same outcome names an auditor reads.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import type { AuditEvent } from '../audit/event.ts';

/** Request latencies: from a quarter millisecond (a cached read) to seconds (a stalled disk). */
export const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** A group commit settles one request when idle and hundreds under load. */
export const GROUP_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/** fdatasync on an SSD takes tens of microseconds to a few milliseconds; slower means trouble. */
export const FSYNC_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

const TRANSACTION_ACTIONS: ReadonlySet<string> = new Set(['deposit', 'withdraw', 'balance', 'statement']);

export type FsyncTarget = 'wal' | 'audit';

export type BankMetricsSources = {
  /** ATMs whose handshake has completed and whose connection is open. */
  connectedAtms: () => number;
  /** For each connected ATM that watches the audit chain: how many lines its newest checkpoint trails the head. */
  witnessLagLines?: () => number[];
};

export class BankMetrics {
  private readonly requests: Counter<'op' | 'outcome'>;
  private readonly requestDuration: Histogram<'op'>;
  private readonly transactions: Counter<'type' | 'outcome'>;
  private readonly logins: Counter<'outcome'>;
  private readonly lockouts: Counter;
  private readonly protocolErrors: Counter<'code'>;
  private readonly auditWriteFailures: Counter;
  private readonly groupSize: Histogram;
  private readonly fsyncDuration: Histogram<'file'>;

  constructor(registry: Registry, sources: BankMetricsSources) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'bank_requests_total',
      help: 'Requests the bank answered, by operation and outcome (ok or the error code sent back).',
      labelNames: ['op', 'outcome'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'bank_request_duration_seconds',
      help: 'Time from a request arriving at the bank to its answer being written, by operation.',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.transactions = new Counter({
      name: 'bank_transactions_total',
      help: 'Audited deposits, withdrawals, balance inquiries and statements, by type and audited outcome.',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.logins = new Counter({
      name: 'bank_logins_total',
      help: 'Audited login attempts by outcome (ok, bad_password, unknown_user, locked).',
      labelNames: ['outcome'],
      registers,
    });
    this.lockouts = new Counter({
      name: 'bank_lockouts_total',
      help: 'Accounts locked after too many failed logins.',
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'bank_protocol_errors_total',
      help: 'ATM connections ended for a protocol violation, by error code (see docs/errors.md).',
      labelNames: ['code'],
      registers,
    });
    this.auditWriteFailures = new Counter({
      name: 'bank_audit_write_failures_total',
      help: 'Attempts to write audit lines that failed; the operations they belonged to were refused.',
      registers,
    });
    this.groupSize = new Histogram({
      name: 'bank_commit_group_size',
      help: 'Requests settled by one ledger group commit (one transaction, one WAL fdatasync).',
      buckets: GROUP_SIZE_BUCKETS,
      registers,
    });
    this.fsyncDuration = new Histogram({
      name: 'bank_fsync_duration_seconds',
      help: 'Duration of each fdatasync that makes commits durable: the ledger WAL or the audit logs.',
      labelNames: ['file'],
      buckets: FSYNC_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'bank_audit_witnesses',
      help: 'Connected ATMs that watch the audit chain (they asked for signed checkpoints and keep the newest).',
      registers,
      collect() {
        this.set(sources.witnessLagLines?.().length ?? 0);
      },
    });
    new Gauge({
      name: 'bank_audit_witness_lag_lines',
      help: 'Audit lines by which the newest checkpoint sent to the furthest-behind watching ATM trails the head (0 with none).',
      registers,
      collect() {
        this.set(Math.max(0, ...(sources.witnessLagLines?.() ?? [])));
      },
    });
    new Gauge({
      name: 'bank_connected_atms',
      help: 'ATMs connected to the bank with a completed handshake.',
      registers,
      collect() {
        this.set(sources.connectedAtms());
      },
    });
  }

  /** One answered request; `outcome` is `ok` or a `BankError` code, never free text. */
  request(op: string, outcome: string, seconds: number): void {
    this.requests.inc({ op, outcome });
    this.requestDuration.observe({ op }, seconds);
  }

  /** An event that reached the audit log. */
  observeAudit(event: AuditEvent): void {
    if (TRANSACTION_ACTIONS.has(event.action)) {
      this.transactions.inc({ type: event.action, outcome: event.outcome });
    } else if (event.action === 'login') {
      this.logins.inc({ outcome: event.outcome });
    } else if (event.action === 'lockout') {
      this.lockouts.inc();
    } else if (event.action === 'protocol_error') {
      this.protocolErrors.inc({ code: event.outcome });
    }
  }

  auditWriteFailed(): void {
    this.auditWriteFailures.inc();
  }

  commitGroup(requests: number): void {
    this.groupSize.observe(requests);
  }

  fsync(file: FsyncTarget, seconds: number): void {
    this.fsyncDuration.observe({ file }, seconds);
  }
}
