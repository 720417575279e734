import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

export type Spawned = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/** Runs one of our TypeScript entry points in its own Node process, through tsx. */
export function spawnEntry(entry: string, args: string[]): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Waits until the process prints a line matching `pattern`; returns the match. */
export async function waitForOutput(spawned: Spawned, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(spawned.output());
    if (match) return match;
    if (spawned.child.exitCode !== null) throw new Error(`process exited early:\n${spawned.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${spawned.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Starts `npm run bank` equivalent on an ephemeral port; resolves with its port. */
export async function spawnBank(dataDir: string, extra: string[] = []): Promise<Spawned & { port: number }> {
  const spawned = spawnEntry('server/main.ts', ['--port', '0', '--data-dir', dataDir, '--bcrypt-cost', '4', ...extra]);
  const match = await waitForOutput(spawned, /bank listening on 127\.0\.0\.1:(\d+)/);
  return { ...spawned, port: Number(match[1]) };
}

/**
 * The processes a test file starts. Pass `killAll` to afterEach so none
 * outlives its test (SIGKILL: a test that failed half-way must not leave a
 * bank holding a port or a data dir).
 */
export function spawnedProcesses(): { track<T extends Spawned>(spawned: T): T; killAll(): void } {
  const running: Spawned[] = [];
  return {
    track(spawned) {
      running.push(spawned);
      return spawned;
    },
    killAll() {
      for (const spawned of running.splice(0)) spawned.child.kill('SIGKILL');
    },
  };
}
