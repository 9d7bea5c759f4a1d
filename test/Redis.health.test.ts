/**
 * What the logs say about the Redis connection: the address and the socket's error when it is
 * unreachable, said again at a bounded rate while it stays so (on `Clock`), an info line when it
 * connects and when it comes back, and errors that say what happened.
 */
import { describe, expect, inject, it } from "@effect/vitest"
import { Context, Effect, Either, Fiber, Layer, Logger, Schema, TestClock } from "effect"
import { Redis as IORedis } from "ioredis"
import { Memo, Redis } from "../src/index.js"
import { unreachableLogMs } from "../src/internal/redis/client.js"
import { startProxy } from "./support/proxy.js"
import { freePort } from "./support/services.js"

/** A logger that appends `LEVEL message` to `lines`. */
const capture = (lines: Array<string>) =>
  Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => lines.push(`${logLevel.label} ${String(message)}`)))

/** Real time, for the socket to report its error (TestClock does not drive I/O). */
const realSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Polls `f` in real time until it holds, at most `ms`. */
const until = (f: () => boolean, ms = 5_000) =>
  Effect.gen(function*() {
    for (let waited = 0; !f() && waited < ms; waited += 20) yield* realSleep(20)
  })

describe("Redis connection health in the logs", () => {
  it.scoped("unreachable: the warning names the address and the socket error, then an error at a bounded rate", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort) // nothing listens there
      const lines: Array<string> = []
      const building = yield* Layer.build(
        Redis.layer({ redis: { host: "127.0.0.1", port }, connectTimeout: "300 millis" }).pipe(Layer.provide(capture(lines)))
      ).pipe(Effect.fork)
      yield* realSleep(200) // the connection is refused meanwhile
      yield* TestClock.adjust(300)
      yield* Fiber.join(building)
      const warnings = lines.filter((l) => l.startsWith("WARN"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain(`127.0.0.1:${port}`)
      expect(warnings[0]).toContain("ECONNREFUSED")
      // said again while it lasts, once per interval and no more often
      const errors = () => lines.filter((l) => l.startsWith("ERROR"))
      yield* TestClock.adjust(unreachableLogMs - 1)
      expect(errors()).toHaveLength(0)
      for (let i = 1; i <= 3; i++) {
        yield* TestClock.adjust(unreachableLogMs / 3)
        yield* TestClock.adjust(unreachableLogMs / 3)
        yield* TestClock.adjust(unreachableLogMs / 3)
        expect(errors()).toHaveLength(i)
      }
      expect(errors()[0]).toContain(`127.0.0.1:${port}`)
      expect(errors()[0]).toContain("ECONNREFUSED")
    }))

  it.scoped("a host that does not resolve: the warning says ENOTFOUND", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const building = yield* Layer.build(
        Redis.layer({ redis: { host: "no-such-host.invalid", port: 6379 }, connectTimeout: "300 millis" }).pipe(
          Layer.provide(capture(lines))
        )
      ).pipe(Effect.fork)
      yield* realSleep(300)
      yield* TestClock.adjust(300)
      yield* Fiber.join(building)
      expect(lines.find((l) => l.startsWith("WARN"))).toMatch(/no-such-host\.invalid:6379.*ENOTFOUND/)
    }))

  it.scopedLive("an info line on connect, a warning when the connection is lost, an info line when it is back", () =>
    Effect.gen(function*() {
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => startProxy({ targetPort: inject("redisPort") })),
        (p) => Effect.promise(() => p.close())
      )
      const lines: Array<string> = []
      yield* Layer.build(Redis.layer({ redis: { host: "127.0.0.1", port: proxy.port } }).pipe(Layer.provide(capture(lines))))
      const address = `127.0.0.1:${proxy.port}`
      expect(lines).toContain(`INFO lockstep: connected to Redis at ${address}`)
      proxy.reset()
      yield* until(() => lines.some((l) => l.includes("reconnected")))
      expect(lines.filter((l) => l.startsWith("WARN"))).toEqual([
        `WARN lockstep: lost the connection to Redis at ${address}; serving degraded until it is back`
      ])
      expect(lines.filter((l) => l.includes("reconnected"))).toEqual([`INFO lockstep: reconnected to Redis at ${address}`])
    }))

  it.scopedLive("a call refused by the open breaker says why, and names the last failure", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const memo = yield* Layer.build(
        Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: "127.0.0.1", port }, connectTimeout: "100 millis" })))
      )
      const page = Memo.loader({ key: "k", window: "1 minute", schema: Schema.Number, lookup: () => Effect.succeed(1) })
      const messages: Array<string> = []
      for (let i = 0; i < 5; i++) messages.push((yield* Effect.flip(Effect.provide(page.invalidate(), memo))).message)
      const refused = messages.at(-1)!
      expect(refused).toContain("Redis invalidate: not sent")
      expect(refused).toContain("circuit breaker open")
      expect(refused).toMatch(/last failure: .+/)
      expect(messages[0]).toMatch(/^Redis invalidate: Redis is not reachable \(.+\)$/)
    }))
})

/** Holds the event loop, as a burst of requests, a long GC or a CPU-heavy page does. */
const busy = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // nothing runs meanwhile: no timer, no socket read
  }
}

const commandTimeoutMs = 100

/** A store on Redis through a proxy, with a short `commandTimeout`, subscribed: its states so far. */
const subscribed = Effect.gen(function*() {
  const proxy = yield* Effect.acquireRelease(
    Effect.promise(() => startProxy({ targetPort: inject("redisPort") })),
    (p) => Effect.promise(() => p.close())
  )
  const store = Context.get(
    yield* Layer.build(Redis.layer({ redis: { host: "127.0.0.1", port: proxy.port }, commandTimeout: `${commandTimeoutMs} millis` })),
    Redis.Redis
  )
  const states: Array<string> = []
  yield* store.subscribe({ onNotice: () => {}, onState: (s) => states.push(s) })
  yield* until(() => states.includes("up"))
  return { proxy, states }
})

describe("the subscription's heartbeat", () => {
  it.scopedLive("an event loop busy past commandTimeout while a ping is out does not take the subscription down", () =>
    Effect.gen(function*() {
      // through a proxy, to see when a ping goes out: nothing else is sent on an idle store
      const { proxy, states } = yield* subscribed
      expect(states).toEqual(["up"])
      const accepted = proxy.accepted()
      // at each of three heartbeats: as soon as its ping has gone to Redis, the loop is held for
      // 2 × commandTimeout; the reply is then waiting, but the ping's timer runs before the
      // client's socket is read (through this in-process proxy the reply needs two polls)
      let pings = 0
      let sent = proxy.forwarded().up
      while (pings < 3) {
        yield* realSleep(0)
        if (proxy.forwarded().up === sent) continue
        sent = proxy.forwarded().up
        pings++
        busy(2 * commandTimeoutMs)
      }
      yield* realSleep(2 * commandTimeoutMs)
      expect(states).toEqual(["up"])
      // and the connection was kept
      expect(proxy.accepted()).toBe(accepted)
    }))

  it.scopedLive("a black hole (the connection open, nothing answers) still takes it down within a heartbeat and a timeout", () =>
    Effect.gen(function*() {
      const { proxy, states } = yield* subscribed
      proxy.blackHole()
      const cut = performance.now()
      yield* until(() => states.includes("down"), 5_000)
      expect(states).toContain("down")
      // at most one heartbeat interval (1 s) and one ping's timeout, with room for a loaded machine
      expect(performance.now() - cut).toBeLessThan(1_000 + commandTimeoutMs + 1_000)
      proxy.normal()
      yield* until(() => states.at(-1) === "up", 5_000)
      expect(states.at(-1)).toBe("up")
    }))
})

/** A store on Redis at `port` with a short `commandTimeout`. */
const storeAt = (port: number) =>
  Effect.map(
    Layer.build(Redis.layer({ redis: { host: "127.0.0.1", port }, commandTimeout: `${commandTimeoutMs} millis` })),
    (context) => Context.get(context, Redis.Redis)
  )

/**
 * From an I/O callback (a reply on another connection, as a request handler runs), sends `n`
 * reads and then holds the loop for `holdMs`: their timers and their replies are ready in the
 * same turn, and Node runs timers first.
 */
const readsThenHold = (store: Context.Tag.Service<typeof Redis.Redis>, n: number, holdMs: number) =>
  Effect.gen(function*() {
    const other = yield* Effect.acquireRelease(
      Effect.sync(() => new IORedis({ host: "127.0.0.1", port: inject("redisPort") })),
      (c) => Effect.sync(() => c.disconnect())
    )
    yield* Effect.promise(() => other.ping())
    const reads = yield* Effect.promise(() =>
      other.ping().then(() => {
        const fiber = Fiber.all(Array.from({ length: n }, (_, i) => Effect.runFork(Effect.either(store.get(`busy-${i}`)))))
        busy(holdMs)
        return fiber
      })
    )
    return yield* Fiber.join(reads)
  })

/** A store as `storeAt` through a proxy, once it has answered. */
const proxied = Effect.gen(function*() {
  const proxy = yield* Effect.acquireRelease(
    Effect.promise(() => startProxy({ targetPort: inject("redisPort") })),
    (p) => Effect.promise(() => p.close())
  )
  const store = yield* storeAt(proxy.port)
  yield* store.get("warm")
  return { proxy, store }
})

describe("the circuit breaker and a busy event loop", () => {
  const threshold = 3 // the default `breakerThreshold`

  it.scopedLive("reads answered while the loop was held past commandTimeout do not open the breaker", () =>
    Effect.gen(function*() {
      const store = yield* storeAt(inject("redisPort"))
      yield* store.get("warm")
      const results = yield* readsThenHold(store, threshold + 2, 3 * commandTimeoutMs)
      // each caller may see its timeout (served from L1 for that request), but Redis answered
      // them all: the breaker stays closed and the next read goes to Redis
      const timedOut = results.filter((r) => Either.isLeft(r) && r.left.reason === "Timeout")
      expect(timedOut.length).toBeGreaterThanOrEqual(threshold)
      expect(yield* store.health).toBe("closed")
      yield* store.get("after")
      expect(yield* store.health).toBe("closed")
    }))

  it.scopedLive("a black hole opens it all the same when the loop was held", () =>
    Effect.gen(function*() {
      const { proxy, store } = yield* proxied
      proxy.blackHole()
      const results = yield* readsThenHold(store, threshold + 2, 3 * commandTimeoutMs)
      expect(results.every((r) => Either.isLeft(r) && r.left.reason === "Timeout")).toBe(true)
      expect(yield* store.health).toBe("open")
    }))

  it.scopedLive("a Redis slower than commandTimeout opens it, though replies to earlier reads keep arriving", () =>
    Effect.gen(function*() {
      const { proxy, store } = yield* proxied
      proxy.latency({ down: 2 * commandTimeoutMs })
      // a read every tenth of the timeout: each times out on time, while the replies to the
      // ones sent a timeout or two before it are read
      const fibers: Array<Fiber.RuntimeFiber<unknown>> = []
      for (let i = 0; i < 8 * threshold && (yield* store.health) === "closed"; i++) {
        fibers.push(yield* Effect.fork(Effect.either(store.get(`slow-${i}`))))
        yield* realSleep(commandTimeoutMs / 10)
      }
      yield* Fiber.joinAll(fibers)
      expect(yield* store.health).toBe("open")
    }))
})
