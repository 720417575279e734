/**
 * `npm run bench [-- --quick] [--json] [--connections C] [--sessions S] [--seconds T] [--cli-start-only]`
 *
 * The bank runs as its own process on a temp data dir with the default
 * durability (every acknowledged transaction fsynced and audited). This
 * process plays the ATMs. Reports peak throughput and latency, latency at
 * half of peak, latency with logins (bcrypt) beside, the bank's memory and
 * CPU, the web tier against bare Express, pgbench TPC-B on the same
 * machine in rounds alternating with our peak, and the start time of a `bin/atm -g` call beside `node -e 0`. `--json` ends with one machine-readable summary line.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import type { ServiceTimes } from '../server/bank-server.ts';
import { parseServiceReports } from '../server/service-report.ts';
import { Terminals } from '../server/terminals.ts';
import { spawnEntry, waitForOutput } from '../test/process.ts';
import { BankClient } from '../protocol/client.ts';
import { loginStormPhase } from './storm.ts';
import {
  closedLoop,
  loginStorm,
  openLoop,
  openSessions,
  pingOperation,
  type BankTarget,
  type Operation,
  type Session,
} from './load.ts';
import { ATM_START_TARGET_MS, cliStartFields, measureCliStart } from './cli-start.ts';
import { schedulingGaps } from './machine.ts';
import { PgbenchCluster, pgbenchAvailable, type PgbenchRun, type PgbenchThrottled } from './pgbench.ts';
import { runPostgresBench, type PostgresBench, type PostgresPhase } from './postgres.ts';
import { cpuSeconds, loadCpuSeconds, mainThreadCpuSeconds, memoryMb } from './proc.ts';
import { median, round, summarize } from './stats.ts';
import { postLoop, signInUsers } from './web.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    seconds: { type: 'string' },
    'idle-atms': { type: 'string' },
    'cli-start-only': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const connections = Number(values.connections ?? 4);
const sessionsEach = Number(values.sessions ?? 16);
const seconds = Number(values.seconds ?? (quick ? 4 : 15));
const idleAtms = Number(values['idle-atms'] ?? 1000);
/**
 * The peak and pgbench are measured in alternating rounds: on a shared
 * machine a neighbour's burst can last minutes, and a ratio of two runs taken
 * minutes apart measured that as much as either system.
 */
const PEAK_ROUNDS = 3;
const log = (line: string): void => console.log(line);

/** Starts one of our entry points (the same helper the tests use) and waits for its ready line. */
async function start(
  entry: string,
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  const spawned = spawnEntry(entry, args);
  const match = await waitForOutput(spawned, ready, 60_000);
  return { child: spawned.child, match, output: spawned.output };
}

/** Asks the bank (SIGUSR2) for the time its requests spent inside it, and its GC pauses, since the last ask. */
async function serviceTimes(bank: ChildProcess, output: () => string): Promise<ServiceTimes> {
  // Only output after the signal can hold the answer; the log before it can be megabytes.
  const from = output().length;
  bank.kill('SIGUSR2');
  for (let i = 0; i < 100; i += 1) {
    const latest = parseServiceReports(output().slice(from))[0];
    if (latest) return latest;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { count: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, gc: { pauses: 0, totalMs: 0, maxMs: 0 } };
}

/** Open-loop load at `rate` for `seconds`: end-to-end latency, and the bank's own view of the same window. */
async function openLoopPhase(
  sessions: Session[],
  rate: number,
  seconds: number,
  bank: ChildProcess,
  output: () => string,
  operation?: Operation,
): Promise<{ tps: number; latency: ReturnType<typeof summarize>; inBank: ServiceTimes }> {
  await serviceTimes(bank, output); // start a fresh window
  const run = await openLoop(sessions, rate, seconds, operation);
  return { tps: run.tps, latency: summarize(run.latencies), inBank: await serviceTimes(bank, output) };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** The fast-start measure (`--cli-start-only` runs just this one). */
async function cliStartPhase(): Promise<Awaited<ReturnType<typeof measureCliStart>>> {
  const cliStart = await measureCliStart(quick ? 9 : 31);
  log(
    `bin/atm -g against bin/bank, ${cliStart.runs} calls: median ${round(cliStart.atmMedianMs, 1)} ms, p95 ${round(cliStart.atmP95Ms, 1)} ms ` +
      `(target < ${ATM_START_TARGET_MS} ms); node -e 0 in the same run: median ${round(cliStart.nodeMedianMs, 1)} ms, ` +
      `${round(cliStart.nodeAsAtmMedianMs, 1)} ms without NODE_EXTRA_CA_CERTS as bin/atm runs it`,
  );
  return cliStart;
}

async function main(): Promise<void> {
  if (values['cli-start-only']) {
    const cliStart = await cliStartPhase();
    if (values.json) {
      console.log(JSON.stringify(cliStartFields(cliStart)));
    }
    return;
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atm-bench-'));
  const gaps = schedulingGaps(2000);
  log(
    `machine steadiness: a busy loop on the idle machine lost the CPU ${gaps.gaps} times in 2 s for over 1 ms ` +
      `(${round(gaps.totalMs, 1)} ms in all, longest ${round(gaps.maxMs)} ms)`,
  );
  log(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  log(
    `load: ${connections} ATM connections x ${sessionsEach} sessions, ${seconds} s per phase; mix 40% deposit, 30% withdraw, 30% balance`,
  );

  // bcrypt cost 10 keeps setup short; the logins-beside phase still runs real bcrypt.
  const {
    child: bank,
    match,
    output: bankOutput,
  } = await start(
    'server/main.ts',
    [
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--bcrypt-cost',
      '10',
      '--max-handshaking',
      '1024',
      '--max-connections',
      '4096',
    ],
    /bank listening on 127\.0\.0\.1:(\d+)/,
  );
  const pid = bank.pid ?? 0;
  // The bench plays many ATMs, so it takes their credentials as the operator would provision them.
  const terminals = Terminals.open(dataDir);
  const target: BankTarget = {
    host: '127.0.0.1',
    port: Number(match[1]),
    credentialFor: (atmId) => terminals.credentialFor(atmId),
  };
  const connect = (atmId: number, requestTimeoutMs?: number): Promise<BankClient> =>
    BankClient.connect({
      host: target.host,
      port: target.port,
      credential: target.credentialFor(atmId),
      ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
    });

  // 1,000 connected idle ATMs (handshake done, nothing else): what do they cost the bank?
  const rssBeforeIdle = memoryMb(pid).rss;
  const idle: BankClient[] = [];
  for (let i = 0; i < idleAtms; i += 50) {
    idle.push(
      ...(await Promise.all(Array.from({ length: Math.min(50, idleAtms - i) }, (_, j) => connect(1000 + i + j)))),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  const idleRss = memoryMb(pid);
  log(
    `${idleAtms} idle ATMs connected to a fresh bank: RSS ${round(idleRss.rss, 1)} MB (${round(rssBeforeIdle, 1)} MB before them)`,
  );
  for (const client of idle) client.close();

  const sessions = await openSessions(target, connections, sessionsEach, 'load');
  await closedLoop(sessions, 1); // warm up

  // pgbench's cluster is up (and idle) beside the bank, and each round runs
  // our closed loop and then pgbench for the same time.
  const pg = pgbenchAvailable() ? await PgbenchCluster.start() : null;
  const rounds: { tps: number; pgbench: PgbenchRun | null }[] = [];
  const peakLatencies: number[] = [];
  let bankCpuSeconds = 0;
  let mainThreadSeconds = 0;
  let loadSeconds = 0;
  let transactions = 0;
  let pgbenchTps = Number.NaN;
  let pgbenchHalf: PgbenchThrottled = { tps: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN };
  try {
    for (let i = 0; i < PEAK_ROUNDS; i += 1) {
      const cpu0 = cpuSeconds(pid);
      const main0 = mainThreadCpuSeconds(pid);
      const load0 = process.cpuUsage();
      const run = await closedLoop(sessions, seconds);
      loadSeconds += loadCpuSeconds(load0);
      bankCpuSeconds += cpuSeconds(pid) - cpu0;
      mainThreadSeconds += mainThreadCpuSeconds(pid) - main0;
      transactions += run.latencies.length;
      for (const latency of run.latencies) peakLatencies.push(latency);
      rounds.push({ tps: run.tps, pgbench: pg ? await pg.run(seconds) : null });
    }
    pgbenchTps = median(rounds.flatMap((r) => (r.pgbench ? [r.pgbench.tps] : [])));
    if (pg) pgbenchHalf = await pg.runThrottled(seconds, pgbenchTps / 2);
  } finally {
    // The throwaway cluster goes even when a round failed.
    pg?.stop();
  }
  const peak = { tps: median(rounds.map((r) => r.tps)) };
  const bankCpu = bankCpuSeconds / (seconds * PEAK_ROUNDS);
  const peakLatency = summarize(peakLatencies);
  // Issue 15's measure: the bank's CPU time per transaction at peak (all its
  // threads), and the share of its event loop.
  const bankCpuUsPerTx = (bankCpuSeconds * 1e6) / transactions;
  const mainThreadUsPerTx = (mainThreadSeconds * 1e6) / transactions;
  // The ATMs this process plays share the bank's two cores.
  const loadUsPerTx = (loadSeconds * 1e6) / transactions;
  log(
    `peak (closed loop, median of ${PEAK_ROUNDS} rounds): ${round(peak.tps, 0)} tps  p50 ${round(peakLatency.p50)} ms  p95 ${round(peakLatency.p95)} ms  p99 ${round(peakLatency.p99)} ms  bank CPU ${round(bankCpu * 100, 0)}% (${round(bankCpuUsPerTx, 1)} µs per transaction, ${round(mainThreadUsPerTx, 1)} on its main thread; the load generator ${round(loadUsPerTx, 1)} µs)`,
  );
  let ratio = Number.NaN;
  if (pg) {
    const pgRuns = rounds.flatMap((r) => (r.pgbench ? [r.pgbench] : []));
    // Each round's ratio is of two runs seconds apart; the run's ratio is their median.
    ratio = median(rounds.map((r) => r.tps / (r.pgbench?.tps ?? Number.NaN)));
    log(
      `pgbench TPC-B (-c ${pg.clients} -j ${pg.threads}, scale ${pg.scale}, synchronous_commit=on), median of ${PEAK_ROUNDS} rounds: ` +
        `${round(pgbenchTps, 0)} tps, ${round(median(pgRuns.map((r) => r.latencyMs)))} ms average`,
    );
    log(
      `  rounds, ours / pgbench: ${rounds.map((r) => `${round(r.tps, 0)} / ${round(r.pgbench?.tps ?? Number.NaN, 0)} = ${round(r.tps / (r.pgbench?.tps ?? Number.NaN))}x`).join(', ')}`,
    );
    log(
      `pgbench at half its peak (-R ${round(pgbenchHalf.tps, 0)}): p50 ${round(pgbenchHalf.p50Ms)} ms  p99 ${round(pgbenchHalf.p99Ms)} ms`,
    );
    log(`ours / pgbench: ${round(ratio)}x (median of the rounds' ratios)`);
  } else {
    log('pgbench: not found at /usr/lib/postgresql/15/bin; skipped');
  }

  const halfRate = peak.tps / 2;
  const describeInBank = (inBank: ServiceTimes): string =>
    `  inside the bank (arrival to answer written): p50 ${round(inBank.p50)} ms  p99 ${round(inBank.p99)} ms; ` +
    `GC paused it ${inBank.gc.pauses} times (${round(inBank.gc.totalMs, 0)} ms, longest ${round(inBank.gc.maxMs)} ms)`;
  const halfCpu0 = cpuSeconds(pid);
  const half = await openLoopPhase(sessions, halfRate, seconds, bank, bankOutput);
  // Smaller groups below peak: each pays its own syncs, so a transaction costs more here.
  const halfCpuUsPerTx = ((cpuSeconds(pid) - halfCpu0) * 1e6) / seconds / half.tps;
  const halfLatency = half.latency;
  log(
    `50% of peak (open loop): ${round(half.tps, 0)} tps  p50 ${round(halfLatency.p50)} ms  p95 ${round(halfLatency.p95)} ms  p99 ${round(halfLatency.p99)} ms  (${round(halfCpuUsPerTx, 1)} µs of bank CPU per transaction)`,
  );
  log(describeInBank(half.inBank));
  // Where the tail starts: the same at a quarter of peak.
  const quarter = await openLoopPhase(sessions, peak.tps / 4, seconds, bank, bankOutput);
  log(
    `25% of peak (open loop): ${round(quarter.tps, 0)} tps  p50 ${round(quarter.latency.p50)} ms  p95 ${round(quarter.latency.p95)} ms  p99 ${round(quarter.latency.p99)} ms`,
  );
  log(describeInBank(quarter.inBank));
  // The floor under those numbers: the same rate and connections, pings only.
  const floor = await openLoopPhase(sessions, halfRate, seconds, bank, bankOutput, pingOperation);
  log(
    `floor: pings at the 50% rate (full protocol, no ledger, no disk): p50 ${round(floor.latency.p50)} ms  p99 ${round(floor.latency.p99)} ms`,
  );
  log(describeInBank(floor.inBank));

  const loginClient = await connect(99, 60_000);
  await loginClient.signup('login-storm', 'bench-password');
  let stopLogins = false;
  const logins = loginStorm(loginClient, 'login-storm', () => stopLogins);
  const withLogins = await openLoop(sessions, halfRate, seconds);
  stopLogins = true;
  const loginCount = await logins;
  const withLoginsLatency = summarize(withLogins.latencies);
  const loginImpact = withLoginsLatency.p99 / halfLatency.p99;
  log(
    `50% + logins beside:     ${round(withLogins.tps, 0)} tps  p50 ${round(withLoginsLatency.p50)} ms  p99 ${round(withLoginsLatency.p99)} ms  (${round(loginCount / seconds, 1)} logins/s; p99 x${round(loginImpact)})`,
  );
  loginClient.close();

  const memory = memoryMb(pid);
  log(`bank peak RSS over the load phases: ${round(memory.peak, 1)} MB`);
  for (const s of new Set(sessions.map((x) => x.client))) s.close();

  // The web tier: deposits through one ATM against a bare Express route.
  terminals.provision(1);
  const { child: atm, match: atmMatch } = await start(
    'atm-web/main.ts',
    [
      '1',
      '--bank',
      `127.0.0.1:${target.port}`,
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--auth-rate-limit',
      '100000',
      '--signup-rate-limit',
      '100000',
    ],
    /ATM 1 ready at (http:\/\/[0-9.:]+)/,
  );
  const { child: bare, match: bareMatch } = await start(
    'bench/bare-express.ts',
    [],
    /bare express ready at (http:\/\/[0-9.:]+)/,
  );
  const users = await signInUsers(atmMatch[1] ?? '', 16, 'web');
  const webSeconds = Math.max(3, Math.round(seconds / 2));
  const atmRps = await postLoop(atmMatch[1] ?? '', users, webSeconds);
  const bareRps = await postLoop(bareMatch[1] ?? '', users, webSeconds);
  const httpRatio = atmRps / bareRps;
  log(
    `web tier: ${round(atmRps, 0)} deposits/s through ATM 1 vs ${round(bareRps, 0)} req/s bare Express (ratio ${round(httpRatio, 3)})`,
  );
  await stop(atm);
  await stop(bare);
  await stop(bank);

  // The login storm, against a fresh bank at the production bcrypt cost and password-pool defaults.
  const stormDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atm-bench-storm-'));
  const { child: stormBank, match: stormMatch } = await start(
    'server/main.ts',
    ['--port', '0', '--data-dir', stormDir],
    /bank listening on 127\.0\.0\.1:(\d+)/,
  );
  const stormTerminals = Terminals.open(stormDir);
  const storm = await loginStormPhase(
    {
      host: '127.0.0.1',
      port: Number(stormMatch[1]),
      credentialFor: (atmId) => stormTerminals.credentialFor(atmId),
    },
    { customers: 8, quietSeconds: quick ? 2 : 5, logins: 400, atms: 20 },
  );
  log(
    `login storm (400 logins for unknown users from 20 ATMs, bcrypt cost 12, ${round(storm.stormSeconds, 1)} s): ` +
      `deposits of 8 logged-in customers p50 ${round(storm.storm.p50)} ms  p99 ${round(storm.storm.p99)} ms ` +
      `(${storm.storm.count} deposits; without the storm p99 ${round(storm.quiet.p99)} ms); ` +
      `logins refused ${storm.logins.refused}, busy ${storm.logins.busy}, other ${storm.logins.failed}`,
  );
  await stop(stormBank);
  fs.rmSync(stormDir, { recursive: true, force: true });

  // The same mix with the ledger in PostgreSQL: one node, then two nodes sharing it.
  let onPostgres: PostgresBench | null = null;
  if (pgbenchAvailable()) {
    onPostgres = await runPostgresBench({ seconds, connections, sessionsEach });
    const { oneNode, twoNodes } = onPostgres;
    const describe = (phase: PostgresPhase): string =>
      `${round(phase.tps, 0)} tps (p99 ${round(phase.p99Ms)} ms), ${round(phase.tps / pgbenchTps)}x pgbench; ` +
      `CPU per transaction: bank ${round(phase.nodeCpuUsPerTx, 0)} µs, PostgreSQL ${round(phase.postgresCpuUsPerTx, 0)} µs, ` +
      `load generator ${round(phase.loadCpuUsPerTx, 0)} µs; ${round(phase.groupSize, 1)} requests per group commit`;
    log(`PostgreSQL ledger, one node: ${describe(oneNode)}`);
    log(`PostgreSQL ledger, two nodes: ${describe(twoNodes)}`);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });

  const cliStart = await cliStartPhase();

  if (values.json) {
    console.log(
      JSON.stringify({
        tps: round(peak.tps, 1),
        p50_ms: round(peakLatency.p50, 3),
        p95_ms: round(peakLatency.p95, 3),
        p99_ms: round(peakLatency.p99, 3),
        half_load_tps: round(half.tps, 1),
        half_load_p99_ms: round(halfLatency.p99, 3),
        half_load_in_bank_p99_ms: round(half.inBank.p99, 3),
        half_load_gc_pauses: half.inBank.gc.pauses,
        half_load_gc_max_ms: round(half.inBank.gc.maxMs, 3),
        quarter_load_tps: round(quarter.tps, 1),
        quarter_load_p99_ms: round(quarter.latency.p99, 3),
        quarter_load_in_bank_p99_ms: round(quarter.inBank.p99, 3),
        floor_p99_ms: round(floor.latency.p99, 3),
        logins_p99_ms: round(withLoginsLatency.p99, 3),
        login_p99_ratio: round(loginImpact, 3),
        storm_deposit_p99_ms: round(storm.storm.p99, 3),
        storm_quiet_deposit_p99_ms: round(storm.quiet.p99, 3),
        storm_seconds: round(storm.stormSeconds, 1),
        storm_logins_busy: storm.logins.busy,
        pgbench_tps: round(pgbenchTps, 1),
        pgbench_half_load_p99_ms: round(pgbenchHalf.p99Ms, 3),
        ratio: round(ratio, 3),
        peak_rounds_tps: rounds.map((r) => round(r.tps, 1)),
        pgbench_rounds_tps: rounds.map((r) => (r.pgbench ? round(r.pgbench.tps, 1) : null)),
        pg_one_node_tps: onPostgres ? round(onPostgres.oneNode.tps, 1) : null,
        pg_one_node_p99_ms: onPostgres ? round(onPostgres.oneNode.p99Ms, 3) : null,
        pg_two_nodes_tps: onPostgres ? round(onPostgres.twoNodes.tps, 1) : null,
        pg_two_nodes_p99_ms: onPostgres ? round(onPostgres.twoNodes.p99Ms, 3) : null,
        pg_one_node_cpu_us_per_tx: onPostgres
          ? {
              bank: round(onPostgres.oneNode.nodeCpuUsPerTx, 1),
              postgres: round(onPostgres.oneNode.postgresCpuUsPerTx, 1),
              load: round(onPostgres.oneNode.loadCpuUsPerTx, 1),
            }
          : null,
        pg_one_node_group_size: onPostgres ? round(onPostgres.oneNode.groupSize, 2) : null,
        pg_two_nodes_cpu_us_per_tx: onPostgres
          ? {
              bank: round(onPostgres.twoNodes.nodeCpuUsPerTx, 1),
              postgres: round(onPostgres.twoNodes.postgresCpuUsPerTx, 1),
              load: round(onPostgres.twoNodes.loadCpuUsPerTx, 1),
            }
          : null,
        pg_two_nodes_group_size: onPostgres ? round(onPostgres.twoNodes.groupSize, 2) : null,
        http_rps: round(atmRps, 1),
        bare_http_rps: round(bareRps, 1),
        http_ratio: round(httpRatio, 3),
        rss_mb: round(memory.peak, 1),
        idle_atms: idleAtms,
        idle_atms_rss_mb: round(idleRss.rss, 1),
        fresh_rss_mb: round(rssBeforeIdle, 1),
        bank_cpu: round(bankCpu, 3),
        bank_cpu_us_per_tx: round(bankCpuUsPerTx, 1),
        main_thread_us_per_tx: round(mainThreadUsPerTx, 1),
        load_cpu_us_per_tx: round(loadUsPerTx, 1),
        half_load_bank_cpu_us_per_tx: round(halfCpuUsPerTx, 1),
        machine_gaps: gaps.gaps,
        machine_gap_max_ms: round(gaps.maxMs, 3),
        ...cliStartFields(cliStart),
      }),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
