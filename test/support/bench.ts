/**
 * The fault suite's bench: a private redis-server, a fleet of pods on it, a watch on the stored
 * `(bucket, fence)` from outside. Nothing here imports vitest, so scripts run outside it (the
 * soak) use the bench too; the checks scenarios end with are in `./faults.ts`.
 */
import { type Fleet, type Loaded, startFleet, type StoreWatch, watchStore } from "./fleet.js"
import type { PodConfig } from "./pod.js"
import { type RedisOptions, type RedisServer, type Server, serverKind, startRedis } from "./services.js"

export interface Bench {
  redis: Server
  readonly port: number
  readonly tenant: string
  readonly key: string
  readonly fleet: Fleet
  readonly watch: StoreWatch
  /** Every load summary of the scenario, for the final checks. */
  readonly summaries: Array<Loaded>
  /** Runs a load and keeps its summaries. */
  readonly load: (options: Parameters<Fleet["load"]>[0]) => Promise<ReadonlyArray<Loaded>>
  /** The server the bench started (with `redisOptions`), for `kill` / `start`; throws for one passed in as `redis`. */
  readonly server: () => RedisServer
  /** The window (of the machine's clock) of an instant. */
  readonly bucketOf: (at: number) => number
  readonly stop: () => Promise<void>
}

export interface BenchOptions {
  readonly pods: number
  readonly windowMs: number
  readonly producerMs: number
  readonly settings?: PodConfig["settings"]
  readonly overrides?: (id: number) => Partial<Omit<PodConfig, "id">>
  readonly tenant?: string
  /** Use a redis-server already started, rather than a new one. */
  readonly redis?: Server
  /** Options of the server the bench starts (AOF, `maxmemory`, `DEBUG`). */
  readonly redisOptions?: RedisOptions
  /** Each pod's `REDIS_PORT` (default: the server's), e.g. a proxy's port for one pod. */
  readonly portOf?: (id: number, redisPort: number) => number | undefined
  /** The key the bench's watch polls (default: the pods' key; `<key>-0` for a multi-key load). */
  readonly watchKey?: string
  /** Runs once the server is up, before the pods start (e.g. to put a proxy in front of it). */
  readonly prepare?: (redis: Server) => Promise<void>
}

let benches = 0

export const startBench = async (options: BenchOptions): Promise<Bench> => {
  const own = options.redis ? undefined : await startRedis(options.redisOptions)
  const redis: Server = options.redis ?? own!
  const tenant = options.tenant ?? `faults-${++benches}`
  const key = "aggregate"
  let fleet: Fleet
  try {
    await options.prepare?.(redis)
    fleet = await startFleet(options.pods, {
      env: { REDIS_HOST: "127.0.0.1", REDIS_PORT: String(redis.port), TENANT: tenant },
      key,
      windowMs: options.windowMs,
      producerMs: options.producerMs,
      ...(options.settings ? { settings: options.settings } : {})
    }, (id) => {
      const extra = options.overrides?.(id) ?? {}
      const port = options.portOf?.(id, redis.port)
      return port === undefined ? extra : { ...extra, env: { ...extra.env, REDIS_PORT: String(port) } }
    })
  } catch (e) {
    if (!options.redis) await redis.stop()
    throw e
  }
  const watch = watchStore({ port: redis.port, tenant, key: options.watchKey ?? key, windowMs: options.windowMs })
  const summaries: Array<Loaded> = []
  const bench: Bench = {
    redis,
    port: redis.port,
    tenant,
    key,
    fleet,
    watch,
    summaries,
    load: async (o) => {
      const got = await fleet.load(o)
      summaries.push(...got)
      return got
    },
    bucketOf: (at) => Math.floor(at / options.windowMs),
    server: () => {
      if (own === undefined) throw new Error("the bench did not start this server")
      return own
    },
    stop: async () => {
      await watch.stop()
      await fleet.stop()
      if (!options.redis) await bench.redis.stop()
    }
  }
  return bench
}

/** Above this a pod's memory is not bounded: a pod idles at about 120 MB RSS and 20 MB heap. */
export const MAX_RSS_MB = 400
export const MAX_HEAP_MB = 150

/** Starts per (pod, window) of the machine's clock, over reports received in `[from, to)`. */
export const startsPerPodWindow = (bench: Bench, from = 0, to = Infinity) => {
  const counts = new Map<string, number>()
  for (const m of bench.fleet.of("start", from)) {
    if (m.receivedAt >= to) continue
    const k = `pod ${m.id} window ${m.bucket}`
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  return counts
}

/** Starts per window over reports received in `[from, to)`. */
export const startsPerWindow = (bench: Bench, from = 0, to = Infinity) => {
  const counts = new Map<number, number>()
  for (const m of bench.fleet.of("start", from)) {
    if (m.receivedAt >= to) continue
    counts.set(m.bucket, (counts.get(m.bucket) ?? 0) + 1)
  }
  return counts
}

/** Collects numbers a scenario observed, printed once at the end of the run for the report. */
export const observed: Record<string, unknown> = {}
export const note = (scenario: string, values: Record<string, unknown>) => {
  observed[scenario] = { ...(observed[scenario] as object | undefined), ...values }
  console.log(`[faults ${serverKind()}] ${scenario}: ${JSON.stringify(values)}`)
}
