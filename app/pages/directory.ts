/**
 * The directory of ids: every item, shop and account id, as ranges (a directory of 50 000
 * accounts numbered from 1 is one pair), one cached value per kind. A drill-down request checks
 * its id here first, so a crawler walking ids that do not exist costs a binary search each and
 * never reaches the ledger or the store.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Memo } from "../../src/index.js"
import { type EntityKind, type IdRanges, Ledger, type LedgerFailure } from "../Ledger.js"

export const Ranges = Schema.Array(Schema.Tuple(Schema.Number, Schema.Number))

export const keyPrefix = "explorer:directory:"
export const key = (kind: EntityKind): string => `${keyPrefix}${kind}:v1`
export const tag = "directory"

export type DirectoryLoader = Memo.Loader<EntityKind, IdRanges, LedgerFailure | Memo.WaitTimeout, Ledger>

const lookup = (kind: EntityKind) => Effect.flatMap(Ledger, (ledger) => ledger.ids(kind)).pipe(Effect.withSpan("explorer.directory"))

export const loader = (window: Duration.DurationInput, timeout: Duration.DurationInput): DirectoryLoader =>
  Memo.loader({ key, window, schema: Ranges, lookup, timeout, tags: [tag] })

/** Whether `id` is in the ranges (ascending and disjoint). */
export const has = (ranges: IdRanges, id: number): boolean => {
  let lo = 0
  let hi = ranges.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const [from, to] = ranges[mid]!
    if (id < from) hi = mid - 1
    else if (id > to) lo = mid + 1
    else return true
  }
  return false
}

/** How many ids the ranges hold. */
export const size = (ranges: IdRanges): number => ranges.reduce((n, [from, to]) => n + to - from + 1, 0)
