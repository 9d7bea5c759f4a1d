/**
 * Ships the cache's spans (`lockstep.refresh`, `lockstep.produce`, `lockstep.keepWarm`, inside
 * whatever spans the application opens around them) to an OpenTelemetry collector over
 * OTLP/HTTP, through `@effect/opentelemetry`.
 *
 * Provide it once, at the top of the application, so that every fiber (requests, and the
 * refreshes they fork) runs with its tracer. Without an endpoint `layerConfig` is `Layer.empty`:
 * spans stay in Effect's in-process tracer and nothing is exported. The OpenTelemetry SDK is
 * loaded only when a layer here is built (importing it takes about 0.2 s), so an application
 * that does not trace does not pay for it.
 *
 * @since 0.1.0
 */
import type { SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"

/** @since 0.1.0 */
export interface Options {
  /**
   * The collector's base URL, as in `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://localhost:4318`);
   * spans are posted to `<endpoint>/v1/traces`.
   */
  readonly endpoint: string
  /** The resource's `service.name`; "lockstep" by default. */
  readonly serviceName?: string | undefined
  /** The resource's `service.version`. */
  readonly serviceVersion?: string | undefined
  /** How long shutdown may take to flush the spans still buffered; 3 seconds by default. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

/**
 * The traces URL of an OTLP/HTTP base endpoint: the specification appends `v1/traces` to
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter's own `url` option is used as given).
 *
 * @since 0.1.0
 */
export const tracesUrl = (endpoint: string): string => `${endpoint.replace(/\/+$/, "")}/v1/traces`

/**
 * Spans batched (`BatchSpanProcessor`, so a span's end never waits for the network) into any
 * exporter. When the layer's scope closes, buffered spans are flushed before the exporter shuts
 * down, so the spans of a graceful shutdown are not lost.
 *
 * @since 0.1.0
 */
export const layerExporter = (
  exporter: SpanExporter,
  options: Omit<Options, "endpoint"> = {}
): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => Promise.all([import("@effect/opentelemetry/NodeSdk"), import("@opentelemetry/sdk-trace-base")])),
      ([NodeSdk, { BatchSpanProcessor }]) =>
        NodeSdk.layer(() => ({
          resource: {
            serviceName: options.serviceName ?? "lockstep",
            ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion })
          },
          spanProcessor: new BatchSpanProcessor(exporter),
          shutdownTimeout: options.shutdownTimeout
        }))
    )
  )

/**
 * Spans exported over OTLP/HTTP (JSON) to `options.endpoint`. Other `OTEL_EXPORTER_OTLP_*`
 * settings the exporter reads from the environment (headers, timeout, compression) still apply.
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("@opentelemetry/exporter-trace-otlp-http")),
      ({ OTLPTraceExporter }) => layerExporter(new OTLPTraceExporter({ url: tracesUrl(options.endpoint) }), options)
    )
  )

/**
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (an http(s) URL) and `OTEL_SERVICE_NAME` (default "lockstep"),
 * read through Effect `Config`. With no endpoint (unset or empty, as OpenTelemetry treats it)
 * this is `Layer.empty`, so an application can always provide it.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      endpoint: Config.string("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
        Config.withDefault(""),
        Config.mapOrFail((text) => {
          const trimmed = text.trim()
          if (trimmed === "") return Either.right(trimmed)
          const url = URL.canParse(trimmed) ? new URL(trimmed) : undefined
          return url !== undefined && (url.protocol === "http:" || url.protocol === "https:")
            ? Either.right(trimmed)
            : Either.left(
              ConfigError.InvalidData(["OTEL_EXPORTER_OTLP_ENDPOINT"], `expected an http(s) URL, got ${JSON.stringify(text)}`)
            )
        })
      ),
      serviceName: Config.string("OTEL_SERVICE_NAME").pipe(
        Config.withDefault(""),
        Config.map((name) => name.trim() === "" ? "lockstep" : name.trim())
      )
    }),
    ({ endpoint, serviceName }): Layer.Layer<never> => endpoint === "" ? Layer.empty : layer({ endpoint, serviceName })
  )
)
