/**
 * `/metrics`: every Effect metric of the process (the cache's, the explorer's, anyone's) in the
 * Prometheus text format, written by prom-client, plus prom-client's Node process metrics.
 *
 * Effect keeps its own registry; on each scrape we read `Metric.snapshot` and hand prom-client
 * one pre-aggregated collector per metric family:
 * - counters and gauges as they are (a bigint is converted to a number);
 * - histograms with their cumulative buckets as `_bucket{le=…}`, plus `_sum` and `_count`;
 * - frequencies as a counter with one series per observed value (label `key`);
 * - summaries with their quantiles (`quantile=…`), plus `_sum` and `_count`.
 * Metric tags become labels. Names and label names are sanitised to Prometheus' alphabet.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Prometheus from "prom-client"

/** The explorer's own metric: HTTP responses by route and status. */
export const httpResponses = Metric.counter("explorer_http_responses_total", {
  description: "HTTP responses of the explorer by route and status",
  incremental: true
})

type Labels = Record<string, string | number>

interface Sample {
  readonly metricName?: string
  readonly labels: Labels
  readonly value: number
}

interface Family {
  readonly name: string
  readonly help: string
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  readonly values: Array<Sample>
}

/** `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names. */
export const metricName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : `_${cleaned}`
}

/** `[a-zA-Z_][a-zA-Z0-9_]*` for label names, never the reserved `__` prefix. */
export const labelName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  const valid = /^[a-zA-Z_]/.test(cleaned) ? cleaned : `_${cleaned}`
  return valid.startsWith("__") ? `x${valid}` : valid
}

const toNumber = (n: number | bigint): number => (typeof n === "bigint" ? Number(n) : n)

/** Groups a snapshot into Prometheus metric families (pure; exported for tests). */
export const families = (snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>): Array<Family> => {
  const byName = new Map<string, Family>()
  const family = (name: string, type: Family["type"], help: string): Family | undefined => {
    const existing = byName.get(name)
    if (existing !== undefined) return existing.type === type ? existing : undefined // a clash of kinds: keep the first
    const created: Family = { name, type, help, values: [] }
    byName.set(name, created)
    return created
  }
  for (const pair of snapshot) {
    const key = pair.metricKey
    const name = metricName(key.name)
    const help = Option.getOrElse(key.description, () => key.name)
    const labels: Labels = {}
    for (const tag of key.tags) labels[labelName(tag.key)] = tag.value
    const state: unknown = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", help)?.values.push({ labels, value: toNumber(state.count) })
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", help)?.values.push({ labels, value: toNumber(state.value) })
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", help)
      if (f === undefined) continue
      let sawInfinity = false
      for (const [bound, cumulative] of state.buckets) {
        sawInfinity ||= bound === Number.POSITIVE_INFINITY
        f.values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: formatBound(bound) }, value: cumulative })
      }
      if (!sawInfinity) f.values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: state.count })
      f.values.push({ metricName: `${name}_sum`, labels, value: state.sum })
      f.values.push({ metricName: `${name}_count`, labels, value: state.count })
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", help)
      if (f === undefined) continue
      for (const [quantile, value] of state.quantiles) {
        if (Option.isSome(value)) f.values.push({ labels: { ...labels, quantile: String(quantile) }, value: value.value })
      }
      f.values.push({ metricName: `${name}_sum`, labels, value: state.sum })
      f.values.push({ metricName: `${name}_count`, labels, value: state.count })
    } else if (MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", help)
      if (f === undefined) continue
      for (const [value, occurrences] of state.occurrences) f.values.push({ labels: { ...labels, key: value }, value: occurrences })
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

const formatBound = (bound: number) => (bound === Number.POSITIVE_INFINITY ? "+Inf" : String(bound))

/**
 * A prom-client collector over a family computed elsewhere. prom-client's registry only calls
 * `get()` and reads `name`/`type`; its `Metric` type lists its own classes, hence the cast.
 */
const collector = (f: Family): Prometheus.Metric => ({
  name: f.name,
  help: f.help,
  type: f.type,
  aggregator: "sum",
  get: async () => ({ name: f.name, help: f.help, type: f.type, aggregator: "sum", values: f.values })
}) as unknown as Prometheus.Metric

/** Node process metrics (CPU, memory, event loop lag), collected by prom-client itself. */
const processRegistry = new Prometheus.Registry()
Prometheus.collectDefaultMetrics({ register: processRegistry, prefix: "explorer_" })

export const contentType = Prometheus.Registry.PROMETHEUS_CONTENT_TYPE

/** Renders the text format of every Effect metric and the process metrics. */
export const render = (options: { readonly includeProcess?: boolean } = {}): Effect.Effect<string> =>
  Effect.flatMap(Metric.snapshot, (snapshot) => {
    const registry = new Prometheus.Registry()
    for (const f of families(snapshot)) registry.registerMetric(collector(f))
    const effectOnly = Effect.promise(() => registry.metrics())
    if (options.includeProcess === false) return effectOnly
    // `merge` refuses duplicate names; an Effect metric named like a process metric wins
    return Effect.try(() => Prometheus.Registry.merge([registry, processRegistry])).pipe(
      Effect.flatMap((merged) => Effect.promise(() => merged.metrics())),
      Effect.orElse(() => effectOnly)
    )
  })
