/**
 * A store wrapper for tests: counts every operation and can be switched to fail like an
 * unreachable Redis (its notice subscription then goes down too).
 */
import { Effect, Layer } from "effect"
import { Redis } from "../../src/index.js"

type Operation =
  | "get"
  | "read"
  | "readMany"
  | "claim"
  | "renew"
  | "commit"
  | "release"
  | "invalidate"
  | "tag"
  | "tagged"
  | "untag"
  | "set"
  | "scan"
  | "unchanged"
  | "purge"

export interface Spy {
  readonly calls: Record<Operation, number>
  readonly total: () => number
  readonly reset: () => void
  /** Every store call fails at once, and the subscription reports `down`, while `true`. */
  down: boolean
  readonly setDown: (down: boolean) => void
}

export const wrap = (store: Redis.Store): { readonly store: Redis.Store; readonly spy: Spy } => {
  const subscribers = new Set<Redis.Subscriber>()
  const spy: Spy = {
    calls: {
      get: 0,
      read: 0,
      readMany: 0,
      claim: 0,
      renew: 0,
      commit: 0,
      release: 0,
      invalidate: 0,
      tag: 0,
      tagged: 0,
      untag: 0,
      set: 0,
      scan: 0,
      unchanged: 0,
      purge: 0
    },
    total: () => Object.values(spy.calls).reduce((a, b) => a + b, 0),
    reset: () => {
      for (const k of Object.keys(spy.calls) as Array<Operation>) spy.calls[k] = 0
    },
    down: false,
    setDown: (down) => {
      spy.down = down
      for (const s of subscribers) s.onState(down ? "down" : "up")
    }
  }
  const track = <A>(op: Operation, effect: Effect.Effect<A, Redis.RedisError>) =>
    Effect.suspend(() => {
      spy.calls[op]++
      return spy.down ? Effect.fail(new Redis.RedisError({ reason: "Unavailable", operation: op })) : effect
    })
  return {
    spy,
    store: {
      ...store,
      get: (key) => track("get", store.get(key)),
      read: (key) => track("read", store.read(key)),
      readMany: (keys) => track("readMany", store.readMany(keys)),
      claim: (key, o) => track("claim", store.claim(key, o)),
      renew: (key, token, lease) => track("renew", store.renew(key, token, lease)),
      commit: (key, value, token, lifetimes) => track("commit", store.commit(key, value, token, lifetimes)),
      release: (key, token, backoff) => track("release", store.release(key, token, backoff)),
      unchanged: (key, value, token, details) => track("unchanged", store.unchanged(key, value, token, details)),
      purge: (key) => track("purge", store.purge(key)),
      invalidate: (key, options) => track("invalidate", store.invalidate(key, options)),
      tag: (key, tags, lifetimes) => track("tag", store.tag(key, tags, lifetimes)),
      tagged: (tag) => track("tagged", store.tagged(tag)),
      untag: (tag, keys) => track("untag", store.untag(tag, keys)),
      set: (key, value, lifetimes) => track("set", store.set(key, value, lifetimes)),
      scan: (options) => track("scan", store.scan(options)),
      subscribe: (subscriber) =>
        Effect.zipRight(
          store.subscribe({
            onNotice: (n) => {
              if (!spy.down) subscriber.onNotice(n)
            },
            onState: (s) => subscriber.onState(spy.down ? "down" : s)
          }),
          Effect.acquireRelease(Effect.sync(() => subscribers.add(subscriber)), () => Effect.sync(() => subscribers.delete(subscriber)))
        )
    }
  }
}

/** A spied in-memory store over `server`, as a `Redis` layer. */
export const layer = (server: Redis.MemoryServer, tenant = "default") => {
  const made = Effect.map(Redis.makeMemory({ tenant, server }), wrap)
  return Effect.map(made, ({ spy, store }) => ({ spy, layer: Layer.succeed(Redis.Redis, store) }))
}
