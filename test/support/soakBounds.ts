/**
 * The bounds a soak report must keep, shared by `test/soak.test.ts` and `npm run soak`. Each
 * one can fail: a second producer run in a quiet window, an error to a caller once every key has
 * a value, an older window or an invalidated value served, a stored `(bucket, fence)` going
 * down, or a heap that grows (after a full collection) faster than `HEAP_GROWTH_MB_PER_MIN`.
 */
import { MAX_HEAP_MB, MAX_RSS_MB } from "./bench.js"
import type { SoakReport } from "./soak.js"

/**
 * Heap growth after a full collection, in MB/min, that the soak calls a leak: the median slope
 * between samples 4 s apart (`heapGrowthMbPerMin`), which a leak raises throughout and a
 * one-time step does not. Measured without a leak: 0 to 1.5 (the heap grows about 0.5 MB/min
 * in V8's compiled code; a heap snapshot diff of one pod over 46 s, `heapSnapshot` in
 * `./pod.ts`, puts about 430 KB in optimized code, deopt data and relocation info, not in
 * objects the cache or the pod retains). Pods made to retain 35 KB/s (`--leak-kb-per-s=35`,
 * about 80 bytes per call at their ~450 calls/s) measured 3.0 in every pod over 40 s.
 */
export const HEAP_GROWTH_MB_PER_MIN = 2

/**
 * The least-squares slope's bound, a backstop: one-time steps of 1 to 2 MB (the first Redis error
 * of a pod source-maps its stack trace) put a 52 s run's slope at up to 3.5 MB/min without a leak.
 */
export const HEAP_SLOPE_MB_PER_MIN = 6

/** Windows of a key in which no run started, as a share of all (key, window) pairs: liveness. */
export const MAX_IDLE_SHARE = 0.1

export const soakProblems = (r: SoakReport): Array<string> => {
  const problems: Array<string> = []
  if (r.errors > 0) problems.push(`${r.errors} errors to callers once every key had a value (first: ${r.firstError})`)
  if (r.regressions > 0) problems.push(`${r.regressions} calls served an older window than their pod had served`)
  if (r.starts.faultFree.max > 1) problems.push(`${r.starts.faultFree.max} starts in one fault-free (key, window)`)
  for (const v of r.starts.violations) problems.push(`${v.key} window ${v.window}: ${v.starts} starts, at most ${v.allowed} allowed [${v.faults.join("; ")}]`)
  if (r.oldHitsAfterInvalidation.length > 0) problems.push(`invalidated values served as hits: ${r.oldHitsAfterInvalidation.join("; ")}`)
  if (r.storeDecreases.length > 0) problems.push(`stored (bucket, fence) went down: ${r.storeDecreases.join("; ")}`)
  if (r.fatal.length > 0) problems.push(`pods crashed: ${r.fatal.join("; ")}`)
  const idle = r.starts.all.distribution["0"] ?? 0
  if (idle > r.starts.all.pairs * MAX_IDLE_SHARE) problems.push(`${idle} of ${r.starts.all.pairs} (key, window) pairs had no run`)
  for (const [pod, m] of Object.entries(r.memory)) {
    if (m.maxRssMb >= MAX_RSS_MB) problems.push(`${pod}: RSS ${m.maxRssMb} MB ≥ ${MAX_RSS_MB} MB`)
    if (m.maxHeapMb >= MAX_HEAP_MB) problems.push(`${pod}: heap ${m.maxHeapMb} MB ≥ ${MAX_HEAP_MB} MB`)
    if (m.heapGrowthMbPerMin >= HEAP_GROWTH_MB_PER_MIN) problems.push(`${pod}: heap grows ${m.heapGrowthMbPerMin} MB/min (median slope) ≥ ${HEAP_GROWTH_MB_PER_MIN} MB/min`)
    if (m.heapSlopeMbPerMin >= HEAP_SLOPE_MB_PER_MIN) problems.push(`${pod}: heap slope ${m.heapSlopeMbPerMin} MB/min (least squares) ≥ ${HEAP_SLOPE_MB_PER_MIN} MB/min`)
    if (m.samples < 5) problems.push(`${pod}: only ${m.samples} memory samples`)
  }
  return problems
}
