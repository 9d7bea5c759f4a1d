/**
 * A consecutive-failure circuit breaker. While open, calls fail at once without touching the
 * network, so a dead Redis costs the request path nothing. After `cooldownMs` one call is let
 * through (half-open); its success closes the breaker, its failure opens it again.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

export type State = "closed" | "open" | "half-open"

export interface Breaker {
  /** Runs `effect` unless open; only failures that `isFault` accepts count towards opening. */
  readonly guard: <A, E>(effect: Effect.Effect<A, E>, onOpen: () => E, isFault: (e: E) => boolean) => Effect.Effect<A, E>
  readonly state: Effect.Effect<State>
}

export const make = (options: {
  readonly threshold: number
  readonly cooldownMs: number
  readonly onChange?: (state: State) => void
}): Breaker => {
  let failures = 0
  let openUntil = 0
  let current: State = "closed"
  const set = (next: State) => {
    if (next !== current) {
      current = next
      options.onChange?.(next)
    }
  }
  const stateAt = (now: number): State =>
    failures < options.threshold ? "closed" : now < openUntil ? "open" : "half-open"

  // the handlers are made once per breaker, or returned by a call: a call per store command
  // should not name a fresh closure (tsx and esbuild's `keepNames` make that a property write)
  const succeeded = <A>(a: A): Effect.Effect<A> => {
    failures = 0
    set("closed")
    return Effect.succeed(a)
  }
  const failedWith = <E>(isFault: (e: E) => boolean) => (cause: Cause.Cause<E>): Effect.Effect<never, E> => {
    const failure = Cause.failureOption(cause)
    if (Option.isNone(failure)) return Effect.failCause(cause)
    return Effect.zipRight(
      Effect.map(Clock.currentTimeMillis, (at) => {
        if (!isFault(failure.value)) {
          // the server answered: it is reachable, whatever it said
          failures = 0
          set("closed")
          return
        }
        failures++
        if (failures >= options.threshold) {
          openUntil = at + options.cooldownMs
          set("open")
        }
      }),
      Effect.failCause(cause)
    )
  }

  /** Counts the call's outcome: a fault towards opening, anything the server answered as closing. */
  const tracked = <A, E>(effect: Effect.Effect<A, E>, isFault: (e: E) => boolean): Effect.Effect<A, E> =>
    Effect.matchCauseEffect(effect, { onFailure: failedWith(isFault), onSuccess: succeeded })

  const guard = <A, E>(effect: Effect.Effect<A, E>, onOpen: () => E, isFault: (e: E) => boolean): Effect.Effect<A, E> =>
    Effect.suspend(() =>
      // closed: no clock to read (the common case, on every store call)
      failures < options.threshold ? tracked(effect, isFault) : Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const state = stateAt(now)
        if (state === "open") return Effect.fail(onOpen())
        if (state === "half-open") {
          // one probe at a time: hold the breaker open while it runs
          openUntil = now + options.cooldownMs
          set("half-open")
        }
        return tracked(effect, isFault)
      })
    )

  return { guard, state: Effect.map(Clock.currentTimeMillis, stateAt) }
}
