/**
 * One server process of the fleet benchmark, run as `node --import tsx bench/pod.ts` by
 * `sections/fleet.ts` with an IPC channel. It builds the caches the parent asks for, fires bursts
 * of concurrent callers at the instants it is told, and reports every producer start to the
 * parent as it happens, so that runs are counted outside the processes that make them.
 *
 * Parent → pod: `setup`, `burst`, `teardown`, `exit`. Pod → parent: `hello`, `ready`, `start`,
 * `burst-done`, `error`.
 */
import { producer } from "./fixtures.js"
import { type Cache, type ImplName, implNames, makers } from "./impls.js"

export type ToPod =
  | {
    readonly t: "setup"
    readonly id: number
    readonly namespace: string
    readonly windowMs: number
    readonly peerTtlMs: number
    readonly producerMs: number
  }
  | { readonly t: "burst"; readonly id: number; readonly impl: ImplName; readonly key: string; readonly at: number; readonly callers: number }
  | { readonly t: "teardown"; readonly id: number }
  | { readonly t: "exit" }

export type FromPod =
  | { readonly t: "hello"; readonly pod: number }
  | { readonly t: "ready"; readonly id: number; readonly pod: number }
  | { readonly t: "start"; readonly pod: number; readonly impl: ImplName; readonly key: string; readonly at: number }
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
  | { readonly t: "error"; readonly pod: number; readonly message: string }

const pod = Number(process.env.POD_INDEX ?? "0")
const redis = { host: "127.0.0.1", port: Number(process.env.REDIS_PORT) }

const send = (m: FromPod) => {
  if (process.connected) process.send!(m)
}

let caches = new Map<ImplName, Cache>()

const setup = async (m: Extract<ToPod, { t: "setup" }>) => {
  await teardown()
  const next = new Map<ImplName, Cache>()
  for (const impl of implNames) {
    const produce = producer(m.producerMs, (key) => send({ t: "start", pod, impl, key, at: Date.now() }))
    next.set(impl, await makers[impl]({
      redis,
      namespace: `${m.namespace}-${impl}`,
      windowMs: m.windowMs,
      peerTtlMs: m.peerTtlMs,
      produce,
      acdStorage: "redis",
      bentoSerializeL1: true
    }))
  }
  caches = next
}

const teardown = async () => {
  const old = caches
  caches = new Map()
  await Promise.allSettled([...old.values()].map((c) => c.close()))
}

const burst = (m: Extract<ToPod, { t: "burst" }>) => {
  const call = caches.get(m.impl)!.bind([m.key])
  const fire = async () => {
    const fired = Date.now()
    const t0 = performance.now()
    let errors = 0
    let firstError: string | undefined
    const waits = await Promise.all(Array.from({ length: m.callers }, () =>
      call(0).then(
        () => performance.now() - t0,
        (e) => {
          errors++
          firstError ??= e instanceof Error ? e.message : String(e)
          return performance.now() - t0
        }
      )))
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
    case "teardown":
      teardown().finally(() => send({ t: "ready", id: m.id, pod }))
      break
    case "exit":
      teardown().finally(() => process.exit(0))
      break
  }
})

// an orphan (the parent died without telling us) exits instead of lingering
process.on("disconnect", () => {
  void teardown().finally(() => process.exit(0))
  setTimeout(() => process.exit(0), 2_000).unref()
})

send({ t: "hello", pod })
