/**
 * One run per key in this process: concurrent requests for a key share its run, carried out by
 * one worker fiber that lives in the runtime's scope, not in any caller's.
 *
 * A run has two answers: `first`, which the worker may complete early (with a stale value it
 * found on the way) so that waiting requests are served at once, and `final`, its own result,
 * for those that need this window's value (`refresh`, `keepWarm`).
 *
 * Registering the key's run and forking its worker are one uninterruptible step: an
 * interruption between the two would leave a run that nothing completes, and the key stuck for
 * the life of the process.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

export interface Run<A> {
  readonly first: Deferred.Deferred<A, unknown>
  readonly final: Deferred.Deferred<A, unknown>
}

export interface Inflight<A> {
  readonly get: (key: string) => Run<A> | undefined
  /** The key's run, or a new one whose worker is forked in the scope. */
  readonly start: (key: string, work: (first: Deferred.Deferred<A, unknown>) => Effect.Effect<A, unknown>) => Effect.Effect<Run<A>>
  readonly size: () => number
}

export const make = <A>(scope: Scope.Scope): Inflight<A> => {
  const running = new Map<string, Run<A>>()

  const start: Inflight<A>["start"] = (key, work) =>
    Effect.uninterruptible(Effect.suspend(() => {
      const existing = running.get(key)
      if (existing !== undefined) return Effect.succeed(existing)
      const run: Run<A> = { first: Deferred.unsafeMake(FiberId.none), final: Deferred.unsafeMake(FiberId.none) }
      running.set(key, run)
      const worker = Effect.interruptible(work(run.first)).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (running.get(key) === run) running.delete(key)
            Deferred.unsafeDone(run.first, exit)
            Deferred.unsafeDone(run.final, exit)
          })
        )
      )
      return Effect.as(Effect.forkIn(worker, scope), run)
    }))

  return { get: (key) => running.get(key), start, size: () => running.size }
}
