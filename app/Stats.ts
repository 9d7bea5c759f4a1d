/**
 * Small pure computations the page producers run on query results, so the cached values stay
 * small (a Gini coefficient instead of thousands of balances).
 */
import * as Synthetic from "./Synthetic.js"

/** Cents to currency units. */
export const units = (cents: number): number => cents / 100

/**
 * The Gini coefficient of non-negative amounts sorted ascending: 0 when everyone holds the same,
 * approaching 1 when one account holds everything. Negative balances count as 0; an empty or
 * all-zero list gives 0.
 */
export const gini = (ascending: ReadonlyArray<number>): number => {
  const n = ascending.length
  let total = 0
  let weighted = 0
  for (let i = 0; i < n; i++) {
    const x = Math.max(0, ascending[i]!)
    total += x
    weighted += (i + 1) * x
  }
  return n === 0 || total === 0 ? 0 : (2 * weighted) / (n * total) - (n + 1) / n
}

/**
 * The share of the total held by the richest `fraction` of accounts (at least one account),
 * from amounts sorted ascending. Negative balances count as 0.
 */
export const topShare = (ascending: ReadonlyArray<number>, fraction: number): number => {
  const n = ascending.length
  if (n === 0) return 0
  const k = Math.max(1, Math.ceil(n * fraction))
  let total = 0
  let top = 0
  for (let i = 0; i < n; i++) {
    const x = Math.max(0, ascending[i]!)
    total += x
    if (i >= n - k) top += x
  }
  return total === 0 ? 0 : top / total
}

/** Every UTC day from `from` to `to` inclusive (`YYYY-MM-DD`). */
export const daysBetween = (from: string, to: string): Array<string> => {
  const start = Date.parse(`${from}T00:00:00Z`)
  const end = Date.parse(`${to}T00:00:00Z`)
  const days: Array<string> = []
  for (let t = start; t <= end; t += Synthetic.dayMs) days.push(new Date(t).toISOString().slice(0, 10))
  return days
}

/** A series with one entry per day of the span, `empty(day)` for days without rows. */
export const fillDays = <A extends { readonly day: string }>(
  from: string,
  to: string,
  rows: ReadonlyArray<A>,
  empty: (day: string) => A
): Array<A> => {
  const byDay = new Map(rows.map((r) => [r.day, r]))
  return daysBetween(from, to).map((day) => byDay.get(day) ?? empty(day))
}
