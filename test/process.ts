import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
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

/** Provisions ATM N (`npm run bank -- provision-atm N`) and starts `npm run atm -- N` against the bank; resolves with its URL. */
export async function spawnAtm(
  dataDir: string,
  bankPort: number,
  atmId = 1,
  extra: string[] = [],
): Promise<Spawned & { url: string }> {
  const provision = spawnEntry('server/main.ts', ['provision-atm', String(atmId), '--data-dir', dataDir]);
  if ((await provision.exited) !== 0) throw new Error(`provision-atm ${atmId} failed:\n${provision.output()}`);
  const spawned = spawnEntry('atm-web/main.ts', [
    String(atmId),
    '--bank',
    `127.0.0.1:${bankPort}`,
    '--data-dir',
    dataDir,
    '--port',
    '0',
    ...extra,
  ]);
  const match = await waitForOutput(spawned, new RegExp(`ATM ${atmId} ready at (http://127\\.0\\.0\\.1:\\d+)`));
  return { ...spawned, url: match[1] ?? '' };
}

/**
 * A browser against a real ATM process, over fetch: keeps its cookies (the
 * session and the CSRF nonce) and submits forms with the page's token, as a
 * person clicking through would.
 */
type Answer = { status: number; text: string; location: string | null };
type Sent = Answer & { cookies: string[] };

/** One request from a chosen local address (127.0.0.x): what fetch cannot do, and the ATM's per-address limits see. */
function sendFrom(
  localAddress: string,
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, localAddress, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          text,
          location: response.headers.location ?? null,
          cookies: response.headers['set-cookie'] ?? [],
        }),
      );
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function sendByFetch(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Sent> {
  const response = await fetch(url, { method, redirect: 'manual', headers, ...(body === undefined ? {} : { body }) });
  return {
    status: response.status,
    text: await response.text(),
    location: response.headers.get('location'),
    cookies: response.headers.getSetCookie(),
  };
}

export class WebVisitor {
  private readonly jar = new Map<string, string>();

  /** `localAddress` (say 127.0.0.2) makes this visitor another address to the ATM; default: fetch from 127.0.0.1. */
  constructor(
    private readonly base: string,
    private readonly localAddress?: string,
  ) {}

  async get(page: string): Promise<Answer> {
    return this.send('GET', page, this.headers());
  }

  /** GETs `page`, then POSTs `fields` to `action` with that page's CSRF token (and txId, if it has one). */
  async submit(page: string, action: string, fields: Record<string, string>): Promise<Answer> {
    return (await this.fillIn(page))(action, fields);
  }

  /** GETs `page` now and returns the POST of its form, to send later (many at one moment, say). */
  async fillIn(page: string): Promise<(action: string, fields: Record<string, string>) => Promise<Answer>> {
    const form = await this.get(page);
    const token = /name="_csrf" value="([^"]+)"/.exec(form.text)?.[1] ?? '';
    const txId = /name="txId" value="([^"]+)"/.exec(form.text)?.[1];
    return async (action, fields) => {
      const body = new URLSearchParams({ _csrf: token, ...(txId ? { txId } : {}), ...fields });
      const headers = { ...this.headers(), 'content-type': 'application/x-www-form-urlencoded' };
      return this.send('POST', action, headers, body.toString());
    };
  }

  async signupAndLogin(username: string, password: string): Promise<void> {
    const signedUp = await this.submit('/signup', '/signup', { username, password });
    if (signedUp.status !== 303) throw new Error(`signup of ${username} answered ${signedUp.status}`);
    const loggedIn = await this.submit('/login', '/login', { username, password });
    if (loggedIn.location !== '/') throw new Error(`login of ${username} answered ${loggedIn.status}`);
  }

  /** Deposits through the deposit form; returns the message on the page after the redirect (the receipt). */
  async deposit(amount: string): Promise<string> {
    const posted = await this.submit('/deposit', '/transaction', { action: 'deposit', amount });
    if (posted.status !== 303 || !posted.location?.startsWith('/')) {
      return `HTTP ${posted.status} to ${posted.location ?? ''}`;
    }
    const page = await this.get(posted.location);
    return /<p class="message message-\w+"[^>]*>([^<]*)<\/p>/.exec(page.text)?.[1] ?? `HTTP ${page.status}`;
  }

  private headers(): Record<string, string> {
    return this.jar.size > 0 ? { cookie: [...this.jar.values()].join('; ') } : {};
  }

  private async send(method: string, page: string, headers: Record<string, string>, body?: string): Promise<Answer> {
    const url = `${this.base}${page}`;
    const sent = this.localAddress
      ? await sendFrom(this.localAddress, url, method, headers, body)
      : await sendByFetch(url, method, headers, body);
    this.keep(sent.cookies);
    return { status: sent.status, text: sent.text, location: sent.location };
  }

  private keep(cookies: string[]): void {
    for (const cookie of cookies) {
      const pair = cookie.split(';')[0] ?? '';
      const name = pair.slice(0, pair.indexOf('='));
      if (/Expires=Thu, 01 Jan 1970/i.test(cookie)) this.jar.delete(name);
      else if (name) this.jar.set(name, pair);
    }
  }
}
