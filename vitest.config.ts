import { defineConfig } from "vitest/config"

export default defineConfig({
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
