import { defineConfig } from 'vitest/config';

// Browser tests: `npm run test:e2e`. Kept apart from `npm test` because they need Chromium.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
