/**
 * Line input for the terminal ATM, the same on a terminal and on a pipe: one
 * readline interface, questions answered in order, a password typed on a
 * terminal never echoed, and every wait ending early on idle, Ctrl-C, end of
 * input or a call to `interrupt` (the bank link dropped).
 */
import readline from 'node:readline';
import { Writable } from 'node:stream';

/** Why an answer did not come. */
export type NoAnswer = 'idle' | 'interrupt' | 'end' | 'lost';
export type Answer = { text: string } | { none: NoAnswer };

export class Prompter {
  private readonly rl: readline.Interface;
  private readonly lines: string[] = [];
  private waiter: ((answer: Answer) => void) | null = null;
  private ended = false;
  private muted = false;

  constructor(
    input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
    readonly tty: boolean,
  ) {
    // readline echoes what is typed through this stream; while a password is
    // typed nothing passes, so the password never appears on the screen.
    const echo = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        if (!this.muted) output.write(chunk);
        done();
      },
    });
    this.rl = readline.createInterface({ input, output: echo, terminal: tty });
    this.rl.on('line', (line) => {
      if (this.waiter) this.settle({ text: line });
      else this.lines.push(line);
    });
    this.rl.on('close', () => {
      this.ended = true;
      this.settle({ none: 'end' });
    });
    this.rl.on('SIGINT', () => this.settle({ none: 'interrupt' }));
  }

  say(text: string): void {
    this.output.write(`${text}\n`);
  }

  /** Asks one question; the answer, or why none came within `idleMs`. */
  ask(question: string, options: { secret?: boolean; idleMs?: number } = {}): Promise<Answer> {
    this.output.write(question);
    const queued = this.lines.shift();
    if (queued !== undefined) {
      if (!this.tty) this.output.write('\n');
      return Promise.resolve({ text: queued });
    }
    if (this.ended) return Promise.resolve({ none: 'end' });
    this.muted = options.secret === true && this.tty;
    return new Promise<Answer>((resolve) => {
      const timer =
        options.idleMs === undefined ? null : setTimeout(() => this.settle({ none: 'idle' }), options.idleMs);
      this.waiter = (answer) => {
        if (timer) clearTimeout(timer);
        if (this.muted) this.output.write('\n');
        this.muted = false;
        // A piped answer is not echoed; end the prompt's line so the transcript reads well.
        if (!this.tty && 'text' in answer) this.output.write('\n');
        resolve(answer);
      };
    });
  }

  /** Ends whatever wait is in progress (the bank link dropped, a signal arrived). */
  interrupt(reason: NoAnswer): void {
    this.settle({ none: reason });
  }

  close(): void {
    this.rl.close();
  }

  private settle(answer: Answer): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.(answer);
  }
}
