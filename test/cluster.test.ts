/**
 * lockstep on a 3-primary Redis Cluster on loopback: the store contract, the key layout (one
 * slot per cache key, cache keys spread over every primary) and the fleet (one producer start
 * per window) through `REDIS_CLUSTER_NODES`.
 */
import { Effect, TestServices } from "effect"
import { Cluster, Redis as IORedis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Redis } from "../src/index.js"
import * as Keys from "../src/internal/keys.js"
import { command, startCluster, type RedisCluster } from "./support/cluster.js"
import { contract } from "./support/contract.js"
import { expectOneStartPerWindow } from "./support/faults.js"
import { startFleet } from "./support/fleet.js"
import { freshTenant } from "./support/stores.js"

let cluster: RedisCluster
beforeAll(async () => {
  cluster = await startCluster(3)
})
afterAll(async () => {
  await cluster?.stop()
})

const addresses = () => cluster.ports.map((port) => ({ host: "127.0.0.1", port }))

/**
 * A plain cluster client standing in for the contract's raw `IORedis`: the commands the contract
 * plants data with are routed by key, and `KEYS` (which a cluster client sends to one node) asks
 * every primary.
 */
const rawCluster = (): IORedis => {
  const client = new Cluster(addresses())
  const keys = async (pattern: string) => (await Promise.all(client.nodes("master").map((n) => n.keys(pattern)))).flat()
  return Object.assign(client, { keys }) as unknown as IORedis
}

contract({
  name: "cluster",
  layer: (tenant) => Redis.layer({ tenant, cluster: addresses() }),
  advance: (ms) => TestServices.provideLive(Effect.sleep(ms)),
  settle: (done) =>
    TestServices.provideLive(Effect.gen(function*() {
      for (let i = 0; i < 200 && !done(); i++) yield* Effect.sleep(10)
    })),
  raw: rawCluster,
  lose: (tenant) =>
    Effect.promise(async () => {
      const client = new Cluster(addresses())
      try {
        // the primaries are known once the client has the slots
        await new Promise<void>((resolve) => client.once("ready", () => resolve()))
        for (const node of client.nodes("master")) {
          const names = await node.keys(`${tenant}:*`)
          for (const name of names) await node.del(name)
        }
      } finally {
        client.disconnect()
      }
    })
})

/** `[start, end, port]` for every slot range of the cluster's primaries. */
const slotOwners = async (): Promise<ReadonlyArray<readonly [number, number, number]>> => {
  const slots = (await command(cluster.ports[0]!, "CLUSTER", "SLOTS")) as Array<[number, number, [string, number, ...Array<unknown>]]>
  return slots.map(([start, end, primary]) => [start, end, Number(primary[1])] as const)
}

describe("key layout on a cluster", () => {
  it("all the Redis keys of one cache key (value, lock, fence, …) hash to one slot, whatever the key's text", async () => {
    const port = cluster.ports[0]!
    for (const key of ["page:dashboard", "k}", "{k", "a{b}c", "ключ", "x".repeat(200)]) {
      const k = Keys.make(Keys.tenantPrefix("tenant:with{braces}"), key)
      const names = [k.value, k.lock, k.fence, k.failures, k.mark]
      const slots = await Promise.all(names.map((name) => command(port, "CLUSTER", "KEYSLOT", name)))
      expect(new Set(slots).size, key).toBe(1)
    }
  })

  it("cache keys spread over all three primaries, and their records sit on the slot's owner", async () => {
    const tenant = freshTenant("spread")
    const names = Array.from({ length: 90 }, (_, i) => `report:${i}`)
    await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Redis.Redis
        yield* Effect.forEach(names, (name) =>
          Effect.gen(function*() {
            const claim = yield* store.claim(name, { windowMs: 60_000, leaseMs: 1_000, token: "t", force: false, retainMs: 0 })
            if (claim._tag !== "Acquired") return yield* Effect.dieMessage(`expected Acquired, got ${claim._tag}`)
            const commit = yield* store.commit(name, {
              data: "1",
              bucket: claim.bucket,
              fence: claim.fence,
              windowMs: 60_000,
              computedAt: claim.now
            }, "t", { retainMs: 0 })
            expect(commit._tag).toBe("Committed")
          }), { concurrency: 10, discard: true })
      }).pipe(Effect.provide(Redis.layer({ tenant, cluster: addresses() })), Effect.scoped)
    )
    const owners = await slotOwners()
    const perNode = new Map<number, number>()
    for (const port of cluster.ports) {
      const held = (await command(port, "KEYS", `${tenant}:*:v`)) as Array<string>
      perNode.set(port, held.length)
      for (const name of held) {
        const slot = Number(await command(port, "CLUSTER", "KEYSLOT", name))
        expect(owners.find(([start, end]) => slot >= start && slot <= end)?.[2]).toBe(port)
      }
    }
    expect([...perNode.values()].reduce((a, b) => a + b, 0)).toBe(names.length)
    // about 30 each; 15 is more than six standard deviations below
    for (const [port, n] of perNode) expect(n, `value records on ${port}`).toBeGreaterThanOrEqual(15)
  })
})

const PODS = 4
const CALLERS = 50
const WINDOW_MS = 1000
const LOAD_MS = 8_500

describe("fleet on a Redis Cluster", () => {
  it(`${PODS} processes x ${CALLERS} callers through REDIS_CLUSTER_NODES: exactly one producer start per window`, async () => {
    const fleet = await startFleet(PODS, {
      env: { REDIS_CLUSTER_NODES: cluster.nodeList, TENANT: freshTenant("fleet") },
      key: "aggregate",
      windowMs: WINDOW_MS,
      producerMs: 300
    })
    try {
      const summaries = await fleet.load({ callers: CALLERS, durationMs: LOAD_MS, pauseMs: 20 })
      expectOneStartPerWindow(fleet, summaries, { windowMs: WINDOW_MS, minWindows: 8, minCallsPerPod: CALLERS * 5 })
    } finally {
      await fleet.stop()
    }
  })
})
