/**
 * The per-process engine behind `Memo`: the request path below the fresh hit (which `Memo.ts`
 * answers inline), and the operations on one key.
 *
 * A request that is not a fresh hit goes:
 * 1. `serveStale`: a value is held → it is answered at once, and the key's worker starts
 *    unless one runs or the key backs off;
 * 2. `awaitValue`: nothing is held → the request waits for the key's worker (`refresh.ts`),
 *    which answers with the first value it finds, stale or fresh, within the cold `timeout`.
 */
import * as Cause from "effect/Cause"
import * as Os from "node:os"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Metrics from "../../Metrics.js"
import * as Window from "../../Window.js"
import type { Inspected, RedisError, Store } from "../store.js"
import * as Batch from "./batch.js"
import * as Core from "./core.js"
import * as Failures from "./failures.js"
import * as Inflight from "./inflight.js"
import * as L1 from "./l1.js"
import * as Leader from "./leader.js"
import * as Lifecycle from "./lifecycle.js"
import * as Notices from "./notices.js"
import * as Refresh from "./refresh.js"
import type { Resolved } from "./settings.js"

export const TypeId: unique symbol = Symbol.for("lockstep/Memo")
export type TypeId = typeof TypeId

/** A cold request waited longer than its loader's `timeout`. */
export type OnTimeout = (key: string) => unknown

export interface Inspection {
  readonly now: number
  readonly keys: ReadonlyArray<Inspected & { readonly served: Option.Option<L1.Served> }>
  readonly cursor: Option.Option<string>
}

export interface Engine extends Core.Core {
  readonly [TypeId]: TypeId
  readonly inflight: Inflight.Inflight<Core.Outcome>
  /**
   * A held value of the loader's window (`held.windowMs` checked by the caller), answered at once
   * as stale when no worker is to start: the key's run is under way, or it backs off. `undefined`:
   * `serve` decides.
   */
  readonly staleWhileRunning: (key: string, loader: string | undefined, at: number, held: L1.Entry) => Core.Outcome | undefined
  /** The request path below a fresh hit. */
  readonly serve: <E>(job: Core.Job<E>, at: number, held: L1.Entry | undefined, onTimeout: OnTimeout) => Effect.Effect<Core.Outcome, E>
  /** Many keys of one loader: one store round trip, one `lookupMany` per chunk (`batch.ts`). */
  readonly getMany: <E>(batch: Batch.Batch<E>, at: number, onTimeout: OnTimeout) => Effect.Effect<Array<Core.Outcome>, E | Batch.LookupManyMismatch>
  /** L1 or the store, never the lookup. */
  readonly peek: (spec: Core.Spec, key: string) => Effect.Effect<Option.Option<Core.Outcome>>
  readonly invalidate: (key: string) => Effect.Effect<void, RedisError>
  readonly invalidateTag: (tag: string) => Effect.Effect<number, RedisError>
  /** Removes the key's value everywhere: the next request is cold. */
  readonly purge: (key: string) => Effect.Effect<void, RedisError>
  readonly purgeTag: (tag: string) => Effect.Effect<number, RedisError>
  readonly refresh: <E>(job: Core.Job<E>, onTimeout: OnTimeout) => Effect.Effect<Core.Outcome, E>
  readonly set: (spec: Core.Spec, key: string, value: unknown, tags: ReadonlyArray<string>) => Effect.Effect<Core.Outcome, ParseError | RedisError>
  /** One page of the tenant's keys as the store holds them, with this process's answers for each. */
  readonly inspect: (options: { readonly cursor?: string | undefined; readonly count: number }) => Effect.Effect<Inspection, RedisError>
  /** Every piece of per-key state, by how many keys it holds: each is bounded. */
  readonly sizes: Effect.Effect<{
    readonly l1: number
    readonly heard: number
    readonly waiting: number
    readonly inflight: number
    readonly writeBacks: number
  }>
  /** Runs the worker unless the value of the window `at` is held, and waits for it (failures ignored). */
  readonly warm: (job: Core.Job, at: number) => Effect.Effect<void>
  /**
   * Computes the value of the window `bucket` before it opens (an early run), unless it is held
   * already, another process runs it, or the window has begun (then it is the window's run, as
   * `warm`'s). The store keeps it beside the current value until the boundary. Failures ignored.
   */
  readonly early: (job: Core.Job, bucket: number) => Effect.Effect<void>
  /** Keys kept warm with early runs, so that answers can promise the next value at the boundary. */
  readonly earlyKeys: Map<string, number>
}

/** What an answer tells of the key's next value: computed ahead, or its run time after the boundary. */
export const expectOf = (engine: Engine, key: string, entry: L1.Entry): L1.Expect => ({
  early: engine.earlyKeys.has(key) || (entry.next !== undefined && L1.isTrusted(entry.next)),
  runMs: Math.ceil(engine.durations.p90(key) ?? 0)
})

export const make = (store: Store, settings: Resolved): Effect.Effect<Engine, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const l1 = L1.make(settings.l1Capacity)
    const durations = Core.makeDurations(settings.l1Capacity)
    // told of purges once `inflight` exists (notices come after the subscription below)
    const notices = Notices.make(l1, durations, (key) => inflight.purged(key))
    // a lock's holder, as inspectors show it: which host and process, and which runtime in it
    const instance = `${Os.hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`
    let tokens = 0
    const core: Core.Core = {
      store,
      durations,
      settings,
      l1,
      clock: { skew: 0, offset: 0 },
      notices,
      failures: Failures.make(settings.l1Capacity),
      writeBacks: yield* FiberMap.make<string>(),
      nextToken: () => `${instance}:${++tokens}`,
      unencodable: new Map()
    }
    /** Answers are counted once per run, by kind, for every request that waited for it. */
    const inflight = Inflight.make<Core.Outcome>(scope, (exit, waiters, loader) => {
      if (waiters === 0) return
      if (Exit.isFailure(exit)) {
        if (!Cause.isInterruptedOnly(exit.cause)) Metrics.countRequests("error", waiters, loader)
        return
      }
      const o = exit.value
      Metrics.countRequests(o.cache === "miss" ? "cold" : o.cache === "hit" ? "redis" : "stale", waiters, loader)
      if (o.cache === "miss") o.entry.misses += waiters
      else if (o.cache === "hit") o.entry.hits += waiters
      else o.entry.stales += waiters
    })
    yield* store.subscribe({ onNotice: notices.onNotice, onState: notices.onState })
    // over Redis only: a test suite builds an in-memory runtime per test, and that is no mistake
    const builtAt = store.kind === "redis" ? yield* Lifecycle.built : undefined
    /** Workers interrupted: only the runtime's closing interrupts them. */
    const interrupted = { runs: 0 }

    /** What a request answering for a run offers its waiters on the way: a stale value, or the lookup's own. */
    const offerTo = (run: Inflight.Run<Core.Outcome>): Refresh.Offer => (entry, cache) =>
      Effect.sync(() => inflight.answer(run, Exit.succeed({ entry, cache })))

    /** A run's outcome from what it obtained: nothing newer to be had answers with what is held. */
    const concluded = (job: Core.Job, obtained: Option.Option<Core.Outcome>): Exit.Exit<Core.Outcome> => {
      core.failures.clear(job.key)
      if (Option.isSome(obtained)) return Exit.succeed(obtained.value)
      const held = l1.entries.get(job.key)
      return held !== undefined
        ? Exit.succeed<Core.Outcome>({ entry: held, cache: "stale" })
        : Exit.die(new Cause.RuntimeException(`lockstep: no value of ${job.key} and nothing to wait for`))
    }

    /**
     * The key's worker: answers the first value it finds at once, then goes on to this window's.
     * `from`: the step where it takes over from a request that took the first one itself.
     */
    const work = <E>(job: Core.Job<E>, refreshing: boolean, from?: Refresh.Step) => (run: Inflight.Run<Core.Outcome>) =>
      Refresh.obtain(core, job, offerTo(run), refreshing, from).pipe(
        Effect.flatMap((obtained) => concluded(job, obtained)),
        Effect.tapErrorCause((cause) =>
          run.answered && !Cause.isInterruptedOnly(cause)
            ? Effect.logWarning(`lockstep: refresh of ${job.key} failed; serving the last value`, cause)
            : Effect.void
        ),
        Effect.onInterrupt(() => Effect.sync(() => interrupted.runs++)),
        Effect.withSpan("lockstep.refresh", { attributes: Core.attributes(job.spec, job.key), captureStackTrace: false })
      )

    /**
     * A cold request with no run of its key under way: it registers the key's run and reads the
     * store in its own fiber. A value of this window (an L2 read, the common case after a
     * boundary) is its answer and the run's, with no worker, no hand-off and no span; anything
     * else (a stale value, nothing stored, the store unreachable) goes on in a worker from the
     * step the read ended with, and the request waits for it like any other. Registering and
     * reading are one uninterruptible region apart from the read itself: an interrupted read
     * hands the run to a worker from the start, so the key is never left with a run nobody ends.
     *
     * Requests that come meanwhile join the run. The first to join means a burst: the worker
     * starts then, with the claim, so that on a cold key the claim is on its way right behind
     * the read instead of a round trip (and a busy event loop's turn) after it. On a key the
     * store holds fresh, that claim answers `Fresh` and takes no lock.
     *
     * A loader's `timeout` bounds the read and the wait after it together: a read that outlasts
     * it hands the run to a worker from the start, and the wait gets what the read left of it.
     */
    const readThrough = <E>(job: Core.Job<E>, onTimeout: OnTimeout): Effect.Effect<Core.Outcome, E> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.withFiberRuntime<Core.Outcome, E>((fiber, status) => {
          const run = inflight.begin(job.key, job.spec.name)
          if (run === undefined) return restore(awaitRun(job, onTimeout))
          const worker = { started: false }
          run.onJoin = () => {
            worker.started = true
            inflight.hand(job.key, run, work(job, false, Refresh.firstClaim), Runtime.make({
              context: fiber.currentContext,
              fiberRefs: fiber.getFiberRefs(),
              runtimeFlags: status.runtimeFlags
            }))
          }
          const read = Refresh.readStep(core, job, offerTo(run))
          const timeout = job.spec.timeout
          if (timeout === undefined) {
            return Effect.flatMap(Effect.exit(restore(read)), (exit) => {
              run.onJoin = undefined
              return afterRead(job, run, exit, restore, worker.started, onTimeout, undefined)
            })
          }
          const clock = fiber.currentDefaultServices.unsafeMap.get(Clock.Clock.key) as Clock.Clock
          const startedAt = clock.unsafeCurrentTimeMillis()
          return Effect.flatMap(Effect.exit(restore(Effect.timeoutOption(read, timeout))), (exit) => {
            run.onJoin = undefined
            if (Exit.isSuccess(exit) && Option.isNone(exit.value)) return readTimedOut(job, run, restore, worker.started, onTimeout)
            const left = Duration.toMillis(timeout) - (clock.unsafeCurrentTimeMillis() - startedAt)
            return afterRead(job, run, Exit.map(exit, Option.getOrThrow), restore, worker.started, onTimeout, left)
          })
        })
      )

    /**
     * The read outlasted the request's `timeout`: the run goes on in a worker from the start
     * (unless a burst started one), and the request fails as a wait that timed out does.
     */
    function readTimedOut<E>(
      job: Core.Job<E>,
      run: Inflight.Run<Core.Outcome>,
      restore: <A, E2, R>(effect: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>,
      started: boolean,
      onTimeout: OnTimeout
    ): Effect.Effect<Core.Outcome, E> {
      const handed = started ? Effect.void : handOff(job, run)
      // a stale value offered on the way is the answer, as a waiter would have it
      if (run.answered) return Effect.zipRight(handed, restore(Deferred.await(run.first) as Effect.Effect<Core.Outcome, E>))
      run.waiters--
      Metrics.countRequests("error", 1, job.spec.name)
      return Effect.zipRight(handed, Effect.fail(onTimeout(job.key) as E))
    }

    /** The read's answer for the request and the run, or the run handed to a worker (unless `started`). */
    function afterRead<E>(
      job: Core.Job<E>,
      run: Inflight.Run<Core.Outcome>,
      exit: Exit.Exit<Refresh.Step>,
      restore: <A, E2, R>(effect: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>,
      started: boolean,
      onTimeout: OnTimeout,
      /** What is left of the request's `timeout` for the wait (none without one). */
      left: number | undefined
    ): Effect.Effect<Core.Outcome, E> {
      if (Exit.isFailure(exit)) {
        const failed = Exit.failCause(exit.cause as Cause.Cause<E>)
        if (!Cause.isInterruptedOnly(exit.cause)) {
          inflight.settle(job.key, run, failed)
          return failed
        }
        run.waiters--
        return started ? failed : Effect.zipRight(handOff(job, run), failed)
      }
      const step = exit.value
      if (step._tag === "Done") {
        const outcome = concluded(job, step.outcome)
        // a worker started for a burst ends the run: the store's answer to its claim may be newer
        if (started) inflight.answer(run, outcome)
        else inflight.settle(job.key, run, outcome)
        return outcome
      }
      const wait = restore(awaitFirst<E>(job, run, onTimeout, left))
      return started ? wait : Effect.zipRight(handOff(job, run, step), wait)
    }

    /** Gives a run a request began to a worker, in the runtime's scope, with the request's services. */
    const handOff = (job: Core.Job, run: Inflight.Run<Core.Outcome>, from?: Refresh.Step) =>
      Effect.map(Effect.runtime<never>(), (runtime) => inflight.hand(job.key, run, work(job, false, from), runtime))

    const start = <E>(job: Core.Job<E>, refreshing = false, waiting = false) =>
      inflight.start(job.key, () => work(job, refreshing), waiting, job.spec.name)

    /**
     * How long until the store's clock, as last measured, leaves the window it still puts `held`
     * in (0: it does not). This process's clock is a little ahead (within the skew it does not
     * correct) and crossed the boundary first: a worker now would only read the record we hold
     * and find it fresh, once per request until the store's boundary.
     */
    const untilStoreBoundary = (held: L1.Entry, at: number, windowMs: number): number => {
      const storeAt = at - core.clock.skew + core.clock.offset
      const bucket = Window.bucketOf(storeAt, windowMs)
      return L1.isHit(held, bucket) ? (bucket + 1) * windowMs - storeAt + 1 : 0
    }

    /**
     * Keys whose run waits for the store's boundary. Not a run: requests meanwhile are answered
     * with what is held, and an invalidation or a purge is served as ever.
     */
    const atStoreBoundary = yield* FiberMap.make<string>()

    /**
     * The key's run, started at the store's boundary, request or not: the burst that crossed
     * this process's boundary may be the window's last, and its run must not wait for the next.
     * Nothing starts when the key got this window's value meanwhile, lost it, or runs already.
     */
    const startAtStoreBoundary = (job: Core.Job, ms: number) => {
      const startOrWait = (ms: number): Effect.Effect<void> =>
        Effect.zipRight(
          Effect.sleep(ms),
          Effect.flatMap(Core.now(core), (at) => {
            const held = l1.entries.get(job.key)
            if (held === undefined || held.windowMs !== job.spec.windowMs || noWorker(job.key, at, held)) return Effect.void
            if (L1.isHit(held, Window.bucketOf(at, job.spec.windowMs))) return Effect.void
            const left = untilStoreBoundary(held, at, job.spec.windowMs)
            return left === 0 ? Effect.asVoid(start(job)) : startOrWait(left)
          })
        )
      return Effect.asVoid(FiberMap.run(atStoreBoundary, job.key, startOrWait(ms), { onlyIfMissing: true }))
    }

    /** No worker is to start for a held value: the key's run is under way, or it backs off. */
    const noWorker = (key: string, at: number, held: L1.Entry): boolean =>
      inflight.get(key) !== undefined || at < held.retryAt

    /** A held value answered as stale: counted by its age in windows. */
    const stale = (loader: string | undefined, at: number, held: L1.Entry): Core.Outcome => {
      Metrics.countRequests("stale", 1, loader)
      const age = Math.max(0, Math.floor(at / held.windowMs) - held.bucket)
      if (loader === undefined) Metrics.staleAge.unsafeUpdate(age, [])
      else Metrics.update(Metrics.staleAge, age, { loader })
      held.stales++
      return { entry: held, cache: "stale" }
    }

    const staleWhileRunning: Engine["staleWhileRunning"] = (key, loader, at, held) =>
      noWorker(key, at, held) ? stale(loader, at, held) : undefined

    const serveStale = <E>(job: Core.Job<E>, at: number, held: L1.Entry): Effect.Effect<Core.Outcome, E> => {
      const outcome = stale(job.spec.name, at, held)
      if (noWorker(job.key, at, held)) return Effect.succeed(outcome)
      const ms = untilStoreBoundary(held, at, job.spec.windowMs)
      return Effect.as(ms === 0 ? start(job) : startAtStoreBoundary(job, ms), outcome)
    }

    const withTimeout = <A, E>(job: Core.Job, wait: Effect.Effect<A, E>, onTimeout: OnTimeout): Effect.Effect<A, E> => {
      const timeout = job.spec.timeout
      if (timeout === undefined) return wait
      return Effect.timeoutFail(wait, { duration: timeout, onTimeout: () => onTimeout(job.key) as E })
    }

    const timeoutMs = (job: Core.Job) => job.spec.timeout === undefined ? undefined : Duration.toMillis(job.spec.timeout)

    /**
     * A request's wait for the run's first answer, within `ms` (none: no bound). A request that
     * gave up is counted as failed, not as answered.
     */
    const awaitFirst = <E>(job: Core.Job, run: Inflight.Run<Core.Outcome>, onTimeout: OnTimeout, ms: number | undefined) => {
      const wait = Deferred.await(run.first) as Effect.Effect<Core.Outcome, E>
      if (ms === undefined || run.answered) return wait
      const bounded = ms > 0
        ? Effect.timeoutFail(wait, { duration: ms, onTimeout: () => onTimeout(job.key) as E })
        : Effect.fail(onTimeout(job.key) as E)
      return Effect.tapError(bounded, () =>
        Effect.sync(() => {
          if (!run.answered) run.waiters--
          Metrics.countRequests("error", 1, job.spec.name)
        }))
    }

    const awaitValue = <E>(job: Core.Job<E>, at: number, onTimeout: OnTimeout): Effect.Effect<Core.Outcome, E> => {
      // the key backs off after a failure: answered at once with it
      const failed = inflight.get(job.key) === undefined ? core.failures.get(job.key, at) : undefined
      if (failed !== undefined) {
        Metrics.countRequests("error", 1, job.spec.name)
        return Effect.failCause(failed.cause as Cause.Cause<E>)
      }
      return inflight.get(job.key) === undefined ? readThrough(job, onTimeout) : awaitRun(job, onTimeout)
    }

    /** Waits for the key's run, started unless one is under way, within the loader's `timeout`. */
    const awaitRun = <E>(job: Core.Job<E>, onTimeout: OnTimeout): Effect.Effect<Core.Outcome, E> =>
      Effect.flatMap(start(job, false, true), (run) =>
        awaitFirst<E>(job, run, onTimeout, timeoutMs(job)))

    const serve: Engine["serve"] = (job, at, held, onTimeout) =>
      held !== undefined && held.windowMs === job.spec.windowMs ? serveStale(job, at, held) : awaitValue(job, at, onTimeout)

    const getMany: Engine["getMany"] = (batch, at, onTimeout) =>
      Batch.getMany({
        core,
        inflight,
        scope,
        serve: (job, at, held) => serve(job, at, held, onTimeout),
        work: (job) => work(job, false),
        awaitFirst: (job, run) => awaitFirst<never>(job, run, onTimeout, timeoutMs(job))
      }, batch, at)

    const peek: Engine["peek"] = (spec, key) =>
      Effect.flatMap(Core.storeNow(core), (storeAt) => {
        const held = l1.promote(key, Window.bucketOf(storeAt, spec.windowMs))
        if (held !== undefined && held.windowMs === spec.windowMs) {
          return Effect.map(Core.now(core), (at) =>
            Option.some<Core.Outcome>({
              entry: held,
              cache: L1.isHit(held, Window.bucketOf(at, spec.windowMs)) ? "hit" : "stale"
            }))
        }
        return store.get(key).pipe(
          Effect.tap((read) => Core.observe(core, read.now)),
          Effect.map((read) =>
            Option.flatMap(read.stored, (stored) => {
              const latest = stored.bucket >= Window.bucketOf(read.now, spec.windowMs) && stored.fence > read.mark
              const c = Core.candidate(spec, stored, latest, read.mark)
              if (c === undefined) return Option.none()
              const entry = l1.publish(key, c)
              return Option.some<Core.Outcome>({ entry, cache: L1.isTrusted(entry) ? "hit" : "stale" })
            })
          ),
          Effect.catchAll((e) => Effect.as(Core.storeFailed(e), Option.none()))
        )
      })

    /** Whether the key was marked (`false`: it held nothing and was left unmarked). */
    const invalidateKey = (key: string, markAbsent: boolean) =>
      store.invalidate(key, { markAbsent }).pipe(
        Effect.tap((done) => Effect.sync(() => Option.map(done.mark, (mark) => l1.heardInvalidation(key, mark)))),
        // this process at least stops answering hits with it
        Effect.tapError((e) => Effect.zipRight(Effect.sync(() => l1.distrust(key)), Core.storeFailed(e))),
        Effect.map((done) => Option.isSome(done.mark)),
        Effect.withSpan("lockstep.invalidate", { attributes: { "lockstep.key": key }, captureStackTrace: false })
      )

    const invalidate: Engine["invalidate"] = (key) => Effect.asVoid(invalidateKey(key, true))

    const invalidateTag: Engine["invalidateTag"] = (tag) =>
      store.tagged(tag).pipe(
        // a member whose records are gone needs no mark, and leaves the set (a key joins its tags
        // again when its next lookup starts and when its value is committed)
        Effect.flatMap((keys) =>
          Effect.forEach(keys, (key) => invalidateKey(key, false), { concurrency: 16 }).pipe(
            Effect.tap((marked) => store.untag(tag, keys.filter((_, i) => !marked[i]))),
            Effect.as(keys.length)
          )
        ),
        Effect.withSpan("lockstep.invalidateTag", { attributes: { "lockstep.tag": tag }, captureStackTrace: false })
      )

    const purge: Engine["purge"] = (key) =>
      store.purge(key).pipe(
        // told to this process at once, whether or not its notice comes back
        Effect.tap((done) =>
          Effect.sync(() => {
            l1.heardPurge(key, done.fence)
            inflight.purged(key)
          })
        ),
        // this process at least stops answering hits with it
        Effect.tapError((e) => Effect.zipRight(Effect.sync(() => l1.distrust(key)), Core.storeFailed(e))),
        Effect.asVoid,
        Effect.withSpan("lockstep.purge", { attributes: { "lockstep.key": key }, captureStackTrace: false })
      )

    const purgeTag: Engine["purgeTag"] = (tag) =>
      store.tagged(tag).pipe(
        Effect.flatMap((keys) => Effect.forEach(keys, purge, { concurrency: 16, discard: true }).pipe(Effect.as(keys.length))),
        Effect.withSpan("lockstep.purgeTag", { attributes: { "lockstep.tag": tag }, captureStackTrace: false })
      )

    const refresh: Engine["refresh"] = <E>(job: Core.Job<E>, onTimeout: OnTimeout) =>
      Effect.gen(function*() {
        const startedAt = yield* Core.now(core)
        const mark = yield* store.invalidate(job.key).pipe(
          Effect.map((done) => done.mark),
          Effect.tap((mark) => Option.isSome(mark) ? Effect.sync(() => l1.heardInvalidation(job.key, mark.value)) : Effect.void),
          Effect.catchAll((e) => Effect.as(Core.storeFailed(e), Option.none<number>()))
        )
        const newEnough = (o: Core.Outcome) =>
          Option.match(mark, { onNone: () => o.entry.computedAt >= startedAt, onSome: (m) => o.entry.fence > m })
        // a worker that started before the invalidation may answer with an older value: go again
        let outcome = yield* Effect.flatMap(start(job, true), (run) => Deferred.await(run.final) as Effect.Effect<Core.Outcome, E>)
        for (let i = 0; i < 3 && !newEnough(outcome); i++) {
          outcome = yield* Effect.flatMap(start(job, true), (run) => Deferred.await(run.final) as Effect.Effect<Core.Outcome, E>)
        }
        return outcome
      }).pipe(
        (wait) => withTimeout(job, wait, onTimeout),
        Effect.withSpan("lockstep.refresh", { attributes: Core.attributes(job.spec, job.key, { "lockstep.forced": true }), captureStackTrace: false })
      )

    const set: Engine["set"] = (spec, key, value, tags) =>
      Effect.gen(function*() {
        const data = yield* spec.encode(value)
        // like a lookup's run: a tag invalidation from now on reaches the key
        if (tags.length > 0) yield* Effect.catchAll(store.tag(key, tags, spec), (e) => Core.storeFailed(e))
        const written = yield* Effect.either(store.set(key, { data, windowMs: spec.windowMs, schema: spec.schemaId }, spec))
        const decode = spec.decode
        if (Either.isRight(written)) {
          const w = written.right
          yield* Core.observe(core, w.now)
          const entry = l1.publish(key, {
            value,
            bucket: w.bucket,
            fence: w.fence,
            computedAt: w.now,
            windowMs: spec.windowMs,
            decode,
            latest: true,
            mark: w.mark
          })
          return { entry, cache: "hit" } satisfies Core.Outcome
        }
        // a set that returns is never lost: with the store unreachable it fails, and this process
        // stops answering hits with the value it replaces, as an invalidation would
        l1.distrust(key)
        yield* Core.storeFailed(written.left)
        return yield* written.left
      }).pipe(Effect.withSpan("lockstep.set", { attributes: { "lockstep.key": key }, captureStackTrace: false }))

    const warm: Engine["warm"] = (job, at) =>
      Effect.suspend(() => {
        const held = l1.promote(job.key, Window.bucketOf(at, job.spec.windowMs))
        if (held !== undefined && held.windowMs === job.spec.windowMs && L1.isHit(held, Window.bucketOf(at, job.spec.windowMs))) {
          return Effect.void
        }
        return Effect.flatMap(start(job), (run) => Effect.ignore(Deferred.await(run.final)))
      })

    const earlyRuns = new Set<string>()
    const early: Engine["early"] = (job, bucket) =>
      Effect.suspend(() => {
        const held = l1.entries.get(job.key)
        const next = held?.next
        if (next !== undefined && next.bucket >= bucket && L1.isTrusted(next)) return Effect.void
        // a run of this key under way here (the window's own, late) is the fleet's for now
        if (earlyRuns.has(job.key) || inflight.get(job.key) !== undefined) return Effect.void
        earlyRuns.add(job.key)
        const token = core.nextToken()
        return Effect.gen(function*() {
          const claimed = yield* Effect.either(store.claim(job.key, {
            windowMs: job.spec.windowMs,
            leaseMs: settings.leaseMs,
            token,
            force: false,
            retainMs: job.spec.retainMs,
            schema: job.spec.schemaId,
            bucket
          }))
          if (Either.isLeft(claimed)) return yield* Core.storeFailed(claimed.left)
          const c = claimed.right
          yield* Core.observe(core, c.now)
          Metrics.update(Metrics.lockOutcomes, 1, { outcome: c._tag.toLowerCase() })
          const current = Window.bucketOf(c.now, job.spec.windowMs)
          if (c._tag === "Fresh") {
            const found = Core.candidate(job.spec, c.stored, true, c.mark)
            if (found === undefined) return
            if (found.bucket > current) l1.publishPending(job.key, found)
            else l1.publish(job.key, found)
            return
          }
          // another process runs it (its commit's notice brings the value), or backs off
          if (c._tag !== "Acquired") return
          yield* Leader.lead(core, job, c, token, () => Effect.void).pipe(
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause)
                ? Effect.interrupt
                : Effect.logWarning(`lockstep: the early run of ${job.key} failed; the window's run will follow at its boundary`, cause)
            )
          )
        }).pipe(
          Effect.ensuring(Effect.sync(() => earlyRuns.delete(job.key))),
          Effect.withSpan("lockstep.early", { attributes: { "lockstep.key": job.key, "lockstep.bucket": bucket }, captureStackTrace: false })
        )
      })

    const inspect: Engine["inspect"] = (options) =>
      store.scan(options).pipe(
        Effect.map((page) => ({
          now: page.now,
          cursor: page.cursor,
          keys: page.keys.map((k) => ({ ...k, served: Option.map(Option.fromNullable(l1.entries.get(k.key)), L1.served) }))
        })),
        Effect.withSpan("lockstep.inspect", { captureStackTrace: false })
      )

    const sizes = Effect.map(FiberMap.size(core.writeBacks), (writeBacks) => ({
      l1: l1.entries.size,
      heard: l1.heardSize(),
      waiting: notices.waiting(),
      inflight: inflight.size(),
      writeBacks
    }))

    // runs after the workers (forked into the scope later) were interrupted by its closing
    if (builtAt !== undefined) yield* Effect.addFinalizer(() => Effect.suspend(() => Lifecycle.closing(builtAt, interrupted.runs)))

    return {
      ...core,
      [TypeId]: TypeId,
      inflight,
      staleWhileRunning,
      serve,
      getMany,
      peek,
      invalidate,
      invalidateTag,
      purge,
      purgeTag,
      refresh,
      set,
      warm,
      early,
      earlyKeys: new Map(),
      inspect,
      sizes
    } satisfies Engine
  })
