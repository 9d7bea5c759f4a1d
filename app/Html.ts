/**
 * HTML for the explorer: an escaping template tag (every interpolated value is escaped with
 * escape-html unless it is already `Html`), the page layout, SVG charts and the browser script
 * that refreshes a page right after the server's next window boundary.
 */
import escapeHtml from "escape-html"
import { createHash } from "node:crypto"
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

const styles = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5d6678; --bg: #f6f7fb; --panel: #fff; --line: #e2e5ee; --accent: #2f6fde; --warn: #b85c00; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9f0; --muted: #9aa3b5; --bg: #12151c; --panel: #1b1f29; --line: #2b3140; --accent: #6ea0ff; --warn: #ffb25b; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { background: var(--panel); border-bottom: 1px solid var(--line); }
header .inner, main { max-width: 1120px; margin: 0 auto; padding: 0 20px; }
header .inner { display: flex; gap: 24px; align-items: center; height: 56px; }
header .brand { font-weight: 700; letter-spacing: .02em; }
header nav a { color: var(--muted); text-decoration: none; margin-right: 16px; padding: 16px 0; border-bottom: 2px solid transparent; }
header nav a.active, header nav a:hover { color: var(--fg); border-bottom-color: var(--accent); }
main { padding-top: 20px; padding-bottom: 48px; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
.freshness { color: var(--muted); font-size: 13px; margin-bottom: 16px; }
.freshness .stale { color: var(--warn); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .note { color: var(--muted); font-size: 12px; }
table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 10px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart figcaption { color: var(--muted); font-size: 12px; text-align: center; }
.chart .bar { fill: var(--accent); opacity: .85; } .chart .bar:hover { opacity: 1; }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; } .chart .dot { fill: var(--accent); }
.chart .grid { stroke: var(--line); } .chart .axis { fill: var(--muted); font-size: 11px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; } @media (max-width: 800px) { .grid2 { grid-template-columns: 1fr; } }
.empty { color: var(--muted); font-style: italic; }
.error { background: var(--panel); border: 1px solid var(--warn); border-radius: 10px; padding: 16px 20px; }
ul.items { margin: 0; padding-left: 18px; } .muted { color: var(--muted); }
a { color: var(--accent); } td a, .card a { text-decoration: none; } td a:hover, .card a:hover { text-decoration: underline; }
.crumbs { color: var(--muted); font-size: 13px; margin: 0 0 12px; }
.admin { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px; margin-bottom: 16px; display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
.admin input { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
#admin-result.ok { color: var(--accent); } #admin-result.failed { color: var(--warn); }
main.wide { max-width: 1480px; }
.keys table { font-size: 13px; } .keys td { padding: 6px 8px; } .keys code { font-size: 12px; word-break: break-all; }
.keys td button { margin: 1px 0; }
.state-fresh { color: var(--accent); } .state-stale, .state-invalidated { color: var(--warn); }
.pager { margin-top: 12px; display: flex; gap: 16px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 24px; }
`

/**
 * The browser side of the window protocol: refresh when the next value will be there (the
 * server's `nextValueAt`: the boundary for a page computed ahead, later by its run time
 * otherwise) plus the lag,
 * on the server's clock (offset measured on every response, erring late rather than early); swap `<main>` in place so neither
 * the page nor the scroll position jumps; retry once when the refresh lands on a stale value,
 * after `retryMs` or the value's last compute time, whichever is longer.
 * `window.__lockstep` exposes what happened, for people and for the end-to-end test.
 */
const refreshScript = `
(function () {
  "use strict";
  function readMeta(doc) {
    var el = doc.getElementById("lockstep-meta");
    return el ? JSON.parse(el.textContent) : null;
  }
  var meta = readMeta(document);
  if (!meta) return;
  var state = { offset: meta.serverNow - Date.now(), timer: 0, refreshes: 0, errors: 0, retried: false, history: [], dueAt: 0 };
  window.__lockstep = state;
  function serverNow() { return Date.now() + state.offset; }
  function schedule(delay) {
    clearTimeout(state.timer);
    state.dueAt = serverNow() + Math.max(0, delay);
    state.timer = setTimeout(refresh, Math.max(0, delay));
  }
  function scheduleNext() { schedule(Math.max(meta.nextBoundary, meta.nextValueAt || 0) + meta.lagMs - serverNow()); }
  function tick() {
    var el = document.getElementById("lockstep-countdown");
    if (el) el.textContent = "in " + Math.max(0, Math.ceil((state.dueAt - serverNow()) / 1000)) + " s";
  }
  function refresh() {
    var t0 = Date.now();
    var requestedAt = serverNow();
    fetch(location.pathname + location.search, { cache: "no-store", headers: { "Accept": "text/html", "X-Lockstep-Refresh": "1" } })
      .then(function (res) {
        var t1 = Date.now();
        var now = Number(res.headers.get("X-Server-Now"));
        // the server stamped X-Server-Now at some point before t1: taking t1 can only make the
        // offset too small, so the next refresh can come a round trip late but never early
        if (now > 0) state.offset = now - t1;
        return res.text().then(function (text) { return { res: res, text: text }; });
      })
      .then(function (r) {
        if (!r.res.ok) throw new Error("HTTP " + r.res.status);
        var doc = new DOMParser().parseFromString(r.text, "text/html");
        var next = readMeta(doc);
        var main = doc.querySelector("main");
        var current = document.querySelector("main");
        if (!next || !main || !current) throw new Error("unexpected page");
        var x = window.scrollX, y = window.scrollY;
        current.replaceWith(document.adoptNode(main));
        window.scrollTo(x, y);
        meta = next;
        var cache = r.res.headers.get("X-Cache");
        state.refreshes++;
        state.history.push({ cache: cache, bucket: next.bucket, computedAt: next.computedAt, requestedAt: requestedAt, status: r.res.status });
        if (cache === "stale" && !state.retried) {
          state.retried = true;
          schedule(Math.max(meta.retryMs, (meta.computeMs || 0) + 100));
          return;
        }
        state.retried = false;
        scheduleNext();
        tick();
      })
      .catch(function () {
        state.errors++;
        schedule(Math.max(meta.retryMs, 5000));
      });
  }
  scheduleNext();
  tick();
  setInterval(tick, 1000);
})();
`

/**
 * The cache inspector's admin buttons: each posts its action with the token typed into the
 * page (`Authorization: Bearer`, never a cookie: `credentials: "omit"`), shows the answer, and
 * swaps the key table for a fresh one. Without `ADMIN_TOKEN` the page has no buttons and this
 * script does nothing.
 */
const adminScript = `
(function () {
  "use strict";
  var admin = document.getElementById("admin");
  if (!admin || admin.getAttribute("data-enabled") !== "true") return;
  var result = document.getElementById("admin-result");
  var state = { actions: 0, failures: 0, last: null };
  window.__lockstepAdmin = state;
  function say(text, ok) {
    result.textContent = text;
    result.className = ok ? "ok" : "failed";
  }
  function reloadTable() {
    return fetch(location.pathname + location.search, { cache: "no-store", credentials: "omit" })
      .then(function (res) { return res.text(); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html").getElementById("inspector-table");
        var current = document.getElementById("inspector-table");
        if (next && current) current.replaceWith(document.adoptNode(next));
      });
  }
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button[data-action]") : null;
    if (!button) return;
    var action = button.getAttribute("data-action");
    var body = action === "invalidate-tag"
      ? { tag: button.getAttribute("data-tag") || document.getElementById("admin-tag").value }
      : { key: button.getAttribute("data-key") };
    say(action + " …", true);
    fetch("/api/cache/" + action, {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: { "Authorization": "Bearer " + document.getElementById("admin-token").value, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    })
      .then(function (res) { return res.json().then(function (json) { return { status: res.status, ok: res.ok, json: json }; }); })
      .then(function (r) {
        state.last = { action: action, status: r.status, body: r.json };
        if (!r.ok) {
          state.failures++;
          say(r.status + ": " + (r.json && r.json.error ? r.json.error.message : "failed"), false);
          return;
        }
        state.actions++;
        say(r.json.message, true);
        return reloadTable();
      })
      .catch(function (e) {
        state.failures++;
        say("failed: " + e.message, false);
      });
  });
})();
`

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

/**
 * The CSP sources of the inline script and style blocks: the only ones the pages have, each
 * allowed by its hash (no `'unsafe-inline'`).
 */
export const inlineSources = {
  scripts: [sha256(refreshScript), sha256(adminScript)],
  styles: [sha256(styles)]
} as const

/** Which of the two inline scripts a page runs. */
export type Script = "refresh" | "admin"

const scripts: Record<Script, Html> = { refresh: raw(`<script>${refreshScript}</script>`), admin: raw(`<script>${adminScript}</script>`) }

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
<style>${raw(styles)}</style>
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
