/**
 * `lockstep/next` driven as Next drives it, by two handlers ("processes") over one in-memory
 * store: who renders a cold key, who re-renders a stale one, tags on read, a `get` waiting for a
 * `set` in progress, and a store that fails. The two `next start` processes on Redis are in
 * `test/next-fleet.test.ts`.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Redis } from "lockstep"
import * as Next from "lockstep/next"
import { afterEach, describe, expect, it } from "vitest"

const handlers: Array<Next.CacheHandler> = []
afterEach(async () => {
  await Promise.all(handlers.splice(0).map((h) => h.close()))
})

const memoryLayer = () => {
  const server = Redis.makeMemoryServer()
  return Layer.effect(Redis.Redis, Effect.orDie(Redis.makeMemory({ server })))
}

/** Two processes on one store. */
const fleet = (options: Next.HandlerOptions = {}) => {
  const layer = options.layer ?? memoryLayer()
  const pair = [Next.make({ pollMs: 5, ...options, layer }), Next.make({ pollMs: 5, ...options, layer })] as const
  handlers.push(...pair)
  return pair
}

const entry = (html: string, revalidate = 60, tags: Array<string> = ["report"]): Next.CacheEntry => ({
  value: new Response(html).body!,
  tags,
  stale: 0,
  timestamp: Date.now(),
  expire: 600,
  revalidate
})

const text = async (e: Next.CacheEntry | undefined) => (e === undefined ? undefined : new Response(e.value).text())
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Sleeps into the next window of `ms`, with `margin` ms of it gone. */
const nextWindow = (ms: number, margin = 20) => sleep(ms - (Date.now() % ms) + margin)

describe("lockstep/next", () => {
  it("cold: the first process renders; the other waits for its commit instead of rendering", async () => {
    const [a, b] = fleet()
    expect(await a.get("k", [])).toBeUndefined() // a renders
    const waiting = b.get("k", [])
    await sleep(50)
    await a.set("k", Promise.resolve(entry("<p>a</p>")))
    expect(await text(await waiting)).toBe("<p>a</p>")
    // a new stream on every get
    expect(await text(await a.get("k", []))).toBe("<p>a</p>")
    expect(await text(await a.get("k", []))).toBe("<p>a</p>")
  })

  it("cold: a waiter renders itself once the wait is over", async () => {
    const [a, b] = fleet({ waitMs: 100 })
    expect(await a.get("k", [])).toBeUndefined()
    const start = Date.now()
    expect(await b.get("k", [])).toBeUndefined()
    expect(Date.now() - start).toBeGreaterThanOrEqual(90)
  })

  it("stale: the claim's winner gets revalidate -1 (Next re-renders), the other serves it as fresh", async () => {
    const [a, b] = fleet()
    await nextWindow(1000)
    expect(await a.get("k", [])).toBeUndefined()
    await a.set("k", Promise.resolve(entry("<p>1</p>", 1)))
    await nextWindow(1000)
    const winner = await b.get("k", [])
    expect(winner?.revalidate).toBe(-1)
    expect(await text(winner)).toBe("<p>1</p>")
    const other = await a.get("k", [])
    expect(other?.revalidate).toBe(1)
    expect(Date.now() - other!.timestamp).toBeLessThan(100)
    await b.set("k", Promise.resolve(entry("<p>2</p>", 1)))
    const fresh = await a.get("k", [])
    expect(await text(fresh)).toBe("<p>2</p>")
    expect(fresh?.revalidate).toBe(1)
  })

  it("a render claimed in the same millisecond as the updateTags before it is not expired by it", async () => {
    // a clock that stands still: updateTags, the claim and the commit all read the same millisecond
    const frozen = Clock.make()
    const at = frozen.unsafeCurrentTimeMillis()
    const still: Clock.Clock = { ...frozen, unsafeCurrentTimeMillis: () => at, currentTimeMillis: Effect.succeed(at) }
    const [a, b] = fleet({ layer: Layer.merge(memoryLayer(), Layer.setClock(still)) })
    expect(await a.get("k", ["_N_T_/page"])).toBeUndefined()
    await a.set("k", Promise.resolve(entry("<p>1</p>")))
    await b.updateTags(["_N_T_/page"])
    expect(await b.get("k", ["_N_T_/page"])).toBeUndefined() // b renders again
    await b.set("k", Promise.resolve(entry("<p>2</p>")))
    expect(await text(await a.get("k", ["_N_T_/page"]))).toBe("<p>2</p>")
    expect(await text(await b.get("k", ["_N_T_/page"]))).toBe("<p>2</p>")
  })

  it("a get waits for a set of the same key still reading its stream", async () => {
    const [a] = fleet()
    expect(await a.get("k", [])).toBeUndefined()
    let finish!: (e: Next.CacheEntry) => void
    const setting = a.set("k", new Promise((resolve) => (finish = resolve)))
    const reading = a.get("k", [])
    await sleep(20)
    finish(entry("<p>late</p>"))
    await setting
    expect(await text(await reading)).toBe("<p>late</p>")
  })

  it("revalidateTag(tag, profile): stale everywhere, one re-render; updateTag: gone until rendered again", async () => {
    const [a, b] = fleet()
    expect(await a.get("k", ["_N_T_/page"])).toBeUndefined()
    await a.set("k", Promise.resolve(entry("<p>1</p>")))
    expect(await a.getExpiration(["report"])).toBe(Infinity)

    await a.updateTags(["report"], { expire: 3600 })
    const winner = await b.get("k", ["_N_T_/page"])
    expect(winner?.revalidate).toBe(-1)
    expect((await a.get("k", ["_N_T_/page"]))?.revalidate).toBe(60) // the other serves it
    await b.set("k", Promise.resolve(entry("<p>2</p>")))
    expect(await text(await a.get("k", []))).toBe("<p>2</p>")

    // an implicit (soft) tag, with no profile: expired, rendered again before anyone reads it
    await b.updateTags(["_N_T_/page"])
    expect(await b.get("k", ["_N_T_/page"])).toBeUndefined()
    const waiting = a.get("k", ["_N_T_/page"])
    await sleep(20)
    await b.set("k", Promise.resolve(entry("<p>3</p>")))
    expect(await text(await waiting)).toBe("<p>3</p>")
  })

  it("a store that fails: Next renders locally, nothing throws", async () => {
    const failing = Layer.succeed(Redis.Redis, new Proxy({} as Redis.Store, {
      get: (_, name) =>
        name === "tenant" ? "t" : () => Effect.fail(new Redis.RedisError({ reason: "Unavailable", operation: String(name) }))
    }))
    const h = Next.make({ layer: failing })
    handlers.push(h)
    expect(await h.get("k", [])).toBeUndefined()
    await h.set("k", Promise.resolve(entry("<p>x</p>")))
    await h.updateTags(["report"])
    expect(await h.get("k", [])).toBeUndefined()
  })
})
