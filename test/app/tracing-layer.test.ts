/**
 * `Tracing`: the cache's spans reach an OpenTelemetry exporter with their attributes and
 * parents, `layerConfig` does nothing without an endpoint, and the OTLP/HTTP layer posts the
 * spans still buffered to a collector (a local HTTP server here) when its scope closes.
 */
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as Tracing from "../../app/Tracing.js"
import { Memo, Redis } from "../../src/index.js"

/** Keeps its spans when the SDK shuts it down (the stock one clears them), to read them after the scope closes. */
class KeptSpans extends InMemorySpanExporter {
  override shutdown() {
    return Promise.resolve()
  }
}

const MemoLive = Memo.layer.pipe(Layer.provide(Redis.layerMemory))

/** A cold `memo` of `key` inside a `request` span, with a fresh cache over the in-memory store. */
const coldRequest = (key: string) =>
  Memo.memo({ key, window: "1 minute", schema: Schema.Number }, Effect.succeed(42)).pipe(
    Effect.withSpan("request"),
    Effect.provide(MemoLive)
  )

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => {
  const found = spans.filter((s) => s.name === name)
  expect(found, `spans named ${name} among ${spans.map((s) => s.name).join(", ")}`).toHaveLength(1)
  return found[0]!
}

interface Post {
  readonly path: string
  readonly contentType: string
  readonly body: string
}

/** A local OTLP/HTTP collector on a free loopback port that records what is posted to it. */
const collector = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly posts: Array<Post>; readonly server: Server }>((resume) => {
    const posts: Array<Post> = []
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        if (req.method === "POST") {
          posts.push({ path: req.url ?? "", contentType: req.headers["content-type"] ?? "", body: Buffer.concat(chunks).toString("utf8") })
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, posts, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const withEnv = (env: Record<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("Tracing", () => {
  it.live("exports lockstep.refresh and lockstep.produce with the key, produce inside refresh inside the request", () =>
    Effect.gen(function*() {
      const exporter = new KeptSpans()
      const value = yield* Effect.provide(coldRequest("dashboard"), Tracing.layerExporter(exporter, { serviceName: "lockstep-test" }))
      expect(value).toBe(42)
      // the layer's scope is closed: the batch processor has flushed everything
      const spans = exporter.getFinishedSpans()
      const request = named(spans, "request")
      const refresh = named(spans, "lockstep.refresh")
      const produce = named(spans, "lockstep.produce")
      expect(refresh.attributes["lockstep.key"]).toBe("dashboard")
      expect(produce.attributes).toMatchObject({ "lockstep.key": "dashboard", "lockstep.mode": "leader" })
      expect(produce.parentSpanContext?.spanId).toBe(refresh.spanContext().spanId)
      expect(refresh.parentSpanContext?.spanId).toBe(request.spanContext().spanId)
      expect(new Set([request, refresh, produce].map((s) => s.spanContext().traceId)).size).toBe(1)
      expect(produce.resource.attributes["service.name"]).toBe("lockstep-test")
    }))

  it.live("layerConfig without OTEL_EXPORTER_OTLP_ENDPOINT is Layer.empty: same tracer, nothing provided", () =>
    Effect.gen(function*() {
      const before = yield* Effect.tracer
      const context = yield* Layer.build(Tracing.layerConfig.pipe(Layer.provide(withEnv({ OTEL_SERVICE_NAME: "ignored" }))))
      expect(context.unsafeMap.size).toBe(0)
      const inside = yield* Effect.provide(
        Effect.zip(Effect.tracer, coldRequest("dashboard")),
        Tracing.layerConfig.pipe(Layer.provide(withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: " " })))
      )
      expect(inside[0]).toBe(before)
      expect(inside[1]).toBe(42)
    }).pipe(Effect.scoped))

  it.live("layerConfig rejects an endpoint that is not an http(s) URL", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(
        Layer.build(Tracing.layerConfig.pipe(Layer.provide(withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" }))))
      )
      expect(result._tag).toBe("Left")
    }).pipe(Effect.scoped))

  it.live("layerConfig posts the spans to <endpoint>/v1/traces over OTLP/HTTP when its scope closes", () =>
    Effect.gen(function*() {
      const { posts, url } = yield* collector
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `${url}/`, OTEL_SERVICE_NAME: "lockstep-otlp" }
      const value = yield* Effect.provide(coldRequest("market"), Tracing.layerConfig.pipe(Layer.provide(withEnv(env))))
      expect(value).toBe(42)
      expect(posts.length).toBeGreaterThanOrEqual(1)
      expect(posts.every((p) => p.path === "/v1/traces")).toBe(true)
      expect(posts[0]!.contentType).toContain("application/json")
      const payloads = posts.map((p) => JSON.parse(p.body) as OtlpTraces)
      const resources = payloads.flatMap((p) => p.resourceSpans)
      const names = resources.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => span.name)))
      expect(names).toEqual(expect.arrayContaining(["request", "lockstep.refresh", "lockstep.produce"]))
      const serviceNames = resources.map((r) => r.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue)
      expect(new Set(serviceNames)).toEqual(new Set(["lockstep-otlp"]))
    }).pipe(Effect.scoped))

  it("tracesUrl appends v1/traces to the base endpoint", () => {
    expect(Tracing.tracesUrl("http://collector:4318")).toBe("http://collector:4318/v1/traces")
    expect(Tracing.tracesUrl("http://collector:4318/")).toBe("http://collector:4318/v1/traces")
    expect(Tracing.tracesUrl("https://otel.example/prefix")).toBe("https://otel.example/prefix/v1/traces")
  })
})

interface OtlpTraces {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: { readonly stringValue?: string } }> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<{ readonly name: string }> }>
  }>
}
