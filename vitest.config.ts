import { defineConfig } from 'vitest/config';

// `npm test`. Several tests start real processes (the bank, ATMs) and the
// machine they run on may be busy: a generous deadline still catches a hang
// without failing a slow start. Speed is measured by `npm run bench`, not here.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // expect.poll waits for a reconnect or a log line; 1 s (vitest's default) is not generous here.
    expect: { poll: { timeout: 10_000 } },
    // bin/atm, bin/bank and the terminal ATM run from dist/: build it from the sources under test first.
    globalSetup: ['test/build-cli.ts'],
  },
});
