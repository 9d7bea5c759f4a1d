import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { BaseSequencer, type TestSpecification } from "vitest/node"
import { configDefaults, defineConfig } from "vitest/config"

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const root = source(".")

/**
 * Files that start pod processes, servers of their own or real-time scenarios of several seconds.
 * Their figures (one start per window, latencies of an L1 answer) need a core to spare, not an
 * idle machine: each uses under half a core while it waits on real time (windows, leases, faults
 * held for seconds), so they run two at a time, after the shared files, which keep both cores busy.
 * `LOCKSTEP_REALTIME_ONE_AT_A_TIME=1` runs them one at a time, for a machine that other work keeps
 * busy.
 */
const realTime = [
  "test/faults-*.test.ts",
  "test/fleet.test.ts",
  "test/cluster.test.ts",
  "test/sentinel.test.ts",
  "test/proxy.test.ts",
  "test/app/start.test.ts",
  "test/Redis.startup.test.ts",
  "test/next-fleet.test.ts",
  "test/writeback.test.ts"
]

/**
 * Alone, last: the soak, whose bounds (no second start in a quiet window, with 1 s leases and an
 * 800 ms `maxRun`) broke beside another real-time file on a machine that other work loaded far
 * past its cores (load averages of 12 and 16 on 2 cores), and held alone at 8 to 11; and the bus,
 * whose Sentinel failover scenario once counted a second start beside the fault files.
 */
const exclusive = ["test/bus.test.ts", "test/soak.test.ts"]

/**
 * Files by how long they take, longest first (seconds on the 2-core reference machine), so that
 * two workers end together rather than one waiting on a long file started last. A file not listed
 * runs after these, in vitest's own order (a previous run's durations, else larger files first).
 */
const longestFirst = [
  // shared
  "test/consumer.test.ts", // 82
  "test/bench-smoke.test.ts", // 46
  "test/readme.test.ts", // 28
  "test/docs.test.ts", // 27
  "test/model-memo.test.ts", // 26
  "test/next-build.test.ts", // 25
  "test/app/redis.test.ts", // 17
  "test/model-store.test.ts", // 14
  "test/Memo.types.test.ts", // 13
  "test/app/ledger.test.ts", // 12
  "test/app/browser.test.ts", // 12
  "test/Redis.test.ts", // 11
  "test/Memo.loader.test.ts", // 10
  // real-time
  "test/faults-server.test.ts", // 67
  "test/faults-redis.test.ts", // 40
  "test/faults-producer.test.ts", // 33
  "test/faults-pods.test.ts", // 30
  "test/cluster.test.ts", // 23
  "test/faults-network.test.ts", // 23
  "test/faults-holder.test.ts", // 23
  "test/sentinel.test.ts", // 20
  "test/faults-input.test.ts", // 14
  "test/fleet.test.ts", // 14
  "test/next-fleet.test.ts", // 13, its build done by test/next-build.test.ts
  "test/faults-hung.test.ts", // 9
  "test/writeback.test.ts" // 8
]

/** Runs the files of `longestFirst` in its order, then the others in vitest's. */
class LongestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    const rank = (spec: TestSpecification) => {
      const i = longestFirst.indexOf(Path.relative(root, spec.moduleId).split(Path.sep).join("/"))
      return i < 0 ? longestFirst.length : i
    }
    return sorted.sort((a, b) => rank(a) - rank(b))
  }
}

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
    // two cores: the shared files run two at a time (TestClock, in-process stores, npm, builds),
    // then the real-time ones two at a time, then the bus and the soak, each alone
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    reporters: ["default", "./test/support/summaryReporter.ts"],
    projects: [
      {
        extends: true,
        test: { name: "shared", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...realTime, ...exclusive], sequence: { groupOrder: 0 } }
      },
      {
        extends: true,
        test: {
          name: "real-time",
          include: realTime,
          sequence: { groupOrder: 1 },
          ...(process.env.LOCKSTEP_REALTIME_ONE_AT_A_TIME === "1" ? { poolOptions: { forks: { singleFork: true } } } : {})
        }
      },
      {
        extends: true,
        test: { name: "exclusive", include: exclusive, sequence: { groupOrder: 2 }, poolOptions: { forks: { singleFork: true } } }
      }
    ]
  }
})
