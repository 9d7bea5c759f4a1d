/**
 * What the HTTP layer needs from a page module: where it lives, how to load it (a
 * `Memo.memoWithInfo` call with the page's window), how to keep it warm, and how to show it.
 */
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
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
  readonly load: (window: Duration.DurationInput) => Effect.Effect<Memo.Info<A>, LedgerFailure | Memo.InvalidOptions, Ledger | Memo.Memo>
  readonly keepWarm: (
    window: Duration.DurationInput,
    lag: Duration.DurationInput
  ) => Effect.Effect<void, Memo.InvalidOptions, Scope.Scope | Memo.Memo | Ledger>
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
