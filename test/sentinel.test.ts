/**
 * lockstep on a primary + replica watched by three sentinels, through `REDIS_SENTINELS`: the
 * primary is SIGKILLed while the fleet is under load and a producer is running. Serving goes
 * on from the pods' last values while the sentinels promote the replica, the pods follow the new
 * primary, at most one window gets a second producer start, no pod ever serves an older window
 * than it already served, and no answer is more than one window old.
 */
import { Effect, Either, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Redis } from "../src/index.js"
import * as Nodes from "../src/internal/redis/addresses.js"
import { startSentinelSet, type SentinelSet } from "./support/cluster.js"
import { startFleet } from "./support/fleet.js"
import { freshTenant } from "./support/stores.js"

const PODS = 4
const CALLERS = 50
const WINDOW_MS = 5_000
const PRODUCER_MS = 300
/**
 * Pod settings for a Sentinel deployment. While Redis is unreachable a pod serves its last value
 * for `degradedAfter` past the window boundary before it produces on its own: longer than a
 * failover (here about 3.3 s from the kill to the first answered command: 500 ms down-after,
 * election and promotion, reconnect, breaker probe), so no pod produces on its own, and shorter
 * than the window, so the fleet takes the failover window over through the new primary. A short
 * lease bounds how long a lock written just before the failover can hold the fleet up.
 */
const SETTINGS = { degradedAfter: 4_500, lease: 2_000 }

describe("fleet on Sentinel, primary killed mid-run", () => {
  let set: SentinelSet
  beforeAll(async () => {
    set = await startSentinelSet({ downAfterMs: 500, failoverTimeoutMs: 3_000 })
  })
  afterAll(async () => {
    await set?.stop()
  })

  it(`${PODS} processes x ${CALLERS} callers: serving continues, at most one duplicate start, nothing goes backwards`, async () => {
    const tenant = freshTenant("sentinel")
    const fleet = await startFleet(PODS, {
      env: { REDIS_SENTINELS: set.sentinelList, REDIS_SENTINEL_NAME: set.name, TENANT: tenant },
      key: "aggregate",
      windowMs: WINDOW_MS,
      producerMs: PRODUCER_MS,
      settings: SETTINGS
    })
    try {
      // a cold start and at least a second of steady load, then the kill 150 ms into the next
      // window (its producer is running), then the failover window and two more
      const started = Date.now()
      const killAt = Math.ceil((started + 1_000) / WINDOW_MS) * WINDOW_MS + 150
      const killBucket = Math.floor(killAt / WINDOW_MS)
      const loading = fleet.load({ callers: CALLERS, durationMs: killAt - 150 + 3 * WINDOW_MS - 500 - started, pauseMs: 20 })
      await new Promise((r) => setTimeout(r, killAt - Date.now()))
      set.primary.process.kill("SIGKILL")
      const summaries = await loading

      // the sentinels promoted the replica
      expect(await set.currentPrimary()).toBe(set.replica.port)

      const starts = fleet.startsPerBucket()
      const buckets = [...starts.keys()].sort((a, b) => a - b)
      const timeline = fleet.messages
        .flatMap((m) => (m.type === "start" ? [`pod ${m.id} at ${m.at - killAt + 150} ms`] : []))
        .join(", ")

      // one start in every window, two at most in the one the primary died in
      const first = buckets[0]!
      const last = buckets[buckets.length - 1]!
      expect(last, `starts (from the failover window's start): ${timeline}`).toBe(killBucket + 2)
      expect(buckets, timeline).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i))
      for (const b of buckets) {
        expect(starts.get(b), `starts in window ${b - killBucket} (0 = failover): ${timeline}`)
          .toBeLessThanOrEqual(b === killBucket ? 2 : 1)
      }

      // every caller answered, no pod went back to an older window, and no answer was more than
      // one window old (the failover window is served the window before's value until it has its own)
      for (const s of summaries) {
        expect(s.errors, s.firstError).toBe(0)
        expect(s.regressions).toBe(0)
        expect(s.maxWindowsBehind, `pod ${s.id}: windows behind`).toBeLessThanOrEqual(1)
        expect(s.calls).toBeGreaterThan(CALLERS * 5)
      }

      // the new primary holds the latest window's value, read through the Sentinel layer
      const stored = await Effect.runPromise(
        Effect.flatMap(Redis.Redis, (store) => store.get("aggregate")).pipe(
          Effect.provide(Redis.layer({
            tenant,
            sentinel: { sentinels: Either.getOrThrow(Nodes.parseAddresses(set.sentinelList)), name: set.name }
          })),
          Effect.scoped
        )
      )
      // (the last window's producer may still be running)
      expect(Option.getOrThrow(stored.stored).bucket).toBeGreaterThanOrEqual(last - 1)
    } finally {
      await fleet.stop()
    }
  })
})
