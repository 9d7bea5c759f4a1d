/**
 * A pod: one process with its own ioredis client, L1 and `Memo` runtime, driven by its parent
 * over IPC. Every producer start and finish, every claim, commit and release its store makes,
 * and every load summary (what it served, how fast, whether it ever went back to an older
 * window) is reported to the parent, never through Redis, so the parent counts what happened
 * outside the processes under test.
 *
 * Run as `node --import tsx test/support/pod.ts` (or bundled, see `./bundles.js`) with `LOCKSTEP_POD` set to a JSON `PodConfig`.
 *
 * Shutdown: the `exit` message and `SIGTERM` both interrupt the load, close the `Memo` scope
 * (whose finalizers release a held fleet lock), report `closed`, then exit. `SIGKILL` and
 * `SIGSTOP` are the parent's to send.
 */
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { Cause, Clock, ConfigProvider, Context, Duration, Effect, ExecutionStrategy, Exit, Fiber, Layer, Metric, MetricState, Schema, Scope } from "effect"
import { Memo, Redis, Window } from "../../src/index.js"

export interface PodConfig {
  readonly id: number
  /** Environment for `Redis.layerConfig` (`REDIS_HOST`, `REDIS_PORT`, `TENANT`, …). */
  readonly env: Record<string, string>
  readonly key: string
  readonly windowMs: number
  readonly producerMs: number
  /** Added to this pod's Effect `Clock`, to simulate skew between machines (`clockStep` changes it). */
  readonly skewMs?: number
  /**
   * `false`: `busy` claims (polls while another pod produces) are counted, not reported one by
   * one, so that many keys polled by many pods do not load the channel to the parent.
   */
  readonly reportBusyClaims?: boolean
  /** `Memo` settings in milliseconds. */
  readonly settings?: Partial<Record<Exclude<keyof Memo.Settings, "l1Capacity">, number>>
  /** Tags every key gets (for `Memo.invalidateTag`). */
  readonly tags?: ReadonlyArray<string>
  /**
   * With `n`, key `<key>-<i>` of a multi-key load also gets the tag `group-<i mod n>`, so that a
   * tag reaches some keys and not others.
   */
  readonly tagGroups?: number
}

export type ToPod =
  /**
   * `keys`: callers spread over that many keys, `<key>-0` … `<key>-(keys-1)`, caller `i` starting
   * at key `i mod keys` (so `callers ≥ keys` asks for every key at once); without it, one key.
   */
  | {
    readonly type: "load"
    readonly callers: number
    readonly durationMs: number
    readonly pauseMs: number
    readonly keys?: number
    /**
     * Keep a uniform sample of this many latencies (reservoir) rather than every one, so that a
     * long load's memory stays flat and its heap measures the cache, not the recording.
     */
    readonly latencySample?: number
  }
  | { readonly type: "failing"; readonly on: boolean }
  /** The next producer run on this pod (`on: false` cancels) fails, once. */
  | { readonly type: "failNextRun"; readonly on: boolean }
  | { readonly type: "producerMs"; readonly ms: number }
  /** Steps this pod's Effect `Clock` by `ms` (negative: backwards) from now on, as NTP or a VM pause would. */
  | { readonly type: "clockStep"; readonly ms: number }
  /**
   * The next producer run ends with a synchronous busy loop of `ms` (after its usual sleep): the
   * event loop stalls, no renewal, no IPC, while the process stays up.
   */
  | { readonly type: "stallNextRun"; readonly ms: number }
  /**
   * The next producer run on this pod of window `fromBucket` or a later one (`on: false`
   * cancels) hangs after its usual sleep, until it is interrupted (by `maxRun`), while the
   * process and Redis stay healthy: its renewals go on. A run of an earlier window, under way
   * when this arrives, leaves it for the next.
   */
  | { readonly type: "hangNextRun"; readonly on: boolean; readonly fromBucket?: number }
  /**
   * Retains about `bytesPerSecond` of heap from now on, never freed (0 stops adding): a leak on
   * purpose, to show that the soak's memory bound catches one.
   */
  | { readonly type: "leak"; readonly bytesPerSecond: number }
  /** Writes a V8 heap snapshot to `path` (after a full collection) and reports `snapshot`, to see what a growing heap holds. */
  | { readonly type: "heapSnapshot"; readonly path: string }
  /** `gc`: collect garbage first, so that heap samples over time show what is retained. */
  | { readonly type: "stats"; readonly gc?: boolean }
  /** Invalidates a key (`loader.invalidate`) or a tag (`Memo.invalidateTag`) through this pod. */
  | { readonly type: "invalidate"; readonly requestId: number; readonly key?: string | undefined; readonly tag?: string | undefined }
  /** Restarts this pod's `Memo` runtime (empty L1, no workers), as after a restart; its Redis client stays. */
  | { readonly type: "forget" }
  | { readonly type: "exit" }

/**
 * `wallAt` is `Date.now()`: the machine's clock, shared by every pod and by redis-server, so
 * the parent can place events in windows whatever skew a pod's Effect `Clock` has. `bucket`
 * in `start`/`finish` is the window of `wallAt` at the start.
 */
export type FromPod =
  | { readonly type: "ready"; readonly id: number }
  | { readonly type: "start"; readonly id: number; readonly key: string; readonly at: number; readonly wallAt: number; readonly bucket: number }
  | { readonly type: "stepped"; readonly id: number; readonly wallAt: number; readonly skewMs: number }
  | {
    readonly type: "finish"
    readonly id: number
    readonly key: string
    readonly at: number
    readonly wallAt: number
    readonly bucket: number
    readonly ok: boolean
    /** The run was interrupted (by `maxRun`, a lost lease or shutdown) rather than finished. */
    readonly interrupted?: boolean | undefined
  }
  | {
    readonly type: "claim"
    readonly id: number
    readonly key: string
    /** When the claim was sent (`wallAt`: when its answer came). */
    readonly sentAt: number
    readonly wallAt: number
    readonly outcome: "fresh" | "busy" | "backoff" | "acquired" | "error"
    readonly bucket?: number | undefined
    readonly fence?: number | undefined
    readonly error?: string | undefined
  }
  | {
    readonly type: "commit"
    readonly id: number
    readonly key: string
    /** When the commit was sent (`wallAt`: when its answer came). */
    readonly sentAt: number
    readonly wallAt: number
    readonly bucket: number
    readonly fence: number
    /** `false` for a value produced without Redis, offered back without a lock. */
    readonly withToken: boolean
    readonly outcome: "committed" | "older" | "fenced" | "future" | "changed" | "error"
    readonly error?: string | undefined
  }
  | { readonly type: "renew"; readonly id: number; readonly key: string; readonly wallAt: number; readonly outcome: "held" | "lost" | "error" }
  | {
    readonly type: "release"
    readonly id: number
    readonly key: string
    readonly wallAt: number
    /** `true` when the lock was turned into a back-off marker (the producer failed). */
    readonly backoff: boolean
    readonly ok: boolean
  }
  | {
    readonly type: "loaded"
    readonly id: number
    readonly calls: number
    readonly errors: number
    /** Calls interrupted because the runtime they ran on was closed (`forget`): not errors of the cache. */
    readonly interrupted: number
    readonly regressions: number
    /**
     * How many windows behind the window it was asked in the oldest answer was (0: every answer
     * was of its own window; 1: a value of the window before, served stale).
     */
    readonly maxWindowsBehind: number
    readonly maxLatencyMs: number
    readonly latenciesMs: ReadonlyArray<number>
    /** Calls answered per window (every key together). */
    readonly servedBuckets: Record<string, number>
    /** Per key: how many distinct windows it was served in (multi-key loads). */
    readonly windowsByKey: Record<string, number>
    /** Calls by `Info.cache`, and the slowest of each kind. */
    readonly byCache: Record<string, number>
    readonly maxLatencyByCache: Record<string, number>
    readonly rssMb: number
    readonly heapUsedMb: number
    /** Claims this pod made since it started, by outcome (reported or not). */
    readonly claims: Record<string, number>
    /**
     * Per value (`<key>|<startedAt>`, when its lookup started on the machine's clock): the first
     * time this pod answered it, and the last time it answered it as a `hit`.
     */
    readonly firstServed: Record<string, number>
    readonly lastHit: Record<string, number>
    /** Value → when the last call answered with it as a hit was made (`lastHit` is when it was answered). */
    readonly lastHitAsked: Record<string, number>
    readonly firstError?: string | undefined
  }
  | {
    readonly type: "stats"
    readonly id: number
    readonly rssMb: number
    readonly heapUsedMb: number
    /** Counters and gauges as `name{k=v,…}` → value; histograms as their count. */
    readonly metrics: Record<string, number>
  }
  | {
    readonly type: "invalidated"
    readonly id: number
    readonly requestId: number
    readonly startedWallAt: number
    readonly returnedWallAt: number
    readonly ok: boolean
    /** Keys a tag reached. */
    readonly count?: number | undefined
    readonly error?: string | undefined
  }
  | { readonly type: "fatal"; readonly id: number; readonly kind: string; readonly message: string }
  | { readonly type: "snapshot"; readonly id: number; readonly path: string }
  | { readonly type: "closed"; readonly id: number; readonly wallAt: number }

/** `startedAt`: when the lookup started (machine clock), which tells values computed before an invalidation. */
const Value = Schema.Struct({ pod: Schema.Number, bucket: Schema.Number, seq: Schema.Number, startedAt: Schema.Number })

const config: PodConfig = JSON.parse(process.env.LOCKSTEP_POD ?? "{}")
const sendNow = (message: FromPod) => process.send?.(message)
const send = (message: FromPod) => Effect.sync(() => sendNow(message))
/** Sends and waits until the message is handed to the channel, for the last words of a pod. */
const sendFlushed = (message: FromPod) =>
  Effect.async<void>((resume) => {
    if (!process.send || !process.connected) return resume(Effect.void)
    process.send(message, undefined, {}, () => resume(Effect.void))
  })

for (const kind of ["unhandledRejection", "uncaughtException"] as const) {
  process.on(kind, (error: unknown) => {
    sendNow({ type: "fatal", id: config.id, kind, message: error instanceof Error ? error.stack ?? error.message : String(error) })
  })
}

/** This pod's clock: the machine's plus `skewMs`, which a `clockStep` changes at run time. */
let skewMs = config.skewMs ?? 0
const skewedClock = (): Clock.Clock => {
  const base = Clock.make()
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + skewMs,
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + BigInt(skewMs) * 1_000_000n,
    currentTimeMillis: Effect.sync(() => base.unsafeCurrentTimeMillis() + skewMs),
    currentTimeNanos: Effect.sync(() => base.unsafeCurrentTimeNanos() + BigInt(skewMs) * 1_000_000n),
    sleep: (duration) => base.sleep(duration)
  }
}

let failing = false
let producerMs = config.producerMs
let stallNextRun = 0
let hangNextRun = false
let hangFrom = Number.NEGATIVE_INFINITY
let failNextRun = false
let leakTimer: NodeJS.Timeout | undefined
const leaked: Array<unknown> = []
let seq = 0
/** The newest window this process ever served per key, across loads. */
const highestServed = new Map<string, number>()

const producer = (key: string) =>
  Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    const wallAt = Date.now()
    const bucket = Window.bucketOf(wallAt, config.windowMs)
    yield* send({ type: "start", id: config.id, key, at, wallAt, bucket })
    yield* Effect.sleep(producerMs)
    if (hangNextRun && bucket >= hangFrom) {
      hangNextRun = false
      return yield* Effect.never.pipe(
        Effect.onInterrupt(() =>
          Effect.flatMap(Clock.currentTimeMillis, (t) =>
            send({ type: "finish", id: config.id, key, at: t, wallAt: Date.now(), bucket, ok: false, interrupted: true }))
        )
      )
    }
    if (stallNextRun > 0) {
      const until = Date.now() + stallNextRun
      stallNextRun = 0
      while (Date.now() < until) {
        // a synchronous stall: nothing else in this process runs
      }
    }
    const ok = !failing && !failNextRun
    failNextRun = false
    yield* send({ type: "finish", id: config.id, key, at: yield* Clock.currentTimeMillis, wallAt: Date.now(), bucket, ok })
    if (!ok) return yield* Effect.fail(new Error("producer failing on purpose"))
    return { pod: config.id, bucket, seq: ++seq, startedAt: wallAt }
  })

/** One keyed loader for every key the pod serves. */
const pages = Memo.loader({
  key: (key: string) => key,
  window: config.windowMs,
  schema: Value,
  lookup: producer,
  tags: config.tagGroups === undefined ? config.tags ?? [] : (key: string) => {
    const index = Number(key.slice(key.lastIndexOf("-") + 1))
    return key.startsWith(`${config.key}-`) && Number.isSafeInteger(index)
      ? [...(config.tags ?? []), `group-${index % config.tagGroups!}`]
      : config.tags ?? []
  }
})
/** The current `Memo` runtime (a `forget` replaces it): a load's calls run on whichever is current then. */
let currentContext: Context.Context<Memo.Memo> | undefined
const loaderOf = (key: string) =>
  Effect.suspend(() => (currentContext === undefined ? pages.getWithInfo(key) : Effect.provide(pages.getWithInfo(key), currentContext)))

const memory = () => {
  const m = process.memoryUsage()
  return { rssMb: Math.round((m.rss / 2 ** 20) * 100) / 100, heapUsedMb: Math.round((m.heapUsed / 2 ** 20) * 100) / 100 }
}

/** A full garbage collection, without `--expose-gc` on the command line (exposed on first use). */
let gc: (() => void) | undefined
const collectGarbage = () => {
  if (gc === undefined) {
    V8.setFlagsFromString("--expose-gc")
    gc = Vm.runInNewContext("gc") as () => void
  }
  gc()
}

/** N caller loops for `durationMs`; each checks that this process never serves an older window. */
const load = (callers: number, durationMs: number, pauseMs: number, keyCount: number | undefined, latencySample: number | undefined) =>
  Effect.gen(function*() {
    const until = Date.now() + durationMs
    const stats = {
      calls: 0,
      errors: 0,
      interrupted: 0,
      regressions: 0,
      maxWindowsBehind: 0,
      maxLatencyMs: 0,
      firstError: undefined as string | undefined
    }
    const latencies: Array<number> = []
    const served: Record<string, number> = {}
    const windowsByKey = new Map<string, Set<number>>()
    const byCache: Record<string, number> = {}
    const maxLatencyByCache: Record<string, number> = {}
    const firstServed: Record<string, number> = {}
    const lastHit: Record<string, number> = {}
    const lastHitAsked: Record<string, number> = {}
    const keys = keyCount === undefined ? [config.key] : Array.from({ length: keyCount }, (_, i) => `${config.key}-${i}`)
    const caller = (index: number) => Effect.gen(function*() {
      for (let n = index; Date.now() < until; n++) {
        const key = keys[n % keys.length]!
        const started = performance.now()
        const askedAt = Date.now()
        const exit = yield* Effect.exit(loaderOf(key))
        const latency = performance.now() - started
        stats.calls++
        if (latencySample === undefined || latencies.length < latencySample) latencies.push(latency)
        else {
          const slot = Math.floor(Math.random() * stats.calls)
          if (slot < latencySample) latencies[slot] = latency
        }
        if (latency > stats.maxLatencyMs) stats.maxLatencyMs = latency
        if (Exit.isSuccess(exit)) {
          const { bucket, cache } = exit.value
          const value = `${key}|${exit.value.value.startedAt}`
          const answeredAt = Date.now()
          firstServed[value] ??= answeredAt
          if (cache === "hit") {
            lastHit[value] = answeredAt
            lastHitAsked[value] = askedAt
          }
          served[bucket] = (served[bucket] ?? 0) + 1
          stats.maxWindowsBehind = Math.max(stats.maxWindowsBehind, Window.bucketOf(askedAt, config.windowMs) - bucket)
          byCache[cache] = (byCache[cache] ?? 0) + 1
          maxLatencyByCache[cache] = Math.max(maxLatencyByCache[cache] ?? 0, latency)
          let windows = windowsByKey.get(key)
          if (windows === undefined) windowsByKey.set(key, windows = new Set())
          windows.add(bucket)
          if (bucket < (highestServed.get(key) ?? -1)) stats.regressions++
          else highestServed.set(key, bucket)
        } else if (Cause.isInterruptedOnly(exit.cause)) {
          stats.interrupted++
        } else {
          stats.errors++
          stats.firstError ??= String(exit.cause)
        }
        yield* Effect.sleep(pauseMs)
      }
    })
    yield* Effect.all(Array.from({ length: callers }, (_, i) => caller(i)), { concurrency: "unbounded", discard: true })
    latencies.sort((a, b) => a - b)
    yield* send({
      type: "loaded",
      id: config.id,
      ...stats,
      latenciesMs: sample(latencies),
      servedBuckets: served,
      windowsByKey: Object.fromEntries([...windowsByKey].map(([k, w]) => [k, w.size])),
      claims: { ...claims },
      firstServed,
      lastHit,
      lastHitAsked,
      byCache,
      maxLatencyByCache,
      ...memory()
    })
  })

/** At most 200 evenly spaced order statistics: enough for percentiles, small over IPC. */
const sample = (sorted: ReadonlyArray<number>) =>
  sorted.length <= 200 ? sorted : Array.from({ length: 200 }, (_, i) => sorted[Math.floor((i * (sorted.length - 1)) / 199)]!)

/** The process's Effect metrics, flattened for the parent. */
const metrics = Effect.map(Metric.snapshot, (pairs) => {
  const out: Record<string, number> = {}
  for (const pair of pairs) {
    const tags = pair.metricKey.tags.map((t) => `${t.key}=${t.value}`).join(",")
    const name = tags ? `${pair.metricKey.name}{${tags}}` : pair.metricKey.name
    const state: unknown = pair.metricState
    if (MetricState.isCounterState(state)) out[name] = Number(state.count)
    else if (MetricState.isGaugeState(state)) out[name] = Number(state.value)
    else if (MetricState.isHistogramState(state)) out[name] = state.count
  }
  return out
})

const settings = Object.fromEntries(
  Object.entries(config.settings ?? {}).map(([k, v]) => [k, Duration.millis(v as number)])
) as Partial<Memo.Settings>

const claims: Record<string, number> = {}
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The store from the environment, reporting each protocol step to the parent. */
const ReportingRedis = Layer.effect(
  Redis.Redis,
  Effect.map(Redis.Redis, (store): Redis.Store => ({
    ...store,
    claim: (key, o) =>
      Effect.suspend(() => {
        const sentAt = Date.now()
        return store.claim(key, o).pipe(Effect.tapBoth({
          onSuccess: (c) => {
            const outcome = c._tag === "Acquired" ? "acquired" : c._tag === "Fresh" ? "fresh" : c._tag === "Busy" ? "busy" : "backoff"
            claims[outcome] = (claims[outcome] ?? 0) + 1
            if (outcome === "busy" && config.reportBusyClaims === false) return Effect.void
            return send({
              type: "claim",
              id: config.id,
              key,
              sentAt,
              wallAt: Date.now(),
              outcome,
              ...(c._tag === "Acquired" ? { bucket: c.bucket, fence: c.fence } : {})
            })
          },
          onFailure: (e) => {
            const timeout = e.reason === "Timeout" ? "error: timeout" : "error"
            claims[timeout] = (claims[timeout] ?? 0) + 1
            return send({ type: "claim", id: config.id, key, sentAt, wallAt: Date.now(), outcome: "error", error: errorText(e) })
          }
        }))
      }),
    commit: (key, value, token, lifetimes) =>
      Effect.suspend(() => {
        const base = { type: "commit", id: config.id, key, bucket: value.bucket, fence: value.fence, withToken: token !== undefined, sentAt: Date.now() } as const
        return store.commit(key, value, token, lifetimes).pipe(Effect.tapBoth({
          onSuccess: (c) =>
            send({ ...base, wallAt: Date.now(), outcome: c._tag === "Committed" ? "committed" : c.reason }),
          onFailure: (e) => send({ ...base, wallAt: Date.now(), outcome: "error", error: errorText(e) })
        }))
      }),
    renew: (key, token, leaseMs) =>
      store.renew(key, token, leaseMs).pipe(Effect.tapBoth({
        onSuccess: (held) => send({ type: "renew", id: config.id, key, wallAt: Date.now(), outcome: held ? "held" : "lost" }),
        onFailure: () => send({ type: "renew", id: config.id, key, wallAt: Date.now(), outcome: "error" })
      })),
    release: (...args: Parameters<Redis.Store["release"]>) => {
      const key = args[0]
      const backoff = Boolean(args[2])
      return store.release(...args).pipe(Effect.tapBoth({
        onSuccess: (r) => send({ type: "release", id: config.id, key, wallAt: Date.now(), backoff, ok: r._tag !== "Lost" }),
        onFailure: () => send({ type: "release", id: config.id, key, wallAt: Date.now(), backoff, ok: false })
      }))
    }
  }))
)

/** Redis from the pod's environment: a pod without one is a broken test. */
const RedisLive = Layer.unwrapEffect(
  Effect.flatMap(Redis.optionsFromEnv, (options) =>
    options._tag === "Some"
      ? Effect.succeed(Redis.layer({ ...options.value, redis: { ...options.value.redis, connectionName: `pod-${config.id}` } }))
      : Effect.dieMessage("pod: no Redis in its environment"))
).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(config.env))))))

const StoreLive = ReportingRedis.pipe(Layer.provide(RedisLive))

const clock = skewedClock()

const main = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const store = yield* Layer.buildWithScope(StoreLive, scope)
  /** The `Memo` runtime in a scope of its own, so that `forget` can restart it over the same client. */
  const boot = Effect.gen(function*() {
    const memoScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const memo = yield* Layer.buildWithScope(Memo.layerWith(settings), memoScope).pipe(Effect.provide(store), Effect.orDie)
    return { memoScope, context: Context.merge(store, memo) }
  })
  let current = yield* boot
  currentContext = current.context
  const run = <A, E>(effect: Effect.Effect<A, E, Memo.Memo>) =>
    Effect.runFork(Effect.provide(effect, current.context).pipe(Effect.withClock(clock)))
  const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  /** Messages are handled in order: a load sent right after a `forget` runs on the new runtime. */
  let handled: Promise<void> = Promise.resolve()
  const done = Effect.async<void>((resume) => {
    const onMessage = (message: ToPod) => {
      handled = handled.then(() => handle(message))
    }
    const handle = async (message: ToPod): Promise<void> => {
      switch (message.type) {
        case "load": {
          const fiber = run(load(message.callers, message.durationMs, message.pauseMs, message.keys, message.latencySample))
          fibers.add(fiber)
          fiber.addObserver(() => fibers.delete(fiber))
          break
        }
        case "failing":
          failing = message.on
          break
        case "producerMs":
          producerMs = message.ms
          break
        case "clockStep":
          skewMs += message.ms
          sendNow({ type: "stepped", id: config.id, wallAt: Date.now(), skewMs })
          break
        case "stallNextRun":
          stallNextRun = message.ms
          break
        case "hangNextRun":
          hangNextRun = message.on
          hangFrom = message.fromBucket ?? Number.NEGATIVE_INFINITY
          break
        case "heapSnapshot":
          collectGarbage()
          sendNow({ type: "snapshot", id: config.id, path: V8.writeHeapSnapshot(message.path) })
          break
        case "leak":
          clearInterval(leakTimer)
          if (message.bytesPerSecond > 0) {
            const perTick = Math.max(1, Math.round(message.bytesPerSecond / 10 / 1024))
            leakTimer = setInterval(() => {
              // arrays of 126 small integers: 1 KB each on the JS heap, with their headers
              for (let i = 0; i < perTick; i++) leaked.push(new Array<number>(126).fill(i))
            }, 100)
          }
          break
        case "failNextRun":
          failNextRun = message.on
          break
        case "stats":
          if (message.gc) collectGarbage()
          Effect.runFork(Effect.flatMap(metrics, (m) => send({ type: "stats", id: config.id, ...memory(), metrics: m })))
          break
        case "forget": {
          const old = current.memoScope
          current = await Effect.runPromise(boot)
          currentContext = current.context
          await Effect.runPromise(Scope.close(old, Exit.void))
          break
        }
        case "invalidate": {
          const startedWallAt = Date.now()
          // suspended: `returnedWallAt` is read once the invalidation has returned, not when the effect is built
          const done = (ok: boolean, extra: { count?: number; error?: string } = {}) =>
            Effect.suspend(() => send({ type: "invalidated", id: config.id, requestId: message.requestId, startedWallAt, returnedWallAt: Date.now(), ok, ...extra }))
          const action = message.tag !== undefined
            ? Effect.flatMap(Memo.invalidateTag(message.tag), (count) => done(true, { count }))
            : Effect.zipRight(pages.invalidate(message.key ?? config.key), done(true))
          run(Effect.catchAll(action, (e) => done(false, { error: errorText(e) })))
          break
        }
        case "exit":
          process.off("message", onMessage)
          resume(Effect.void)
      }
    }
    process.on("message", onMessage)
    process.once("SIGTERM", () => resume(Effect.void))
  })
  yield* send({ type: "ready", id: config.id })
  yield* done
  yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
  yield* Scope.close(scope, Exit.void)
  yield* sendFlushed({ type: "closed", id: config.id, wallAt: Date.now() })
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error("pod failed", error)
    process.exit(1)
  }
)
