/**
 * How every long-running command stops on Ctrl-C or `kill` (SIGINT,
 * SIGTERM): once. `close` finishes the in-flight work; then the process
 * exits 0, or 1 if closing failed. A second signal while closing is ignored,
 * so an impatient Ctrl-C cannot cut a close in half. `beforeExit` runs just
 * before the exit (to flush an asynchronous log).
 */
export function exitOnSignals(
  close: (signal: NodeJS.Signals) => Promise<unknown>,
  beforeExit: () => void = () => {},
): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    close(signal)
      .then(
        () => 0,
        () => 1,
      )
      .then((code) => {
        beforeExit();
        process.exit(code);
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
