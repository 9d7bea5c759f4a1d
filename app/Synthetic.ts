/**
 * The synthetic economy: a deterministic generator of a realistic ledger (transfers, chestshop
 * buys and sells, market trades, taxes, salaries) over N days, and the column-oriented
 * `LedgerData` it produces. `seed.ts` writes it into MariaDB; `Ledger.layerMemory` queries it in
 * process. Same seed, size and days → the same rows, so both backends show the same numbers.
 *
 * Money is kept in integer cents everywhere; the database column is `DECIMAL(14,2)`.
 */

/** Transaction kinds, in the order of the database `ENUM`. */
export const kinds = ["transfer", "chestshop_buy", "chestshop_sell", "market_trade", "tax", "salary"] as const
export type Kind = (typeof kinds)[number]

export interface Account {
  readonly id: number
  readonly name: string
  readonly openingCents: number
}

export interface Item {
  readonly id: number
  readonly name: string
}

export interface Shop {
  readonly id: number
  readonly ownerId: number
  readonly name: string
}

/**
 * Ledger rows, one typed array per column (about 50 bytes a row, so 890k rows fit in ~45 MB).
 * `-1` stands for SQL `NULL`: no `from` = money created (a source), no `to` = money destroyed
 * (a sink). Row `i` has id `i + 1`; rows are in timestamp order.
 */
export interface Rows {
  readonly length: number
  /** Epoch seconds, UTC. */
  readonly ts: Float64Array
  /** Index into `kinds`. */
  readonly kind: Uint8Array
  readonly from: Int32Array
  readonly to: Int32Array
  readonly amount: Float64Array
  readonly shop: Int32Array
  readonly item: Int32Array
  readonly quantity: Int32Array
  readonly unitPrice: Float64Array
}

export interface LedgerData {
  readonly accounts: ReadonlyArray<Account>
  readonly items: ReadonlyArray<Item>
  readonly shops: ReadonlyArray<Shop>
  readonly rows: Rows
}

export const allocateRows = (length: number): Rows => ({
  length,
  ts: new Float64Array(length),
  kind: new Uint8Array(length),
  from: new Int32Array(length).fill(-1),
  to: new Int32Array(length).fill(-1),
  amount: new Float64Array(length),
  shop: new Int32Array(length).fill(-1),
  item: new Int32Array(length).fill(-1),
  quantity: new Int32Array(length).fill(-1),
  unitPrice: new Float64Array(length).fill(-1)
})

/** One row as a plain record, for hand-written test ledgers. */
export interface RowInput {
  /** Epoch seconds, or an ISO-8601 UTC date-time. */
  readonly ts: number | string
  readonly kind: Kind
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly amountCents: number
  readonly shop?: number | undefined
  readonly item?: number | undefined
  readonly quantity?: number | undefined
  readonly unitPriceCents?: number | undefined
}

/** Builds `LedgerData` from plain records (sorted by time, stable). */
export const fromRecords = (data: {
  readonly accounts: ReadonlyArray<Account>
  readonly items: ReadonlyArray<Item>
  readonly shops: ReadonlyArray<Shop>
  readonly rows: ReadonlyArray<RowInput>
}): LedgerData => {
  const toSeconds = (ts: number | string) => typeof ts === "number" ? ts : Math.floor(Date.parse(ts.endsWith("Z") ? ts : `${ts}Z`) / 1000)
  const sorted = data.rows.map((r, i) => ({ r, i, s: toSeconds(r.ts) })).sort((a, b) => a.s - b.s || a.i - b.i)
  const rows = allocateRows(sorted.length)
  sorted.forEach(({ r, s }, i) => {
    if (!Number.isFinite(s)) throw new Error(`row ${i}: bad timestamp ${String(r.ts)}`)
    if (!Number.isSafeInteger(r.amountCents) || r.amountCents < 0) throw new Error(`row ${i}: amount must be whole non-negative cents`)
    rows.ts[i] = s
    rows.kind[i] = kinds.indexOf(r.kind)
    rows.from[i] = r.from ?? -1
    rows.to[i] = r.to ?? -1
    rows.amount[i] = r.amountCents
    rows.shop[i] = r.shop ?? -1
    rows.item[i] = r.item ?? -1
    rows.quantity[i] = r.quantity ?? -1
    rows.unitPrice[i] = r.unitPriceCents ?? -1
  })
  return { accounts: data.accounts, items: data.items, shops: data.shops, rows }
}

// ---------------------------------------------------------------------------------------------
// generator

export interface Options {
  readonly seed: number
  readonly rows: number
  readonly days: number
  /** Exclusive end of the ledger, epoch ms; rounded down to a UTC midnight. */
  readonly end: number
}

export const dayMs = 86_400_000

/** The UTC midnight at or before `ms`. */
export const utcMidnight = (ms: number): number => Math.floor(ms / dayMs) * dayMs

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const itemCatalog: ReadonlyArray<readonly [string, number]> = [
  ["Diamond", 2_500], ["Iron Ingot", 180], ["Gold Ingot", 420], ["Emerald", 900], ["Netherite Ingot", 48_000],
  ["Oak Log", 25], ["Spruce Log", 28], ["Cobblestone", 3], ["Stone Bricks", 9], ["Glass", 14],
  ["Redstone Dust", 35], ["Lapis Lazuli", 60], ["Coal", 22], ["Quartz", 75], ["Obsidian", 310],
  ["Ender Pearl", 650], ["Blaze Rod", 720], ["Slime Ball", 140], ["String", 18], ["Gunpowder", 95],
  ["Bread", 12], ["Cooked Beef", 30], ["Golden Carrot", 160], ["Wheat", 6], ["Sugar Cane", 10],
  ["Leather", 55], ["Book", 120], ["Enchanted Book", 6_500], ["Shulker Box", 24_000], ["Elytra", 150_000],
  ["Totem of Undying", 35_000], ["Beacon", 90_000], ["Experience Bottle", 240], ["Name Tag", 1_800], ["Saddle", 1_100],
  ["Trident", 28_000]
]

const firstNames = [
  "Steve", "Alex", "Notch", "Herobrine", "Creeper", "Ender", "Blaze", "Wither", "Pixel", "Cobble", "Redstone",
  "Nether", "Frost", "Ember", "Moss", "Amber", "Onyx", "Jade", "Raven", "Fox", "Wolf", "Otter", "Birch", "Ash"
]
const suffixes = ["Miner", "Crafter", "Builder", "Trader", "Smith", "Farmer", "Hunter", "Sage", "Knight", "Scout"]
const shopWords = ["Emporium", "Mart", "Depot", "Bazaar", "Corner", "Vault", "Stall", "Outpost", "Forge", "Pantry"]

/** Integer weighted sampler over `weights` (cumulative table + binary search). */
const sampler = (weights: ArrayLike<number>, rnd: () => number) => {
  const cumulative = new Float64Array(weights.length)
  let total = 0
  for (let i = 0; i < weights.length; i++) cumulative[i] = total += weights[i]!
  return () => {
    const x = rnd() * total
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cumulative[mid]! > x) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}

const kindWeights: Record<Kind, number> = {
  transfer: 0.28,
  chestshop_buy: 0.26,
  chestshop_sell: 0.1,
  market_trade: 0.2,
  tax: 0.07,
  salary: 0.09
}

/**
 * Generates a ledger. Players, shops and items are derived from the size (about one player per
 * 150 rows); every payer can afford what it pays, so balances never go negative.
 */
export const generate = (options: Options): LedgerData => {
  const { seed, days } = options
  const n = Math.max(0, Math.floor(options.rows))
  if (!Number.isSafeInteger(seed)) throw new Error("seed must be an integer")
  if (!Number.isSafeInteger(days) || days < 1) throw new Error("days must be a positive integer")
  const rnd = prng(seed)
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd())
  const lognormal = (median: number, sigma: number) => median * Math.exp(sigma * gauss())
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1))

  // items
  const items: Array<Item> = itemCatalog.map(([name], i) => ({ id: i + 1, name }))
  const basePrice = itemCatalog.map(([, p]) => p)
  const pickItem = sampler(items.map((_, i) => 1 / (i + 1) ** 0.6), rnd)

  // players: a few whales, many small holders; activity follows a Zipf-like law
  const playerCount = Math.min(50_000, Math.max(20, Math.round(n / 150)))
  const accounts: Array<Account> = []
  const balance = new Float64Array(playerCount + 1) // by account id
  for (let id = 1; id <= playerCount; id++) {
    const name = `${firstNames[id % firstNames.length]}${suffixes[Math.floor(id / firstNames.length) % suffixes.length]}${id}`
    const openingCents = Math.round(lognormal(40_000, 1.3))
    accounts.push({ id, name, openingCents })
    balance[id] = openingCents
  }
  const pickPlayer = (() => {
    const s = sampler(Array.from({ length: playerCount }, (_, i) => 1 / (i + 1) ** 0.8), rnd)
    return () => s() + 1
  })()

  // chestshops: owned by players, each selling a few items at its own markup
  const shopCount = Math.max(3, Math.round(playerCount / 25))
  const shops: Array<Shop> = []
  const shopItems: Array<Array<number>> = []
  const markup: Array<number> = []
  for (let id = 1; id <= shopCount; id++) {
    const ownerId = pickPlayer()
    const owner = accounts[ownerId - 1]!
    shops.push({ id, ownerId, name: `${owner.name.replace(/\d+$/, "")}'s ${shopWords[id % shopWords.length]} #${id}` })
    const stock = new Set<number>()
    const want = int(3, 6)
    while (stock.size < want) stock.add(pickItem())
    shopItems.push([...stock])
    markup.push(0.85 + rnd() * 0.65)
  }
  const pickShop = sampler(shops.map((_, i) => 1 / (i + 1) ** 0.9), rnd)

  // rows per day: a weekly rhythm on a slowly growing trend; counts add up to exactly n
  const weights = Array.from({ length: days }, (_, d) => (1 + 0.25 * Math.sin((2 * Math.PI * d) / 7)) * (0.85 + (0.3 * d) / days))
  const totalWeight = weights.reduce((a, b) => a + b, 0)
  const perDay = weights.map((w) => Math.floor((n * w) / totalWeight))
  for (let d = 0, left = n - perDay.reduce((a, b) => a + b, 0); left > 0; d = (d + 1) % days, left--) perDay[d]! += 1

  const startSec = utcMidnight(options.end) / 1000 - days * 86_400
  const rows = allocateRows(n)
  const pickKind = sampler(kinds.map((k) => kindWeights[k]), rnd)
  const salary = (i: number, to: number) => {
    const cents = int(10, 60) * 100
    rows.kind[i] = 5
    rows.to[i] = to
    rows.amount[i] = cents
    balance[to]! += cents
  }
  const pay = (i: number, from: number, to: number, cents: number) => {
    rows.from[i] = from
    rows.to[i] = to
    rows.amount[i] = cents
    balance[from]! -= cents
    if (to >= 0) balance[to]! += cents
  }

  let i = 0
  for (let d = 0; d < days; d++) {
    const count = perDay[d]!
    const inflation = 1 + (0.08 * d) / days
    for (let j = 0; j < count; j++, i++) {
      rows.ts[i] = startSec + d * 86_400 + Math.floor(((j + rnd()) * 86_400) / count)
      const kind = kinds[pickKind()]!
      switch (kind) {
        case "salary": {
          salary(i, pickPlayer())
          break
        }
        case "transfer": {
          const from = pickPlayer()
          let to = pickPlayer()
          if (to === from) to = (from % playerCount) + 1
          const cents = Math.min(balance[from]!, Math.round(lognormal(2_500, 1)))
          if (cents < 100) salary(i, from)
          else {
            rows.kind[i] = 0
            pay(i, from, to, cents)
          }
          break
        }
        case "chestshop_buy":
        case "chestshop_sell": {
          const s = pickShop()
          const shop = shops[s]!
          const stock = shopItems[s]!
          const item = stock[Math.floor(rnd() * stock.length)]!
          let player = pickPlayer()
          if (player === shop.ownerId) player = (player % playerCount) + 1
          const buy = kind === "chestshop_buy"
          const unit = Math.max(1, Math.round(basePrice[item]! * inflation * markup[s]! * (buy ? 1 : 0.6) * (0.9 + rnd() * 0.2)))
          const payer = buy ? player : shop.ownerId
          const quantity = Math.min(int(1, 64), Math.floor(balance[payer]! / unit))
          if (quantity < 1) salary(i, payer)
          else {
            rows.kind[i] = buy ? 1 : 2
            rows.shop[i] = shop.id
            rows.item[i] = item + 1
            rows.quantity[i] = quantity
            rows.unitPrice[i] = unit
            pay(i, payer, buy ? shop.ownerId : player, unit * quantity)
          }
          break
        }
        case "market_trade": {
          const item = pickItem()
          const buyer = pickPlayer()
          let seller = pickPlayer()
          if (seller === buyer) seller = (buyer % playerCount) + 1
          const unit = Math.max(1, Math.round(basePrice[item]! * inflation * (0.8 + rnd() * 0.4)))
          const quantity = Math.min(int(1, 32), Math.floor(balance[buyer]! / unit))
          if (quantity < 1) salary(i, buyer)
          else {
            rows.kind[i] = 3
            rows.item[i] = item + 1
            rows.quantity[i] = quantity
            rows.unitPrice[i] = unit
            pay(i, buyer, seller, unit * quantity)
          }
          break
        }
        case "tax": {
          const from = pickPlayer()
          const cents = Math.round(balance[from]! * (0.015 + rnd() * 0.035))
          if (cents < 100) salary(i, from)
          else {
            rows.kind[i] = 4
            pay(i, from, -1, cents)
          }
          break
        }
      }
    }
  }
  return { accounts, items, shops, rows }
}

// ---------------------------------------------------------------------------------------------
// formatting shared by the database writer and the in-memory queries

/** `2024-05-01 13:45:07` (UTC) from epoch seconds: the `DATETIME` text form. */
export const formatDateTime = (seconds: number): string => new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ")

/** `2024-05-01` (UTC) from epoch seconds. */
export const formatDay = (seconds: number): string => new Date(seconds * 1000).toISOString().slice(0, 10)

/** Whole non-negative cents as a `DECIMAL` literal value: `12345` → `"123.45"`. */
export const formatCents = (cents: number): string => {
  const sign = cents < 0 ? "-" : ""
  const abs = Math.abs(cents)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`
}

/**
 * A decimal string (`"123.45"`, `"-0.5"`, `"1.0150000000"`, `"12"`) as cents, exactly: digits
 * are scaled as integers, never through a float multiplication.
 */
export const parseCents = (text: string): number => {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$/.exec(text)
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) return NaN
  const sign = m[1] === "-" ? -1 : 1
  const frac = (m[3] ?? "").replace(/0+$/, "")
  const scale = Math.max(2, frac.length)
  const digits = Number(`${m[2] || "0"}${frac.padEnd(scale, "0")}`)
  return sign * (scale === 2 ? digits : digits / 10 ** (scale - 2)) + 0
}
