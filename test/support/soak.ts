/**
 * The soak: pods as processes on a private redis-server, each behind its own TCP proxy, under a
 * steady multi-key load for a long time, with faults drawn at random from a seeded PRNG (the
 * same seed draws the same faults at the same offsets). `runSoak` returns a report; the script
 * (`scripts/soak.ts`) prints it and the test (`test/soak.test.ts`) asserts bounds on it.
 *
 * Faults come one per slot of `SLOT_WINDOWS` windows, injected in the slot's first window, so
 * that a fault's effects (a takeover, a recompute, a retry) stay within its slot and two faults
 * rarely meet in one window. A fault marks the (key, window) pairs it may touch:
 *
 * - pod-wide faults (`CLIENT KILL` of a pod's connections, a runtime restart, a latency spike
 *   through its proxy) and `CLIENT PAUSE` touch every key, from the window they start in to the
 *   one after they end;
 * - an invalidation touches its key (or its tag's keys) in its window and the next;
 * - a producer fault (failure, hang until `maxRun`, stall past the lease) is armed on one pod and
 *   touches the key of the run it hit, in that run's window and the next.
 *
 * A (key, window) may then have at most `1 + faults touching it` producer starts (1 when none).
 */
import { Redis as IORedis } from "ioredis"
import * as Synthetic from "../../app/Synthetic.js"
import { type Bench, startBench } from "./bench.js"
import { type Loaded, percentile, watchStore, type StoreWatch } from "./fleet.js"
import { startProxy, type Proxy } from "./proxy.js"

export type FaultKind =
  | "producerFailure"
  | "producerHang"
  | "producerStall"
  | "restart"
  | "clientKill"
  | "clientPause"
  | "invalidateKey"
  | "invalidateTag"
  | "latencySpike"

/**
 * Faults are dealt from decks: each deck holds every kind once, shuffled, so that a short run
 * (the test's 8 slots) sees nearly every kind and a long one sees each as often.
 */
export const FAULT_KINDS: ReadonlyArray<FaultKind> = [
  "producerFailure",
  "producerHang",
  "producerStall",
  "restart",
  "clientKill",
  "clientPause",
  "invalidateKey",
  "invalidateTag",
  "latencySpike"
]

/** Windows per fault slot: the fault in the first, its effects over the next. */
export const SLOT_WINDOWS = 3
/** How late after `invalidate` returned a pod may still answer a hit of an older value (loopback, loaded cores). */
export const INVALIDATION_DELIVERY_MS = 250
const TAG_GROUPS = 3

export interface SoakOptions {
  readonly seconds: number
  readonly seed: number
  readonly pods?: number
  readonly keys?: number
  readonly windowMs?: number
  readonly producerMs?: number
  /** Caller loops per pod. */
  readonly callers?: number
  readonly pauseMs?: number
  /** Chance that a slot gets a fault (default 1: every slot; its third window is quiet for every key anyway). */
  readonly faultRate?: number
  /** Memory samples every this many ms. */
  readonly sampleMs?: number
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void
  /** Each pod retains this much heap per second on purpose: shows that the memory bound catches a leak. */
  readonly leakBytesPerSecond?: number
  /** Ends the run early (Ctrl-C): everything started is stopped, and `runSoak` rejects. */
  readonly signal?: AbortSignal
}

export interface Fault {
  readonly kind: FaultKind
  /** Machine clock when it was injected (ms since the soak's start in the report). */
  readonly at: number
  readonly window: number
  readonly pod: number
  readonly detail: string
  /** Keys it may touch (`"*"`: all). Producer faults: the key of the run it hit, once known. */
  keys: ReadonlyArray<string> | "*"
  /** Windows it may touch. */
  windows: ReadonlyArray<number>
  /** A producer fault whose run was seen; others: `true` once injected. */
  fired: boolean
}

export interface MemorySeries {
  readonly maxRssMb: number
  readonly maxHeapMb: number
  /** Least-squares slope over the samples after the first fifth of the run, MB per minute. */
  readonly rssSlopeMbPerMin: number
  readonly heapSlopeMbPerMin: number
  /**
   * The median of the slopes between samples `GROWTH_LAG` apart, over the same samples: the
   * rate at which the heap grows most of the time. A leak raises every one of those slopes; a
   * one-time step (code compiled or a source map read on a path's first use) only the few that
   * span it, which the median ignores, where it can double the least-squares slope of a short run.
   */
  readonly rssGrowthMbPerMin: number
  readonly heapGrowthMbPerMin: number
  readonly samples: number
  /** `[seconds since the load began, RSS MB, heap MB]`, each after a full collection. */
  readonly series: ReadonlyArray<readonly [number, number, number]>
}

export interface StartsSummary {
  readonly max: number
  /** starts → how many (key, window) pairs had that many. */
  readonly distribution: Record<string, number>
  readonly pairs: number
}

export interface SoakReport {
  readonly seed: number
  readonly seconds: number
  readonly pods: number
  readonly keys: number
  readonly windowMs: number
  readonly settings: Record<string, number>
  /** Windows fully inside the load, over which starts are counted. */
  readonly windows: { readonly first: number; readonly last: number; readonly count: number }
  readonly starts: {
    readonly total: number
    readonly all: StartsSummary
    readonly faultFree: StartsSummary
    readonly faulted: StartsSummary
    /** key → max starts in one window, total starts, windows with more than one. */
    readonly perKey: Record<string, { readonly max: number; readonly total: number; readonly over1: number }>
    /** (key, window) pairs over their bound, with what the pods reported around them. */
    readonly violations: ReadonlyArray<{ readonly key: string; readonly window: number; readonly starts: number; readonly allowed: number; readonly faults: ReadonlyArray<string>; readonly explain: string }>
  }
  readonly calls: number
  readonly errors: number
  readonly firstError: string | undefined
  /** Calls cut short by a runtime restart (`forget`): the process's own shutdown, not errors. */
  readonly interruptedByRestart: number
  /** Calls that went back to an older window than the pod had served. */
  readonly regressions: number
  readonly byCache: Record<string, number>
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number }
  /** Hits of a value computed before an invalidation, later than `INVALIDATION_DELIVERY_MS` after it returned. */
  readonly oldHitsAfterInvalidation: ReadonlyArray<string>
  /** Watched keys whose stored `(bucket, fence)` went down. */
  readonly storeDecreases: ReadonlyArray<string>
  readonly fatal: ReadonlyArray<string>
  readonly memory: Record<string, MemorySeries>
  readonly faults: {
    readonly injected: number
    readonly counts: Partial<Record<FaultKind, number>>
    /** Producer faults armed that no run hit before they were called off. */
    readonly notFired: number
    readonly list: ReadonlyArray<string>
  }
  readonly wallMs: number
}

/** The synthetic ledger's seeded generator: the same sequence for the same seed everywhere. */
export const prng = Synthetic.prng

/** Samples apart for `medianSlope` (4 s at the default rate). */
export const GROWTH_LAG = 2

/** The median of the slopes between points `lag` apart. */
export const medianSlope = (points: ReadonlyArray<readonly [number, number]>, lag = GROWTH_LAG): number => {
  const slopes: Array<number> = []
  for (let i = 0; i + lag < points.length; i++) {
    const [x0, y0] = points[i]!
    const [x1, y1] = points[i + lag]!
    if (x1 > x0) slopes.push((y1 - y0) / (x1 - x0))
  }
  slopes.sort((a, b) => a - b)
  const n = slopes.length
  return n === 0 ? 0 : n % 2 === 1 ? slopes[(n - 1) / 2]! : (slopes[n / 2 - 1]! + slopes[n / 2]!) / 2
}

/** Least-squares slope of `y` over `x`. */
export const slope = (points: ReadonlyArray<readonly [number, number]>): number => {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  let sxy = 0
  let sxx = 0
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my)
    sxx += (x - mx) ** 2
  }
  return sxx === 0 ? 0 : sxy / sxx
}

const summarize = (counts: ReadonlyArray<number>): StartsSummary => {
  const distribution: Record<string, number> = {}
  for (const c of counts) distribution[c] = (distribution[c] ?? 0) + 1
  return { max: counts.length === 0 ? 0 : Math.max(...counts), distribution, pairs: counts.length }
}

const startedAtOf = (value: string) => Number(value.slice(value.lastIndexOf("|") + 1))
const keyOf = (value: string) => value.slice(0, value.lastIndexOf("|"))

export const runSoak = async (options: SoakOptions): Promise<SoakReport> => {
  const began = Date.now()
  const PODS = options.pods ?? 4
  const KEYS = options.keys ?? 20
  const WINDOW = options.windowMs ?? 2_000
  const PRODUCER_MS = options.producerMs ?? 100
  const CALLERS = options.callers ?? 10
  const PAUSE_MS = options.pauseMs ?? 20
  const FAULT_RATE = options.faultRate ?? 1
  const SAMPLE_MS = options.sampleMs ?? 2_000
  const log = options.log ?? (() => {})
  const settings = { lease: 1_000, maxRun: 800, failureBackoff: 300, maxFailureBackoff: 1_000 }
  const random = prng(options.seed)
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(random() * xs.length)]!
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo))
  const keyName = (i: number) => `aggregate-${i}`
  const allKeys = Array.from({ length: KEYS }, (_, i) => keyName(i))
  const bucketOf = (at: number) => Math.floor(at / WINDOW)

  let aborted = false
  const abortWaiters = new Set<() => void>()
  const onAbort = () => {
    aborted = true
    for (const w of [...abortWaiters]) w()
  }
  options.signal?.addEventListener("abort", onAbort)
  if (options.signal?.aborted) onAbort()
  /** Real time, cut short by an abort (which then throws). */
  const sleepUntil = (at: number) =>
    new Promise<void>((resolve, reject) => {
      if (aborted) return reject(new Error("soak aborted"))
      const done = () => {
        clearTimeout(timer)
        abortWaiters.delete(done)
        aborted ? reject(new Error("soak aborted")) : resolve()
      }
      const timer = setTimeout(done, Math.max(0, at - Date.now()))
      abortWaiters.add(done)
    })

  const proxies: Array<Proxy> = []
  let bench: Bench | undefined
  const watches: Array<StoreWatch> = []
  let admin: IORedis | undefined
  const cleanup = async () => {
    for (const p of proxies) p.normal()
    await Promise.allSettled(watches.map((w) => w.stop()))
    admin?.disconnect()
    await bench?.stop().catch(() => {})
    await Promise.allSettled(proxies.map((p) => p.close()))
  }
  try {
    bench = await startBench({
      pods: PODS,
      windowMs: WINDOW,
      producerMs: PRODUCER_MS,
      settings,
      tenant: `soak-${options.seed}`,
      watchKey: keyName(0),
      overrides: () => ({ tags: ["all"], tagGroups: TAG_GROUPS, reportBusyClaims: false }),
      prepare: async (redis) => {
        for (let i = 0; i < PODS; i++) proxies.push(await startProxy({ targetPort: redis.port }))
      },
      portOf: (id) => proxies[id]!.port
    })
    const b = bench
    for (const key of allKeys.slice(1)) watches.push(watchStore({ port: b.port, tenant: b.tenant, key, windowMs: WINDOW, intervalMs: 100 }))
    admin = new IORedis({ host: "127.0.0.1", port: b.port, enableOfflineQueue: true, maxRetriesPerRequest: 3, commandTimeout: 2_000 })
    admin.on("error", () => {})
    const started = Date.now()
    log(`soak: ${PODS} pods ready in ${((started - began) / 1000).toFixed(1)} s; seed ${options.seed}, ${PODS} pods, ${KEYS} keys, ${WINDOW} ms windows, ${options.seconds} s, redis on ${b.port}`)

    // warm-up: every key gets a value before the soak's callers count errors; every pod goes
    // through a failed and a hung run once, so that what the first error costs (source maps
    // read for its stack trace, code compiled) is paid before memory is measured
    for (const p of b.fleet.pods) {
      p.send({ type: "failNextRun", on: true })
      p.send({ type: "hangNextRun", on: true })
    }
    const warmup = await b.fleet.load({ callers: KEYS, durationMs: 2 * WINDOW + 500, pauseMs: PAUSE_MS, keys: KEYS })
    for (const p of b.fleet.pods) {
      p.send({ type: "failNextRun", on: false })
      p.send({ type: "hangNextRun", on: false })
      if (options.leakBytesPerSecond) p.send({ type: "leak", bytesPerSecond: options.leakBytesPerSecond })
    }
    const warmupErrors = warmup.reduce((n, s) => n + s.errors, 0)
    if (warmupErrors > 0) log(`soak: ${warmupErrors} errors during the warm-up (cold keys): ${warmup.find((s) => s.firstError)?.firstError}`)

    const loadStart = Date.now()
    log(`soak: warm-up done in ${((loadStart - started) / 1000).toFixed(1)} s`)
    const loadEnd = loadStart + options.seconds * 1_000
    const loading = b.load({ callers: CALLERS, durationMs: options.seconds * 1_000, pauseMs: PAUSE_MS, keys: KEYS, latencySample: 2_000 })
    let loadDone = false
    void loading.then(() => (loadDone = true), () => (loadDone = true))

    // memory: every pod after a full collection, every SAMPLE_MS
    const memorySamples: Array<{ readonly at: number; readonly id: number; readonly rssMb: number; readonly heapMb: number }> = []
    const sampling = (async () => {
      for (let at = loadStart; at < loadEnd && !aborted; at += SAMPLE_MS) {
        await sleepUntil(at).catch(() => {})
        if (aborted) return
        try {
          for (const s of await b.fleet.stats({ gc: true })) memorySamples.push({ at: s.receivedAt, id: s.id, rssMb: s.rssMb, heapMb: s.heapUsedMb })
        } catch {
          // a pod slow to answer (stalled): the next sample will do
        }
      }
    })()

    // faults, one per slot of SLOT_WINDOWS windows, from the second full window on
    const faults: Array<Fault> = []
    const firstWindow = bucketOf(loadStart) + 1
    const lastWindow = bucketOf(loadEnd) - 1
    const producerFault = async (fault: Fault, arm: () => void, disarm: () => void, slotEnd: number, stallMs = 0) => {
      arm()
      const since = Date.now()
      await sleepUntil(slotEnd - WINDOW / 4)
      disarm()
      // the run it hit: the first on that pod to finish (failed, interrupted, or late by the
      // stall) after it was armed; that run may have started just before
      const hitRun = b.fleet.of("finish", since).find((m) => {
        if (m.id !== fault.pod) return false
        if (fault.kind === "producerFailure") return !m.ok && m.interrupted !== true
        if (fault.kind === "producerHang") return m.interrupted === true
        const start = b.fleet.of("start").filter((x) => x.id === m.id && x.key === m.key && x.wallAt <= m.wallAt).pop()
        return start !== undefined && m.wallAt - start.wallAt >= stallMs
      })
      if (hitRun === undefined) {
        // not seen (disarmed as a run took it?): it may have touched any key of its slot
        fault.keys = "*"
        fault.windows = Array.from({ length: SLOT_WINDOWS }, (_, i) => fault.window + i)
        return
      }
      const start = b.fleet.of("start").filter((m) => m.id === fault.pod && m.key === hitRun.key && m.wallAt <= hitRun.wallAt).pop()
      const claimed = b.fleet.of("claim").filter((m) => m.id === fault.pod && m.key === hitRun.key && m.outcome === "acquired" && m.wallAt <= (start?.wallAt ?? hitRun.wallAt)).pop()
      const w = claimed?.bucket ?? start?.bucket ?? hitRun.bucket
      // a stall stops the whole event loop: every run the pod had under way loses its lease
      fault.keys = fault.kind === "producerStall" ? "*" : [hitRun.key]
      fault.windows = [...new Set([fault.window, w, w + 1])]
      fault.fired = true
    }
    const inject = async (kind: FaultKind, window: number): Promise<void> => {
      const pod = Math.floor(random() * PODS)
      const slotEnd = (window + SLOT_WINDOWS) * WINDOW
      const at = Date.now()
      const fault: Fault = { kind, at, window, pod, detail: "", keys: "*", windows: [window, window + 1], fired: true }
      if (kind === "producerFailure" || kind === "producerHang" || kind === "producerStall") {
        // until the run it hits is known
        fault.fired = false
        fault.keys = []
      }
      const p = b.fleet.pods[pod]!
      const set = (detail: string) => Object.assign(fault, { detail }) as Fault
      faults.push(fault)
      switch (kind) {
        case "producerFailure":
          set(`pod ${pod}'s next run fails`)
          return producerFault(fault, () => p.send({ type: "failNextRun", on: true }), () => p.send({ type: "failNextRun", on: false }), slotEnd)
        case "producerHang":
          set(`pod ${pod}'s next run hangs until maxRun (${settings.maxRun} ms)`)
          return producerFault(fault, () => p.send({ type: "hangNextRun", on: true }), () => p.send({ type: "hangNextRun", on: false }), slotEnd)
        case "producerStall": {
          const ms = between(settings.lease + 200, settings.lease + 500)
          set(`pod ${pod}'s next run stalls its event loop ${ms} ms (lease ${settings.lease} ms), and with it every run the pod has under way`)
          return producerFault(fault, () => p.send({ type: "stallNextRun", ms }), () => p.send({ type: "stallNextRun", ms: 0 }), slotEnd, ms)
        }
        case "restart":
          set(`pod ${pod}'s runtime restarted (empty L1, no workers)`)
          p.send({ type: "forget" })
          return
        case "clientKill": {
          const list = String(await admin!.call("CLIENT", "LIST"))
          const ids = list.split("\n").filter((l) => new RegExp(`\\bname=pod-${pod}\\b`).test(l)).map((l) => /\bid=(\d+)/.exec(l)?.[1]).filter((x): x is string => x !== undefined)
          for (const id of ids) await admin!.call("CLIENT", "KILL", "ID", id).catch(() => 0)
          set(`CLIENT KILL of pod ${pod}'s ${ids.length} connections`)
          return
        }
        case "clientPause": {
          const ms = between(200, 500)
          const mode = random() < 0.5 ? "ALL" : "WRITE"
          set(`CLIENT PAUSE ${ms} ${mode}`)
          await admin!.call("CLIENT", "PAUSE", String(ms), mode)
          fault.windows = [...new Set([window, bucketOf(at + ms), bucketOf(at + ms) + 1])]
          return
        }
        case "invalidateKey": {
          const key = pick(allKeys)
          set(`invalidate ${key} through pod ${pod}`)
          fault.keys = [key]
          const done = await b.fleet.invalidate(pod, { key })
          invalidations.push({ keys: [key], startedWallAt: done.startedWallAt, returnedWallAt: done.returnedWallAt, ok: done.ok })
          return
        }
        case "invalidateTag": {
          const group = Math.floor(random() * TAG_GROUPS)
          const tag = `group-${group}`
          const keys = allKeys.filter((_, i) => i % TAG_GROUPS === group)
          set(`invalidate tag ${tag} (${keys.length} keys) through pod ${pod}`)
          fault.keys = keys
          const done = await b.fleet.invalidate(pod, { tag })
          invalidations.push({ keys, startedWallAt: done.startedWallAt, returnedWallAt: done.returnedWallAt, ok: done.ok })
          return
        }
        case "latencySpike": {
          const ms = between(100, 300)
          const lasting = between(500, 1_200)
          set(`${ms} ms latency to Redis for pod ${pod}, ${lasting} ms`)
          proxies[pod]!.latency({ up: ms })
          fault.windows = [...new Set([window, bucketOf(at + lasting), bucketOf(at + lasting) + 1])]
          await sleepUntil(at + lasting).finally(() => proxies[pod]!.normal())
          return
        }
      }
    }
    const invalidations: Array<{ keys: ReadonlyArray<string>; startedWallAt: number; returnedWallAt: number; ok: boolean }> = []
    const deck: Array<FaultKind> = []
    const drawKind = (): FaultKind => {
      if (deck.length === 0) {
        deck.push(...FAULT_KINDS)
        for (let i = deck.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1))
          ;[deck[i], deck[j]] = [deck[j]!, deck[i]!]
        }
      }
      return deck.pop()!
    }
    const pending: Array<Promise<void>> = []
    for (let w = firstWindow + 1; w + SLOT_WINDOWS - 1 <= lastWindow; w += SLOT_WINDOWS) {
      // drawn whether or not it is used, so the sequence depends on the seed only
      const use = random() < FAULT_RATE
      const kind = drawKind()
      const offset = between(WINDOW * 0.1, WINDOW * 0.6)
      if (!use) continue
      await sleepUntil(w * WINDOW + offset)
      if (loadDone) break
      const injectedAt = Date.now()
      const done = inject(kind, w).then(
        () => {
          const f = faults.find((x) => x.window === w)
          log(`soak: +${((injectedAt - loadStart) / 1000).toFixed(1)} s window ${w}: ${kind}: ${f?.detail}${f?.fired === false ? " (hit no run)" : ""}`)
        },
        (e) => log(`soak: fault ${kind} failed to inject: ${e instanceof Error ? e.message : String(e)}`)
      )
      pending.push(done)
    }
    await Promise.all(pending)
    const summaries: ReadonlyArray<Loaded> = await Promise.race([
      loading,
      new Promise<never>((_, reject) => {
        if (aborted) reject(new Error("soak aborted"))
        abortWaiters.add(() => reject(new Error("soak aborted")))
      })
    ])
    await sampling
    if (aborted) throw new Error("soak aborted")
    log(`soak: load done ${((Date.now() - loadEnd) / 1000).toFixed(1)} s after its end`)

    // ---- starts per (key, window) over the windows fully inside the load
    const perKeyWindow = b.fleet.startsPerKeyAndClaimedBucket()
    const faultsAt = (key: string, window: number) =>
      faults.filter((f) => (f.keys === "*" || f.keys.includes(key)) && f.windows.includes(window))
    const all: Array<number> = []
    const clean: Array<number> = []
    const dirty: Array<number> = []
    const perKey: Record<string, { max: number; total: number; over1: number }> = {}
    const violations: Array<SoakReport["starts"]["violations"][number]> = []
    let total = 0
    for (const key of allKeys) {
      const row = { max: 0, total: 0, over1: 0 }
      for (let w = firstWindow; w <= lastWindow; w++) {
        const n = perKeyWindow.get(key)?.get(w) ?? 0
        const touching = faultsAt(key, w)
        all.push(n)
        ;(touching.length === 0 ? clean : dirty).push(n)
        row.max = Math.max(row.max, n)
        row.total += n
        if (n > 1) row.over1++
        total += n
        const allowed = 1 + touching.length
        if (n > allowed) {
          violations.push({
            key,
            window: w,
            starts: n,
            allowed,
            faults: touching.map((f) => `${f.kind}: ${f.detail}`),
            explain: b.fleet.explain(w, WINDOW).split("\n").filter((l) => l.includes(`"key":"${key}"`)).join("\n")
          })
        }
      }
      perKey[key] = row
    }

    // ---- what callers saw
    const sum = (f: (s: Loaded) => number) => summaries.reduce((n, s) => n + f(s), 0)
    const byCache: Record<string, number> = {}
    for (const s of summaries) for (const [k, v] of Object.entries(s.byCache)) byCache[k] = (byCache[k] ?? 0) + v
    const latencies = summaries.flatMap((s) => s.latenciesMs).sort((x, y) => x - y)
    const oldHits: Array<string> = []
    for (const inv of invalidations) {
      if (!inv.ok) {
        oldHits.push(`invalidation of ${inv.keys.join(",")} failed`)
        continue
      }
      for (const s of summaries) {
        for (const [value, at] of Object.entries(s.lastHit)) {
          if (inv.keys.includes(keyOf(value)) && startedAtOf(value) < inv.startedWallAt && at > inv.returnedWallAt + INVALIDATION_DELIVERY_MS) {
            oldHits.push(`pod ${s.id}: hit of ${value} ${at - inv.returnedWallAt} ms after the invalidation returned`)
          }
        }
      }
    }

    // ---- memory: the slope over the samples after the first fifth of the run (JIT, pools)
    const memory: Record<string, MemorySeries> = {}
    const steadyFrom = loadStart + (loadEnd - loadStart) / 5
    for (let id = 0; id < PODS; id++) {
      const own = memorySamples.filter((m) => m.id === id)
      const steady = own.filter((m) => m.at >= steadyFrom)
      const minutes = (at: number) => (at - loadStart) / 60_000
      memory[`pod ${id}`] = {
        maxRssMb: Math.max(0, ...own.map((m) => m.rssMb), ...summaries.filter((s) => s.id === id).map((s) => s.rssMb)),
        maxHeapMb: Math.max(0, ...own.map((m) => m.heapMb)),
        rssSlopeMbPerMin: round2(slope(steady.map((m) => [minutes(m.at), m.rssMb]))),
        heapSlopeMbPerMin: round2(slope(steady.map((m) => [minutes(m.at), m.heapMb]))),
        rssGrowthMbPerMin: round2(medianSlope(steady.map((m) => [minutes(m.at), m.rssMb]))),
        heapGrowthMbPerMin: round2(medianSlope(steady.map((m) => [minutes(m.at), m.heapMb]))),
        samples: own.length,
        series: own.map((m) => [round2((m.at - loadStart) / 1000), m.rssMb, m.heapMb] as const)
      }
    }

    const decreases = [b.watch, ...watches].flatMap((w, i) => w.decreases().map((d) => `${allKeys[i]}: ${d}`))
    const counts: Partial<Record<FaultKind, number>> = {}
    for (const f of faults) counts[f.kind] = (counts[f.kind] ?? 0) + 1
    return {
      seed: options.seed,
      seconds: options.seconds,
      pods: PODS,
      keys: KEYS,
      windowMs: WINDOW,
      settings: { ...settings, producerMs: PRODUCER_MS, callersPerPod: CALLERS, pauseMs: PAUSE_MS },
      windows: { first: firstWindow, last: lastWindow, count: lastWindow - firstWindow + 1 },
      starts: {
        total,
        all: summarize(all),
        faultFree: summarize(clean),
        faulted: summarize(dirty),
        perKey,
        violations
      },
      calls: sum((s) => s.calls),
      errors: sum((s) => s.errors),
      firstError: summaries.find((s) => s.firstError !== undefined)?.firstError,
      interruptedByRestart: sum((s) => s.interrupted),
      regressions: sum((s) => s.regressions),
      byCache,
      latencyMs: { p50: round2(percentile(latencies, 50)), p99: round2(percentile(latencies, 99)), max: round2(Math.max(0, ...summaries.map((s) => s.maxLatencyMs))) },
      oldHitsAfterInvalidation: oldHits,
      storeDecreases: decreases,
      fatal: b.fleet.of("fatal").map((m) => `pod ${m.id} ${m.kind}: ${m.message}`),
      memory,
      faults: {
        injected: faults.length,
        counts,
        notFired: faults.filter((f) => !f.fired).length,
        list: faults.map((f) =>
          `+${((f.at - loadStart) / 1000).toFixed(1)} s w${f.window} ${f.kind}${f.fired ? "" : " (not fired)"}: ${f.detail}` +
          ` → ${f.keys === "*" ? "all keys" : f.keys.join(",") || "no key"} in windows ${f.windows.join(",")}`
        )
      },
      wallMs: Date.now() - began
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort)
    const stopping = Date.now()
    await cleanup()
    log(`soak: stopped in ${((Date.now() - stopping) / 1000).toFixed(1)} s`)
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100

/** The report as a few readable tables. */
export const formatReport = (r: SoakReport): string => {
  const lines: Array<string> = []
  const dist = (d: Record<string, number>) => Object.entries(d).map(([k, v]) => `${k}:${v}`).join("  ")
  lines.push(`soak: seed ${r.seed}, ${r.seconds} s, ${r.pods} pods, ${r.keys} keys, ${r.windowMs} ms windows (${r.windows.count} counted), wall ${(r.wallMs / 1000).toFixed(1)} s`)
  lines.push(`settings: ${JSON.stringify(r.settings)}`)
  lines.push("")
  lines.push("starts per (key, window)     max  distribution (starts:pairs)")
  for (const [label, s] of [["all", r.starts.all], ["fault-free", r.starts.faultFree], ["with a fault", r.starts.faulted]] as const) {
    lines.push(`  ${label.padEnd(26)} ${String(s.max).padStart(3)}  ${dist(s.distribution)}`)
  }
  lines.push(`  total starts ${r.starts.total}; bound violations ${r.starts.violations.length}`)
  for (const v of r.starts.violations) lines.push(`    ${v.key} window ${v.window}: ${v.starts} starts > ${v.allowed} [${v.faults.join("; ")}]\n${v.explain.replace(/^/gm, "      ")}`)
  lines.push("  per key (max/total/windows>1): " + Object.entries(r.starts.perKey).map(([k, v]) => `${k.replace("aggregate-", "k")} ${v.max}/${v.total}/${v.over1}`).join("  "))
  lines.push("")
  lines.push(`callers: ${r.calls} calls, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError.split("\n")[0]})` : ""}, ${r.interruptedByRestart} interrupted by a runtime restart, ${r.regressions} older windows served`)
  lines.push(`  by cache ${JSON.stringify(r.byCache)}; latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`)
  lines.push(`  old hits after an invalidation: ${r.oldHitsAfterInvalidation.length}; stored (bucket, fence) decreases: ${r.storeDecreases.length}; fatal: ${r.fatal.length}`)
  for (const x of [...r.oldHitsAfterInvalidation, ...r.storeDecreases, ...r.fatal]) lines.push(`    ${x}`)
  lines.push("")
  lines.push("memory      max RSS MB  max heap MB  RSS MB/min (least squares, median)  heap MB/min (least squares, median)  samples")
  for (const [pod, m] of Object.entries(r.memory)) {
    lines.push(
      `  ${pod.padEnd(8)} ${String(m.maxRssMb).padStart(10)}  ${String(m.maxHeapMb).padStart(11)}  ${`${m.rssSlopeMbPerMin}, ${m.rssGrowthMbPerMin}`.padStart(33)}  ${`${m.heapSlopeMbPerMin}, ${m.heapGrowthMbPerMin}`.padStart(34)}  ${String(m.samples).padStart(7)}`
    )
  }
  lines.push("")
  lines.push(`faults: ${r.faults.injected} injected (${r.faults.notFired} producer faults armed but not hit): ${JSON.stringify(r.faults.counts)}`)
  for (const f of r.faults.list) lines.push(`  ${f}`)
  return lines.join("\n")
}
