/**
 * The soak, short: 4 pods as processes on a private redis-server, 20 keys, 2 s windows, random
 * faults from a fixed seed (`LOCKSTEP_SOAK_SEED` draws others), for `LOCKSTEP_SOAK_SECONDS`
 * (default 52 s: with the pods' start and the warm-up, the file takes about 65–70 s). The long run
 * is `npm run soak`. Asserted (`soakProblems`): no error to a caller once every key has a value,
 * at most one producer start per key and window without a fault and one more per fault touching
 * it, no older window and no invalidated value served, no stored `(bucket, fence)` going down,
 * and each pod's heap after a full collection growing less than `HEAP_GROWTH_MB_PER_MIN` (median slope)
 * and `HEAP_SLOPE_MB_PER_MIN` (least squares).
 */
import { describe, expect, it } from "vitest"
import { formatReport, runSoak } from "./support/soak.js"
import { soakProblems } from "./support/soakBounds.js"

const SECONDS = Number(process.env.LOCKSTEP_SOAK_SECONDS ?? 52)
const SEED = Number(process.env.LOCKSTEP_SOAK_SEED ?? 13)

describe("soak", () => {
  it(`4 pods, 20 keys, random faults for ${SECONDS} s (seed ${SEED}): every bound holds`, async () => {
    const report = await runSoak({ seconds: SECONDS, seed: SEED, log: (line) => console.log(line) })
    console.log(formatReport(report))
    expect(report.windows.count).toBeGreaterThanOrEqual(Math.floor(SECONDS / 2) - 3)
    expect(report.faults.injected, "faults were injected").toBeGreaterThanOrEqual(Math.floor(SECONDS / 6 / 2))
    expect(report.starts.faultFree.pairs, "fault-free (key, window) pairs were counted").toBeGreaterThan(report.keys * 5)
    expect(report.starts.faulted.pairs, "(key, window) pairs with a fault were counted").toBeGreaterThan(0)
    expect(report.calls).toBeGreaterThan(SECONDS * 1_000)
    expect(soakProblems(report)).toEqual([])
  }, (SECONDS + 60) * 1_000)
})
