import { fileURLToPath } from "node:url"
import { configDefaults, defineConfig } from "vitest/config"

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/**
 * Files that start pod processes, servers of their own or long real-time scenarios, whose
 * figures (one start per window, latencies) only mean something on an otherwise idle machine:
 * they run one at a time, after the other files.
 */
const exclusive = [
  "test/faults-*.test.ts",
  "test/bus.test.ts",
  "test/fleet.test.ts",
  "test/cluster.test.ts",
  "test/sentinel.test.ts",
  "test/soak.test.ts",
  "test/bench-smoke.test.ts",
  "test/proxy.test.ts",
  "test/app/start.test.ts",
  "test/Redis.startup.test.ts",
  "test/next-fleet.test.ts"
]

export default defineConfig({
  resolve: {
    // the package's exports point at dist/ (built on `npm pack`); inside the repository
    // `lockstep` and its subpaths are the sources, so no build step comes before a test
    alias: [
      { find: /^lockstep$/, replacement: source("./src/index.ts") },
      { find: /^lockstep\/testing$/, replacement: source("./src/Testing.ts") },
      { find: /^lockstep\/promise$/, replacement: source("./src/Promise.ts") },
      { find: /^lockstep\/next$/, replacement: source("./src/Next.ts") }
    ]
  },
  test: {
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // two cores: the other files run two at a time (TestClock, in-process stores, npm), then the
    // exclusive ones alone
    maxWorkers: 2,
    reporters: ["default", "./test/support/summaryReporter.ts"],
    projects: [
      {
        extends: true,
        test: { name: "shared", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...exclusive], sequence: { groupOrder: 0 } }
      },
      {
        extends: true,
        test: { name: "exclusive", include: exclusive, sequence: { groupOrder: 1 }, poolOptions: { forks: { singleFork: true } } }
      }
    ]
  }
})
