/**
 * List pages: a page whose rows are drill-down pages' values. The market lists items, the
 * chestshops page its top shops, an account page its counterparties; each row is read through
 * the drill-down family's loader with `getManyWithInfo`, so a row shows exactly what the row's
 * own page shows, and a cold list is one ledger statement per batch (`lookupMany`), not one per
 * row. Only the list itself (which ids, in which order) is the page's own value.
 *
 * The answer's `Info` is the page's own (its bucket and `computedAt`, which an admin refresh
 * moves) combined with the rows' where they decide when the page changes: the first boundary
 * and next value, the shortest window, stale when any part is, a miss when any part waited. So
 * the cache headers and the browser's refresh follow the part that changes first. The combined value is made once per set of values: as
 * long as the list and every row are the same objects (L1 hits), the same object is answered,
 * so the page is rendered once per value, as a single-loader page is.
 */
import * as Effect from "effect/Effect"
import type { Memo } from "../../src/index.js"
import type { DrillName } from "../Config.js"
import type { EntityKind } from "../Ledger.js"
import type { Timed } from "./Page.js"

/**
 * How a page lists rows of a drill-down family: which ids its own value `I` names, and the page
 * as shown (`A`) made of that value and the rows.
 */
export interface ListOf<I, Row, A> {
  /** The drill-down family the rows come from. */
  readonly drill: DrillName
  readonly kind: EntityKind
  readonly ids: (value: I) => ReadonlyArray<number>
  /**
   * The page as shown: the value and its rows' values, in the order of `ids` (an id that is not
   * in the directory left out, so match rows by their own id).
   */
  readonly compose: (value: I, rows: ReadonlyArray<Row>) => A
}

type Cache = "hit" | "stale" | "miss"
const worse = (a: Cache, b: Cache): Cache => (a === "miss" || b === "miss" ? "miss" : a === "stale" || b === "stale" ? "stale" : "hit")

/** The list's answer combined with its rows'. */
export const combine = <I, Row, A>(
  list: Memo.Info<Timed<I>>,
  rows: ReadonlyArray<Memo.Info<Timed<Row>>>,
  value: Timed<A>
): Memo.Info<Timed<A>> => {
  let stale = list.stale
  let cache: Cache = list.cache
  let nextBoundary = list.nextBoundary
  let nextValueAt = list.nextValueAt
  let windowMs = list.windowMs
  for (const row of rows) {
    stale ||= row.stale
    cache = worse(cache, row.cache)
    nextBoundary = Math.min(nextBoundary, row.nextBoundary)
    nextValueAt = Math.min(nextValueAt, row.nextValueAt)
    windowMs = Math.min(windowMs, row.windowMs)
  }
  return { ...list, value, stale, cache, nextBoundary, nextValueAt, windowMs }
}

/**
 * Composes a list's value with its rows, once per set of values: the last composition is kept
 * per list value and reused while every row is the same object.
 */
export const composer = <I, Row, A>(list: ListOf<I, Row, A>) => {
  const last = new WeakMap<Timed<I>, { readonly rows: ReadonlyArray<Timed<Row>>; readonly value: Timed<A> }>()
  return (value: Timed<I>, rows: ReadonlyArray<Timed<Row>>): Timed<A> => {
    const before = last.get(value)
    if (before !== undefined && before.rows.length === rows.length && before.rows.every((r, i) => r === rows[i])) return before.value
    const composed: Timed<A> = {
      value: list.compose(value.value, rows.map((r) => r.value)),
      computeMs: rows.reduce((ms, r) => Math.max(ms, r.computeMs), value.computeMs)
    }
    last.set(value, { rows, value: composed })
    return composed
  }
}

/**
 * A list page's answer: the list (`load`), then its rows through the family's `getManyWithInfo`
 * (only ids of the directory: an id the directory does not list is left out, so it never runs a
 * lookup or creates a record), combined.
 */
export const load = <I, Row, A, E, R, E2, R2, E3, R3>(
  list: ListOf<I, Row, A>,
  value: Effect.Effect<Memo.Info<Timed<I>>, E, R>,
  getManyWithInfo: (ids: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<Memo.Info<Timed<Row>>>, E2, R2>,
  exists: (kind: EntityKind, id: number) => Effect.Effect<boolean, E3, R3>
): Effect.Effect<Memo.Info<Timed<A>>, E | E2 | E3, R | R2 | R3> => {
  const compose = composer(list)
  return Effect.gen(function*() {
    const info = yield* value
    const named = list.ids(info.value.value)
    const ids = yield* Effect.filter(named, (id) => exists(list.kind, id))
    const rows = ids.length === 0 ? [] : yield* getManyWithInfo(ids)
    return combine(info, rows, compose(info.value, rows.map((r) => r.value)))
  })
}
