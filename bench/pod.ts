/**
 * One server process of the fleet benchmark, run as `node --import tsx bench/pod.ts` by
 * `sections/fleet.ts` with an IPC channel. It builds the caches the parent asks for, fires bursts
 * of concurrent callers at the instants it is told, and reports every producer start to the
 * parent as it happens, so that runs are counted outside the processes that make them.
 *
 * Parent → pod: `setup`, `burst`, `teardown`, `exit`. Pod → parent: `hello`, `ready`, `start`,
 * `burst-done`, `error`.
 *
 * The watch protocol (invalidation and command-count sections) runs one lockstep `Memo.loader`
 * whose lookup answers a value no other run answers (its `volume` names the pod and the run):
 * `watch-setup` builds it, `loop` makes the pod call `get` continuously (a call every
 * `everyMs` per caller), `arm` makes it report (`changed`) the first answer that differs from
 * the value it serves now, `invalidate` calls `loader.invalidate` and answers when it returned
 * (`invalidated`), `loop-stop` ends the loop.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Memo, Redis } from "../src/index.js"
import { Dashboard, dashboard, producer, sleep } from "./fixtures.js"
import { type Cache, type FleetImplName, fleetImplNames, fleetMakers } from "./impls.js"
import { startProfiler } from "./profile.js"
import * as Timeline from "./timeline.js"

export type ToPod =
  | {
    readonly t: "setup"
    readonly id: number
    readonly namespace: string
    readonly windowMs: number
    readonly peerTtlMs: number
    readonly producerMs: number
  }
  | { readonly t: "burst"; readonly id: number; readonly impl: FleetImplName; readonly key: string; readonly at: number; readonly callers: number }
  | { readonly t: "teardown"; readonly id: number }
  | {
    readonly t: "watch-setup"
    readonly id: number
    readonly namespace: string
    readonly key: string
    readonly windowMs: number
    readonly producerMs: number
  }
  | { readonly t: "loop"; readonly id: number; readonly callers: number; readonly everyMs: number }
  | { readonly t: "loop-stop"; readonly id: number }
  | { readonly t: "arm"; readonly id: number }
  | { readonly t: "invalidate"; readonly id: number }
  | { readonly t: "batch-setup"; readonly id: number; readonly namespace: string; readonly windowMs: number; readonly queryMs: number }
  | { readonly t: "batch-cold"; readonly id: number; readonly keys: number; readonly at: number }
  | { readonly t: "exit" }

export type FromPod =
  | { readonly t: "hello"; readonly pod: number }
  | { readonly t: "ready"; readonly id: number; readonly pod: number }
  | { readonly t: "start"; readonly pod: number; readonly impl: FleetImplName; readonly key: string; readonly at: number }
  | { readonly t: "armed"; readonly id: number; readonly pod: number; readonly value: number }
  | {
    readonly t: "changed"
    readonly id: number
    readonly pod: number
    readonly value: number
    /** Wall-clock instants (ms, sub-ms precision) of the first new answer and the last old one. */
    readonly firstNewAt: number
    readonly lastOldAt: number
  }
  | { readonly t: "invalidated"; readonly id: number; readonly pod: number; readonly at: number }
  | {
    readonly t: "burst-done"
    readonly id: number
    readonly pod: number
    /** How late the burst fired after its instant (event-loop delay), ms. */
    readonly lateMs: number
    /** Callers' waits from the moment the burst fired, ms. */
    readonly maxMs: number
    readonly p50Ms: number
    readonly errors: number
    readonly firstError?: string
  }
  | {
    readonly t: "batch-done"
    readonly id: number
    readonly pod: number
    /** Keys this process asked `lookupMany` for, and in how many calls. */
    readonly byLookupMany: number
    readonly calls: number
    /** Keys this process ran through their own `lookup`. */
    readonly single: number
    /** From the instant to the answer, ms. */
    readonly ms: number
    readonly error?: string
  }
  | { readonly t: "error"; readonly pod: number; readonly message: string }

const pod = Number(process.env.POD_INDEX ?? "0")
Timeline.install()
// `--cpu-prof`: the pod profiles itself and writes the profile when it is told to exit
const profileDir = process.env.BENCH_CPU_PROF_DIR
const profiler = profileDir ? await startProfiler() : undefined
let exiting: Promise<void> | undefined
const exit = () =>
  exiting ??= (async () => {
    await teardown().catch(() => {})
    await profiler?.stop(`${profileDir}/pod-${pod}-${process.pid}.cpuprofile`).catch((e) => process.stderr.write(`pod ${pod}: profile not written: ${e}\n`))
    process.exit(0)
  })()
const redis = { host: "127.0.0.1", port: Number(process.env.REDIS_PORT) }

const send = (m: FromPod) => {
  if (process.connected) process.send!(m)
}

let caches = new Map<FleetImplName, Cache>()

const setup = async (m: Extract<ToPod, { t: "setup" }>) => {
  await teardown()
  const next = new Map<FleetImplName, Cache>()
  for (const impl of fleetImplNames) {
    const produce = producer(m.producerMs, (key) => {
      Timeline.record("producer start")
      send({ t: "start", pod, impl, key, at: Date.now() })
    })
    next.set(impl, await fleetMakers[impl]({
      redis,
      namespace: `${m.namespace}-${impl}`,
      windowMs: m.windowMs,
      peerTtlMs: m.peerTtlMs,
      produce,
      acdStorage: "redis",
      bentoSerializeL1: true,
      ...(Timeline.enabled ? { lockstepLayer: Timeline.tracerLayer } : {})
    }))
  }
  caches = next
}

const teardown = async () => {
  const old = caches
  caches = new Map()
  const oldWatch = watch
  watch = undefined
  if (oldWatch !== undefined) oldWatch.looping = false
  await Promise.allSettled([...old.values()].map((c) => c.close()))
  await oldWatch?.runtime.dispose()
  const oldBatch = batch
  batch = undefined
  await oldBatch?.runtime.dispose()
}

// ---------------------------------------------------------------------------------------------
// watch protocol

/** Wall clock with sub-millisecond precision, comparable across the machine's processes. */
const now = () => performance.timeOrigin + performance.now()

interface Watch {
  readonly runtime: ManagedRuntime.ManagedRuntime<Memo.Memo, unknown>
  readonly get: Effect.Effect<Dashboard, never, Memo.Memo>
  readonly invalidate: Effect.Effect<void, unknown, Memo.Memo>
  looping: boolean
  current: number
  armed: { readonly id: number; readonly old: number; lastOldAt: number } | undefined
}

let watch: Watch | undefined

const watchSetup = async (m: Extract<ToPod, { t: "watch-setup" }>) => {
  await teardown()
  let runs = 0
  const loader = Memo.loader({
    key: () => m.key,
    window: m.windowMs,
    schema: Dashboard,
    lookup: (_: void) =>
      Effect.promise(async () => {
        send({ t: "start", pod, impl: "lockstep", key: m.key, at: Date.now() })
        const value = { ...dashboard(m.key), volume: (pod + 1) * 1_000_000 + ++runs }
        await sleep(m.producerMs)
        return value
      })
  })
  const runtime = ManagedRuntime.make(
    Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: redis.host, port: redis.port }, tenant: m.namespace })))
  )
  await runtime.runtime()
  const w: Watch = { runtime, get: loader.get(undefined), invalidate: loader.invalidate(undefined), looping: false, current: -1, armed: undefined }
  w.current = (await runtime.runPromise(w.get)).volume
  watch = w
}

const answer = (w: Watch, value: number) => {
  const t = now()
  w.current = value
  const a = w.armed
  if (a === undefined) return
  if (value === a.old) {
    a.lastOldAt = t
    return
  }
  w.armed = undefined
  send({ t: "changed", id: a.id, pod, value, firstNewAt: t, lastOldAt: a.lastOldAt })
}

const loop = (w: Watch, callers: number, everyMs: number) => {
  w.looping = true
  for (let c = 0; c < callers; c++) {
    void (async () => {
      while (w.looping) {
        const v = await w.runtime.runPromise(w.get).catch(() => undefined)
        if (v !== undefined) answer(w, v.volume)
        await sleep(everyMs)
      }
    })()
  }
}

// ---------------------------------------------------------------------------------------------
// batch protocol

const Row = Schema.Struct({ id: Schema.Number, name: Schema.String, volume: Schema.Number })

interface Batch {
  readonly runtime: ManagedRuntime.ManagedRuntime<Memo.Memo, unknown>
  readonly getMany: (ids: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<typeof Row.Type>, unknown, Memo.Memo>
  readonly counts: { byLookupMany: number; calls: number; single: number }
}

let batch: Batch | undefined

const batchSetup = async (m: Extract<ToPod, { t: "batch-setup" }>) => {
  await teardown()
  const counts = { byLookupMany: 0, calls: 0, single: 0 }
  const row = (id: number) => ({ id, name: `item ${id}`, volume: id * 100 })
  const loader = Memo.loader({
    key: (id: number) => `bench:batch:row:${id}`,
    window: m.windowMs,
    schema: Row,
    lookup: (id: number) => Effect.sync(() => (counts.single++, row(id))),
    lookupMany: (ids: ReadonlyArray<number>) =>
      Effect.sync(() => {
        counts.calls++
        counts.byLookupMany += ids.length
        return ids.map(row)
      }).pipe(Effect.delay(m.queryMs)) // one SQL query
  })
  const runtime = ManagedRuntime.make(
    Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: redis.host, port: redis.port }, tenant: m.namespace })))
  )
  await runtime.runtime()
  batch = { runtime, getMany: loader.getMany, counts }
}

const batchCold = (m: Extract<ToPod, { t: "batch-cold" }>) => {
  const b = batch!
  const ids = Array.from({ length: m.keys }, (_, i) => i + 1)
  const fire = async () => {
    const t0 = Date.now()
    const error = await b.runtime.runPromise(b.getMany(ids)).then(
      (rows) => (rows.length === m.keys ? undefined : `${rows.length} values for ${m.keys} keys`),
      (e) => (e instanceof Error ? e.message : String(e))
    )
    send({ t: "batch-done", id: m.id, pod, ...b.counts, ms: Date.now() - t0, ...(error === undefined ? {} : { error }) })
  }
  setTimeout(() => void fire(), Math.max(0, m.at - Date.now()))
}

const reportError = (e: unknown) => send({ t: "error", pod, message: e instanceof Error ? (e.stack ?? e.message) : String(e) })

const burst = (m: Extract<ToPod, { t: "burst" }>) => {
  const call = caches.get(m.impl)!.bind([m.key])
  Timeline.begin(m.impl, m.key, m.at)
  const fire = async () => {
    const fired = Date.now()
    const t0 = performance.now()
    let errors = 0
    let firstError: string | undefined
    Timeline.recordCpu("fired")
    const answered = Array.from({ length: m.callers }, () =>
      call(0).then(
        () => (Timeline.record("answer"), performance.now() - t0),
        (e) => {
          errors++
          firstError ??= e instanceof Error ? e.message : String(e)
          return performance.now() - t0
        }
      ))
    Timeline.recordCpu("launched")
    const waits = await Promise.all(answered)
    Timeline.recordCpu("all answered")
    Timeline.end(pod)
    waits.sort((a, b) => a - b)
    send({
      t: "burst-done",
      id: m.id,
      pod,
      lateMs: fired - m.at,
      maxMs: waits[waits.length - 1] ?? 0,
      p50Ms: waits[waits.length >> 1] ?? 0,
      errors,
      ...(firstError === undefined ? {} : { firstError })
    })
  }
  setTimeout(() => void fire(), Math.max(0, m.at - Date.now()))
}

process.on("message", (m: ToPod) => {
  switch (m.t) {
    case "setup":
      setup(m).then(
        () => send({ t: "ready", id: m.id, pod }),
        (e) => send({ t: "error", pod, message: e instanceof Error ? (e.stack ?? e.message) : String(e) })
      )
      break
    case "burst":
      burst(m)
      break
    case "watch-setup":
      watchSetup(m).then(() => send({ t: "ready", id: m.id, pod }), reportError)
      break
    case "loop":
      loop(watch!, m.callers, m.everyMs)
      send({ t: "ready", id: m.id, pod })
      break
    case "loop-stop":
      watch!.looping = false
      send({ t: "ready", id: m.id, pod })
      break
    case "arm":
      watch!.armed = { id: m.id, old: watch!.current, lastOldAt: Number.NaN }
      send({ t: "armed", id: m.id, pod, value: watch!.current })
      break
    case "invalidate":
      watch!.runtime.runPromise(watch!.invalidate).then(() => send({ t: "invalidated", id: m.id, pod, at: now() }), reportError)
      break
    case "batch-setup":
      batchSetup(m).then(() => send({ t: "ready", id: m.id, pod }), reportError)
      break
    case "batch-cold":
      batchCold(m)
      break
    case "teardown":
      teardown().finally(() => send({ t: "ready", id: m.id, pod }))
      break
    case "exit":
      void exit()
      break
  }
})

// an orphan (the parent died without telling us) exits instead of lingering
process.on("disconnect", () => {
  void exit()
  setTimeout(() => process.exit(0), profiler ? 10_000 : 2_000).unref()
})

send({ t: "hello", pod })
