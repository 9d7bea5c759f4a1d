/** Reading Effect metrics in tests: metrics are process-global, so checks read deltas. */
import { Effect, Metric, MetricState } from "effect"

/** The count of a counter's series that carry all of `tags`, summed. */
export const counter = (name: string, tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    let total = 0
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      if (!Object.entries(tags).every(([k, v]) => pair.metricKey.tags.some((t) => t.key === k && t.value === v))) continue
      if (MetricState.isCounterState(pair.metricState)) total += Number(pair.metricState.count)
    }
    return total
  })
