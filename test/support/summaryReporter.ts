/**
 * Ends every run with one plain line, `tests: N passed, N failed, N skipped`, that any CI can
 * read whatever it knows of vitest.
 */
import type { RunnerTask, RunnerTestFile } from "vitest"
import type { Reporter } from "vitest/reporters"

const count = (tasks: ReadonlyArray<RunnerTask>, into: { passed: number; failed: number; skipped: number }) => {
  for (const task of tasks) {
    if (task.type === "suite") {
      count(task.tasks, into)
    } else {
      const state = task.result?.state
      if (state === "pass") into.passed++
      else if (state === "fail") into.failed++
      else into.skipped++
    }
  }
  return into
}

export default class SummaryReporter implements Reporter {
  onFinished(files: ReadonlyArray<RunnerTestFile> = [], errors: ReadonlyArray<unknown> = []) {
    const c = count(files, { passed: 0, failed: 0, skipped: 0 })
    const failedFiles = files.filter((f) => f.result?.state === "fail" && f.tasks.length === 0).length
    process.stdout.write(`\ntests: ${c.passed} passed, ${c.failed + failedFiles + errors.length} failed, ${c.skipped} skipped\n`)
  }
}
