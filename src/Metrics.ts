/**
 * The cache's metrics, as Effect `Metric`s: whatever exports Effect metrics (the explorer's
 * `/metrics`, `@effect/opentelemetry`) sees them with no extra wiring.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"

/**
 * `Metric.tagged` unions its labels into a new array on every update, and Effect caches a
 * metric's hook per label array: labels fixed once keep an update (on the hit path too) a
 * `WeakMap` lookup instead of a registry lookup by hashed key.
 */
const withLabel = <Type, Out>(metric: Metric.Metric<Type, number, Out>, key: string, value: string) => {
  const labels = [MetricLabel.make(key, value)]
  return Metric.make(
    metric.keyType,
    (input: number) => metric.unsafeUpdate(input, labels),
    () => metric.unsafeValue(labels),
    (input: number) => metric.unsafeModify(input, labels)
  )
}

const requestsKey = MetricKey.counter("lockstep_requests_total", {
  description: "memo requests by how they were answered",
  incremental: true
})

/**
 * Requests by how they were answered: `l1` (fresh in this process), `redis` (fresh in Redis),
 * `stale` (served at once while a refresh runs), `cold` (waited for a producer).
 *
 * @since 0.1.0
 */
export const requests = Metric.fromMetricKey(requestsKey)

/**
 * The count of requests under `labels` as a plain function: a fresh L1 hit calls it once, with
 * no label lookup (the registry's hook is found once; it is the one `requests` updates).
 *
 * @internal
 */
export const requestsCounter = (labels: ReadonlyArray<MetricLabel.MetricLabel>): () => void => {
  const hook = Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(requestsKey, labels))
  return () => hook.update(1)
}

/** @since 0.1.0 */
export const requestsL1 = withLabel(requests, "result", "l1")
/** @since 0.1.0 */
export const requestsRedis = withLabel(requests, "result", "redis")
/** @since 0.1.0 */
export const requestsStale = withLabel(requests, "result", "stale")
/** @since 0.1.0 */
export const requestsCold = withLabel(requests, "result", "cold")
/**
 * A request that failed: only possible on a cold start (no value anywhere) with a failing
 * producer. Any of these in a warm fleet deserves a look.
 *
 * @since 0.1.0
 */
export const requestsError = withLabel(requests, "result", "error")

/**
 * How many windows old the stale values served were (1 = the previous window, the normal case
 * right after a boundary). A fleet that serves values several windows old is not refreshing:
 * the producer fails, or Redis and the lock are in trouble.
 *
 * @since 0.1.0
 */
export const staleAge = Metric.histogram(
  "lockstep_stale_age_windows",
  MetricBoundaries.fromIterable([1, 2, 3, 5, 10, 30, 100, 1000]),
  "age in windows of the stale values served"
)

/**
 * Producer runs by outcome (`success`, `failure`, `interrupted`) and mode (`leader` under the
 * fleet lock, `local` while Redis is unreachable).
 *
 * @since 0.1.0
 */
export const producerRuns = Metric.counter("lockstep_producer_runs_total", {
  description: "producer runs by outcome and mode",
  incremental: true
})

/** @since 0.1.0 */
export const producerDuration = Metric.histogram(
  "lockstep_producer_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 }),
  "producer run time"
)

/**
 * Claims by outcome: `acquired`, `fresh`, `busy`, `backoff`, and `lost` for a lease taken over.
 *
 * @since 0.1.0
 */
export const lockOutcomes = Metric.counter("lockstep_lock_total", {
  description: "fleet lock claims by outcome",
  incremental: true
})

/**
 * Commits by outcome: `committed`, `older`, `fenced`, `future`, `writeback`.
 *
 * @since 0.1.0
 */
export const commits = Metric.counter("lockstep_commits_total", {
  description: "commits by outcome",
  incremental: true
})

/**
 * Redis operations the cache gave up on, by `operation` (`get`, `claim`, `renew`, `commit`,
 * `release`) and `reason` (`Unavailable`, `Timeout`, `CircuitOpen`, `Protocol`): each one made
 * the cache degrade (serve from L1, produce locally) instead of failing a request.
 *
 * @since 0.1.0
 */
export const redisErrors = Metric.counter("lockstep_redis_errors_total", {
  description: "Redis operations that failed, timed out or were refused by the open breaker",
  incremental: true
})

/**
 * Values a lookup made that do not survive encode then decode with the loader's schema (a `NaN`
 * in a `Schema.Number`, which JSON stores as `null`): never committed, served in the process that
 * made them only.
 *
 * @since 0.1.0
 */
export const encodeFailures = Metric.counter("lockstep_encode_failures_total", {
  description: "values that do not survive encode then decode, kept in their process only",
  incremental: true
})

/**
 * Stored values that failed to decode (corrupt or foreign blobs, or a schema change): each is
 * treated as a miss.
 *
 * @since 0.1.0
 */
export const decodeFailures = Metric.counter("lockstep_decode_failures_total", {
  description: "stored values that failed to decode and were recomputed",
  incremental: true
})

/**
 * 0 closed, 1 half-open, 2 open; tagged with the store's `tenant`. Updated on every transition.
 *
 * @since 0.1.0
 */
export const breakerState = Metric.gauge("lockstep_redis_breaker_state", {
  description: "Redis circuit breaker: 0 closed, 1 half-open, 2 open"
})

/**
 * The gauge value of a breaker state.
 *
 * @since 0.1.0
 */
export const breakerValue = (state: "closed" | "half-open" | "open"): number =>
  state === "closed" ? 0 : state === "half-open" ? 1 : 2

/**
 * Entries in the in-process L1, updated when an entry is added or dropped.
 *
 * @since 0.1.0
 */
export const l1Entries = Metric.gauge("lockstep_l1_entries", { description: "entries in the in-process L1" })

/** @internal */
export const label = MetricLabel.make

const labelSets = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

/**
 * Adds `input` to `metric` under `labels`, with the label array made once per combination:
 * Effect caches a metric's hook per label array, so a fresh array per update would cost a
 * registry lookup by hashed key each time.
 *
 * @internal
 */
export const update = (
  metric: { readonly unsafeUpdate: (input: number, labels: ReadonlyArray<MetricLabel.MetricLabel>) => void },
  input: number,
  labels: Readonly<Record<string, string>>
): void => {
  let id = ""
  for (const k in labels) id += `${k}=${labels[k]}\u0000`
  let set = labelSets.get(id)
  if (set === undefined) {
    set = Object.entries(labels).map(([k, v]) => MetricLabel.make(k, v))
    labelSets.set(id, set)
  }
  metric.unsafeUpdate(input, set)
}

/** The request counters by result, for a loader without a name. */
const byResult = {
  l1: requestsL1,
  redis: requestsRedis,
  stale: requestsStale,
  cold: requestsCold,
  error: requestsError
} as const

/**
 * Counts `n` requests answered as `result`: for a named loader under its `loader` label too.
 *
 * @internal
 */
export const countRequests = (result: keyof typeof byResult, n: number, loader: string | undefined): void => {
  if (loader === undefined) byResult[result].unsafeUpdate(n, [])
  else update(requests, n, { result, loader })
}

/**
 * `labels` with the loader's name as `loader`, when it has one.
 *
 * @internal
 */
export const forLoader = (labels: Readonly<Record<string, string>>, loader: string | undefined): Readonly<Record<string, string>> =>
  loader === undefined ? labels : { ...labels, loader }

/**
 * Notices received from the fleet (commits, invalidations, `set`s).
 *
 * @since 0.1.0
 */
export const noticesReceived = Metric.counter("lockstep_notices_total", {
  description: "fleet notices received",
  incremental: true
})

/**
 * Notices that told nothing new (repeated, late or reordered): harmless, thanks to versions.
 *
 * @since 0.1.0
 */
export const noticesSkipped = Metric.counter("lockstep_notices_skipped_total", {
  description: "fleet notices older than what this process held",
  incremental: true
})

/**
 * Times the notice subscription came (back) up; each one distrusts L1 until the store confirms.
 *
 * @since 0.1.0
 */
export const resyncs = Metric.counter("lockstep_notice_resyncs_total", {
  description: "notice subscriptions (re)established",
  incremental: true
})

/**
 * 1 while the notice subscription is up; 0 while it is down (no L1 hits are answered then).
 *
 * @since 0.1.0
 */
export const busState = Metric.gauge("lockstep_notice_subscription_up", {
  description: "notice subscription: 1 up, 0 down"
})
