/**
 * A store wrapper for tests: counts every operation and can be switched to fail like an
 * unreachable Redis.
 */
import { Effect, Layer } from "effect"
import { Redis } from "../../src/index.js"

export interface Spy {
  readonly calls: Record<"get" | "claim" | "renew" | "commit" | "release", number>
  readonly total: () => number
  readonly reset: () => void
  down: boolean
}

export const wrap = (store: Redis.Store): { readonly store: Redis.Store; readonly spy: Spy } => {
  const spy: Spy = {
    calls: { get: 0, claim: 0, renew: 0, commit: 0, release: 0 },
    total: () => Object.values(spy.calls).reduce((a, b) => a + b, 0),
    reset: () => {
      for (const k of Object.keys(spy.calls) as Array<keyof Spy["calls"]>) spy.calls[k] = 0
    },
    down: false
  }
  const track = <A>(op: keyof Spy["calls"], effect: Effect.Effect<A, Redis.RedisError>) =>
    Effect.suspend(() => {
      spy.calls[op]++
      return spy.down ? Effect.fail(new Redis.RedisError({ reason: "Unavailable", operation: op })) : effect
    })
  return {
    spy,
    store: {
      ...store,
      get: (key) => track("get", store.get(key)),
      claim: (key, o) => track("claim", store.claim(key, o)),
      renew: (key, token, lease) => track("renew", store.renew(key, token, lease)),
      commit: (key, value, token) => track("commit", store.commit(key, value, token)),
      release: (key, token, backoff) => track("release", store.release(key, token, backoff))
    }
  }
}

/** A spied in-memory store over `server`, as a `Redis` layer. */
export const layer = (server: Redis.MemoryServer, tenant = "default") => {
  const made = Effect.map(Redis.makeMemory({ tenant, server }), wrap)
  return Effect.map(made, ({ spy, store }) => ({ spy, layer: Layer.succeed(Redis.Redis, store) }))
}
