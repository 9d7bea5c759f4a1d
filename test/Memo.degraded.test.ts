/**
 * A store behind a circuit breaker that goes away, under `TestClock`: the pod keeps serving its
 * value, and once the value's window is `degradedAfter` behind it runs the lookup on its own,
 * once per window. The store here is the in-memory one behind the same breaker the ioredis store
 * uses, so the breaker's probe meets the request path exactly as it does on a dead Redis.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Breaker from "../src/internal/redis/breaker.js"
import * as Testing from "../src/Testing.js"

const W = 1_000
const T0 = 1_700_000_000_000

/** The memory store behind a breaker (3 faults open it for 1 s), over a link that can be cut. */
const breakered = (store: Redis.Store) => {
  const link = { up: true }
  const breaker = Breaker.make({ threshold: 3, cooldownMs: 1_000 })
  const subscribers = new Set<Redis.Subscriber>()
  const guard = <A>(operation: string, f: () => Effect.Effect<A, Redis.RedisError>) =>
    breaker.guard(
      Effect.suspend(() => link.up ? f() : Effect.fail(new Redis.RedisError({ reason: "Unavailable", operation }))),
      () => new Redis.RedisError({ reason: "CircuitOpen", operation }),
      (e) => e.reason !== "Protocol"
    )
  const wrapped: Redis.Store = {
    tenant: store.tenant,
    kind: store.kind,
    health: breaker.state,
    get: (key) => guard("get", () => store.get(key)),
    read: (key) => guard("read", () => store.read(key)),
    readMany: (keys) => guard("readMany", () => store.readMany(keys)),
    claim: (key, o) => guard("claim", () => store.claim(key, o)),
    renew: (key, token, lease) => guard("renew", () => store.renew(key, token, lease)),
    commit: (key, value, token, d) => guard("commit", () => store.commit(key, value, token, d)),
    release: (key, token, b) => store.release(key, token, b),
    unchanged: (key, value, token, d) => guard("unchanged", () => store.unchanged(key, value, token, d)),
    purge: (key) => guard("purge", () => store.purge(key)),
    invalidate: (key) => guard("invalidate", () => store.invalidate(key)),
    tag: (key, tags, l) => guard("tag", () => store.tag(key, tags, l)),
    tagged: (tag) => guard("tagged", () => store.tagged(tag)),
    untag: (tag, keys) => guard("untag", () => store.untag(tag, keys)),
    set: (key, value, l) => guard("set", () => store.set(key, value, l)),
    scan: (o) => guard("scan", () => store.scan(o)),
    subscribe: (subscriber) =>
      Effect.zipRight(
        store.subscribe({ onNotice: (n) => link.up && subscriber.onNotice(n), onState: (s) => subscriber.onState(s) }),
        Effect.acquireRelease(Effect.sync(() => subscribers.add(subscriber)), () => Effect.sync(() => subscribers.delete(subscriber)))
      )
  }
  const cut = Effect.sync(() => {
    link.up = false
    for (const s of subscribers) s.onState("down")
  })
  return { store: wrapped, cut }
}

describe("Memo with its store gone", () => {
  it.scoped("a pod whose breaker opened runs the lookup on its own once its value is degradedAfter old, once per window", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const memory = yield* Redis.makeMemory({ tenant: "degraded" })
      const { cut, store } = breakered(memory)
      const lookup = yield* Testing.producer((run) => Effect.succeed(run), { duration: "50 millis" })
      const page = Memo.loader({ key: "k", window: W, schema: Schema.Number, lookup: () => lookup.effect })
      const layer = Memo.layerWith({ degradedAfter: "200 millis", redisRetry: "100 millis" }).pipe(
        Layer.provide(Layer.succeed(Redis.Redis, store))
      )
      const context = yield* Layer.build(layer)
      const get = page.getWithInfo().pipe(Effect.provide(context))
      const first = yield* Effect.fork(get)
      yield* TestClock.adjust("100 millis")
      expect((yield* first.await)._tag).toBe("Success")
      yield* cut
      // keep asking, 20 times a window, for four windows
      const answers: Array<number> = []
      for (let i = 0; i < 80; i++) {
        const info = yield* Testing.instantly(get)
        answers.push(info.value)
        yield* TestClock.adjust("50 millis")
      }
      const started = (yield* lookup.stats).startedAt.map((t) => Math.floor(t / W) - Math.floor(T0 / W))
      // the cold run in window 0, then one run of its own in each later window it reached
      // degradedAfter in, never two in one window
      expect(started[0]).toBe(0)
      expect(started.length).toBeGreaterThanOrEqual(4)
      expect(new Set(started).size).toBe(started.length)
      // and the requests were answered newer values as they came
      expect(Math.max(...answers)).toBe(started.length)
    }))
})
