/**
 * What every implementation caches: a dashboard-sized aggregate (about 1.6 KB of JSON), its
 * `Schema` for lockstep, and producers that sleep like a database query and count their starts.
 */
import * as Schema from "effect/Schema"

export const Dashboard = Schema.Struct({
  key: Schema.String,
  volume: Schema.Number,
  accounts: Schema.Number,
  gini: Schema.Number,
  top1: Schema.Number,
  top10: Schema.Number,
  series: Schema.Array(Schema.Struct({ day: Schema.String, volume: Schema.Number, trades: Schema.Number }))
})
export type Dashboard = typeof Dashboard.Type

export const dashboard = (key: string, seed = 1): Dashboard => ({
  key,
  volume: 1_234_567_890 + seed,
  accounts: 48_213,
  gini: 0.7312,
  top1: 0.2211,
  top10: 0.6034,
  series: Array.from({ length: 30 }, (_, d) => ({
    day: `2025-06-${String(d + 1).padStart(2, "0")}`,
    volume: 41_000_000 + ((d * 7_919 + seed) % 5_000_000),
    trades: 12_000 + ((d * 104_729 + seed) % 3_000)
  }))
})

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Lets the event loop run I/O and timers, as between two network requests. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * A producer that takes `ms` (0: resolves at once) and reports each start, so that runs can be
 * counted from outside the cache.
 */
export const producer = (ms: number, onStart: (key: string, value: Dashboard) => void = () => {}) => {
  let seed = 0
  return (key: string): Promise<Dashboard> => {
    const value = dashboard(key, ++seed)
    onStart(key, value)
    return ms <= 0 ? Promise.resolve(value) : sleep(ms).then(() => value)
  }
}

export const keysOf = (prefix: string, n: number): Array<string> => Array.from({ length: n }, (_, i) => `${prefix}:${i}`)

/**
 * Waits until the event loop is idle (a 20 ms sleep overshoots by < 5 ms, five times running):
 * work that a warm-up set going (commit notices, bus messages, refreshes) ends before the
 * measured rounds, rather than landing in the first of them. Gives up after `maxMs`.
 */
export const settle = async (maxMs = 5_000): Promise<void> => {
  const end = performance.now() + maxMs
  let quiet = 0
  while (quiet < 5 && performance.now() < end) {
    const t0 = performance.now()
    await sleep(20)
    quiet = performance.now() - t0 < 25 ? quiet + 1 : 0
  }
}

/**
 * lockstep's answers by kind so far in this process (unnamed loaders): a hit section reads them
 * around its measured rounds, so that answers that were not L1 hits (an entry the process no
 * longer trusts answers stale and rereads the store) are counted in the run, not guessed at.
 */
export const answers = async (): Promise<Record<"l1" | "redis" | "stale" | "cold" | "error", number>> => {
  const [{ Effect, Metric }, { Metrics }] = await Promise.all([import("effect"), import("../src/index.js")])
  const count = (m: typeof Metrics.requestsL1) => Effect.runSync(Metric.value(m)).count
  return {
    l1: count(Metrics.requestsL1),
    redis: count(Metrics.requestsRedis),
    stale: count(Metrics.requestsStale),
    cold: count(Metrics.requestsCold),
    error: count(Metrics.requestsError)
  }
}

/** What changed between two `answers()`, as a note. */
export const answersNote = (label: string, before: Awaited<ReturnType<typeof answers>>, after: Awaited<ReturnType<typeof answers>>): string => {
  const d = (k: keyof typeof before) => after[k] - before[k]
  const other = d("redis") + d("stale") + d("cold") + d("error")
  return `${label}: lockstep answered ${d("l1")} L1 hits in the measured rounds and ${other} other answers` +
    (other === 0 ? "." : ` (store reads ${d("redis")}, stale ${d("stale")}, cold ${d("cold")}, errors ${d("error")}): entries it no longer trusted, most often because its notice connection counted as down (a ping unanswered while the event loop was busy), answer stale and reread the store.`)
}
