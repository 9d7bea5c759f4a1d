/**
 * `lockstep/promise`, the Promise facade, on the in-memory store and on a real redis-server: the
 * Memo loader's behaviours (coalescing, stale-while-revalidate, invalidation, tags, errors,
 * close) seen through Promises, the fresh hit answered without the runtime, Standard Schemas
 * validated on read, and options checked as `TypeError`s naming the option.
 *
 * The facade runs on the real clock (it has no time logic of its own): the window tests align
 * themselves to a boundary first.
 */
import { Schema } from "effect"
import { type Cache, CacheError, createCache } from "lockstep/promise"
import { afterEach, describe, expect, expectTypeOf, inject, it } from "vitest"
import { z } from "zod"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits until `offsetMs` into the next window of `windowMs`. */
const alignTo = (windowMs: number, offsetMs = 20) => sleep(windowMs - (Date.now() % windowMs) + offsetMs)

/** Whether `p` is resolved already: a resolved promise wins a race against one that comes after it. */
const pending = Symbol("pending")
const resolved = async (p: Promise<unknown>) => (await Promise.race([p, Promise.resolve(pending)])) !== pending

/** Waits until `done` answers true, checking every 20 ms, for 5 s at most. */
const until = async (done: () => Promise<boolean>) => {
  const deadline = Date.now() + 5_000
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the condition")
    await sleep(20)
  }
}

const Item = z.object({ id: z.number(), run: z.number() })

let tenants = 0
const stores = {
  memory: () => ({}),
  redis: () => ({ redis: `redis://127.0.0.1:${inject("redisPort")}`, tenant: `promise-${process.pid}-${++tenants}` })
} as const

const open: Array<Cache> = []
const make = (options: Parameters<typeof createCache>[0]) => {
  const cache = createCache(options)
  open.push(cache)
  return cache
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()))
})

/** A keyed loader whose values record which run of the lookup made them, and what it was given. */
const items = (cache: Cache, options: { readonly window?: number; readonly durationMs?: number; readonly timeout?: number } = {}) => {
  const calls: Array<{ readonly id: number; readonly previous: unknown }> = []
  const loader = cache.loader({
    key: (id: number) => `item:${id}`,
    window: options.window ?? 60_000,
    schema: Item,
    lookup: async (id, previous) => {
      calls.push({ id, previous })
      const run = calls.length
      await sleep(options.durationMs ?? 50)
      if (id < 0) throw new RangeError(`no item ${id}`)
      return { id, run }
    },
    tags: (id) => (id % 2 === 0 ? ["items", "even"] : ["items"]),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout })
  })
  return { loader, calls }
}

describe.each(Object.keys(stores) as Array<keyof typeof stores>)("lockstep/promise on the %s store", (store) => {
  it("coalesces concurrent cold requests onto one lookup per key; a fresh hit is an already-settled promise", async () => {
    const cache = make(stores[store]())
    const { calls, loader } = items(cache)
    const answers = await Promise.all([loader.get(1), loader.get(1), loader.get(2), loader.get(1), loader.get(2)])
    expect(calls.map((c) => c.id).sort()).toEqual([1, 2])
    expect(answers[0]).toEqual(answers[1])
    expect(answers[0]).toEqual(answers[3])
    expect(answers[2]).toEqual(answers[4])
    // the value is typed by the schema, with no Effect type in the signature
    expectTypeOf(loader.get).toEqualTypeOf<(k: number) => Promise<{ id: number; run: number }>>()
    const hit = loader.get(1)
    expect(await resolved(hit)).toBe(true)
    expect(await resolved(loader.get(3))).toBe(false)
    expect(await hit).toEqual(answers[0])
    const info = await loader.getWithInfo(2)
    expect(info).toMatchObject({ value: answers[2], cache: "hit", stale: false, windowMs: 60_000 })
    expect(cache.cacheHeaders(info)).toMatchObject({ "x-cache": "hit", "cache-control": expect.stringMatching(/^public, max-age=\d+, stale-while-revalidate=60$/) })
    expect(calls.filter((c) => c.id !== 3)).toHaveLength(2)
  })

  it("serves the last window's value at once after a boundary, and one refresh brings this window's", async () => {
    const windowMs = 1_000
    const cache = make(stores[store]())
    const { calls, loader } = items(cache, { window: windowMs, durationMs: 100 })
    await alignTo(windowMs)
    const first = await loader.get(1)
    await alignTo(windowMs)
    const stale = await Promise.all([loader.getWithInfo(1), loader.getWithInfo(1), loader.getWithInfo(1)])
    for (const s of stale) expect(s).toMatchObject({ value: first, cache: "stale", stale: true })
    await sleep(300)
    const fresh = await loader.getWithInfo(1)
    expect(fresh).toMatchObject({ cache: "hit", stale: false, value: { id: 1, run: 2 } })
    expect(calls).toEqual([{ id: 1, previous: undefined }, { id: 1, previous: first }])
    expect(cache.cacheHeaders(stale[0]!)["cache-control"]).toBe("public, max-age=0, stale-while-revalidate=1")
  })

  it("invalidate marks a value stale (still served) with one recompute; refresh, set and peek", async () => {
    const cache = make(stores[store]())
    const { calls, loader } = items(cache)
    expect(await loader.peek(1)).toBeUndefined()
    const first = await loader.get(1)
    await loader.invalidate(1)
    expect(await loader.getWithInfo(1)).toMatchObject({ value: first, cache: "stale" })
    expect(await loader.getWithInfo(1)).toMatchObject({ value: first, cache: "stale" })
    // the one recompute lands in the background (polled: real time on a loaded machine)
    await until(async () => (await loader.getWithInfo(1)).cache === "hit")
    expect(await loader.getWithInfo(1)).toMatchObject({ value: { id: 1, run: 2 }, cache: "hit" })
    expect(calls).toEqual([{ id: 1, previous: undefined }, { id: 1, previous: first }])

    expect(await loader.refresh(1)).toMatchObject({ value: { id: 1, run: 3 }, cache: "miss" })
    expect(await loader.set(1, { id: 1, run: 99 })).toMatchObject({ value: { id: 1, run: 99 }, cache: "hit" })
    expect(await loader.get(1)).toEqual({ id: 1, run: 99 })
    expect(await loader.peek(1)).toMatchObject({ value: { id: 1, run: 99 }, cache: "hit" })
    expect(calls).toHaveLength(3)
  })

  it("invalidateTag reaches every key that carries the tag, and no other", async () => {
    const cache = make(stores[store]())
    const { calls, loader } = items(cache)
    await Promise.all([loader.get(1), loader.get(2), loader.get(4)])
    expect(await cache.invalidateTag("even")).toBe(2)
    expect((await loader.getWithInfo(2)).cache).toBe("stale")
    expect((await loader.getWithInfo(4)).cache).toBe("stale")
    expect((await loader.getWithInfo(1)).cache).toBe("hit")
    await until(async () => (await loader.getWithInfo(2)).cache === "hit" && (await loader.getWithInfo(4)).cache === "hit")
    expect(calls.filter((c) => c.id === 2)).toHaveLength(2)
    expect(calls.filter((c) => c.id === 1)).toHaveLength(1)
    expect(await cache.invalidateTag("items")).toBe(3)
    expect(await cache.invalidateTag("nothing")).toBe(0)
  })

  it("getMany answers in the order asked, duplicates included, computing the cold keys in one lookupMany; purge and purgeTag remove values", async () => {
    const cache = make(stores[store]())
    const batches: Array<ReadonlyArray<number>> = []
    const single: Array<number> = []
    const many = cache.loader({
      key: (id: number) => `many:${id}`,
      window: 60_000,
      schema: Item,
      lookup: async (id) => {
        single.push(id)
        return { id, run: 0 }
      },
      lookupMany: async (ids) => {
        batches.push(ids)
        return ids.map((id) => ({ id, run: batches.length }))
      },
      tags: ["many"]
    })
    expect(await many.getMany([3, 1, 2, 1])).toEqual([{ id: 3, run: 1 }, { id: 1, run: 1 }, { id: 2, run: 1 }, { id: 1, run: 1 }])
    expect(batches.map((b) => [...b].sort())).toEqual([[1, 2, 3]])
    expect(single).toEqual([])
    // hits now, from L1: nothing computed again
    const infos = await many.getManyWithInfo([1, 2])
    expect(infos.map((i) => i.cache)).toEqual(["hit", "hit"])
    expect(batches).toHaveLength(1)
    // purge: gone everywhere, the next request is cold
    await many.purge(1)
    expect(await many.peek(1)).toBeUndefined()
    expect((await many.getWithInfo(1)).cache).toBe("miss")
    expect(await cache.purgeTag("many")).toBe(3)
    expect(await many.peek(2)).toBeUndefined()
    // a lookupMany that answers another number of values rejects its keys with a coded error
    const short = cache.loader({
      key: (id: number) => `short:${id}`,
      window: 60_000,
      schema: Item,
      lookup: async (id) => ({ id, run: 0 }),
      lookupMany: async (ids) => ids.slice(1).map((id) => ({ id, run: 0 }))
    })
    const mismatch = await short.getMany([1, 2]).catch((e) => e)
    expect(mismatch).toBeInstanceOf(CacheError)
    expect(mismatch).toMatchObject({ code: "LookupManyMismatch" })
    await cache.close()
  })

  it("passes the lookup's own rejection through as is, to every waiter, and rejects a slow cold wait with WaitTimeout", async () => {
    const cache = make(stores[store]())
    const { loader } = items(cache)
    const failures = await Promise.allSettled([loader.get(-1), loader.get(-1)])
    for (const f of failures) {
      expect(f.status).toBe("rejected")
      expect((f as PromiseRejectedResult).reason).toBeInstanceOf(RangeError)
      expect((f as PromiseRejectedResult).reason.message).toBe("no item -1")
    }
    const slow = items(cache, { durationMs: 500, timeout: 50 }).loader
    const timedOut = await slow.get(3).catch((e) => e)
    expect(timedOut).toBeInstanceOf(CacheError)
    expect(timedOut).toMatchObject({ code: "WaitTimeout", message: expect.stringContaining("item:3") })
    // the lookup went on for later requests
    await sleep(600)
    expect(await slow.get(3)).toMatchObject({ id: 3 })
  })

  it("a lookup past maxRun is stopped: its cold callers reject with MaxRunExceeded", async () => {
    const cache = make({ ...stores[store](), settings: { maxRun: 100 } })
    const { loader } = items(cache, { durationMs: 2_000 })
    const failures = await Promise.all([loader.get(1).catch((e) => e), loader.get(1).catch((e) => e)])
    for (const e of failures) expect(e).toMatchObject({ name: "CacheError", code: "MaxRunExceeded", message: expect.stringContaining("maxRun") })
  })

  it("close ends the runtime: a waiting request and every later one reject with Closed, and close never hangs", async () => {
    const cache = createCache(stores[store]())
    const { loader } = items(cache, { durationMs: 5_000 })
    const warm = items(cache).loader
    await warm.get(1)
    const waiting = loader.get(11).catch((e) => e)
    await sleep(50)
    const started = Date.now()
    await cache.close()
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(await waiting).toMatchObject({ code: "Closed" })
    expect(await warm.get(1).catch((e) => e)).toMatchObject({ code: "Closed" })
    expect(await cache.invalidateTag("items").catch((e) => e)).toMatchObject({ code: "Closed" })
    await cache.close()
  })

  it("takes an Effect Schema as well: values encoded and decoded through it", async () => {
    const cache = make(stores[store]())
    const loader = cache.loader({
      key: "when",
      window: "1 minute",
      schema: Schema.Struct({ at: Schema.DateFromString, n: Schema.Int }),
      lookup: async () => ({ at: new Date(0), n: 1 })
    })
    expect(await loader.get()).toEqual({ at: new Date(0), n: 1 })
    expect(await loader.set(undefined, { at: new Date(0), n: 1.5 }).catch((e) => e)).toMatchObject({ code: "InvalidValue" })
  })
})

describe("lockstep/promise on Redis", () => {
  const redis = () => `redis://127.0.0.1:${inject("redisPort")}`

  it("a stored value that fails the Standard Schema is a miss: the lookup runs again", async () => {
    const tenant = `promise-schema-${process.pid}`
    const writer = make({ redis: redis(), tenant })
    await writer.loader({ key: "thing", window: "1 minute", schema: z.object({ n: z.number() }), lookup: async () => ({ n: 1 }) }).get()
    const reader = make({ redis: redis(), tenant })
    let runs = 0
    const strict = reader.loader({
      key: "thing",
      window: "1 minute",
      schema: z.object({ name: z.string() }),
      lookup: async () => ({ name: `run ${++runs}` })
    })
    expect(await strict.get()).toEqual({ name: "run 1" })
    expect(runs).toBe(1)
  })

  it("two caches on one Redis run a cold key's lookup once between them", async () => {
    const tenant = `promise-fleet-${process.pid}`
    const a = items(make({ redis: redis(), tenant }), { durationMs: 300 })
    const b = items(make({ redis: redis(), tenant }), { durationMs: 300 })
    const answers = await Promise.all([a.loader.get(7), b.loader.get(7), a.loader.get(7), b.loader.get(7)])
    expect(a.calls.length + b.calls.length).toBe(1)
    expect(new Set(answers.map((x) => JSON.stringify(x))).size).toBe(1)
    // an invalidation through one process reaches the other
    await a.loader.invalidate(7)
    await sleep(100)
    expect((await b.loader.getWithInfo(7)).cache).not.toBe("hit")
  })

  it("Redis unreachable: requests are answered locally and invalidate rejects with RedisError", async () => {
    const cache = make({ redis: { url: "redis://127.0.0.1:1", commandTimeout: 100, connectTimeout: 100 }, tenant: "down" })
    const { calls, loader } = items(cache)
    expect(await loader.get(1)).toMatchObject({ id: 1 })
    expect(calls).toHaveLength(1)
    expect(await loader.invalidate(1).catch((e) => e)).toMatchObject({ code: "RedisError" })
  })
})

describe("lockstep/promise options", () => {
  it("bad options throw a TypeError naming the option; bad input rejects with one", async () => {
    const cache = make({})
    const base = { key: (id: number) => `k:${id}`, window: "1 minute" as const, schema: Item, lookup: async () => ({ id: 1, run: 1 }) }
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ window: 0 }, /window/],
      [{ window: "banana" }, /window/],
      [{ timeout: -1 }, /timeout/],
      [{ retain: "1 second" }, /retain/],
      [{ lookup: 5 }, /lookup/],
      [{ key: 9 }, /key/],
      [{ schema: { parse: () => 1 } }, /schema/],
      [{ tags: "items" }, /tags/]
    ]
    for (const [bad, message] of cases) {
      expect(() => cache.loader({ ...base, ...bad } as never), JSON.stringify(bad)).toThrow(TypeError)
      expect(() => cache.loader({ ...base, ...bad } as never), JSON.stringify(bad)).toThrow(message)
    }
    expect(() => createCache({ tenant: "" })).toThrow(TypeError)
    expect(() => createCache({ redis: "http://localhost" })).toThrow(/redis/)
    expect(() => createCache({ redis: { commandTimeout: -5 } })).toThrow(/commandTimeout/)
    expect(() => createCache({ settings: { lease: 1 } })).toThrow(/lease/)
    // a setting left undefined is the default
    await make({ settings: { lease: undefined, l1Capacity: 10 } }).loader({ ...base, key: "defaults" }).get()
    const loader = cache.loader({ ...base, key: (id: number) => (id === 0 ? (undefined as never) : `k:${id}`) })
    expect(await loader.get(0).catch((e) => e)).toBeInstanceOf(TypeError)
    await loader.get(1)
    expect(await loader.get(0).catch((e) => e)).toBeInstanceOf(TypeError)
    expect(() => loader.keyOf(0)).toThrow(TypeError)
  })
})
