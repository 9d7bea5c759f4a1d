/**
 * What the HTTP layer needs from a drill-down page: one entity's page, keyed by its id. Each
 * module defines one `Memo.loader` family (built once per configured window by `Loaders.ts`):
 * the key and the tags are functions of the id, and `retain` drops the records of ids nobody
 * reads any more, so the store holds at most one record per existing entity.
 *
 * Ids come from the URL, so they are parsed strictly (`parseId`) and checked against the
 * directory of ids (`directory.ts`) before a loader is asked: an unknown id never runs a
 * lookup and never creates a record.
 */
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import { Memo } from "../../src/index.js"
import type { DrillName, PageName } from "../Config.js"
import type * as Html from "../Html.js"
import type { Batch, EntityKind, Ledger, LedgerFailure, Span } from "../Ledger.js"
import type { ListOf } from "./List.js"
import { timed, type Timed } from "./Page.js"

/** The largest id a URL may name: the `INT UNSIGNED` columns' maximum. */
export const maxId = 4_294_967_295

/**
 * An id from a URL: digits only, no sign, no leading zero, at most `maxId`. `007`, `1e3`, `-1`,
 * `+1`, `1.0`, ` 1` and `';--` are not ids, so each entity has exactly one address and one key.
 */
export const parseId = (text: string): Option.Option<number> =>
  /^[1-9][0-9]{0,9}$/.test(text) && Number(text) <= maxId ? Option.some(Number(text)) : Option.none()

export const itemHref = (id: number): string => `/market/items/${id}`
export const shopHref = (id: number): string => `/chestshop/shops/${id}`
export const accountHref = (id: number): string => `/accounts/${id}`

/** The directory listed the id, but the lookup found no such entity (it was deleted in between). */
export class EntityMissing extends Data.TaggedError("EntityMissing")<{
  readonly kind: EntityKind
  readonly id: number
}> {
  override get message() {
    return `there is no ${this.kind} ${this.id}`
  }
}

export type DrillFailure = LedgerFailure | EntityMissing

/** The tag of every drill-down page (`Memo.invalidateTag("drilldown")`), beside its family's. */
export const drilldownTag = "drilldown"

/** A drill-down page's loader: one key per id. */
export type DrillLoader<A> = Memo.Loader<number, Timed<A>, DrillFailure | Memo.WaitTimeout, Ledger>

export interface Drill<A> {
  readonly name: DrillName
  readonly kind: EntityKind
  /** The list page it belongs to, for the navigation. */
  readonly section: PageName
  readonly path: HttpLayerRouter.PathInput
  readonly api: HttpLayerRouter.PathInput
  readonly href: (id: number) => string
  /** The cache keys are `<keyPrefix><id>`. */
  readonly keyPrefix: string
  /** The family's tag (`items`, `shops`, `accounts`). */
  readonly tag: string
  readonly loader: (
    window: Duration.DurationInput,
    timeout: Duration.DurationInput,
    retain: Duration.DurationInput
  ) => DrillLoader<A>
  readonly title: (value: A) => string
  readonly toJson: (value: A) => unknown
  readonly render: (value: A) => Html.Html
  readonly period: (value: A) => string | undefined
  /** Rows of another (or the same) family shown on the page, read with `getMany` on every request. */
  readonly list?: ListOf<A, any, A> | undefined
}

/** The loader of a drill-down family over its stored schema (made once per module). */
export const drillLoader = <A, I>(options: {
  readonly keyPrefix: string
  readonly tag: string
  readonly stored: Schema.Schema<Timed<A>, I>
  readonly produce: (id: number) => Effect.Effect<A, DrillFailure, Ledger>
  /**
   * The values of many ids at once (one ledger statement), in the order of `ids`: the loader's
   * `lookupMany`, which `getMany` (the list pages) calls for the ids no process holds.
   */
  readonly produceMany?: ((ids: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<A>, DrillFailure, Ledger>) | undefined
  /**
   * A cheap check that the previous value still stands (nothing it was made from changed since
   * `computedAt`): then the lookup answers `Memo.unchanged` instead of running `produce`.
   */
  readonly stillCurrent?: ((id: number, previous: A, computedAt: number) => Effect.Effect<boolean, DrillFailure, Ledger>) | undefined
}) => {
  const tags = [drilldownTag, options.tag]
  const key = (id: number) => `${options.keyPrefix}${id}`
  const stillCurrent = options.stillCurrent
  const lookup = (id: number, previous: Option.Option<Memo.Info<Timed<A>>>) =>
    stillCurrent === undefined || Option.isNone(previous)
      ? timed(options.produce(id))
      : Effect.flatMap(
        stillCurrent(id, previous.value.value.value, previous.value.computedAt),
        (same): Effect.Effect<Timed<A> | Memo.Unchanged, DrillFailure, Ledger> => same ? Effect.succeed(Memo.unchanged) : timed(options.produce(id))
      )
  const produceMany = options.produceMany
  // the batch's time is each value's: the browser's retry estimate is the page's run time
  const lookupMany = produceMany === undefined ? undefined : (ids: ReadonlyArray<number>) =>
    Effect.map(timed(produceMany(ids)), ({ computeMs, value }) => value.map((v): Timed<A> => ({ value: v, computeMs })))
  return (window: Duration.DurationInput, timeout: Duration.DurationInput, retain: Duration.DurationInput): DrillLoader<A> =>
    // answers unchanged only with a previous value: UnchangedWithoutPrevious cannot happen
    Memo.loader({ key, window, schema: options.stored, lookup, lookupMany, batchSize, timeout, retain, tags }) as DrillLoader<A>
}

/**
 * Ids per `lookupMany` call, so per ledger statement: the statement's `IN` list and the rows it
 * answers stay small, and a list page of 200 rows is two statements.
 */
export const batchSize = 100

/**
 * The values of a batch read, in the order of `ids`: `build` over each id's rows, or
 * `EntityMissing` for the first id the ledger has no entity for (the directory listed it, and
 * it was deleted since).
 */
export const fromBatch = <R, A>(
  kind: EntityKind,
  ids: ReadonlyArray<number>,
  batch: Batch<R>,
  build: (rows: R, span: Option.Option<Span>) => A
): Effect.Effect<ReadonlyArray<A>, EntityMissing> => {
  const values: Array<A> = []
  for (const id of ids) {
    const rows = batch.rows.get(id)
    if (rows === undefined) return Effect.fail(new EntityMissing({ kind, id }))
    values.push(build(rows, batch.span))
  }
  return Effect.succeed(values)
}

/** The id of one of a family's keys (`<keyPrefix><id>` with a canonical id), if it is one. */
export const idOfKey = (keyPrefix: string, key: string): Option.Option<number> =>
  key.startsWith(keyPrefix) ? parseId(key.slice(keyPrefix.length)) : Option.none()

/** Fails with `EntityMissing` when the lookup found nothing. */
export const found = <A, E, R>(kind: EntityKind, id: number, effect: Effect.Effect<Option.Option<A>, E, R>) =>
  Effect.flatMap(effect, Option.match({ onNone: () => Effect.fail(new EntityMissing({ kind, id })), onSome: Effect.succeed }))
