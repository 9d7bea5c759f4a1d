/**
 * A pod: one process with its own ioredis client, L1 and `Memo` runtime, driven by its parent
 * over IPC. Every producer start and every load summary is reported to the parent, never
 * through Redis, so the parent counts what happened outside the processes under test.
 *
 * Run as `node --import tsx test/support/pod.ts` with `LOCKSTEP_POD` set to a JSON `PodConfig`.
 */
import { Clock, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Ref, Schema, Scope } from "effect"
import { Memo, Redis, Window } from "../../src/index.js"

export interface PodConfig {
  readonly id: number
  /** Environment for `Redis.layerConfig` (`REDIS_HOST`, `REDIS_PORT`, `TENANT`, …). */
  readonly env: Record<string, string>
  readonly key: string
  readonly windowMs: number
  readonly producerMs: number
  /** Added to this pod's clock, to simulate skew between machines. */
  readonly skewMs?: number
  /** `Memo` settings in milliseconds. */
  readonly settings?: Partial<Record<"lease" | "pollInterval" | "redisTimeout" | "failureBackoff" | "degradedAfter", number>>
}

export type ToPod =
  | { readonly type: "load"; readonly callers: number; readonly durationMs: number; readonly pauseMs: number }
  | { readonly type: "failing"; readonly on: boolean }
  | { readonly type: "exit" }

export type FromPod =
  | { readonly type: "ready"; readonly id: number }
  | { readonly type: "start"; readonly id: number; readonly at: number; readonly bucket: number }
  | { readonly type: "finish"; readonly id: number; readonly at: number; readonly bucket: number; readonly ok: boolean }
  | {
    readonly type: "loaded"
    readonly id: number
    readonly calls: number
    readonly errors: number
    readonly regressions: number
    readonly maxLatencyMs: number
    readonly latenciesMs: ReadonlyArray<number>
    readonly servedBuckets: Record<string, number>
    readonly firstError?: string | undefined
  }

const Value = Schema.Struct({ pod: Schema.Number, bucket: Schema.Number, seq: Schema.Number })

const config: PodConfig = JSON.parse(process.env.LOCKSTEP_POD ?? "{}")
const send = (message: FromPod) => Effect.sync(() => process.send?.(message))

const skewedClock = (skewMs: number): Clock.Clock => {
  const base = Clock.make()
  return {
    ...base,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + skewMs,
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + BigInt(skewMs) * 1_000_000n,
    currentTimeMillis: Effect.sync(() => base.unsafeCurrentTimeMillis() + skewMs),
    currentTimeNanos: Effect.sync(() => base.unsafeCurrentTimeNanos() + BigInt(skewMs) * 1_000_000n)
  }
}

let failing = false
let seq = 0

const producer = Effect.gen(function*() {
  const at = yield* Clock.currentTimeMillis
  const bucket = Window.bucketOf(at, config.windowMs)
  yield* send({ type: "start", id: config.id, at, bucket })
  yield* Effect.sleep(config.producerMs)
  const ok = !failing
  yield* send({ type: "finish", id: config.id, at: yield* Clock.currentTimeMillis, bucket, ok })
  if (!ok) return yield* Effect.fail(new Error("producer failing on purpose"))
  return { pod: config.id, bucket, seq: ++seq }
})

const loader = Memo.memoWithInfo({ key: config.key, window: config.windowMs, schema: Value }, producer)

/** N caller loops for `durationMs`; each checks that this process never serves an older window. */
const load = (callers: number, durationMs: number, pauseMs: number) =>
  Effect.gen(function*() {
    const until = (yield* Clock.currentTimeMillis) + durationMs
    const highest = yield* Ref.make(-1)
    const stats = { calls: 0, errors: 0, regressions: 0, maxLatencyMs: 0, firstError: undefined as string | undefined }
    const latencies: Array<number> = []
    const served: Record<string, number> = {}
    const caller = Effect.gen(function*() {
      while ((yield* Clock.currentTimeMillis) < until) {
        const started = performance.now()
        const exit = yield* Effect.exit(loader)
        const latency = performance.now() - started
        stats.calls++
        latencies.push(latency)
        if (latency > stats.maxLatencyMs) stats.maxLatencyMs = latency
        if (Exit.isSuccess(exit)) {
          const bucket = exit.value.bucket
          served[bucket] = (served[bucket] ?? 0) + 1
          const before = yield* Ref.getAndUpdate(highest, (h) => Math.max(h, bucket))
          if (bucket < before) stats.regressions++
        } else {
          stats.errors++
          stats.firstError ??= String(exit.cause)
        }
        yield* Effect.sleep(pauseMs)
      }
    })
    yield* Effect.all(Array.from({ length: callers }, () => caller), { concurrency: "unbounded", discard: true })
    latencies.sort((a, b) => a - b)
    yield* send({ type: "loaded", id: config.id, ...stats, latenciesMs: sample(latencies), servedBuckets: served })
  })

/** At most 200 evenly spaced order statistics: enough for percentiles, small over IPC. */
const sample = (sorted: ReadonlyArray<number>) =>
  sorted.length <= 200 ? sorted : Array.from({ length: 200 }, (_, i) => sorted[Math.floor((i * (sorted.length - 1)) / 199)]!)

const settings = Object.fromEntries(
  Object.entries(config.settings ?? {}).map(([k, v]) => [k, Duration.millis(v as number)])
) as Partial<Memo.Settings>

const MemoLive = Memo.layerWith(settings).pipe(
  Layer.provide(Redis.layerConfig),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(config.env)))))
)

const main = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const context = yield* Layer.buildWithScope(MemoLive, scope)
  const run = <A, E>(effect: Effect.Effect<A, E, Memo.Memo>) =>
    Effect.runFork(Effect.provide(effect, context).pipe(
      config.skewMs ? Effect.withClock(skewedClock(config.skewMs)) : (x) => x
    ))
  const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  const done = Effect.async<void>((resume) => {
    const onMessage = (message: ToPod) => {
      switch (message.type) {
        case "load": {
          const fiber = run(load(message.callers, message.durationMs, message.pauseMs))
          fibers.add(fiber)
          fiber.addObserver(() => fibers.delete(fiber))
          break
        }
        case "failing":
          failing = message.on
          break
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
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error("pod failed", error)
    process.exit(1)
  }
)
