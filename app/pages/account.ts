/**
 * One account (`/accounts/:id`): its balance at the end of each of the last 30 days, what it
 * received and paid by kind of transaction, and the accounts it moved the most money with.
 * Reads the account's rows only (`ledger_to_ts`, `ledger_from_ts`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { type AccountInfo, type AccountRows, Ledger, type Span as LedgerSpan } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { accountHref, type Drill, drillLoader, found, fromBatch } from "./Drill.js"
import type { ListOf } from "./List.js"
import { periodOf, Timed } from "./Page.js"

export const Day = Schema.Struct({
  day: Schema.String,
  received: Schema.Number,
  paid: Schema.Number,
  /** At the end of the day. */
  balance: Schema.Number
})

export const Flow = Schema.Struct({ kind: Schema.String, received: Schema.Number, paid: Schema.Number, transactions: Schema.Number })

export const Counterparty = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  /** Paid by this account to the counterparty. */
  sent: Schema.Number,
  /** Paid by the counterparty to this account. */
  received: Schema.Number,
  transactions: Schema.Number,
  /**
   * The counterparty's balance at the end of the ledger, as its own page shows it: added to the
   * page on each request from the account loader's `getMany`, never stored with the page.
   */
  balance: Schema.optional(Schema.Number)
})

export const AccountPage = Schema.Struct({
  span: Span,
  account: Schema.Struct({ id: Schema.Number, name: Schema.String }),
  openingBalance: Schema.Number,
  /** When the 30 days began. */
  startBalance: Schema.Number,
  /** At the end of the ledger. */
  endBalance: Schema.Number,
  received: Schema.Number,
  paid: Schema.Number,
  /** Every day of the span. */
  daily: Schema.Array(Day),
  /** By kind name. */
  byKind: Schema.Array(Flow),
  /** By money moved (sent + received), highest first. */
  counterparties: Schema.Array(Counterparty)
})
export type AccountPage = typeof AccountPage.Type

export const keyPrefix = "explorer:account:v1:"
export const tag = "accounts"
export const counterpartyCount = 10

/** The page from the account's rows: the same function for one account (`produce`) and for a batch (`produceMany`). */
export const build = (account: AccountInfo, span: Option.Option<LedgerSpan>, rows: Omit<AccountRows, "info">): AccountPage => {
  const identity = { account: { id: account.id, name: account.name }, openingBalance: Stats.units(account.openingBalance) }
  if (Option.isNone(span)) {
    const opening = identity.openingBalance
    return { span: null, ...identity, startBalance: opening, endBalance: opening, received: 0, paid: 0, daily: [], byKind: [], counterparties: [] }
  }
  const { from, to } = span.value
  const { before, counterparties, flows } = rows
  const start = account.openingBalance + before.received - before.paid
  const days = new Map<string, { day: string; received: number; paid: number }>()
  const kinds = new Map<string, { kind: string; received: number; paid: number; transactions: number }>()
  for (const f of flows) {
    const day = days.get(f.day) ?? { day: f.day, received: 0, paid: 0 }
    day.received += f.received
    day.paid += f.paid
    days.set(f.day, day)
    const kind = kinds.get(f.kind) ?? { kind: f.kind, received: 0, paid: 0, transactions: 0 }
    kind.received += f.received
    kind.paid += f.paid
    kind.transactions += f.transactions
    kinds.set(f.kind, kind)
  }
  let balance = start
  const daily = Stats.fillDays(from, to, [...days.values()], (day) => ({ day, received: 0, paid: 0 })).map((d) => {
    balance += d.received - d.paid
    return { day: d.day, received: Stats.units(d.received), paid: Stats.units(d.paid), balance: Stats.units(balance) }
  })
  const received = flows.reduce((n, f) => n + f.received, 0)
  const paid = flows.reduce((n, f) => n + f.paid, 0)
  return {
    span: span.value,
    ...identity,
    startBalance: Stats.units(start),
    endBalance: Stats.units(start + received - paid),
    received: Stats.units(received),
    paid: Stats.units(paid),
    daily,
    byKind: [...kinds.values()].sort((a, b) => (a.kind < b.kind ? -1 : 1)).map((k) => ({
      ...k,
      received: Stats.units(k.received),
      paid: Stats.units(k.paid)
    })),
    counterparties: counterparties.map((c) => ({
      id: c.accountId,
      name: c.name,
      sent: Stats.units(c.sent),
      received: Stats.units(c.received),
      transactions: c.transactions
    }))
  }
}

export const produce = (id: number) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const [account, span] = yield* Effect.all([found("account", id, ledger.accountInfo(id)), ledger.span], { concurrency: "unbounded" })
    if (Option.isNone(span)) return build(account, span, { flows: [], before: { received: 0, paid: 0 }, counterparties: [] })
    const [flows, before, counterparties] = yield* Effect.all(
      [ledger.accountFlows(id, span.value), ledger.accountBefore(id, span.value), ledger.counterparties(id, span.value, counterpartyCount)],
      { concurrency: "unbounded" }
    )
    return build(account, span, { flows, before, counterparties })
  }).pipe(Effect.withSpan("explorer.account", { attributes: { "explorer.id": id } }))

/** Many accounts' pages from one ledger statement, in the order of `ids`. */
export const produceMany = (ids: ReadonlyArray<number>) =>
  Effect.flatMap(Ledger, (ledger) => ledger.accountsMany(ids, counterpartyCount)).pipe(
    Effect.flatMap((batch) => fromBatch("account", ids, batch, (rows, span) => build(rows.info, span, rows))),
    Effect.withSpan("explorer.accounts", { attributes: { "explorer.count": ids.length } })
  )

const stored = Timed(AccountPage)

export const loader = drillLoader({ keyPrefix, tag, stored, produce, produceMany })

export const render = (p: AccountPage): Html.Html => {
  const back = Html.html`<p class="crumbs">account ${p.account.id} · opening balance ${Html.money(p.openingBalance)}</p>`
  if (p.span === null) return Html.html`${back}${Html.emptyLedger}`
  const change = p.endBalance - p.startBalance
  return Html.html`${back}
<div class="cards">
  ${Html.card("Balance", Html.moneyShort(p.endBalance), "at the end of the ledger")}
  ${Html.card("30 days ago", Html.moneyShort(p.startBalance), `${change >= 0 ? "+" : ""}${Html.money(change)} since`)}
  ${Html.card("Received", Html.moneyShort(p.received))}
  ${Html.card("Paid", Html.moneyShort(p.paid))}
</div>
<h2>Balance at the end of each day</h2>
${
    Html.lineChart(p.daily.map((d) => ({
      label: d.day.slice(5),
      value: d.balance,
      title: `${d.day}: ${Html.money(d.balance)} (in ${Html.money(d.received)}, out ${Html.money(d.paid)})`
    })), { title: "Balance (UTC days)", axis: Html.compact })
  }
<div class="grid2">
  <section><h2>Flows by kind</h2>${
    Html.table<AccountPage["byKind"][number]>([
      { label: "Kind", cell: (r) => r.kind },
      { label: "Transactions", cell: (r) => Html.count(r.transactions), numeric: true },
      { label: "Received", cell: (r) => Html.money(r.received), numeric: true },
      { label: "Paid", cell: (r) => Html.money(r.paid), numeric: true }
    ], p.byKind, "No transactions in this period.")
  }</section>
  <section><h2>Top counterparties</h2>${
    Html.table<AccountPage["counterparties"][number]>([
      { label: "Account", cell: (r) => Html.link(accountHref(r.id), r.name) },
      { label: "Transactions", cell: (r) => Html.count(r.transactions), numeric: true },
      { label: "Sent", cell: (r) => Html.money(r.sent), numeric: true },
      { label: "Received", cell: (r) => Html.money(r.received), numeric: true },
      { label: "Balance", cell: (r) => (r.balance === undefined ? "" : Html.money(r.balance)), numeric: true }
    ], p.counterparties, "No transfers with other accounts in this period.")
  }</section>
</div>`
}

/** The page with each counterparty's balance from the counterparty's own page (matched by id). */
export const withCounterparties = (page: AccountPage, others: ReadonlyArray<AccountPage>): AccountPage => {
  const balances = new Map(others.map((o) => [o.account.id, o.endBalance]))
  return {
    ...page,
    counterparties: page.counterparties.map(({ balance: _, ...c }) => {
      const balance = balances.get(c.id)
      return balance === undefined ? c : { ...c, balance }
    })
  }
}

/** The counterparties, as rows of their own account pages. */
export const list: ListOf<AccountPage, AccountPage, AccountPage> = {
  drill: "account",
  kind: "account",
  ids: (page) => page.counterparties.map((c) => c.id),
  compose: withCounterparties
}

export const drill: Drill<AccountPage> = {
  name: "account",
  kind: "account",
  section: "dashboard",
  path: "/accounts/:id",
  api: "/api/accounts/:id",
  href: accountHref,
  keyPrefix,
  tag,
  loader,
  title: (p) => p.account.name,
  toJson: Schema.encodeSync(AccountPage),
  render,
  period: periodOf,
  list
}
