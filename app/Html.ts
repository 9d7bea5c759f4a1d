/**
 * HTML for the explorer: an escaping template tag (every interpolated value is escaped with
 * escape-html unless it is already `Html`), the page layout and SVG charts. The style sheet and
 * the browser scripts (the refresh right after the server's next window boundary, the
 * inspector's admin buttons) are files of their own in `app/assets/`, linked by `Assets.ts`.
 */
import escapeHtml from "escape-html"
import * as Assets from "./Assets.js"
import type { PageName } from "./Config.js"

/** Where a page belongs in the navigation: one of the pages, or the cache inspector. */
export type Section = PageName | "cache"

/** Markup that is safe to emit as is. Only `html` and `raw` make one. */
export class Html {
  constructor(readonly value: string) {}
  toString() {
    return this.value
  }
}

export type Interpolation = Html | string | number | boolean | null | undefined | ReadonlyArray<Interpolation>

const emit = (value: Interpolation): string =>
  value instanceof Html
    ? value.value
    : Array.isArray(value)
    ? value.map(emit).join("")
    : value === null || value === undefined || value === false
    ? ""
    : escapeHtml(String(value))

/** The template tag: text is escaped, `Html` (and arrays of it) is inserted as is. */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<Interpolation>): Html => {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += emit(values[i]!) + strings[i + 1]!
  return new Html(out)
}

/** Trusted markup (constants of this module only). */
export const raw = (value: string): Html => new Html(value)

/** JSON for a `<script type="application/json">` block: nothing in it can close the element. */
export const jsonScript = (id: string, value: unknown): Html =>
  raw(
    `<script type="application/json" id="${escapeHtml(id)}">${
      JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")
        .replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029")
    }</script>`
  )

// ---------------------------------------------------------------------------------------------
// formatting

const moneyFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const countFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 })

export const money = (units: number): string => `${moneyFormat.format(units)} ◎`
/** Money for a card: compact, with the exact amount as a tooltip. */
export const moneyShort = (units: number): Html =>
  html`<span title="${money(units)}">${compactFormat.format(units)} ◎</span>`
export const count = (n: number): string => countFormat.format(n)
export const compact = (n: number): string => compactFormat.format(n)
export const percent = (ratio: number, digits = 1): string => `${(ratio * 100).toFixed(digits)}%`
export const utcTime = (ms: number): string => new Date(ms).toISOString().slice(11, 19) + " UTC"
export const utcDateTime = (ms: number): string => new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC"

// ---------------------------------------------------------------------------------------------
// components

/** A link within the explorer: `href` is one of its own paths, the text is escaped. */
export const link = (href: string, text: Interpolation): Html => html`<a href="${href}">${text}</a>`

/** What every page shows for a ledger with no rows in its 30 days. */
export const emptyLedger: Html = html`<p class="empty">The ledger is empty. Seed it with <code>npm run seed</code>.</p>`

export const card = (label: Interpolation, value: Interpolation, note?: Interpolation): Html =>
  html`<div class="card"><div class="label">${label}</div><div class="value">${value}</div>${
    note === undefined ? "" : html`<div class="note">${note}</div>`
  }</div>`

export interface Column<A> {
  readonly label: string
  readonly cell: (row: A) => Interpolation
  readonly numeric?: boolean
}

export const table = <A>(columns: ReadonlyArray<Column<A>>, rows: ReadonlyArray<A>, empty = "No data in this period."): Html =>
  rows.length === 0
    ? html`<p class="empty">${empty}</p>`
    : html`<table>
  <thead><tr>${columns.map((c) => html`<th${c.numeric ? raw(` class="num"`) : ""}>${c.label}</th>`)}</tr></thead>
  <tbody>${
      rows.map((row) =>
        html`<tr>${columns.map((c) => html`<td${c.numeric ? raw(` class="num"`) : ""}>${c.cell(row)}</td>`)}</tr>`
      )
    }</tbody>
</table>`

export interface Point {
  readonly label: string
  readonly value: number
  /** Tooltip text. */
  readonly title: string
}

const niceMax = (max: number) => {
  if (!(max > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(max))
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= max)!
}

const chartFrame = (
  points: ReadonlyArray<Point>,
  options: { readonly width?: number; readonly height?: number; readonly title: string; readonly axis: (v: number) => string },
  body: (x: (i: number) => number, y: (v: number) => number, step: number) => Html
): Html => {
  const width = options.width ?? 760
  const height = options.height ?? 240
  const left = 64
  const bottom = 28
  const top = 12
  const plotW = width - left - 8
  const plotH = height - top - bottom
  const max = niceMax(Math.max(0, ...points.map((p) => p.value)))
  const step = points.length === 0 ? plotW : plotW / points.length
  const x = (i: number) => left + i * step
  const y = (v: number) => top + plotH - (Math.max(0, v) / max) * plotH
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max)
  const labelEvery = Math.max(1, Math.ceil(points.length / 8))
  return html`<figure class="chart">
<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${options.title}" preserveAspectRatio="xMidYMid meet">
  <title>${options.title}</title>
  ${
    ticks.map((t) =>
      html`<line class="grid" x1="${left}" x2="${width - 8}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"/><text class="axis" x="${
        left - 6
      }" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${options.axis(t)}</text>`
    )
  }
  ${body(x, y, step)}
  ${
    points.map((p, i) =>
      i % labelEvery === 0
        ? html`<text class="axis" x="${(x(i) + step / 2).toFixed(1)}" y="${height - 8}" text-anchor="middle">${p.label}</text>`
        : ""
    )
  }
</svg>
<figcaption>${options.title}</figcaption>
</figure>`
}

/** A bar chart (one bar per point, tooltips from `title`). */
export const barChart = (
  points: ReadonlyArray<Point>,
  options: { readonly title: string; readonly axis: (v: number) => string; readonly width?: number; readonly height?: number }
): Html =>
  chartFrame(points, options, (x, y, step) =>
    html`${
      points.map((p, i) => {
        const h = Math.max(0, y(0) - y(p.value))
        return html`<rect class="bar" x="${(x(i) + step * 0.12).toFixed(1)}" y="${y(p.value).toFixed(1)}" width="${
          (step * 0.76).toFixed(1)
        }" height="${h.toFixed(1)}"><title>${p.title}</title></rect>`
      })
    }`)

/** A line chart with a dot per point. */
export const lineChart = (
  points: ReadonlyArray<Point>,
  options: { readonly title: string; readonly axis: (v: number) => string; readonly width?: number; readonly height?: number }
): Html =>
  chartFrame(points, options, (x, y, step) => {
    const coords = points.map((p, i) => `${(x(i) + step / 2).toFixed(1)},${y(p.value).toFixed(1)}`)
    return html`<polyline class="line" points="${coords.join(" ")}"/>${
      points.map((p, i) =>
        html`<circle class="dot" cx="${(x(i) + step / 2).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3"><title>${p.title}</title></circle>`
      )
    }`
  })

// ---------------------------------------------------------------------------------------------
// layout

/** What the browser needs to refresh at the right time; embedded as JSON in every page. */
export interface RefreshMeta {
  /** The page's name (`dashboard`, …, or a drill-down page's `item`, `shop`, `account`). */
  readonly page: string
  readonly bucket: number
  readonly computedAt: number
  readonly nextBoundary: number
  /** When the next value will be there: the boundary when it is computed ahead, later otherwise. */
  readonly nextValueAt: number
  readonly serverNow: number
  readonly stale: boolean
  readonly cache: "hit" | "stale" | "miss"
  readonly windowMs: number
  readonly lagMs: number
  readonly retryMs: number
  /** How long the value took to compute: the one retry after a stale refresh waits at least that. */
  readonly computeMs: number
}

export const nav: ReadonlyArray<{ readonly name: Section; readonly title: string; readonly path: string }> = [
  { name: "dashboard", title: "Dashboard", path: "/" },
  { name: "market", title: "Market", path: "/market" },
  { name: "chestshop", title: "Chestshops", path: "/chestshop" },
  { name: "health", title: "Economy health", path: "/economy/health" },
  { name: "cache", title: "Cache", path: "/cache" }
]

/** Which of the two scripts a page runs. */
export type Script = "refresh" | "admin"

const scriptTag = (asset: Assets.Asset): Html => html`<script src="${asset.path}" integrity="${asset.integrity}"></script>`

const scripts: Record<Script, Html> = { refresh: scriptTag(Assets.refreshScript), admin: scriptTag(Assets.adminScript) }

const shell = (
  title: string,
  active: Section | undefined,
  main: Html,
  extraHead: Html = raw(""),
  script: Script | undefined = "refresh"
): Html =>
  html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · lockstep explorer</title>
<link rel="stylesheet" href="${Assets.styles.path}" integrity="${Assets.styles.integrity}">
${extraHead}
</head>
<body>
<header><div class="inner"><span class="brand">lockstep explorer</span><nav>${
    nav.map((n) => html`<a href="${n.path}"${n.name === active ? raw(` class="active" aria-current="page"`) : ""}>${n.title}</a>`)
  }</nav></div></header>
${main}
<footer>Aggregates are computed at most once per window for the whole fleet and served from the shared cache.</footer>
${script === undefined ? "" : scripts[script]}
</body>
</html>`

/** A full page: heading, freshness line, content, and the refresh metadata. */
export const page = (options: {
  readonly title: string
  readonly active: Section
  readonly period: string | undefined
  readonly meta: RefreshMeta
  readonly body: Html
}): Html => {
  const { meta } = options
  const ageS = Math.max(0, Math.floor((meta.serverNow - meta.computedAt) / 1000))
  return shell(
    options.title,
    options.active,
    html`<main data-bucket="${meta.bucket}" data-cache="${meta.cache}">
<h1>${options.title}</h1>
<div class="freshness">
  ${options.period === undefined ? "" : html`<span>${options.period}</span> · `}
  Computed at <time id="lockstep-computed" datetime="${new Date(meta.computedAt).toISOString()}">${utcDateTime(meta.computedAt)}</time>
  (${ageS} s ago${meta.stale ? html`, <span class="stale">stale: a newer value is being computed</span>` : ""}) ·
  next refresh at <time id="lockstep-next" datetime="${new Date(Math.max(meta.nextBoundary, meta.nextValueAt) + meta.lagMs).toISOString()}">${
      utcTime(Math.max(meta.nextBoundary, meta.nextValueAt) + meta.lagMs)
    }</time> <span id="lockstep-countdown" class="muted"></span> ·
  window ${meta.windowMs / 1000} s
</div>
${options.body}
${jsonScript("lockstep-meta", meta)}
</main>`
  )
}

/** A page for a request that could not be answered: no refresh metadata, a plain reload later. */
export const errorPage = (options: {
  readonly title: string
  readonly active: Section | undefined
  readonly heading: string
  readonly message: string
  readonly retryAfterS?: number | undefined
}): Html =>
  shell(
    options.title,
    options.active,
    html`<main>
<h1>${options.heading}</h1>
<div class="error"><p>${options.message}</p>${
      options.retryAfterS === undefined ? "" : html`<p class="muted">This page retries in ${options.retryAfterS} s.</p>`
    }</div>
</main>`,
    options.retryAfterS === undefined ? raw("") : html`<meta http-equiv="refresh" content="${options.retryAfterS}">`,
    undefined
  )

/** A page of the explorer's own that is not a cached value (the cache inspector). */
export const plainPage = (options: { readonly title: string; readonly active: Section; readonly main: Html; readonly script?: Script }): Html =>
  shell(options.title, options.active, options.main, raw(""), options.script)
