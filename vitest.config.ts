import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    // the package's exports point at dist/ (built on `npm pack`); inside the repository
    // `lockstep` and its subpaths are the sources, so no build step comes before a test
    alias: [
      { find: /^lockstep$/, replacement: source("./src/index.ts") },
      { find: /^lockstep\/testing$/, replacement: source("./src/Testing.ts") },
      { find: /^lockstep\/promise$/, replacement: source("./src/Promise.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // two cores: fleet tests spawn their own processes, so keep files from competing for them
    fileParallelism: false,
    reporters: ["default", "./test/support/summaryReporter.ts"]
  }
})
