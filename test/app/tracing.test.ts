/**
 * The explorer with tracing provided above it, as `main.ts` does: a cold page request's server
 * span and the cache's refresh and producer spans under it are exported as one trace.
 */
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { Ledger } from "../../app/Ledger.js"
import * as Tracing from "../../app/Tracing.js"
import { fixtureLedger, get, server } from "./support.js"

/** Keeps its spans when the SDK shuts it down (the stock one clears them). */
class KeptSpans extends InMemorySpanExporter {
  override shutdown() {
    return Promise.resolve()
  }
}

describe("explorer tracing", () => {
  it.live("a cold request's server span is the parent of lockstep.refresh, itself the parent of lockstep.produce", () =>
    Effect.gen(function*() {
      const exporter = new KeptSpans()
      const explorer = server(Layer.sync(Ledger, fixtureLedger)).pipe(Layer.provide(Tracing.layerExporter(exporter)))
      const response = yield* Effect.provide(get("/api/dashboard"), explorer)
      expect(response.status).toBe(200)
      expect(response.headers["x-cache"]).toBe("miss")
      const spans = exporter.getFinishedSpans()
      const names = spans.map((s) => s.name).join(", ")
      const request = spans.find((s) => s.name === "http.server GET" && s.attributes["url.path"] === "/api/dashboard")
      const refresh = spans.find((s) => s.name === "lockstep.refresh")
      const produce = spans.find((s) => s.name === "lockstep.produce")
      expect(request, names).toBeDefined()
      expect(refresh, names).toBeDefined()
      expect(produce, names).toBeDefined()
      // the refresh is forked from the request's fiber, and the producer runs inside the refresh
      expect(refresh!.parentSpanContext?.spanId).toBe(request!.spanContext().spanId)
      expect(produce!.parentSpanContext?.spanId).toBe(refresh!.spanContext().spanId)
      expect(produce!.attributes["lockstep.key"]).toBe(refresh!.attributes["lockstep.key"])
      expect(new Set([request!, refresh!, produce!].map((s) => s.spanContext().traceId)).size).toBe(1)
      expect(request!.resource.attributes["service.name"]).toBe("lockstep")
    }))
})
