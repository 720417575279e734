/**
 * Runs the compiled command-line programs as a user would: `bin/bank` in a
 * temp directory on a free port, `bin/atm` with a working directory, their
 * stdout, stderr and exit codes captured.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { tempDir } from '../helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN_ATM = path.join(ROOT, 'bin', 'atm');
export const BIN_BANK = path.join(ROOT, 'bin', 'bank');
export const BIN_TERMINAL = path.join(ROOT, 'bin', 'terminal');

export type Run = { code: number | null; stdout: string; stderr: string };

/** Runs bin/atm in `cwd` (with `env` added to the environment); resolves with what it printed and its exit code. */
export function atm(cwd: string, args: string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BIN_ATM, args, { cwd, timeout: timeoutMs, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on right now (the contract's ports start at 1024, so port 0 is not allowed). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export type CliBank = {
  child: ChildProcess;
  dir: string;
  port: number;
  /** The atm's arguments for this bank: `-p <port>`. */
  at: string[];
  stdout(): string;
  stderr(): string;
  lines(): string[];
  /** Waits until stdout holds `count` lines. */
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
};

/** Starts bin/bank in a fresh temp directory (or `dir`) and waits for `created`. */
export async function startCliBank(dir = tempDir('cli-bank-'), extra: string[] = []): Promise<CliBank> {
  for (let attempt = 0; ; attempt += 1) {
    const port = await freePort();
    const child = spawn(BIN_BANK, ['-p', String(port), ...extra], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines = (): string[] => stdout.split('\n').filter((line) => line !== '');
    const waitForLines = async (count: number, timeoutMs = 20_000): Promise<string[]> => {
      const deadline = Date.now() + timeoutMs;
      while (lines().length < count) {
        if (Date.now() > deadline) throw new Error(`bank printed ${JSON.stringify(stdout)}; stderr ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return lines();
    };
    const started = await Promise.race([waitForLines(1).then(() => true), exited.then(() => false)]);
    if (!started) {
      // Another test took the port between our probe and the bank's listen: try another.
      if (attempt < 3) {
        for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
        continue;
      }
      throw new Error(`bin/bank did not start: ${stderr}`);
    }
    return {
      child,
      dir,
      port,
      at: ['-p', String(port)],
      stdout: () => stdout,
      stderr: () => stderr,
      lines,
      waitForLines,
      exited,
      stop: async () => {
        child.kill('SIGTERM');
        return exited;
      },
    };
  }
}

/** A working directory for one atm "machine" holding a copy of the bank's auth file. */
export function atmDir(bank: CliBank): string {
  const dir = tempDir('cli-atm-');
  fs.copyFileSync(path.join(bank.dir, 'bank.auth'), path.join(dir, 'bank.auth'));
  return dir;
}

/** The bank's data directory (`bank.auth.data-XXXXXX` beside its auth file). */
export function dataDirOf(bank: CliBank, authFile = 'bank.auth'): string {
  const name = fs.readdirSync(bank.dir).find((entry) => entry.startsWith(`${authFile}.data-`));
  if (!name) throw new Error('no data directory');
  return path.join(bank.dir, name);
}
