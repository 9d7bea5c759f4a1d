/**
 * One run per key in this process: concurrent requests for a key share its run, carried out by
 * one worker fiber that lives in the runtime's scope, not in any caller's.
 *
 * A run has two answers: `first`, which the worker gives as early as it can (a stale value found
 * on the way, or its own value before it is committed) so that waiting requests are served at
 * once, and `final`, its result, for those that need this window's value (`refresh`,
 * `keepWarm`). Waiters are counted rather than handled one by one: a cold burst of a thousand
 * requests costs one answer and one metric update, not a thousand.
 *
 * Registering the key's run and starting its worker are one uninterruptible, synchronous step:
 * an interruption between the two would leave a run that nothing completes, and the key stuck
 * for the life of the process. The worker starts at once, inside that step, so that its first
 * request to the store is on its way before the other callers of a burst have even run.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

export interface Run<A> {
  readonly first: Deferred.Deferred<A, unknown>
  readonly final: Deferred.Deferred<A, unknown>
  /** Requests waiting on `first`, told of together when it is given. */
  waiters: number
  /** The loader's name, for its metrics. */
  readonly loader: string | undefined
  answered: boolean
}

export interface Inflight<A> {
  readonly get: (key: string) => Run<A> | undefined
  /**
   * The key's run, or a new one whose worker (`work()`, made only then) runs in the scope.
   * `waiting`: the caller will wait for `first`, and is counted before the worker can answer
   * (it may answer before `start` returns).
   */
  readonly start: (
    key: string,
    work: () => (run: Run<A>) => Effect.Effect<A, unknown>,
    waiting: boolean,
    loader?: string | undefined
  ) => Effect.Effect<Run<A>>
  /** Gives `first` (once; later answers are ignored). */
  readonly answer: (run: Run<A>, exit: Exit.Exit<A, unknown>) => void
  /**
   * The key's value was purged: a run that already gave `first` (a value found on the way, now
   * purged) is no longer joined; the next request starts a run of its own. The run goes on for
   * those that had it.
   */
  readonly purged: (key: string) => void
  readonly size: () => number
}

export const make = <A>(
  scope: Scope.Scope,
  /** Told of `first` with how many requests were waiting for it, as it is given. */
  onAnswer: (exit: Exit.Exit<A, unknown>, waiters: number, loader: string | undefined) => void
): Inflight<A> => {
  const running = new Map<string, Run<A>>()

  const answer = (run: Run<A>, exit: Exit.Exit<A, unknown>) => {
    if (run.answered) return
    run.answered = true
    onAnswer(exit, run.waiters, run.loader)
    Deferred.unsafeDone(run.first, exit)
  }

  const start: Inflight<A>["start"] = (key, work, waiting, loader) =>
    Effect.suspend(() => {
      const existing = running.get(key)
      if (existing !== undefined) {
        if (waiting) existing.waiters++
        return Effect.succeed(existing)
      }
      // the caller's runtime: the worker gets its services and fiber refs (log level, span)
      return Effect.uninterruptible(Effect.flatMap(Effect.runtime<never>(), (runtime) => {
        const run: Run<A> = {
          first: Deferred.unsafeMake(FiberId.none),
          final: Deferred.unsafeMake(FiberId.none),
          waiters: waiting ? 1 : 0,
          loader,
          answered: false
        }
        running.set(key, run)
        const worker = Effect.interruptible(work()(run)).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (running.get(key) === run) running.delete(key)
              answer(run, exit)
              Deferred.unsafeDone(run.final, exit)
            })
          )
        )
        Runtime.runFork(runtime)(worker, { scope })
        return Effect.succeed(run)
      }))
    })

  const purged = (key: string) => {
    const run = running.get(key)
    if (run?.answered === true) running.delete(key)
  }

  return { get: (key) => running.get(key), start, answer, purged, size: () => running.size }
}
