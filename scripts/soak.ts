/**
 * The soak, from the command line: `npm run soak` (10 minutes), `npm run soak -- --seconds=180
 * --seed=42 --pods=4`. It starts its own redis-server on a free loopback port and stops it at the
 * end, on failure and on Ctrl-C. Prints the report as tables, then as JSON (`--json=FILE` writes
 * the JSON there instead). Exits 1 when a bound the test asserts is broken.
 */
import * as Fs from "node:fs"
import { formatReport, runSoak } from "../test/support/soak.js"
import { soakProblems } from "../test/support/soakBounds.js"

const args = new Map(
  process.argv.slice(2).map((a) => {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a)
    if (!m) {
      console.error(`soak: unknown argument ${a} (use --seconds=N --seed=N --pods=N --keys=N --json=FILE --leak-kb-per-s=N)`)
      process.exit(2)
    }
    return [m[1]!, m[2] ?? "true"] as const
  })
)
const int = (name: string, fallback: number) => {
  const v = args.get(name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`soak: --${name} must be a whole number, got ${v}`)
    process.exit(2)
  }
  return n
}

const seconds = int("seconds", 600)
const seed = int("seed", Date.now() % 1_000_000)
const pods = int("pods", 4)
const keys = int("keys", 20)
const json = args.get("json")
/** `--leak-kb-per-s=N`: every pod leaks on purpose, to see the memory bound fail. */
const leakKbPerS = int("leak-kb-per-s", 0)

const controller = new AbortController()
let interrupts = 0
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (++interrupts > 1) process.exit(130) // a second Ctrl-C: do not wait for the clean-up
    console.error(`\nsoak: ${signal}, stopping the pods and redis-server (seed ${seed})`)
    controller.abort()
  })
}

console.log(`soak: seed ${seed} (repeat with --seed=${seed})`)
runSoak({ seconds, seed, pods, keys, leakBytesPerSecond: leakKbPerS * 1024, signal: controller.signal, log: (line) => console.log(line) }).then(
  (report) => {
    console.log("")
    console.log(formatReport(report))
    const text = JSON.stringify(report, null, 2)
    if (json !== undefined) {
      Fs.writeFileSync(json, text + "\n")
      console.log(`\nsoak: report written to ${json}`)
    } else {
      console.log("\n" + text)
    }
    const problems = soakProblems(report)
    if (problems.length > 0) {
      console.log(`\nsoak: ${problems.length} bound${problems.length > 1 ? "s" : ""} broken:\n  ${problems.join("\n  ")}`)
      process.exit(1)
    }
    console.log("\nsoak: every bound held")
    process.exit(0)
  },
  (error) => {
    if (controller.signal.aborted) {
      console.error(`soak: stopped early; nothing left running (seed ${seed})`)
      process.exit(130)
    }
    console.error(`soak failed (seed ${seed}):`, error)
    process.exit(1)
  }
)
