// Test runner configuration: unit, integration (real nats-server, real LMDB) and end-to-end suites.
import { defineConfig } from 'vitest/config';

// `anx-source`: the package's own entries (`agentnexus-runtime/sdk` in docs/examples) resolve to the
// TypeScript sources, not to the build in dist. The rest are Vite's default server conditions.
const conditions = ['anx-source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['anx-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
