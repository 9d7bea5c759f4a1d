/**
 * The fleet on a real redis-server: several processes, each with many concurrent callers, from a
 * cold start across many window rollovers. Producer starts are counted by this process from the
 * pods' IPC reports.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startFleet, type Fleet } from "./support/fleet.js"
import { startRedis, type Server } from "./support/services.js"

const PODS = 4
const CALLERS = 50
const WINDOW_MS = 1000
const PRODUCER_MS = 300
const LOAD_MS = 12_500

describe("fleet on redis-server", () => {
  let redis: Server
  let fleet: Fleet
  beforeAll(async () => {
    redis = await startRedis()
    fleet = await startFleet(PODS, {
      env: { REDIS_HOST: "127.0.0.1", REDIS_PORT: String(redis.port), TENANT: "fleet" },
      key: "aggregate",
      windowMs: WINDOW_MS,
      producerMs: PRODUCER_MS
    })
  })
  afterAll(async () => {
    await fleet?.stop()
    await redis?.stop()
  })

  it(`${PODS} processes x ${CALLERS} callers: exactly one producer start per window, cold start included`, async () => {
    const summaries = await fleet.load({ callers: CALLERS, durationMs: LOAD_MS, pauseMs: 20 })
    const starts = fleet.startsPerClaimedBucket()
    const buckets = [...starts.keys()].sort((a, b) => a - b)
    const first = buckets[0]!
    const last = buckets[buckets.length - 1]!

    // cold start plus at least ten rollovers, and no window without its one start
    expect(buckets.length).toBeGreaterThanOrEqual(11)
    expect(buckets).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i))
    for (const [bucket, count] of starts) {
        expect(count, `starts in window ${bucket}:\n${fleet.explain(bucket, WINDOW_MS)}`).toBe(1)
      }

    // every caller was answered, and no process ever went back to an older window
    for (const s of summaries) {
      expect(s.errors, s.firstError).toBe(0)
      expect(s.regressions).toBe(0)
      expect(s.calls).toBeGreaterThan(CALLERS * 10)
    }
    // every pod served the values of most windows: refreshes landed fleet-wide (on two loaded
    // cores a window's value can land so late that a pod goes from the one before to the one after)
    for (const s of summaries) {
      const served = Object.keys(s.servedBuckets).map(Number)
      expect(served.length).toBeGreaterThanOrEqual(Math.ceil(buckets.length * 0.8))
    }
  })
})
