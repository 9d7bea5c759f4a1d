/**
 * The explorer over real Redis, in real time:
 * - a crawler walking ids (valid ones, thousands that do not exist, and ids up to 10⁶) on a
 *   redis-server of its own: only valid ids create records, `DBSIZE` and `used_memory` stay
 *   bounded by the number of entities, and `retain` removes the records again;
 * - the cache inspector on a single Redis and on a 3-primary Cluster: `SCAN` in bounded pages
 *   lists every key of the tenant exactly once, with its fields; an admin invalidation shows.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, inject } from "vitest"
import type * as Inspector from "../../app/Inspector.js"
import * as LedgerMemory from "../../app/Ledger/Memory.js"
import * as Synthetic from "../../app/Synthetic.js"
import { Redis } from "../../src/index.js"
import { command, type RedisCluster, startCluster } from "../support/cluster.js"
import { type RedisServer, startRedis } from "../support/services.js"
import { freshTenant } from "../support/stores.js"
import { counting, get, getJson, post, server, switchable } from "./support.js"

const token = "redis-test-admin-token-77b1"

/** Every key the inspector lists, following `next`, with the size of each page. */
const walkInspector = (count: number) =>
  Effect.gen(function*() {
    const keys: Array<Inspector.KeyRow> = []
    const sizes: Array<number> = []
    let next: string | null = null
    let pages = 0
    do {
      const r: { status: number; json: any } = yield* getJson(`/api/cache?count=${count}${next === null ? "" : `&cursor=${encodeURIComponent(next)}`}`)
      expect(r.status).toBe(200)
      const page = r.json as Inspector.InspectorPage
      keys.push(...page.keys)
      sizes.push(page.keys.length)
      next = page.next
      pages++
    } while (next !== null && pages < 1_000)
    expect(next).toBeNull()
    return { keys, sizes, pages }
  })

const sleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

describe("a crawler walking ids, on a redis-server of its own", () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  // 6 000 rows: 40 accounts, 3 shops, 36 items, so the valid ids are walked well within DRILL_RETAIN
  const data = Synthetic.generate({ seed: 21, rows: 6_000, days: 30, end: Date.parse("2024-06-01T00:00:00Z") })
  const retainMs = 5_000
  const ledger = counting(LedgerMemory.make(data))

  it.live("only ids of the directory create records; DBSIZE and memory stay bounded; retain removes them", () => {
    const families = [
      { base: "/api/market/items", walk: 200, valid: data.items.length, lookup: "itemInfo", batch: "itemsMany", prefix: "explorer:item:v1:" },
      { base: "/api/chestshop/shops", walk: 200, valid: data.shops.length, lookup: "shopInfo", batch: "shopsMany", prefix: "explorer:shop:v1:" },
      { base: "/api/accounts", walk: 500, valid: data.accounts.length, lookup: "accountInfo", batch: "accountsMany", prefix: "explorer:account:v1:" }
    ]
    // ids far away too, up to 10⁶ (a fixed pseudo-random sample), and things that are not ids
    let seed = 7
    const far = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return 1_000 + (seed % 999_000)
    }
    const malformed = ["0", "007", "-1", "1e3", "%27%3B--", "1.5", "4294967296", "99999999999999999999"]
    return Effect.gen(function*() {
      const dbsize = () => Effect.promise(async () => Number(await command(redis.port, "DBSIZE")))
      const usedMemory = () =>
        Effect.promise(async () => Number(/used_memory:(\d+)/.exec(String(await command(redis.port, "INFO", "memory")))![1]))
      const before = { keys: yield* dbsize(), memory: yield* usedMemory() }
      expect(before.keys).toBe(0)

      // the ids that do not exist first, then the valid ones: the records must all still be
      // there (within DRILL_RETAIN) when they are counted, however long the walk took
      const invalid = families.flatMap((f) => [
        ...Array.from({ length: f.walk - f.valid }, (_, i) => `${f.base}/${f.valid + i + 1}`),
        ...Array.from({ length: 100 }, () => `${f.base}/${far()}`),
        `${f.base}/1000000`,
        ...malformed.map((id) => `${f.base}/${id}`)
      ])
      const valid = families.flatMap((f) => Array.from({ length: f.valid }, (_, i) => `${f.base}/${i + 1}`))
      const paths = [...invalid, ...valid]
      const walk = (list: ReadonlyArray<string>) => Effect.forEach(list, (path) => Effect.map(get(path), (r) => r.status), { concurrency: 8 })
      const started = Date.now()
      const misses = yield* walk(invalid)
      expect(misses.filter((s) => s !== 404)).toEqual([])
      // thousands of ids later, the store holds the directory (a record and a fence per kind, and
      // its tag set) and nothing else
      const between = { keys: yield* dbsize(), memory: yield* usedMemory() }
      expect(between.keys).toBe(2 * 3 + 1)
      for (const f of families) expect((ledger.byName.get(f.lookup) ?? 0) + (ledger.byName.get(f.batch) ?? 0), f.lookup).toBe(0)
      const validStarted = Date.now()
      const statuses = [...misses, ...(yield* walk(valid))]
      const walkMs = Date.now() - started
      const validDone = Date.now()
      // every record is younger than DRILL_RETAIN when counted
      expect(validDone - validStarted, "the valid ids took longer than DRILL_RETAIN to walk").toBeLessThan(retainMs - 1_000)
      const validIds = families.reduce((n, f) => n + f.valid, 0)
      expect(statuses.filter((s) => s === 200)).toHaveLength(validIds)
      expect(statuses.filter((s) => s !== 200 && s !== 404)).toEqual([])
      yield* sleep(200)

      // one lookup per valid id, none for the others; an account page also reads its
      // counterparties' pages (a batch), which the 1-second window recomputes as the walk goes on
      for (const f of families.slice(0, 2)) expect(ledger.byName.get(f.lookup), f.lookup).toBe(f.valid)
      const accounts = families[2]!
      expect(ledger.byName.get(accounts.lookup)).toBeLessThanOrEqual(accounts.valid)
      expect((ledger.byName.get(accounts.lookup) ?? 0) + (ledger.idsByName.get(accounts.batch) ?? 0)).toBeGreaterThanOrEqual(accounts.valid)
      const after = { keys: yield* dbsize(), memory: yield* usedMemory() }
      const { keys: listed } = yield* walkInspector(200)
      for (const f of families) expect(listed.filter((k) => k.key.startsWith(f.prefix)), f.prefix).toHaveLength(f.valid)
      expect(listed.filter((k) => k.key.startsWith("explorer:directory:"))).toHaveLength(3)
      expect(listed).toHaveLength(validIds + 3)
      // a record and a fence counter per key, and one set per tag (drilldown, items, shops,
      // accounts, directory): nothing grows with the ids that do not exist
      expect(after.keys).toBe(2 * (validIds + 3) + 5)
      const payload = listed.reduce((n, k) => n + (k.size ?? 0), 0)
      // and the memory they take is about what they hold (the clients' own buffers came with the directory)
      expect(after.memory - between.memory).toBeLessThan(2 * payload + 2_048 * (after.keys - between.keys))
      console.log(
        `crawler: ${paths.length} requests (${validIds} valid ids, walked in ${validDone - validStarted} ms) in ${walkMs} ms; DBSIZE ${before.keys} -> ${between.keys} after the ` +
          `${invalid.length} unknown or malformed ids -> ${after.keys} after the valid ones; used_memory ${before.memory} -> ${between.memory} -> ` +
          `${after.memory} bytes (+${after.memory - before.memory}; stored payloads ${payload} bytes)`
      )

      // nobody reads them: past DRILL_RETAIN the drill-down records and their tag sets are gone
      yield* sleep(validDone + retainMs + 300 - Date.now())
      const expired = { keys: yield* dbsize(), memory: yield* usedMemory() }
      const left = (yield* walkInspector(200)).keys.map((k) => k.key).sort()
      expect(left).toEqual(["explorer:directory:account:v1", "explorer:directory:item:v1", "explorer:directory:shop:v1"])
      expect(expired.keys).toBe(2 * 3 + 1) // the directory's records and fences, and its tag set
      expect(expired.memory).toBeLessThan(after.memory)
      console.log(`crawler: after retain, DBSIZE ${expired.keys}, used_memory ${expired.memory} bytes`)
    }).pipe(
      Effect.provide(
        Layer.unwrapEffect(Effect.sync(() =>
          server(ledger.layer, { WINDOW: "1 second", DRILL_RETAIN: `${retainMs} millis` }, {
            store: Redis.layer({ redis: { host: "127.0.0.1", port: redis.port }, tenant: "crawler" })
          })
        ))
      )
    )
  }, 60_000)
})

/** The inspector's checks on one store: every key once, bounded pages, fields, an admin action. */
const inspectorOn = (store: () => Layer.Layer<Redis.Redis, unknown>) =>
  Effect.gen(function*() {
    const paths = ["/api/dashboard", "/api/market", "/api/market/items/1", "/api/market/items/2", "/api/market/items/3", "/api/chestshop/shops/1", "/api/chestshop/shops/2"]
    for (const id of [1, 2, 3, 4, 5]) paths.push(`/api/accounts/${id}`)
    for (const path of paths) expect((yield* get(path)).status, path).toBe(200)
    yield* get("/api/market/items/1") // a hit, counted below (the market's row read it first, a miss, then its page, a hit)
    const expected = [
      "explorer:dashboard:v2",
      "explorer:market:v4",
      ...[1, 2, 3].map((id) => `explorer:item:v1:${id}`),
      ...[1, 2].map((id) => `explorer:shop:v1:${id}`),
      ...[1, 2, 3, 4, 5].map((id) => `explorer:account:v1:${id}`),
      ...["account", "item", "shop"].map((kind) => `explorer:directory:${kind}:v1`)
    ].sort()
    const { keys, sizes, pages } = yield* walkInspector(3)
    expect(keys.map((k) => k.key).sort()).toEqual(expected)
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(expected.length / 3))
    // SCAN's COUNT is a hint: a page holds about that many keys, never the whole keyspace at once
    for (const size of sizes) expect(size).toBeLessThanOrEqual(3 * 3)
    const item = keys.find((k) => k.key === "explorer:item:v1:1")!
    expect(item).toMatchObject({ loader: "item", state: "fresh", windowMs: 60_000, tags: ["drilldown", "items"], lock: null, backoffLeftMs: null, served: { hit: 2, stale: 0, miss: 1 } })
    expect(item.fence).toBeGreaterThan(0)
    expect(item.durationMs).toBeGreaterThanOrEqual(0)
    expect(item.ageMs).toBeGreaterThanOrEqual(0)
    expect(item.computedAt! + item.ageMs!).toBeGreaterThan(Date.now() - 60_000)

    const done = yield* post("/api/cache/invalidate", { key: "explorer:item:v1:1" }, { authorization: `Bearer ${token}` })
    expect(done.status).toBe(200)
    const again = (yield* walkInspector(3)).keys.find((k) => k.key === "explorer:item:v1:1")!
    expect(again.state).toBe("invalidated")
    expect(again.invalidatedThrough).toBe(item.fence) // through the value's fence
    expect((yield* get("/api/market/items/1")).headers["x-cache"]).toBe("stale")
  }).pipe(
    Effect.provide(
      Layer.unwrapEffect(Effect.sync(() => server(switchable().layer, { WINDOW: "1 minute", ADMIN_TOKEN: token }, { store: store() })))
    )
  )

describe("the cache inspector on Redis", () => {
  it.live("a single Redis: every key of the tenant once, in bounded SCAN pages", () => {
    const port = inject("redisPort")
    return inspectorOn(() => Redis.layer({ redis: { host: "127.0.0.1", port }, tenant: freshTenant("explorer-inspector") }))
  }, 30_000)

  describe("a 3-primary Cluster", () => {
    let cluster: RedisCluster
    beforeAll(async () => {
      cluster = await startCluster(3)
    }, 60_000)
    afterAll(async () => {
      await cluster?.stop()
    })

    it.live("every key of the tenant once, from every primary", () =>
      Effect.gen(function*() {
        yield* inspectorOn(() =>
          Redis.layer({ cluster: cluster.ports.map((port) => ({ host: "127.0.0.1", port })), tenant: freshTenant("explorer-cluster") })
        )
        // the keys really are spread: every primary holds some of them
        const perNode = yield* Effect.promise(() => Promise.all(cluster.ports.map(async (port) => Number(await command(port, "DBSIZE")))))
        for (const n of perNode) expect(n).toBeGreaterThan(0)
      }), 60_000)
  })
})
