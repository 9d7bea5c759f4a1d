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
  /** Counts a request that waits on `first`. */
  readonly join: () => void
  /** Called once, on the first `join`: a run begun by a request learns that a burst is forming. */
  onJoin: (() => void) | undefined
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
  /**
   * Registers the key's run without a worker, for a caller that does its first step itself (an
   * L2 read) and then either `settle`s the run or `hand`s it to a worker. Only inside an
   * uninterruptible region that guarantees one of the two, whatever happens to the caller.
   * `undefined` when the key has a run already.
   */
  readonly begin: (key: string, loader: string | undefined) => Run<A> | undefined
  /** Ends a run begun with `begin`: its answers (`first` unless given, and `final`) are `exit`. */
  readonly settle: (key: string, run: Run<A>, exit: Exit.Exit<A, unknown>) => void
  /** Gives a run begun with `begin` its worker, which runs in the scope with `runtime`'s services. */
  readonly hand: (key: string, run: Run<A>, work: (run: Run<A>) => Effect.Effect<A, unknown>, runtime: Runtime.Runtime<never>) => void
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

/** A `Deferred` that holds `exit`, or is still open. */
const deferredOf = <A>(exit: Exit.Exit<A, unknown> | undefined): Deferred.Deferred<A, unknown> => {
  const d = Deferred.unsafeMake<A, unknown>(FiberId.none)
  if (exit !== undefined) Deferred.unsafeDone(d, exit)
  return d
}

/**
 * A run's answers are made into `Deferred`s only when a request waits for them: a run answered
 * before anyone joined it (an L2 read, most runs) makes none.
 */
class RunImpl<A> implements Run<A> {
  answered = false
  #first: Deferred.Deferred<A, unknown> | undefined = undefined
  #final: Deferred.Deferred<A, unknown> | undefined = undefined
  #firstExit: Exit.Exit<A, unknown> | undefined = undefined
  #finalExit: Exit.Exit<A, unknown> | undefined = undefined
  onJoin: (() => void) | undefined = undefined
  constructor(public waiters: number, readonly loader: string | undefined) {}
  join() {
    this.waiters++
    const onJoin = this.onJoin
    if (onJoin !== undefined) {
      this.onJoin = undefined
      onJoin()
    }
  }
  get first() {
    return this.#first ??= deferredOf(this.#firstExit)
  }
  get final() {
    return this.#final ??= deferredOf(this.#finalExit)
  }
  giveFirst(exit: Exit.Exit<A, unknown>) {
    this.#firstExit = exit
    if (this.#first !== undefined) Deferred.unsafeDone(this.#first, exit)
  }
  giveFinal(exit: Exit.Exit<A, unknown>) {
    if (this.#finalExit !== undefined) return
    this.#finalExit = exit
    if (this.#final !== undefined) Deferred.unsafeDone(this.#final, exit)
  }
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
    ;(run as RunImpl<A>).giveFirst(exit)
  }

  const register = (key: string, waiters: number, loader: string | undefined): Run<A> => {
    const run = new RunImpl<A>(waiters, loader)
    running.set(key, run)
    return run
  }

  const settle: Inflight<A>["settle"] = (key, run, exit) => {
    if (running.get(key) === run) running.delete(key)
    answer(run, exit)
    ;(run as RunImpl<A>).giveFinal(exit)
  }

  const hand: Inflight<A>["hand"] = (key, run, work, runtime) => {
    const worker = Effect.interruptible(work(run)).pipe(Effect.onExit((exit) => Effect.sync(() => settle(key, run, exit))))
    Runtime.runFork(runtime)(worker, { scope })
  }

  const start: Inflight<A>["start"] = (key, work, waiting, loader) =>
    Effect.suspend(() => {
      const existing = running.get(key)
      if (existing !== undefined) {
        if (waiting) existing.join()
        return Effect.succeed(existing)
      }
      // the caller's runtime: the worker gets its services and fiber refs (log level, span)
      return Effect.uninterruptible(Effect.flatMap(Effect.runtime<never>(), (runtime) => {
        const run = register(key, waiting ? 1 : 0, loader)
        hand(key, run, work(), runtime)
        return Effect.succeed(run)
      }))
    })

  const purged = (key: string) => {
    const run = running.get(key)
    if (run?.answered === true) running.delete(key)
  }

  return {
    get: (key) => running.get(key),
    start,
    begin: (key, loader) => running.has(key) ? undefined : register(key, 1, loader),
    settle,
    hand,
    answer,
    purged,
    size: () => running.size
  }
}
