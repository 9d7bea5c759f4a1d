/**
 * The Effect-metrics-to-Prometheus converter behind `/metrics`, on one metric of each kind, and
 * the HTML helpers' escaping.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, Option } from "effect"
import * as Html from "../../app/Html.js"
import * as Metrics from "../../app/Metrics.js"

describe("Metrics.render", () => {
  it.effect("writes counters, gauges, histograms, frequencies and summaries with their tags", () =>
    Effect.gen(function*() {
      const counter = Metric.counter("t_app_jobs_total", { description: "jobs done", bigint: true }).pipe(Metric.tagged("queue", "a\"b"))
      const gauge = Metric.gauge("t_app.temperature")
      const histogram = Metric.histogram("t_app_latency_seconds", MetricBoundaries.fromIterable([0.1, 1]), "latency")
      const frequency = Metric.frequency("t_app_status", { description: "statuses" })
      const summary = Metric.summary({ name: "t_app_size", maxAge: "1 minute", maxSize: 100, error: 0.01, quantiles: [0.5, 0.9] })

      yield* Metric.incrementBy(counter, 3n)
      yield* Metric.set(gauge, 21.5)
      for (const v of [0.05, 0.5, 0.7, 3]) yield* Metric.update(histogram, v)
      for (const s of ["ok", "ok", "fail"]) yield* Metric.update(frequency, s)
      for (const v of [1, 2, 3, 4, 5]) yield* Metric.update(summary, v)

      const text = yield* Metrics.render({ includeProcess: false })
      const lines = text.split("\n")
      const has = (line: string) => expect(lines, line).toContain(line)

      has("# HELP t_app_jobs_total jobs done")
      has("# TYPE t_app_jobs_total counter")
      has(`t_app_jobs_total{queue="a\\"b"} 3`)
      has("# TYPE t_app_temperature gauge")
      has("t_app_temperature 21.5")
      has("# TYPE t_app_latency_seconds histogram")
      has(`t_app_latency_seconds_bucket{le="0.1"} 1`)
      has(`t_app_latency_seconds_bucket{le="1"} 3`)
      has(`t_app_latency_seconds_bucket{le="+Inf"} 4`)
      has("t_app_latency_seconds_sum 4.25")
      has("t_app_latency_seconds_count 4")
      has("# TYPE t_app_status counter")
      has(`t_app_status{key="ok"} 2`)
      has(`t_app_status{key="fail"} 1`)
      has("# TYPE t_app_size summary")
      // the quantiles are Effect's own estimates, passed through
      const state = yield* Metric.value(summary)
      for (const [q, v] of state.quantiles) has(`t_app_size{quantile="${q}"} ${Option.getOrThrow(v)}`)
      has("t_app_size_sum 15")
      has("t_app_size_count 5")
      // every sample line is `name{labels} value` with a valid name
      for (const line of lines.filter((l) => l !== "" && !l.startsWith("#"))) {
        expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+Inf-]+$/)
      }
    }))

  it("sanitises names", () => {
    expect(Metrics.metricName("a.b-c")).toBe("a_b_c")
    expect(Metrics.metricName("9lives")).toBe("_9lives")
    expect(Metrics.labelName("__reserved")).toBe("x__reserved")
    expect(Metrics.labelName("http.route")).toBe("http_route")
  })
})

describe("Html", () => {
  it("escapes every interpolated string and keeps Html as is", () => {
    const name = `<b onclick="x">'&'</b>`
    const out = Html.html`<p title="${name}">${name}${Html.html`<i>${name}</i>`}${[name, 1, null, undefined, false]}</p>`.value
    const escaped = "&lt;b onclick=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
    expect(out).toBe(`<p title="${escaped}">${escaped}<i>${escaped}</i>${escaped}1</p>`)
  })

  it("embeds JSON that cannot close its script element", () => {
    const out = Html.jsonScript("m", { s: "</script><script>alert(1)</script>&\u2028" }).value
    expect(out).not.toContain("</script><script>")
    expect(out.match(/<\/script>/g)).toHaveLength(1)
    const json = out.slice(out.indexOf(">") + 1, out.lastIndexOf("</script>"))
    expect(JSON.parse(json)).toEqual({ s: "</script><script>alert(1)</script>&\u2028" })
  })
})
