/**
 * A small ledger whose aggregates are known by construction (worked out in the comments), with
 * hostile names for the escaping tests. The 30-day span is 2024-03-01 .. 2024-03-30.
 *
 * Accounts (opening balance):
 *   1 Alice 1000.00 · 2 <script>… 500.00 · 3 Bob & Co 0 · 4 Carol 0 · 5 Idle 250.00
 * Shops: 1 "Alice's Shop" (owner 1) · 2 `"><svg onload=alert(2)>` (owner 2)
 * Items: 1 Diamond · 2 <img src=x onerror=alert(1)> · 3 Bread
 */
import type * as Synthetic from "../../app/Synthetic.js"

export const hostile = {
  account: `<script>alert("x")</script>`,
  item: `<img src=x onerror=alert(1)>`,
  shop: `"><svg onload=alert(2)>`
}

const accounts: Array<Synthetic.Account> = [
  { id: 1, name: "Alice", openingCents: 100_000 },
  { id: 2, name: hostile.account, openingCents: 50_000 },
  { id: 3, name: "Bob & Co", openingCents: 0 },
  { id: 4, name: "Carol", openingCents: 0 },
  { id: 5, name: "Idle", openingCents: 25_000 }
]
const items: Array<Synthetic.Item> = [{ id: 1, name: "Diamond" }, { id: 2, name: hostile.item }, { id: 3, name: "Bread" }]
const shops: Array<Synthetic.Shop> = [{ id: 1, ownerId: 1, name: "Alice's Shop" }, { id: 2, ownerId: 2, name: hostile.shop }]

const march = (day: number, time: string) => `2024-03-${String(day).padStart(2, "0")}T${time}`

const rows: Array<Synthetic.RowInput> = [
  // before the span: they count for balances and the money supply only
  { ts: "2024-02-15T09:00:00", kind: "salary", to: 4, amountCents: 100_000 },
  { ts: "2024-02-20T09:00:00", kind: "transfer", from: 4, to: 1, amountCents: 5_000 },
  { ts: "2024-02-29T23:59:59", kind: "salary", to: 5, amountCents: 100 },
  // the first second of the span
  { ts: "2024-03-01T00:00:00", kind: "salary", to: 5, amountCents: 200 },
  // every day: a salary of 10.00 to Bob & Co, a transfer of 5.00 from Alice to account 2
  ...Array.from({ length: 30 }, (_, d): Array<Synthetic.RowInput> => [
    { ts: march(d + 1, "12:00:00"), kind: "salary", to: 3, amountCents: 1_000 },
    { ts: march(d + 1, "13:00:00"), kind: "transfer", from: 1, to: 2, amountCents: 500 }
  ]).flat(),
  // chestshops: shop 1 sells 2 Diamonds for 30.00 and 10 Bread for 5.00, buys 4 Bread for 1.00;
  // shop 2 sells one hostile item for 100.00
  { ts: march(5, "15:00:00"), kind: "chestshop_buy", from: 3, to: 1, shop: 1, item: 1, quantity: 2, unitPriceCents: 1_500, amountCents: 3_000 },
  { ts: march(6, "15:00:00"), kind: "chestshop_buy", from: 2, to: 1, shop: 1, item: 3, quantity: 10, unitPriceCents: 50, amountCents: 500 },
  { ts: march(7, "15:00:00"), kind: "chestshop_sell", from: 1, to: 3, shop: 1, item: 3, quantity: 4, unitPriceCents: 25, amountCents: 100 },
  { ts: march(8, "15:00:00"), kind: "chestshop_buy", from: 1, to: 2, shop: 2, item: 2, quantity: 1, unitPriceCents: 10_000, amountCents: 10_000 },
  // market on day 10: Diamond at 10, 20, 30 (median 20), the hostile item at 5 and 6 (median 5.50),
  // Bread at 1.01 and 1.02 (median 1.015: half a cent)
  { ts: march(10, "10:00:00"), kind: "market_trade", from: 2, to: 1, item: 1, quantity: 1, unitPriceCents: 1_000, amountCents: 1_000 },
  { ts: march(10, "10:01:00"), kind: "market_trade", from: 2, to: 1, item: 1, quantity: 2, unitPriceCents: 2_000, amountCents: 4_000 },
  { ts: march(10, "10:02:00"), kind: "market_trade", from: 2, to: 1, item: 1, quantity: 3, unitPriceCents: 3_000, amountCents: 9_000 },
  { ts: march(10, "11:00:00"), kind: "market_trade", from: 3, to: 4, item: 2, quantity: 1, unitPriceCents: 500, amountCents: 500 },
  { ts: march(10, "11:01:00"), kind: "market_trade", from: 3, to: 4, item: 2, quantity: 1, unitPriceCents: 600, amountCents: 600 },
  { ts: march(10, "12:30:00"), kind: "market_trade", from: 1, to: 3, item: 3, quantity: 1, unitPriceCents: 101, amountCents: 101 },
  { ts: march(10, "12:31:00"), kind: "market_trade", from: 1, to: 3, item: 3, quantity: 1, unitPriceCents: 102, amountCents: 102 },
  // taxes: 7.00 from account 2, 3.00 from Alice; the last row of the ledger ends the span
  { ts: march(20, "18:00:00"), kind: "tax", from: 2, amountCents: 700 },
  { ts: march(30, "23:59:59"), kind: "tax", from: 1, amountCents: 300 }
]

export const data = { accounts, items, shops, rows }

/**
 * What the queries must return. Balances at the end:
 *   Alice 1000 + 50 − 150 + 140 − 2.03 + 35 − 1 − 100 − 3 = 968.97
 *   acct2  500 + 150 − 140 − 5 − 7 + 100                 = 598.00
 *   Bob      0 + 300 − 11 + 2.03 − 30 + 1                 = 262.03
 *   Carol    0 + 1000 − 50 + 11                           = 961.00
 *   Idle   250 + 1 + 2                                    = 253.00   (sum 3043.00)
 */
export const expected = {
  span: { from: "2024-03-01", to: "2024-03-30" },
  // 1 + 60 daily + 4 chestshop + 7 market + 2 tax rows; 2 + 450 + 136 + 153.03 + 10
  totals: { transactions: 74, volume: 75_103 },
  activeAccounts: 5,
  balances: [25_300, 26_203, 59_800, 96_100, 96_897],
  moneySupply: 304_300,
  market: [
    { itemId: 1, item: "Diamond", trades: 3, quantity: 6, volume: 14_000, priceSum: 6_000, medianPrice: 2_000 },
    { itemId: 2, item: hostile.item, trades: 2, quantity: 2, volume: 1_100, priceSum: 1_100, medianPrice: 550 },
    { itemId: 3, item: "Bread", trades: 2, quantity: 2, volume: 203, priceSum: 203, medianPrice: 101.5 }
  ],
  topShops: [
    { shopId: 2, shop: hostile.shop, ownerId: 2, owner: hostile.account, revenue: 10_000, spent: 0, buys: 1, sells: 0 },
    { shopId: 1, shop: "Alice's Shop", ownerId: 1, owner: "Alice", revenue: 3_500, spent: 100, buys: 2, sells: 1 }
  ],
  shopItems: [
    { shopId: 1, itemId: 1, item: "Diamond", quantity: 2, revenue: 3_000 },
    { shopId: 1, itemId: 3, item: "Bread", quantity: 10, revenue: 500 },
    { shopId: 2, itemId: 2, item: hostile.item, quantity: 1, revenue: 10_000 }
  ],
  flows: [
    { kind: "chestshop_buy", transactions: 3, volume: 13_500, minted: 0, burned: 0 },
    { kind: "chestshop_sell", transactions: 1, volume: 100, minted: 0, burned: 0 },
    { kind: "market_trade", transactions: 7, volume: 15_303, minted: 0, burned: 0 },
    { kind: "salary", transactions: 31, volume: 30_200, minted: 30_200, burned: 0 },
    { kind: "tax", transactions: 2, volume: 1_000, minted: 0, burned: 1_000 },
    { kind: "transfer", transactions: 30, volume: 15_000, minted: 0, burned: 0 }
  ],
  /** Day 1: the midnight salary, the daily salary and transfer. */
  firstDay: { day: "2024-03-01", transactions: 3, volume: 1_700 },
  /** Day 10: salary, transfer and seven market trades. */
  tenthDay: { day: "2024-03-10", transactions: 9, volume: 1_500 + 15_303 }
}

/**
 * The fixture and two more Diamond trades on 11 March (40.00 and 50.00, from Carol to Idle), so
 * that item 1 has two days with different medians. The drill-down tests run on it; the rows
 * above are unchanged, so everything about Alice and the shops is as worked out there.
 */
export const moreDiamonds: Array<Synthetic.RowInput> = [
  { ts: march(11, "10:00:00"), kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 4_000, amountCents: 4_000 },
  { ts: march(11, "10:05:00"), kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 5_000, amountCents: 5_000 }
]

export const drillData = { accounts, items, shops, rows: [...rows, ...moreDiamonds] }

/** What the drill-down queries must return on `drillData` (money in cents). */
export const drill = {
  ids: { item: [[1, 3]], shop: [[1, 2]], account: [[1, 5]] },
  /** Diamond: 10, 20, 30 on the 10th (median 20), 40 and 50 on the 11th (median 45); median of all five 30. */
  diamond: {
    daily: [
      { day: "2024-03-10", trades: 3, quantity: 6, volume: 14_000, priceSum: 6_000, medianPrice: 2_000 },
      { day: "2024-03-11", trades: 2, quantity: 2, volume: 9_000, priceSum: 9_000, medianPrice: 4_500 }
    ],
    medianPrice: 3_000
  },
  /** Bread: the market trades at 1.01 and 1.02 only (its chestshop rows are not market trades). */
  bread: { daily: [{ day: "2024-03-10", trades: 2, quantity: 2, volume: 203, priceSum: 203, medianPrice: 101.5 }], medianPrice: 101.5 },
  aliceShop: {
    info: { id: 1, name: "Alice's Shop", ownerId: 1, owner: "Alice" },
    daily: [
      { day: "2024-03-05", revenue: 3_000, spent: 0, buys: 1, sells: 0 },
      { day: "2024-03-06", revenue: 500, spent: 0, buys: 1, sells: 0 },
      { day: "2024-03-07", revenue: 0, spent: 100, buys: 0, sells: 1 }
    ],
    items: [
      { shopId: 1, itemId: 1, item: "Diamond", quantity: 2, revenue: 3_000 },
      { shopId: 1, itemId: 3, item: "Bread", quantity: 10, revenue: 500 }
    ]
  },
  /**
   * Alice: 1000.00 opening, 50.00 received before the span (Carol's transfer of 20 February).
   * In the span she received 35.00 at her shop and 140.00 in the market, and paid 150.00 in
   * transfers, 1.00 and 100.00 at shops, 2.03 in the market and 3.00 of tax:
   * 1050 + 175 − 256.03 = 968.97, her balance at the end.
   */
  alice: {
    info: { id: 1, name: "Alice", openingBalance: 100_000 },
    before: { received: 5_000, paid: 0 },
    flowCount: 36, // a transfer every day, and six more (day, kind) groups
    someFlows: [
      { day: "2024-03-01", kind: "transfer", received: 0, paid: 500, transactions: 1 },
      { day: "2024-03-05", kind: "chestshop_buy", received: 3_000, paid: 0, transactions: 1 },
      { day: "2024-03-08", kind: "chestshop_buy", received: 0, paid: 10_000, transactions: 1 },
      { day: "2024-03-10", kind: "market_trade", received: 14_000, paid: 203, transactions: 5 },
      { day: "2024-03-30", kind: "tax", received: 0, paid: 300, transactions: 1 }
    ],
    received: 17_500,
    paid: 25_603,
    endBalance: 96_897,
    /** Account 2: 150 of transfers and 100 at its shop from Alice, 5 at her shop and 140 in the market to her. */
    counterparties: [
      { accountId: 2, name: hostile.account, sent: 25_000, received: 14_500, transactions: 35 },
      { accountId: 3, name: "Bob & Co", sent: 303, received: 3_000, transactions: 4 }
    ]
  },
  /** Idle: 250.00 opening, 1.00 before the span, 2.00 salary on the 1st and the two Diamonds from Carol. */
  idle: {
    before: { received: 100, paid: 0 },
    flows: [
      { day: "2024-03-01", kind: "salary", received: 200, paid: 0, transactions: 1 },
      { day: "2024-03-11", kind: "market_trade", received: 9_000, paid: 0, transactions: 2 }
    ],
    counterparties: [{ accountId: 4, name: "Carol", sent: 0, received: 9_000, transactions: 2 }],
    endBalance: 34_300
  }
}
