import { OtlpMetrics, OtlpSerialization } from "@effect/opentelemetry"
import { FetchHttpClient, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
// One file over prom-client: copy app/Metrics.ts from lockstep's repository into your project.
import * as Prometheus from "../app/Metrics.js"

// lockstep's metrics are Effect metrics: an exporter of Effect metrics exports them with yours.

// Prometheus: every Effect metric in the text format, for the handler of GET /metrics.
export const metricsResponse = Effect.map(
  Prometheus.render({ includeProcess: true }),
  (text) => HttpServerResponse.text(text, { contentType: Prometheus.contentType })
)

// OTLP/HTTP: pushed to a collector every 10 s; provide it once, beside the cache layer.
export const OtlpLive = OtlpMetrics.layer({
  url: "http://otel-collector:4318/v1/metrics",
  resource: { serviceName: "shop" },
  exportInterval: "10 seconds"
}).pipe(Layer.provide(FetchHttpClient.layer), Layer.provide(OtlpSerialization.layerJson))
