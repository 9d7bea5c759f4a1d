/**
 * What the HTTP layer needs from a page module: where it lives, how to load it (a
 * `Memo.memoWithInfo` call with the page's window), how to keep it warm, and how to show it.
 */
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Memo } from "../../src/index.js"
import type { PageName } from "../Config.js"
import type * as Html from "../Html.js"
import type { Ledger, LedgerFailure } from "../Ledger.js"

export interface Page<A> {
  readonly name: PageName
  readonly title: string
  readonly path: HttpLayerRouter.PathInput
  readonly api: HttpLayerRouter.PathInput
  /** The page's loader, built once: `timeout` bounds only a cold wait, never a hit. */
  readonly load: (
    window: Duration.DurationInput,
    timeout: Duration.DurationInput
  ) => Effect.Effect<Memo.Info<Timed<A>>, LedgerFailure | Memo.WaitTimeout, Ledger | Memo.Memo>
  readonly keepWarm: (
    window: Duration.DurationInput,
    lag: Duration.DurationInput
  ) => Effect.Effect<void, never, Scope.Scope | Memo.Memo | Ledger>
  /** The value as JSON for the `/api` twin. */
  readonly toJson: (value: A) => unknown
  /** The content under the page heading. */
  readonly render: (value: A) => Html.Html
  /** "1 May – 30 May 2024", or undefined for an empty ledger. */
  readonly period: (value: A) => string | undefined
}

/** The span every page value carries (`null` for an empty ledger). */
export interface HasSpan {
  readonly span: { readonly from: string; readonly to: string } | null
}

export const periodOf = (value: HasSpan): string | undefined =>
  value.span === null ? undefined : `${value.span.from} to ${value.span.to} (30 days, UTC)`

/**
 * A page value with how long its producer took. The browser uses that time to choose when to
 * retry after a stale refresh: by then the refresh under way has probably finished.
 */
export interface Timed<A> {
  readonly value: A
  readonly computeMs: number
}

export const Timed = <A, I>(value: Schema.Schema<A, I>) => Schema.Struct({ value, computeMs: Schema.Number })

/** Runs a producer and records its duration (from `Clock`). */
export const timed = <A, E, R>(produce: Effect.Effect<A, E, R>): Effect.Effect<Timed<A>, E, R> =>
  Effect.map(Effect.timed(produce), ([duration, value]) => ({ value, computeMs: Math.round(Duration.toMillis(duration)) }))

/**
 * A page's loader over one stored schema, defined once per configured window so that its codecs
 * are compiled once (a schema built per request would be compiled per request).
 */
export const loaders = <A, I, E>(key: string, schema: Schema.Schema<A, I>, produce: Effect.Effect<A, E, Ledger>) => {
  const stored = Timed(schema)
  const lookup = () => timed(produce)
  return {
    load: (window: Duration.DurationInput, timeout: Duration.DurationInput) =>
      Memo.loader({ key, window, schema: stored, lookup, timeout }).getWithInfo(),
    keepWarm: (window: Duration.DurationInput, lag: Duration.DurationInput) =>
      Memo.keepWarm(Memo.loader({ key, window, schema: stored, lookup }), undefined, { lag })
  }
}
