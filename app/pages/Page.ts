/**
 * What the HTTP layer needs from a page module: where it lives, its loader (one `Memo.loader`
 * per configured window, built once by `Loaders.ts`), and how to show it.
 */
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Memo } from "../../src/index.js"
import type { PageName } from "../Config.js"
import type * as Html from "../Html.js"
import type { Ledger, LedgerFailure } from "../Ledger.js"
import type { ListOf } from "./List.js"

/** A page showing `A`; its loader holds `I`: the page itself, or for a list page (`list`), the list of ids it shows. */
export interface Page<A, I = A> {
  readonly name: PageName
  readonly title: string
  readonly path: HttpLayerRouter.PathInput
  readonly api: HttpLayerRouter.PathInput
  /** The cache key. */
  readonly key: string
  /** The page's loader, to build once: `timeout` bounds only a cold wait, never a hit. */
  readonly loader: (window: Duration.DurationInput, timeout: Duration.DurationInput) => PageLoader<I>
  /** A list page: its rows are a drill-down family's values, read with `getMany` on every request. */
  readonly list?: ListOf<I, any, A> | undefined
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

/** A fixed page's loader: one key, answered from the ledger. */
export type PageLoader<A> = Memo.Loader<void, Timed<A>, LedgerFailure | Memo.WaitTimeout, Ledger>

/** The tag of every fixed page (`Memo.invalidateTag("pages")`), beside its own name. */
export const pagesTag = "pages"

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
 * A page's loader over one stored schema. The stored schema is made once per page, so that its
 * codecs are compiled once (a schema built per loader would be compiled per loader).
 */
export const loaders = <A, I>(key: string, name: PageName, schema: Schema.Schema<A, I>, produce: Effect.Effect<A, LedgerFailure, Ledger>) => {
  const stored = Timed(schema)
  const lookup = () => timed(produce)
  const tags = [pagesTag, name]
  return {
    loader: (window: Duration.DurationInput, timeout: Duration.DurationInput): PageLoader<A> =>
      Memo.loader({ key, window, schema: stored, lookup, timeout, tags })
  }
}
