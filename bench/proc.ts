/** Reads a process's memory and CPU from /proc (Linux). */
import fs from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ on Linux

export function memoryMb(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 'NaN');
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/**
 * CPU seconds of the process's main thread alone (its thread id is its pid):
 * the event loop, as against libuv's pool, V8's helpers and worker threads.
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

/**
 * CPU seconds of a process and all its children, those still running and
 * those it has reaped (cutime and cstime): a sum over the live children
 * alone would drop a child that exits between two readings, with all the
 * CPU it ever used (PostgreSQL's postmaster and its backends).
 */
export function processTreeCpuSeconds(pid: number): number {
  const fields = statFields(`/proc/${pid}/stat`);
  let total = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const child = statFields(`/proc/${entry}/stat`);
      if (Number(child[1]) === pid) total += (Number(child[11]) + Number(child[12])) / CLOCK_TICKS;
    } catch {
      // The process ended while we looked; its parent's cutime will hold it.
    }
  }
  return total;
}

/** The fields of /proc/PID/stat after the command name, from the state (field 3) on. */
function statFields(file: string): string[] {
  const stat = fs.readFileSync(file, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function statCpuSeconds(file: string): number {
  const fields = statFields(file);
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** This process's CPU seconds (all threads) since `since`: the load generator's own share of the machine. */
export function loadCpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}
