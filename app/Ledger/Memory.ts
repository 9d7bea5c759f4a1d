/**
 * The ledger in memory: the same queries as `Ledger/Mysql.ts` over the deterministic synthetic
 * ledger of `Synthetic.ts`, scanning typed arrays. What the explorer runs on with nothing
 * configured, and what the tests compare MariaDB's answers with.
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Synthetic from "../Synthetic.js"
import {
  type AccountBefore,
  type AccountFlowRow,
  type AccountInfo,
  type AccountRows,
  type Batch,
  byDayThenKind,
  byKind,
  byMoneyMoved,
  type CounterpartyRow,
  type FlowRow,
  type ItemDayRow,
  type ShopDayRow,
  type ItemInfo,
  type ItemRows,
  type ItemTrades,
  Ledger,
  type LedgerFailure,
  type MarketRow,
  type Service,
  type ShopInfo,
  type ShopItemRow,
  type ShopRow,
  type ShopRows,
  type Span,
  spanOf,
  toRanges
} from "../Ledger.js"

// ---------------------------------------------------------------------------------------------
// configuration

/** The synthetic ledger: `LEDGER_SEED`, `LEDGER_ROWS`, `LEDGER_DAYS`, `LEDGER_END`. */
export const config = Config.all({
  seed: Config.integer("LEDGER_SEED").pipe(Config.withDefault(42)),
  rows: Config.integer("LEDGER_ROWS").pipe(
    Config.withDefault(890_000),
    Config.validate({ message: "LEDGER_ROWS must be between 0 and 50 000 000", validation: (n) => n >= 0 && n <= 50_000_000 })
  ),
  days: Config.integer("LEDGER_DAYS").pipe(
    Config.withDefault(30),
    Config.validate({ message: "LEDGER_DAYS must be between 1 and 3650", validation: (n) => n >= 1 && n <= 3650 })
  ),
  /** The ledger ends at the UTC midnight of this date (default: the start of today). */
  end: Config.option(Config.date("LEDGER_END"))
})

/** Generator options from the environment; the end defaults to today's UTC midnight (by `Clock`). */
export const syntheticOptions: Effect.Effect<Synthetic.Options, ConfigError.ConfigError> = Effect.gen(function*() {
  const c = yield* config
  const end = Option.isSome(c.end) ? c.end.value.getTime() : yield* Clock.currentTimeMillis
  return { seed: c.seed, rows: c.rows, days: c.days, end: Synthetic.utcMidnight(end) }
})

// memory

/** A group of trades' totals, and its prices for medians. */
interface Trades {
  trades: number
  quantity: number
  volume: number
  priceSum: number
  readonly prices: Array<number>
}

/** The same queries over `LedgerData`, scanning typed arrays. */
export const make = (data: Synthetic.LedgerData): Service => {
  const r = data.rows
  const itemName = new Map(data.items.map((i) => [i.id, i.name]))
  const accountName = new Map(data.accounts.map((a) => [a.id, a.name]))
  const dayOf = (sec: number) => Synthetic.formatDay(Math.floor(sec / 86_400) * 86_400)
  const sinceSec = (span: Span) => Date.parse(`${span.from}T00:00:00Z`) / 1000
  /** Adds trade row `i` to the totals under `key`. */
  const addTrade = <K>(totals: Map<K, Trades>, key: K, i: number) => {
    let acc = totals.get(key)
    if (acc === undefined) totals.set(key, acc = { trades: 0, quantity: 0, volume: 0, priceSum: 0, prices: [] })
    acc.trades++
    acc.quantity += r.quantity[i]!
    acc.volume += r.amount[i]!
    acc.priceSum += r.unitPrice[i]!
    acc.prices.push(r.unitPrice[i]!)
  }
  /** Visits the rows of the span (rows are in time order). */
  const scan = (span: Span, f: (i: number) => void) => {
    const from = sinceSec(span)
    let lo = 0
    let hi = r.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (r.ts[mid]! < from) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < r.length; i++) f(i)
  }
  /** Groups the span's rows by UTC day (`day` indexes), in day order. */
  const byDay = <A>(span: Span, init: () => A, add: (acc: A, i: number) => void): Array<[string, A]> => {
    const days = new Map<number, A>()
    scan(span, (i) => {
      const d = Math.floor(r.ts[i]! / 86_400)
      let acc = days.get(d)
      if (acc === undefined) days.set(d, acc = init())
      add(acc, i)
    })
    return [...days.entries()].sort((a, b) => a[0] - b[0]).map(([d, acc]) => [dayOf(d * 86_400), acc])
  }
  const median = (sorted: ReadonlyArray<number>) => {
    const m = sorted.length >> 1
    return sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2
  }
  /**
   * The rows of each value of a column, in time order: the in-memory counterpart of an index on
   * `(column, ts)`, built on first use (4 bytes a row).
   */
  const indexOf = (column: Int32Array) => {
    let built: { readonly start: Int32Array; readonly rows: Int32Array } | undefined
    const build = () => {
      let max = -1
      for (let i = 0; i < r.length; i++) if (column[i]! > max) max = column[i]!
      const start = new Int32Array(max + 2)
      for (let i = 0; i < r.length; i++) if (column[i]! >= 0) start[column[i]! + 1]!++
      for (let v = 1; v < start.length; v++) start[v]! += start[v - 1]!
      const rows = new Int32Array(start[start.length - 1]!)
      const next = start.slice()
      for (let i = 0; i < r.length; i++) if (column[i]! >= 0) rows[next[column[i]!]!++] = i
      return { start, rows }
    }
    /** The rows whose column holds `value`, ascending (so in time order). */
    return (value: number): Int32Array => {
      built ??= build()
      return value >= 0 && value + 1 < built.start.length ? built.rows.subarray(built.start[value]!, built.start[value + 1]!) : new Int32Array(0)
    }
  }
  const rowsOfItem = indexOf(r.item)
  const rowsOfShop = indexOf(r.shop)
  const rowsFrom = indexOf(r.from)
  const rowsTo = indexOf(r.to)
  /** How many of `rows` (ascending, so in time order) are before the span. */
  const beforeSpan = (rows: Int32Array, span: Span) => {
    const from = sinceSec(span)
    let lo = 0
    let hi = rows.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (r.ts[rows[mid]!]! < from) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const inSpan = (rows: Int32Array, span: Span) => rows.subarray(beforeSpan(rows, span))
  const dayKey = (i: number) => dayOf(r.ts[i]!)
  const kindIndex = (k: Synthetic.Kind) => Synthetic.kinds.indexOf(k)
  const BUY = kindIndex("chestshop_buy")
  const SELL = kindIndex("chestshop_sell")
  const TRADE = kindIndex("market_trade")

  const one: Omit<Service, "itemsMany" | "shopsMany" | "accountsMany"> = {
    backend: "memory",
    span: Effect.sync(() => {
      let max = -Infinity
      for (let i = 0; i < r.length; i++) if (r.ts[i]! > max) max = r.ts[i]!
      return r.length === 0 ? Option.none() : Option.some(spanOf(dayOf(max)))
    }),
    totals: (span) =>
      Effect.sync(() => {
        let transactions = 0
        let volume = 0
        scan(span, (i) => {
          transactions++
          volume += r.amount[i]!
        })
        return { transactions, volume }
      }),
    daily: (span) =>
      Effect.sync(() =>
        byDay(span, () => ({ transactions: 0, volume: 0 }), (acc, i) => {
          acc.transactions++
          acc.volume += r.amount[i]!
        }).map(([day, acc]) => ({ day, ...acc }))
      ),
    activeAccounts: (span) =>
      Effect.sync(() => {
        const seen = new Set<number>()
        scan(span, (i) => {
          if (r.from[i]! >= 0) seen.add(r.from[i]!)
          if (r.to[i]! >= 0) seen.add(r.to[i]!)
        })
        return seen.size
      }),
    balances: Effect.sync(() => {
      const balance = new Map(data.accounts.map((a) => [a.id, a.openingCents]))
      for (let i = 0; i < r.length; i++) {
        const from = r.from[i]!
        const to = r.to[i]!
        if (from >= 0 && balance.has(from)) balance.set(from, balance.get(from)! - r.amount[i]!)
        if (to >= 0 && balance.has(to)) balance.set(to, balance.get(to)! + r.amount[i]!)
      }
      return [...balance.values()].sort((a, b) => a - b)
    }),
    market: (span) =>
      Effect.sync(() => {
        const byItem = new Map<number, Trades>()
        scan(span, (i) => {
          if (r.kind[i] !== TRADE) return
          const id = r.item[i]!
          addTrade(byItem, id, i)
        })
        return [...byItem.entries()]
          .filter(([id]) => itemName.has(id))
          .map(([itemId, acc]): MarketRow => ({
            itemId,
            item: itemName.get(itemId)!,
            trades: acc.trades,
            quantity: acc.quantity,
            volume: acc.volume,
            priceSum: acc.priceSum,
            medianPrice: median(acc.prices.sort((a, b) => a - b))
          }))
          .sort((a, b) => b.volume - a.volume || a.itemId - b.itemId)
      }),
    topShops: (span, limit) =>
      Effect.sync(() => {
        const byShop = new Map<number, { revenue: number; spent: number; buys: number; sells: number }>()
        scan(span, (i) => {
          const k = r.kind[i]
          if (k !== BUY && k !== SELL) return
          let acc = byShop.get(r.shop[i]!)
          if (acc === undefined) byShop.set(r.shop[i]!, acc = { revenue: 0, spent: 0, buys: 0, sells: 0 })
          if (k === BUY) {
            acc.revenue += r.amount[i]!
            acc.buys++
          } else {
            acc.spent += r.amount[i]!
            acc.sells++
          }
        })
        const shops = new Map(data.shops.map((s) => [s.id, s]))
        return [...byShop.entries()]
          .flatMap(([shopId, acc]): Array<ShopRow> => {
            const shop = shops.get(shopId)
            const owner = shop === undefined ? undefined : accountName.get(shop.ownerId)
            return shop === undefined || owner === undefined ? [] : [{ shopId, shop: shop.name, ownerId: shop.ownerId, owner, ...acc }]
          })
          .sort((a, b) => b.revenue - a.revenue || a.shopId - b.shopId)
          .slice(0, Math.max(0, Math.floor(limit)))
      }),
    shopItems: (span, shopIds, perShop) =>
      Effect.sync(() => {
        const wanted = new Set(shopIds)
        const groups = new Map<number, Map<number, { quantity: number; revenue: number }>>()
        scan(span, (i) => {
          if (r.kind[i] !== BUY || !wanted.has(r.shop[i]!) || !itemName.has(r.item[i]!)) return
          let shop = groups.get(r.shop[i]!)
          if (shop === undefined) groups.set(r.shop[i]!, shop = new Map())
          let acc = shop.get(r.item[i]!)
          if (acc === undefined) shop.set(r.item[i]!, acc = { quantity: 0, revenue: 0 })
          acc.quantity += r.quantity[i]!
          acc.revenue += r.amount[i]!
        })
        return [...groups.entries()].sort((a, b) => a[0] - b[0]).flatMap(([shopId, items]) =>
          [...items.entries()]
            .sort((a, b) => b[1].revenue - a[1].revenue || a[0] - b[0])
            .slice(0, Math.max(0, Math.floor(perShop)))
            .map(([itemId, acc]): ShopItemRow => ({ shopId, itemId, item: itemName.get(itemId)!, ...acc }))
        )
      }),
    flows: (span) =>
      Effect.sync(() => {
        const byKindIndex = new Map<number, { transactions: number; volume: number; minted: number; burned: number }>()
        scan(span, (i) => {
          let acc = byKindIndex.get(r.kind[i]!)
          if (acc === undefined) byKindIndex.set(r.kind[i]!, acc = { transactions: 0, volume: 0, minted: 0, burned: 0 })
          acc.transactions++
          acc.volume += r.amount[i]!
          if (r.from[i]! < 0) acc.minted += r.amount[i]!
          if (r.to[i]! < 0) acc.burned += r.amount[i]!
        })
        return [...byKindIndex.entries()].map(([k, acc]): FlowRow => ({ kind: Synthetic.kinds[k]!, ...acc })).sort(byKind)
      }),
    dailyFlows: (span) =>
      Effect.sync(() =>
        byDay(span, () => ({ minted: 0, burned: 0, circulating: 0 }), (acc, i) => {
          const from = r.from[i]!
          const to = r.to[i]!
          if (from < 0) acc.minted += r.amount[i]!
          if (to < 0) acc.burned += r.amount[i]!
          if (from >= 0 && to >= 0) acc.circulating += r.amount[i]!
        }).map(([day, acc]) => ({ day, ...acc }))
      ),
    moneySupply: Effect.sync(() => {
      let supply = data.accounts.reduce((sum, a) => sum + a.openingCents, 0)
      for (let i = 0; i < r.length; i++) {
        if (r.from[i]! < 0) supply += r.amount[i]!
        if (r.to[i]! < 0) supply -= r.amount[i]!
      }
      return supply
    }),
    ids: (kind) =>
      Effect.sync(() => toRanges((kind === "item" ? data.items : kind === "shop" ? data.shops : data.accounts).map((e) => e.id))),
    itemInfo: (id) =>
      Effect.sync(() => Option.map(Option.fromNullable(itemName.get(id)), (name): ItemInfo => ({ id, name }))),
    itemLastTrade: (id, span) =>
      Effect.sync(() => {
        // the item's rows are in time order: the last trade is the last one of its kind
        const rows = rowsOfItem(id)
        let last = Option.none<number>()
        for (let j = rows.length - 1; j >= 0; j--) {
          if (r.kind[rows[j]!] === TRADE) {
            last = Option.some(r.ts[rows[j]!]! * 1000)
            break
          }
        }
        let trades = 0
        for (const i of inSpan(rows, span)) if (r.kind[i] === TRADE) trades++
        return { last, trades }
      }),
    itemTrades: (id, span) =>
      Effect.sync(() => {
        const days = new Map<string, Trades>()
        const all: Array<number> = []
        for (const i of inSpan(rowsOfItem(id), span)) {
          if (r.kind[i] !== TRADE) continue
          const day = dayKey(i)
          addTrade(days, day, i)
          all.push(r.unitPrice[i]!)
        }
        return {
          daily: [...days.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([day, acc]): ItemDayRow => ({
            day,
            trades: acc.trades,
            quantity: acc.quantity,
            volume: acc.volume,
            priceSum: acc.priceSum,
            medianPrice: median(acc.prices.sort((a, b) => a - b))
          })),
          medianPrice: all.length === 0 ? 0 : median(all.sort((a, b) => a - b))
        }
      }),
    shopInfo: (id) =>
      Effect.sync(() => {
        const shop = data.shops.find((s) => s.id === id)
        const owner = shop === undefined ? undefined : accountName.get(shop.ownerId)
        return shop === undefined || owner === undefined
          ? Option.none()
          : Option.some<ShopInfo>({ id, name: shop.name, ownerId: shop.ownerId, owner })
      }),
    shopDaily: (id, span) =>
      Effect.sync(() => {
        const days = new Map<string, { revenue: number; spent: number; buys: number; sells: number }>()
        for (const i of inSpan(rowsOfShop(id), span)) {
          const k = r.kind[i]
          if (k !== BUY && k !== SELL) continue
          const day = dayKey(i)
          let acc = days.get(day)
          if (acc === undefined) days.set(day, acc = { revenue: 0, spent: 0, buys: 0, sells: 0 })
          if (k === BUY) {
            acc.revenue += r.amount[i]!
            acc.buys++
          } else {
            acc.spent += r.amount[i]!
            acc.sells++
          }
        }
        return [...days.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([day, acc]): ShopDayRow => ({ day, ...acc }))
      }),
    accountInfo: (id) =>
      Effect.sync(() => {
        const account = data.accounts.find((a) => a.id === id)
        return account === undefined
          ? Option.none()
          : Option.some<AccountInfo>({ id, name: account.name, openingBalance: account.openingCents })
      }),
    accountFlows: (id, span) =>
      Effect.sync(() => {
        const groups = new Map<string, { day: string; kind: string; received: number; paid: number; transactions: number }>()
        const add = (i: number, side: "received" | "paid") => {
          const day = dayKey(i)
          const kind = Synthetic.kinds[r.kind[i]!]!
          const group = `${day} ${kind}`
          let acc = groups.get(group)
          if (acc === undefined) groups.set(group, acc = { day, kind, received: 0, paid: 0, transactions: 0 })
          acc[side] += r.amount[i]!
          acc.transactions++
        }
        for (const i of inSpan(rowsTo(id), span)) add(i, "received")
        for (const i of inSpan(rowsFrom(id), span)) add(i, "paid")
        return [...groups.values()].sort(byDayThenKind)
      }),
    accountBefore: (id, span) =>
      Effect.sync(() => {
        const sum = (rows: Int32Array) => {
          let total = 0
          for (const i of rows.subarray(0, beforeSpan(rows, span))) total += r.amount[i]!
          return total
        }
        return { received: sum(rowsTo(id)), paid: sum(rowsFrom(id)) }
      }),
    counterparties: (id, span, limit) =>
      Effect.sync(() => {
        const by = new Map<number, { sent: number; received: number; transactions: number }>()
        const add = (other: number, side: "sent" | "received", amount: number) => {
          if (other < 0) return
          let acc = by.get(other)
          if (acc === undefined) by.set(other, acc = { sent: 0, received: 0, transactions: 0 })
          acc[side] += amount
          acc.transactions++
        }
        for (const i of inSpan(rowsFrom(id), span)) add(r.to[i]!, "sent", r.amount[i]!)
        for (const i of inSpan(rowsTo(id), span)) add(r.from[i]!, "received", r.amount[i]!)
        return [...by.entries()]
          .flatMap(([accountId, acc]): Array<CounterpartyRow> => {
            const name = accountName.get(accountId)
            return name === undefined ? [] : [{ accountId, name, ...acc }]
          })
          .sort(byMoneyMoved)
          .slice(0, Math.max(0, Math.floor(limit)))
      })
  }
  /**
   * A batch read: the span once, then each asked id's rows as the single-entity queries answer
   * them (an id with no entity left out), in one call, as MariaDB answers it in one statement.
   */
  const many = <A>(
    ids: ReadonlyArray<number>,
    rowsOf: (id: number, span: Option.Option<Span>) => Effect.Effect<Option.Option<A>, LedgerFailure>
  ): Effect.Effect<Batch<A>, LedgerFailure> =>
    Effect.gen(function*() {
      const span = yield* one.span
      const rows = new Map<number, A>()
      for (const id of new Set(ids)) {
        const found = yield* rowsOf(id, span)
        if (Option.isSome(found)) rows.set(id, found.value)
      }
      return { span, rows } satisfies Batch<A>
    })
  const withSpan = <B>(span: Option.Option<Span>, empty: B, f: (span: Span) => Effect.Effect<B, LedgerFailure>) =>
    Option.isNone(span) ? Effect.succeed(empty) : f(span.value)
  return {
    ...one,
    itemsMany: (ids) =>
      many(ids, (id, span) =>
        Effect.flatMap(one.itemInfo(id), (info) =>
          Option.isNone(info)
            ? Effect.succeedNone
            : Effect.map(
              withSpan<ItemTrades>(span, { daily: [], medianPrice: 0 }, (s) => one.itemTrades(id, s)),
              (trades) => Option.some<ItemRows>({ info: info.value, trades })
            )
        )),
    shopsMany: (ids, perShop) =>
      many(ids, (id, span) =>
        Effect.flatMap(one.shopInfo(id), (info) =>
          Option.isNone(info) ? Effect.succeedNone : Effect.map(
            withSpan<readonly [ReadonlyArray<ShopDayRow>, ReadonlyArray<ShopItemRow>]>(
              span,
              [[], []],
              (s) => Effect.all([one.shopDaily(id, s), one.shopItems(s, [id], perShop)])
            ),
            ([daily, items]) => Option.some<ShopRows>({ info: info.value, daily, items })
          )
        )),
    accountsMany: (ids, limit) =>
      many(ids, (id, span) =>
        Effect.flatMap(one.accountInfo(id), (info) =>
          Option.isNone(info) ? Effect.succeedNone : Effect.map(
            withSpan<readonly [ReadonlyArray<AccountFlowRow>, AccountBefore, ReadonlyArray<CounterpartyRow>]>(
              span,
              [[], { received: 0, paid: 0 }, []],
              (s) => Effect.all([one.accountFlows(id, s), one.accountBefore(id, s), one.counterparties(id, s, limit)])
            ),
            ([flows, before, counterparties]) => Option.some<AccountRows>({ info: info.value, flows, before, counterparties })
          )
        ))
  }
}

/** The in-memory ledger over given data. */
export const layerFrom = (data: Synthetic.LedgerData): Layer.Layer<Ledger> => Layer.succeed(Ledger, make(data))

/** The in-memory ledger over the synthetic ledger described by `LEDGER_*`. */
export const layer: Layer.Layer<Ledger, ConfigError.ConfigError> = Layer.effect(
  Ledger,
  Effect.gen(function*() {
    const options = yield* syntheticOptions
    const started = yield* Clock.currentTimeMillis
    const data = Synthetic.generate(options)
    const took = (yield* Clock.currentTimeMillis) - started
    yield* Effect.logInfo(
      `explorer: MYSQL_HOST is not set; using the in-memory synthetic ledger (${options.rows} rows, seed ${options.seed}, generated in ${took} ms)`
    )
    return make(data)
  })
)
