/**
 * The fleet bus on real servers, pods as processes: invalidation and tags reach every pod within
 * a round trip, one recompute runs fleet-wide, and no pod answers a hit with a value computed
 * before an invalidation once the invalidation has returned (plus the notice's delivery, which
 * is measured). Also: subscriber connections killed around an invalidation, a notice lost while
 * a pod is paused, an invalidation racing a running lookup, and Cluster and Sentinel.
 *
 * Values carry when their lookup started (the machine's clock, shared by every pod and the
 * server), which tells the values computed before an invalidation from those after it.
 */
import { Redis as IORedis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { startCluster, startSentinelSet } from "./support/cluster.js"
import { type Fleet, type Loaded, sleep, startFleet } from "./support/fleet.js"
import { startRedis, type Server } from "./support/services.js"

const PODS = 4
const CALLERS = 20
/** Long enough that no window ends during a scenario: every recompute here is an invalidation's. */
const WINDOW_MS = 120_000
const PRODUCER_MS = 200
/** How soon after `invalidate` returned a pod must stop answering old hits (delivery on loopback). */
const DELIVERY_MS = 100

const note = (scenario: string, values: Record<string, unknown>) => console.log(`[bus] ${scenario}: ${JSON.stringify(values)}`)

/** `<key>|<startedAt>` → startedAt. */
const startedAtOf = (value: string) => Number(value.slice(value.lastIndexOf("|") + 1))
const keyOf = (value: string) => value.slice(0, value.lastIndexOf("|"))

/**
 * For one pod: the last time it answered a hit with a value whose lookup started before `before`
 * (`asked`: when the call that got it was made). The pod must have answered one: a pod that never
 * answered the old value as a hit proves nothing about when it stopped.
 */
const lastOldHit = (s: Loaded, before: number, options: { readonly asked?: boolean } = {}) => {
  const times = Object.entries(options.asked ? s.lastHitAsked : s.lastHit).filter(([v]) => startedAtOf(v) < before).map(([, at]) => at)
  expect(times.length, `pod ${s.id} answered a value from before the invalidation as a hit`).toBeGreaterThan(0)
  return Math.max(...times)
}

/** For one pod: when it first answered a value whose lookup started at or after `after`. */
const firstNew = (s: Loaded, after: number, key?: string) =>
  Math.min(Infinity, ...Object.entries(s.firstServed).filter(([v]) => startedAtOf(v) >= after && (key === undefined || keyOf(v) === key)).map(([, at]) => at))

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

/**
 * Warm the key, then one pod invalidates while every pod is under load. Asserts the bus's
 * promises and reports delivery: how long after `invalidate` returned each pod last answered the
 * old value as a hit, and first answered the new one.
 */
const INVALIDATOR = 1

const invalidationScenario = async (fleet: Fleet, label: string) => {
  await fleet.load({ callers: CALLERS, durationMs: 1_000, pauseMs: 10 })
  const loading = fleet.load({ callers: CALLERS, durationMs: 3_000, pauseMs: 10 })
  await sleep(1_000)
  const inv = await fleet.invalidate(INVALIDATOR, { key: "agg" })
  const summaries = await loading
  expect(inv.ok, inv.error).toBe(true)
  expect(summaries.map((s) => s.id).sort()).toEqual(fleet.pods.map((p) => p.id))
  const starts = fleet.of("start", inv.startedWallAt).length
  const oldHits = summaries.map((s) => lastOldHit(s, inv.startedWallAt) - inv.returnedWallAt)
  const newServed = summaries.map((s) => firstNew(s, inv.startedWallAt) - inv.returnedWallAt)
  note(label, {
    invalidateMs: inv.returnedWallAt - inv.startedWallAt,
    startsAfter: starts,
    lastOldHitAfterReturnMs: oldHits,
    invalidatorLastOldHitAskedAfterReturnMs: lastOldHit(summaries.find((s) => s.id === INVALIDATOR)!, inv.startedWallAt, { asked: true }) - inv.returnedWallAt,
    firstNewValueAfterReturnMs: newServed,
    newValueP50Ms: percentile(newServed, 50),
    newValueMaxMs: Math.max(...newServed)
  })
  for (const s of summaries) expect(s.errors, s.firstError).toBe(0)
  expect(starts).toBe(1) // one recompute, fleet-wide
  for (const x of oldHits) expect(x).toBeLessThanOrEqual(DELIVERY_MS)
  // the invalidating process applied it before the call returned: no call it took after that
  // answered the old value as a hit, whatever the notice's delivery
  const invalidator = summaries.find((s) => s.id === INVALIDATOR)!
  expect(lastOldHit(invalidator, inv.startedWallAt, { asked: true }), "the invalidating pod's last old hit, asked at").toBeLessThanOrEqual(inv.returnedWallAt)
  // every pod serves the new value, at most a lookup and a notice after the invalidation
  for (const x of newServed) expect(x).toBeLessThan(PRODUCER_MS + 500)
  return { inv, summaries }
}

const standalone = () => {
  let redis: Server
  let fleet: Fleet | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterEach(async () => {
    await fleet?.stop()
    fleet = undefined
  })
  afterAll(async () => {
    await redis?.stop()
  })
  let tenants = 0
  const start = async (n = PODS, producerMs = PRODUCER_MS) => {
    fleet = await startFleet(n, {
      env: { REDIS_HOST: "127.0.0.1", REDIS_PORT: String(redis.port), TENANT: `bus-${process.pid}-${++tenants}` },
      key: "agg",
      windowMs: WINDOW_MS,
      producerMs,
      tags: ["aggregates"],
      reportBusyClaims: false,
      settings: { lease: 2_000 }
    })
    return fleet
  }
  return { start, redis: () => redis }
}

describe("fleet bus on redis-server", () => {
  const env = standalone()

  it("one pod invalidates: no pod answers a hit of the old value once it returned, one recompute fleet-wide", async () => {
    await invalidationScenario(await env.start(), "invalidate")
  })

  it("a tag reaches every key it was given to, on every pod: one recompute per key", async () => {
    const fleet = await env.start()
    await fleet.load({ callers: CALLERS, durationMs: 1_000, pauseMs: 10, keys: 5 })
    const loading = fleet.load({ callers: CALLERS, durationMs: 3_000, pauseMs: 10, keys: 5 })
    await sleep(1_000)
    const inv = await fleet.invalidate(2, { tag: "aggregates" })
    const summaries = await loading
    expect(inv).toMatchObject({ ok: true, count: 5 })
    const starts = fleet.of("start", inv.startedWallAt)
    const perKey = new Map<string, number>()
    for (const m of starts) perKey.set(m.key, (perKey.get(m.key) ?? 0) + 1)
    const oldHits = summaries.map((s) => lastOldHit(s, inv.startedWallAt) - inv.returnedWallAt)
    note("tag", { invalidateMs: inv.returnedWallAt - inv.startedWallAt, startsPerKey: Object.fromEntries(perKey), lastOldHitAfterReturnMs: oldHits })
    expect([...perKey.values()]).toEqual([1, 1, 1, 1, 1])
    for (const s of summaries) expect(s.errors, s.firstError).toBe(0)
    for (const x of oldHits) expect(x).toBeLessThanOrEqual(DELIVERY_MS)
  })

  it("subscriber connections killed (CLIENT KILL TYPE pubsub) just before an invalidation: no old hit, pods resubscribe", async () => {
    const fleet = await env.start()
    const admin = new IORedis({ host: "127.0.0.1", port: env.redis().port })
    try {
      await fleet.load({ callers: CALLERS, durationMs: 1_000, pauseMs: 10 })
      const loading = fleet.load({ callers: CALLERS, durationMs: 3_500, pauseMs: 10 })
      await sleep(1_000)
      const killedAt = Date.now()
      const killed = await admin.call("CLIENT", "KILL", "TYPE", "pubsub")
      const inv = await fleet.invalidate(0, { key: "agg" })
      // how long until every pod is subscribed again
      let back = Infinity
      for (let i = 0; i < 100; i++) {
        const list = String(await admin.call("CLIENT", "LIST", "TYPE", "pubsub"))
        if (list.split("\n").filter((l) => l.includes("name=pod-")).length === PODS) {
          back = Date.now() - killedAt
          break
        }
        await sleep(20)
      }
      const summaries = await loading
      const stats = await fleet.stats()
      const oldHits = summaries.map((s) => lastOldHit(s, inv.startedWallAt) - inv.returnedWallAt)
      note("pubsub-killed", {
        killed,
        resubscribedAfterMs: back,
        startsAfter: fleet.of("start", inv.startedWallAt).length,
        lastOldHitAfterReturnMs: oldHits,
        resyncs: stats.map((s) => s.metrics["lockstep_notice_resyncs_total"] ?? 0)
      })
      expect(Number(killed)).toBe(PODS)
      expect(back).toBeLessThan(2_000)
      // the pods heard the connection drop before the invalidation: no hit was trusted since
      for (const x of oldHits) expect(x).toBeLessThanOrEqual(0)
      for (const s of summaries) expect(s.errors, s.firstError).toBe(0)
      expect(fleet.of("start", inv.startedWallAt).length).toBe(1)
      for (const s of stats) expect(s.metrics["lockstep_notice_resyncs_total"]).toBeGreaterThanOrEqual(2)
    } finally {
      admin.disconnect()
    }
  })

  it("a notice lost while a pod is paused: once resumed, it stops answering the old value within its first turn", async () => {
    const fleet = await env.start()
    const admin = new IORedis({ host: "127.0.0.1", port: env.redis().port })
    try {
      await fleet.load({ callers: CALLERS, durationMs: 1_000, pauseMs: 10 })
      const loading = fleet.load({ callers: CALLERS, durationMs: 3_500, pauseMs: 10 })
      await sleep(800)
      const paused = fleet.pods[2]!
      paused.signal("SIGSTOP")
      // its subscriber connection goes while it sleeps: the invalidation's notice is lost to it
      const list = String(await admin.call("CLIENT", "LIST", "TYPE", "pubsub"))
      const id = /id=(\d+) [^\n]* name=pod-2 /.exec(list)?.[1]
      expect(id).toBeDefined()
      await admin.call("CLIENT", "KILL", "ID", id!)
      const inv = await fleet.invalidate(0, { key: "agg" })
      await sleep(500)
      const resumedAt = Date.now()
      paused.signal("SIGCONT")
      const summaries = await loading
      const of = (pod: number) => summaries.find((s) => s.id === pod)!
      const others = [0, 1, 3].map((p) => lastOldHit(of(p), inv.startedWallAt) - inv.returnedWallAt)
      const pausedOld = lastOldHit(of(2), inv.startedWallAt) - resumedAt
      note("lost-while-paused", { othersLastOldHitAfterReturnMs: others, pausedLastOldHitAfterResumeMs: pausedOld, startsAfter: fleet.of("start", inv.startedWallAt).length })
      for (const x of others) expect(x).toBeLessThanOrEqual(DELIVERY_MS)
      // on resuming, its first turn may answer what it held before it hears the connection drop
      expect(pausedOld).toBeLessThan(100)
      for (const s of summaries) expect(s.errors, s.firstError).toBe(0)
      expect(fleet.of("start", inv.startedWallAt).length).toBe(1)
    } finally {
      admin.disconnect()
    }
  })

  it("an invalidation racing a running lookup: its value is stored but never a hit; one more recompute", async () => {
    const fleet = await env.start(PODS, 1_500)
    const loading = fleet.load({ callers: CALLERS, durationMs: 5_000, pauseMs: 10 })
    const first = await fleet.next("start", { timeoutMs: 5_000, since: 0 })
    await sleep(500)
    const inv = await fleet.invalidate(3, { key: "agg" })
    const summaries = await loading
    const starts = fleet.of("start", 0)
    // the racing run's value: answered (stale) to the cold callers, never a hit anywhere
    const racingHits = summaries.map((s) => s.lastHit[`agg|${first.wallAt}`])
    note("racing", { starts: starts.map((m) => m.wallAt - first.wallAt), invalidatedAtMs: inv.startedWallAt - first.wallAt, racingHits })
    expect(starts.length).toBe(2)
    expect(starts[1]!.wallAt).toBeGreaterThanOrEqual(first.wallAt + 1_500)
    for (const h of racingHits) expect(h).toBeUndefined()
    for (const s of summaries) expect(s.errors, s.firstError).toBe(0)
  })
})

describe("fleet bus on a Redis Cluster", () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>
  let fleet: Fleet | undefined
  beforeAll(async () => {
    cluster = await startCluster(3)
  })
  afterAll(async () => {
    await fleet?.stop()
    await cluster?.stop()
  })
  it("invalidation reaches every pod through any node", async () => {
    fleet = await startFleet(PODS, {
      env: { REDIS_CLUSTER_NODES: cluster.nodeList, TENANT: `bus-cluster-${process.pid}` },
      key: "agg",
      windowMs: WINDOW_MS,
      producerMs: PRODUCER_MS,
      reportBusyClaims: false,
      settings: { lease: 2_000 }
    })
    await invalidationScenario(fleet, "invalidate-cluster")
  })
})

describe("fleet bus under Sentinel", () => {
  let set: Awaited<ReturnType<typeof startSentinelSet>>
  let fleet: Fleet | undefined
  beforeAll(async () => {
    set = await startSentinelSet({ downAfterMs: 500, failoverTimeoutMs: 3_000 })
  })
  afterAll(async () => {
    await fleet?.stop()
    await set?.stop()
  })
  it("invalidation reaches every pod, before and after a failover", async () => {
    fleet = await startFleet(PODS, {
      env: { REDIS_SENTINELS: set.sentinelList, REDIS_SENTINEL_NAME: set.name, TENANT: `bus-sentinel-${process.pid}` },
      key: "agg",
      windowMs: WINDOW_MS,
      producerMs: PRODUCER_MS,
      reportBusyClaims: false,
      settings: { lease: 2_000, degradedAfter: 4_500 }
    })
    await invalidationScenario(fleet, "invalidate-sentinel")
    const before = await set.currentPrimary()
    set.primary.process.kill("SIGKILL")
    const deadline = Date.now() + 15_000
    while ((await set.currentPrimary().catch(() => before)) === before && Date.now() < deadline) await sleep(100)
    expect(await set.currentPrimary()).not.toBe(before)
    // the pods' subscriber connections follow the primary through the sentinels
    await fleet.load({ callers: 5, durationMs: 3_000, pauseMs: 20 })
    await invalidationScenario(fleet, "invalidate-sentinel-after-failover")
  })
})
