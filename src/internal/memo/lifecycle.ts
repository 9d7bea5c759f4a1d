/**
 * A `Memo` runtime is meant to live as long as the process. One built over and over (a layer
 * provided per request) is a new, empty cache each time, with connections of its own, and its
 * background refreshes die with it: every answer stays `stale` (or `miss`) for ever, and nothing
 * fails. This notices it and says once, per process, what to do. Only runtimes over Redis count:
 * the in-memory store is a test's or a single process's, where a runtime per test is the rule.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

/** Runtimes built within this span, or closed this soon after being built, count as churn. */
const spanMs = 60_000
/** Builds within `spanMs` that are churn rather than a restart or two. */
const builds = 3

const state = { recent: [] as Array<number>, warned: false }

export const advice =
  "provide Memo.layer (and the Redis layer under it) once, where the application starts (Layer.launch of the server, " +
  "or one ManagedRuntime at module level), never per request: each build is a new, empty cache with its own Redis " +
  "connections, and its background refreshes die with it, so answers stay stale for ever"

const warnOnce = (what: string) =>
  Effect.suspend(() => {
    if (state.warned) return Effect.void
    state.warned = true
    return Effect.logWarning(`lockstep: ${what}; ${advice}`)
  })

/** A runtime was built: warns when this makes `builds` within `spanMs`. Answers when it was built. */
export const built: Effect.Effect<number> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
  state.recent = state.recent.filter((t) => now - t < spanMs)
  state.recent.push(now)
  const n = state.recent.length
  return Effect.as(n >= builds ? warnOnce(`a Memo runtime was built ${n} times within a minute`) : Effect.void, now)
})

/** A runtime built at `at` is closing with `running` refreshes still under way. */
export const closing = (at: number, running: number): Effect.Effect<void> =>
  running === 0 ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) =>
    now - at < spanMs
      ? warnOnce(`a Memo runtime was closed ${now - at} ms after it was built, with ${running} refresh(es) still running`)
      : Effect.void)

/** Forgets what was seen (tests). */
export const reset = () => {
  state.recent = []
  state.warned = false
}
