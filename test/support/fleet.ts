/**
 * Starts pod processes against a redis-server and collects what they report. The parent is the
 * only witness that counts producer starts, so a bug in the pods cannot hide them.
 *
 * For fault injection: per-pod config overrides (skew, settings), signals to one pod (`SIGKILL`,
 * `SIGSTOP`/`SIGCONT`, `SIGTERM`), loads that survive a pod's death, waits on reports, and a
 * `watchStore` that polls the stored `(bucket, fence)` from outside with a raw ioredis client.
 */
import { fork, type ChildProcess } from "node:child_process"
import { Redis as IORedis } from "ioredis"
import * as Keys from "../../src/internal/keys.js"
import { programOf } from "./bundles.js"
import type { FromPod, PodConfig, ToPod } from "./pod.js"


export type Received<T extends FromPod["type"] = FromPod["type"]> = Extract<FromPod, { type: T }> & { readonly receivedAt: number }
export type Loaded = Received<"loaded">

export interface Pod {
  readonly id: number
  readonly child: ChildProcess
  readonly send: (message: ToPod) => void
  /** Sends a signal to this pod only. */
  readonly signal: (signal: NodeJS.Signals) => void
  readonly alive: () => boolean
  /** Resolves when the process has exited, with its code or signal. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

export interface Fleet {
  readonly pods: ReadonlyArray<Pod>
  readonly messages: Array<Received>
  /** Producer starts per window (of the machine's clock), counted from the pods' reports. */
  readonly startsPerBucket: () => Map<number, number>
  /**
   * Producer starts per window they were for: the bucket of the `acquired` claim that led to
   * each start (a claim made just before a boundary starts its producer just after it), or the
   * wall-clock window for a start without a claim (a value produced while Redis was unreachable).
   */
  readonly startsPerClaimedBucket: () => Map<number, number>
  /** `startsPerClaimedBucket` for each key of a multi-key load: key → window → starts. */
  readonly startsPerKeyAndClaimedBucket: () => Map<string, Map<number, number>>
  /** What the pods reported from a window before `bucket` to the one after: for failure messages. */
  readonly explain: (bucket: number, windowMs: number) => string
  /** Reports of one type, optionally only those received at or after `since` (Date.now()). */
  readonly of: <T extends FromPod["type"]>(type: T, since?: number) => Array<Received<T>>
  /** Waits for the first report (received at or after `since`, default now) that matches. */
  readonly next: <T extends FromPod["type"]>(
    type: T,
    options?: { readonly where?: (m: Received<T>) => boolean; readonly since?: number; readonly timeoutMs?: number }
  ) => Promise<Received<T>>
  readonly waitFor: (predicate: () => boolean, timeoutMs: number, what: string) => Promise<void>
  /**
   * Runs a load on every live pod (or on `pods`) and waits for each one's summary; a pod that
   * dies during the load simply has none.
   */
  readonly load: (options: {
    callers: number
    durationMs: number
    pauseMs: number
    pods?: ReadonlyArray<number> | undefined
    /** Spread the callers over that many keys (see `ToPod`'s `load`). */
    keys?: number | undefined
    /** Each pod keeps a uniform sample of this many latencies (see `ToPod`'s `load`). */
    latencySample?: number | undefined
  }) => Promise<ReadonlyArray<Loaded>>
  /** Each live pod's memory and Effect metrics; with `gc`, measured after a full collection. */
  readonly stats: (options?: { readonly gc?: boolean }) => Promise<ReadonlyArray<Received<"stats">>>
  /** Invalidates a key or a tag through pod `pod`, and waits for its report. */
  readonly invalidate: (pod: number, target: { readonly key?: string; readonly tag?: string }) => Promise<Received<"invalidated">>
  readonly stop: () => Promise<void>
}

export const startFleet = async (
  n: number,
  config: Omit<PodConfig, "id">,
  overrides: (id: number) => Partial<Omit<PodConfig, "id">> = () => ({})
): Promise<Fleet> => {
  const messages: Array<Received> = []
  let requests = 0
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const w of [...waiters]) w()
  }
  const pods: Array<Pod> = []
  for (let id = 0; id < n; id++) {
    const own = overrides(id)
    const podConfig: PodConfig = {
      ...config,
      ...own,
      settings: { ...config.settings, ...own.settings },
      env: { ...config.env, ...own.env },
      id
    }
    const program = programOf("pod")
    const child = fork(program.script, [], {
      execArgv: [...program.execArgv],
      env: { ...process.env, LOCKSTEP_POD: JSON.stringify(podConfig) },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => {
        resolve({ code, signal })
        wake()
      })
    )
    child.on("message", (m: FromPod) => {
      messages.push({ ...m, receivedAt: Date.now() })
      wake()
    })
    // a pod that is gone when we write to it is the test's business, not an uncaught error
    child.on("error", () => {})
    const alive = () => child.exitCode === null && child.signalCode === null
    pods.push({
      id,
      child,
      alive,
      exited,
      send: (m) => {
        if (alive() && child.connected) child.send(m)
      },
      signal: (s) => {
        if (alive()) child.kill(s)
      }
    })
  }
  const waitFor = (predicate: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          waiters.delete(check)
          clearTimeout(timer)
          resolve()
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`fleet: timed out after ${timeoutMs} ms waiting for ${what}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  const of = <T extends FromPod["type"]>(type: T, since = 0) =>
    messages.filter((m): m is Received<T> => m.type === type && m.receivedAt >= since)
  /** key → window → starts, each start under the bucket its pod's last `acquired` claim of that key named. */
  const startsPerKeyAndClaimedBucket = () => {
    const counts = new Map<string, Map<number, number>>()
    const claimed = new Map<string, number>()
    for (const m of messages) {
      if (m.type === "claim" && m.outcome === "acquired" && m.bucket !== undefined) claimed.set(`${m.id} ${m.key}`, m.bucket)
      if (m.type === "start") {
        const bucket = claimed.get(`${m.id} ${m.key}`) ?? m.bucket
        claimed.delete(`${m.id} ${m.key}`)
        let perKey = counts.get(m.key)
        if (perKey === undefined) counts.set(m.key, perKey = new Map())
        perKey.set(bucket, (perKey.get(bucket) ?? 0) + 1)
      }
    }
    return counts
  }
  const stop = async () => {
    await Promise.all(pods.map((p) => {
      if (!p.alive()) return p.exited
      const timer = setTimeout(() => p.child.kill("SIGKILL"), 5_000)
      p.child.kill("SIGCONT") // a test may have left it frozen
      if (p.child.connected) p.send({ type: "exit" })
      else p.child.kill("SIGTERM")
      return p.exited.then(() => clearTimeout(timer))
    }))
  }
  try {
    await waitFor(() => of("ready").length === n, 60_000, "pods to be ready")
  } catch (e) {
    await stop()
    throw e
  }
  return {
    pods,
    messages,
    startsPerBucket: () => {
      const counts = new Map<number, number>()
      for (const m of of("start")) counts.set(m.bucket, (counts.get(m.bucket) ?? 0) + 1)
      return counts
    },
    startsPerClaimedBucket: () => {
      const counts = new Map<number, number>()
      for (const perKey of startsPerKeyAndClaimedBucket().values()) {
        for (const [bucket, n] of perKey) counts.set(bucket, (counts.get(bucket) ?? 0) + n)
      }
      return counts
    },
    startsPerKeyAndClaimedBucket,
    explain: (bucket, windowMs) => {
      const from = (bucket - 1) * windowMs
      const to = (bucket + 2) * windowMs
      return messages
        .filter((m) => "wallAt" in m && m.wallAt >= from && m.wallAt < to && ["start", "finish", "claim", "commit", "release"].includes(m.type))
        .map((m) => {
          const { type, id, wallAt, ...rest } = m as Extract<Received, { wallAt: number }>
          return `${wallAt - bucket * windowMs}ms pod ${id} ${type} ${JSON.stringify(rest)}`
        })
        .join("\n")
    },
    of,
    next: async (type, options = {}) => {
      const since = options.since ?? Date.now()
      const find = () => of(type, since).find((m) => options.where?.(m) ?? true)
      await waitFor(() => find() !== undefined, options.timeoutMs ?? 15_000, `a '${type}' report`)
      return find()!
    },
    waitFor,
    load: async (options) => {
      const from = messages.length
      const targets = pods.filter((p) => p.alive() && (options.pods?.includes(p.id) ?? true))
      for (const p of targets) {
        p.send({
          type: "load",
          callers: options.callers,
          durationMs: options.durationMs,
          pauseMs: options.pauseMs,
          ...(options.keys !== undefined ? { keys: options.keys } : {}),
          ...(options.latencySample !== undefined ? { latencySample: options.latencySample } : {})
        })
      }
      const loaded = () => messages.slice(from).filter((m): m is Loaded => m.type === "loaded")
      const settled = () => targets.every((p) => !p.alive() || loaded().some((m) => m.id === p.id))
      await waitFor(settled, options.durationMs + 30_000, "load summaries")
      return loaded()
    },
    stats: async (options = {}) => {
      const since = Date.now()
      const targets = pods.filter((p) => p.alive())
      for (const p of targets) p.send({ type: "stats", ...(options.gc ? { gc: true } : {}) })
      const got = () => of("stats", since)
      await waitFor(() => targets.every((p) => !p.alive() || got().some((m) => m.id === p.id)), 10_000, "stats")
      return got()
    },
    invalidate: async (pod, target) => {
      const requestId = ++requests
      const since = Date.now()
      pods[pod]!.send({ type: "invalidate", requestId, ...target })
      const found = () => of("invalidated", since).find((m) => m.requestId === requestId)
      await waitFor(() => found() !== undefined, 10_000, `invalidation ${requestId}`)
      return found()!
    },
    stop
  }
}

export interface StoreSample {
  readonly at: number
  readonly bucket: number
  readonly fence: number
  readonly data: string
}

export interface StoreWatch {
  /** Every change of the stored record seen, in order (absent records are not samples). */
  readonly samples: Array<StoreSample>
  /** The client the watch polls with; tests use it for `CLIENT PAUSE`, `CLIENT KILL`, planting data. */
  readonly client: IORedis
  /**
   * Each step where `(bucket, fence)` went down, as text; empty when it never did. With `since`
   * / `until`, only steps between two samples taken in `[since, until)` (a store that lost its
   * data may start again lower; what the cache wrote before and after is checked on its own).
   */
  readonly decreases: (since?: number, until?: number) => Array<string>
  readonly latest: () => StoreSample | undefined
  readonly stop: () => Promise<void>
}

/**
 * Polls `<tenant>:lockstep:{<key>}:v` every `intervalMs` from this process with its own
 * fail-fast ioredis client. A poll that fails (Redis frozen, down, restarting) is skipped.
 */
export const watchStore = (options: {
  readonly port: number
  readonly tenant: string
  readonly key: string
  /** Only records of this window length are the cache's (others are skipped). */
  readonly windowMs?: number
  readonly intervalMs?: number
}): StoreWatch => {
  const client = new IORedis({
    host: "127.0.0.1",
    port: options.port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 300,
    retryStrategy: () => 100
  })
  client.on("error", () => {})
  const key = Keys.make(Keys.tenantPrefix(options.tenant), options.key).value
  const samples: Array<StoreSample> = []
  let running = true
  let polling: Promise<void> = Promise.resolve()
  const poll = async () => {
    try {
      if ((await client.type(key)) !== "hash") return
      const [b, f, w, d] = await client.hmget(key, "b", "f", "w", "d")
      const bucket = Number(b)
      const fence = Number(f)
      // a record the cache would not read (planted by a test) is not one of its writes
      if (b === null || f === null || !Number.isSafeInteger(bucket) || !Number.isSafeInteger(fence)) return
      if (options.windowMs !== undefined && Number(w) !== options.windowMs) return
      if (options.windowMs !== undefined && bucket > Math.floor(Date.now() / options.windowMs)) return
      const last = samples[samples.length - 1]
      if (last === undefined || last.bucket !== bucket || last.fence !== fence || last.data !== d) {
        samples.push({ at: Date.now(), bucket, fence, data: d ?? "" })
      }
    } catch {
      // unreachable right now: nothing to record
    }
  }
  const timer = setInterval(() => {
    if (running) polling = polling.then(poll)
  }, options.intervalMs ?? 20)
  return {
    samples,
    client,
    latest: () => samples[samples.length - 1],
    decreases: (since = 0, until = Infinity) => {
      const out: Array<string> = []
      const within = samples.filter((x) => x.at >= since && x.at < until)
      for (let i = 1; i < within.length; i++) {
        const a = within[i - 1]!
        const b = within[i]!
        if (b.bucket < a.bucket || (b.bucket === a.bucket && b.fence < a.fence)) {
          out.push(`(${a.bucket}, ${a.fence}) -> (${b.bucket}, ${b.fence}) at ${b.at}`)
        }
      }
      return out
    },
    stop: async () => {
      running = false
      clearInterval(timer)
      await polling
      client.disconnect()
    }
  }
}

/** The value of percentile `p` (0–100) of an ascending sample. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** Resolves after `ms` of real time. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
