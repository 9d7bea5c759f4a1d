/**
 * Test your loaders' caching deterministically: `Memo` over the in-memory store, a simulated
 * fleet of processes sharing it, and a producer that counts its runs.
 *
 * Everything here reads time through Effect's `Clock` and waits with `Effect.sleep`, exactly like
 * `Memo` and the in-memory store do, so under `TestClock` (`it.effect` in `@effect/vitest`) windows,
 * leases, back-off markers, polling and `keepWarm` all move only when the test calls
 * `TestClock.adjust`, and a test of several minutes of fleet traffic runs in milliseconds.
 *
 * @example
 * import { Effect, Fiber, Schema, TestClock, TestContext } from "effect"
 * import { Memo } from "lockstep"
 * import * as Testing from "lockstep/testing"
 *
 * const program = Effect.gen(function*() {
 *   const fleet = yield* Testing.fleet(4)
 *   const load = yield* Testing.producer(Effect.succeed(42), { duration: "1 second" })
 *   const page = Memo.memo({ key: "page", window: "1 minute", schema: Schema.Number }, load.effect)
 *   const requests = yield* Effect.forEach(fleet.pods, (pod) => Effect.fork(pod.run(page)))
 *   // one pod runs the producer for 1 second; the others wait for its commit, which the store
 *   // tells them of with the value (polling every `pollInterval` only if that notice is lost)
 *   yield* TestClock.adjust("1 second")
 *   return { values: yield* Effect.forEach(requests, Fiber.join), runs: yield* load.runs }
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(TestContext.TestContext))).then(({ runs, values }) => {
 *   assert.deepStrictEqual(values, [42, 42, 42, 42])
 *   assert.strictEqual(runs, 1) // one run for the whole fleet
 * })
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Memo from "./Memo.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------------------------
// layers

/**
 * `Memo` with explicit settings over a fresh in-memory store (also provided, for inspection).
 * The layer holds no clock of its own: time is whatever `Clock` the requests run with, so under
 * `TestClock` nothing moves until the test adjusts it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  settings: Partial<Memo.Settings>
): Layer.Layer<Memo.Memo | Redis.Redis, Memo.InvalidOptions> =>
  Memo.layerWith(settings).pipe(Layer.provideMerge(Layer.effect(Redis.Redis, Effect.orDie(Redis.makeMemory()))))

/**
 * `Memo` with the production defaults over a fresh in-memory store: one process, no Redis, all
 * time from `Clock`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Memo.Memo | Redis.Redis> = Layer.orDie(layerWith({}))

// ---------------------------------------------------------------------------------------------
// fleet

/**
 * One simulated process: its own `Memo` runtime (L1, in-flight requests, background fibers) over
 * its own connection to the fleet's shared store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pod {
  readonly index: number
  /** The current process's runtime; `restart` replaces it. */
  readonly runtime: Memo.Runtime
  /** `"up"`, `"disconnected"` (cannot reach the store) or `"crashed"`. */
  readonly status: "up" | "disconnected" | "crashed"
  /**
   * Runs `effect` "on this pod": with its `Memo`, its clock, and its lifetime as `Scope`, so
   * background work such as `Memo.keepWarm` dies with the pod when it crashes. Dies when the
   * pod has crashed and was not restarted: a request cannot reach a dead process.
   */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Memo.Memo | Scope.Scope>>
  /**
   * Kills the process the hard way: its connection to the store is cut first, then its fibers
   * are interrupted. A lock it holds is therefore never released (the interrupted leader's
   * release reaches nothing) and lapses with its lease, as after a `kill -9`. Requests waiting
   * on this pod are interrupted.
   */
  readonly crash: Effect.Effect<void>
  /** Crashes the pod if it is running, then starts a new process: fresh runtime, empty L1. */
  readonly restart: Effect.Effect<void>
  /** Cuts this pod off the store (every store call fails at once, like fail-fast ioredis). */
  readonly disconnect: Effect.Effect<void>
  /** Undoes `disconnect`. */
  readonly reconnect: Effect.Effect<void>
  /**
   * Sets how far this pod's clock is ahead of the store's (negative: behind), in milliseconds.
   * Only the pod's own time reads move; the store keeps the true time, as Redis `TIME` would.
   */
  readonly setClockSkew: (millis: number) => Effect.Effect<void>
}

/**
 * N pods sharing one in-memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fleet {
  readonly pods: ReadonlyArray<Pod>
  /** The shared store as it really is, unaffected by pods' links and skews: for assertions. */
  readonly store: Redis.Store
  /**
   * The store loses every record (tag sets included), as after a `FLUSHDB` or an eviction; with
   * `restart`, as after a Redis restart without persistence: every pod's notice subscription
   * drops and comes back too (notices may have been missed).
   */
  readonly lose: (options?: { readonly restart?: boolean | undefined }) => Effect.Effect<void>
  /**
   * The in-memory server behind the store, as it really is: for a test that plants what another
   * deployment, a restore or a hand edit could leave under the cache's keys, or drops one key's
   * records as an expiry would.
   */
  readonly server: Redis.MemoryServer
}

/** The link between one process incarnation and the store; cut once, it stays cut. */
interface Link {
  up: boolean
  /** The incarnation's notice subscriptions, told when the link goes down or comes back. */
  readonly subscribers: Set<Redis.Subscriber>
}

const setLink = (link: Link, up: boolean) => {
  if (link.up === up) return
  link.up = up
  for (const s of link.subscribers) s.onState(up ? "up" : "down")
}

/** A pod's clock: the ambient clock plus the pod's skew. It keeps `base` so the store can see through it. */
interface SkewedClock extends Clock.Clock {
  readonly base: Clock.Clock
}

const isSkewed = (clock: Clock.Clock): clock is SkewedClock => "base" in clock

const skewed = (base: Clock.Clock, skewMs: () => number): SkewedClock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  base,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + skewMs(),
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + BigInt(Math.round(skewMs() * 1e6)),
  currentTimeMillis: Effect.sync(() => base.unsafeCurrentTimeMillis() + skewMs()),
  currentTimeNanos: Effect.sync(() => base.unsafeCurrentTimeNanos() + BigInt(Math.round(skewMs() * 1e6))),
  // durations are relative: a skewed clock sleeps as long as the real one
  sleep: (duration) => base.sleep(duration)
})

/** Store calls always run on the unskewed clock: the store is the fleet's time authority. */
const onStoreClock = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.clockWith((clock) => isSkewed(clock) ? Effect.withClock(effect, clock.base) : effect)

/** The shared store as one pod sees it: through a link that a crash or a partition cuts. */
const connect = (store: Redis.Store, link: Link): Redis.Store => {
  const call = <A>(operation: string, f: () => Effect.Effect<A, Redis.RedisError>): Effect.Effect<A, Redis.RedisError> =>
    Effect.suspend(() =>
      link.up ? onStoreClock(f()) : Effect.fail(new Redis.RedisError({ reason: "Unavailable", operation }))
    )
  return {
    tenant: store.tenant,
    kind: store.kind,
    health: Effect.sync(() => link.up ? "closed" : "open"),
    get: (key) => call("get", () => store.get(key)),
    read: (key) => call("read", () => store.read(key)),
    readMany: (keys) => call("readMany", () => store.readMany(keys)),
    claim: (key, options) => call("claim", () => store.claim(key, options)),
    renew: (key, token, leaseMs) => call("renew", () => store.renew(key, token, leaseMs)),
    commit: (key, value, token, lifetimes) => call("commit", () => store.commit(key, value, token, lifetimes)),
    unchanged: (key, value, token, details) => call("unchanged", () => store.unchanged(key, value, token, details)),
    purge: (key) => call("purge", () => store.purge(key)),
    release: (key, token, backoff) => call("release", () => store.release(key, token, backoff)),
    invalidate: (key, options) => call("invalidate", () => store.invalidate(key, options)),
    tag: (key, tags, lifetimes) => call("tag", () => store.tag(key, tags, lifetimes)),
    tagged: (tag) => call("tagged", () => store.tagged(tag)),
    untag: (tag, keys) => call("untag", () => store.untag(tag, keys)),
    set: (key, value, lifetimes) => call("set", () => store.set(key, value, lifetimes)),
    scan: (options) => call("scan", () => store.scan(options)),
    // notices reach the pod only while its link is up; it hears the link go down and come back
    subscribe: (subscriber) => {
      const own: Redis.Subscriber = {
        onNotice: (notice) => {
          if (link.up) subscriber.onNotice(notice)
        },
        onState: (state) => subscriber.onState(link.up ? state : "down")
      }
      return Effect.zipRight(
        store.subscribe(own),
        Effect.acquireRelease(
          Effect.sync(() => {
            link.subscribers.add(subscriber)
            if (!link.up) subscriber.onState("down")
          }),
          () => Effect.sync(() => link.subscribers.delete(subscriber))
        )
      )
    }
  }
}

interface Incarnation {
  readonly runtime: Memo.Runtime
  readonly scope: Scope.CloseableScope
  readonly link: Link
  crashed: boolean
}

/**
 * An in-process fleet: `n` independent `Memo` runtimes (each with its own L1, in-flight state
 * and background fibers, like separate server processes) over one shared in-memory store, so a
 * test can fire requests "on different pods" and check fleet-wide behaviour: one producer run
 * per window, stale serving, takeover after a crash, back-off after failures. The pods live in
 * the enclosing scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fleet = (
  n: number,
  settings: Partial<Memo.Settings> = {}
): Effect.Effect<Fleet, Memo.InvalidOptions, Scope.Scope> =>
  Effect.gen(function*() {
    if (!Number.isSafeInteger(n) || n < 1) {
      return yield* new Memo.InvalidOptions({ message: `a fleet needs a positive whole number of pods, got ${n}` })
    }
    const server = Redis.makeMemoryServer()
    const store = yield* Effect.orDie(Redis.makeMemory({ server }))
    const fleetScope = yield* Effect.scope
    const links = new Set<Link>()

    const boot = Effect.fnUntraced(function*() {
      const scope = yield* Scope.fork(fleetScope, ExecutionStrategy.sequential)
      const link: Link = { up: true, subscribers: new Set() }
      links.add(link)
      yield* Scope.addFinalizer(scope, Effect.sync(() => links.delete(link)))
      const runtime = yield* Memo.make(settings).pipe(
        Effect.provideService(Redis.Redis, connect(store, link)),
        Effect.provideService(Scope.Scope, scope),
        Effect.onError(() => Scope.close(scope, Exit.void))
      )
      return { runtime, scope, link, crashed: false } satisfies Incarnation
    })

    const makePod = Effect.fnUntraced(function*(index: number) {
      let current: Incarnation = yield* boot()
      let skewMs = 0

      const crash = Effect.suspend(() => {
        const dying = current
        if (dying.crashed) return Effect.void
        dying.crashed = true
        setLink(dying.link, false) // first, so the interrupted leader's release never lands
        return Scope.close(dying.scope, Exit.void)
      })

      const pod: Pod = {
        index,
        get runtime() {
          return current.runtime
        },
        get status() {
          return current.crashed ? "crashed" : current.link.up ? "up" : "disconnected"
        },
        run: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          Effect.suspend(() => {
            const { crashed, runtime, scope } = current
            if (crashed) return Effect.dieMessage(`lockstep/testing: pod ${index} has crashed; restart it first`)
            return effect.pipe(
              Effect.provideService(Memo.Memo, runtime),
              Effect.provideService(Scope.Scope, scope),
              (self) => Effect.clockWith((clock) => Effect.withClock(self, skewed(isSkewed(clock) ? clock.base : clock, () => skewMs)))
            )
          }) as Effect.Effect<A, E, Exclude<R, Memo.Memo | Scope.Scope>>, // TS cannot equate nested Excludes
        crash,
        restart: Effect.zipRight(crash, Effect.map(Effect.orDie(boot()), (next) => {
          current = next
        })),
        disconnect: Effect.sync(() => {
          if (!current.crashed) setLink(current.link, false)
        }),
        reconnect: Effect.sync(() => {
          if (!current.crashed) setLink(current.link, true)
        }),
        setClockSkew: (millis) =>
          Effect.sync(() => {
            skewMs = millis
          })
      }
      return pod
    })

    const pods = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), makePod)
    const lose: Fleet["lose"] = (options) =>
      Effect.sync(() => {
        server.cells.clear()
        if (options?.restart !== true) return
        for (const link of links) {
          if (!link.up) continue
          for (const s of [...link.subscribers]) s.onState("down")
          for (const s of [...link.subscribers]) s.onState("up")
        }
      })
    return { pods, store, lose, server } satisfies Fleet
  })

// ---------------------------------------------------------------------------------------------
// producer

/**
 * The defect of a run that a `Producer` was told to fail, when no `failWith` is given. A defect
 * rather than an error so the producer fits any service signature; to the cache a failed run is
 * a failed run either way.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProducerFailure extends Data.TaggedError("ProducerFailure")<{ readonly run: number }> {
  override get message() {
    return `producer run ${this.run} failed (told to by Testing.producer)`
  }
}

/**
 * What a `Producer` has done so far.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProducerStats {
  readonly started: number
  readonly succeeded: number
  /** Runs that ended in an error or a defect. */
  readonly failed: number
  readonly interrupted: number
  /** Runs in progress now. */
  readonly running: number
  /** The most runs ever in progress at once: 1 means no two runs overlapped. */
  readonly maxRunning: number
  /** When each run started, by the `Clock` of the fiber that ran it (a pod's own clock). */
  readonly startedAt: ReadonlyArray<number>
}

/**
 * A stand-in for an expensive computation, instrumented for assertions.
 *
 * @since 0.1.0
 * @category models
 */
export interface Producer<A, E = never, R = never> {
  /** The effect to memoise. Each evaluation is one run: it sleeps `duration`, then computes. */
  readonly effect: Effect.Effect<A, E, R>
  /** Runs started so far. */
  readonly runs: Effect.Effect<number>
  readonly stats: Effect.Effect<ProducerStats>
  /** From now on, runs fail after their duration (`false`: they succeed again). */
  readonly setFailing: (failing: boolean) => Effect.Effect<void>
}

/**
 * Wraps a computation so a test can count its runs, make it fail, and make it take virtual time
 * (an `Effect.sleep`, so only `TestClock.adjust` lets it finish). `body` may take the run number
 * (1, 2, …), which makes each run's value tell which run produced it.
 *
 * @example
 * import { Effect } from "effect"
 * import * as Testing from "lockstep/testing"
 *
 * Effect.gen(function*() {
 *   // returns 100 on its first run, 200 on its second; each run takes 2 (virtual) seconds
 *   const query = yield* Testing.producer((run) => Effect.succeed(run * 100), { duration: "2 seconds" })
 *   return query
 * })
 *
 * @since 0.1.0
 * @category constructors
 */
export const producer = <A, E = never, R = never>(
  body: Effect.Effect<A, E, R> | ((run: number) => Effect.Effect<A, E, R>),
  options: {
    /** Virtual time each run takes before it computes or fails. Default: none. */
    readonly duration?: Duration.DurationInput | undefined
    /** Start out failing. Default `false`. */
    readonly failing?: boolean | undefined
    /** The error a failing run fails with. Default: it dies with `ProducerFailure`. */
    readonly failWith?: ((run: number) => E) | undefined
  } = {}
): Effect.Effect<Producer<A, E, R>> =>
  Effect.sync(() => {
    const compute = Effect.isEffect(body) ? () => body : body
    const failWith = options.failWith
    const durationMs = options.duration === undefined ? 0 : Duration.toMillis(options.duration)
    let failing = options.failing ?? false
    let started = 0
    let succeeded = 0
    let failed = 0
    let interrupted = 0
    let running = 0
    let maxRunning = 0
    const startedAt: Array<number> = []

    const work = (run: number): Effect.Effect<A, E, R> => {
      const outcome = Effect.suspend((): Effect.Effect<A, E, R> =>
        !failing
          ? compute(run)
          : failWith === undefined
          ? Effect.die(new ProducerFailure({ run }))
          : Effect.fail(failWith(run))
      )
      return durationMs > 0 ? Effect.zipRight(Effect.sleep(durationMs), outcome) : outcome
    }

    const effect = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => {
        const run = ++started
        startedAt.push(at)
        maxRunning = Math.max(maxRunning, ++running)
        return Effect.flatMap(Effect.exit(restore(work(run))), (exit) => {
          running--
          if (Exit.isSuccess(exit)) succeeded++
          else if (Exit.isInterrupted(exit)) interrupted++
          else failed++
          return exit
        })
      })
    )

    return {
      effect,
      runs: Effect.sync(() => started),
      stats: Effect.sync((): ProducerStats => ({
        started,
        succeeded,
        failed,
        interrupted,
        running,
        maxRunning,
        startedAt: startedAt.slice()
      })),
      setFailing: (next) =>
        Effect.sync(() => {
          failing = next
        })
    }
  })

// ---------------------------------------------------------------------------------------------
// assertions

/**
 * Runs `effect` and dies unless it completes without any virtual time passing. It checks the
 * promise that matters most, "once a value exists, requests never wait for the producer", and
 * makes a request that does wait fail the test at once instead of hanging it (under `TestClock`
 * nothing would ever wake it). Needs `TestClock`.
 *
 * @since 0.1.0
 * @category assertions
 */
export const instantly = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(0) // lets every runnable fiber run, moves no time
    const exit = yield* Fiber.poll(fiber)
    if (Option.isNone(exit)) {
      yield* Fiber.interrupt(fiber)
      return yield* Effect.dieMessage("lockstep/testing: the effect waited for virtual time; it was expected to complete at once")
    }
    return yield* exit.value
  })
