/**
 * The cache inspector: `/cache` (HTML) and `/api/cache` (JSON) list the tenant's keys a page at
 * a time through `Memo.inspect` (`SCAN` on a single Redis and on every primary of a Cluster,
 * never `KEYS`; the maps of the in-memory store). For each key: its window, bucket, age, fence,
 * `computedAt`, the lookup's duration, the lock holder and what is left of its lease, what is
 * left of a back-off, its tags, and this process's hit, stale and miss counts.
 *
 * `?cursor=` continues where the previous page stopped (the `next` of the JSON, the "Next page"
 * link); `?count=` asks for a page size (1 to `maxCount`, default `defaultCount`). With
 * `ADMIN_TOKEN` set, the HTML page has buttons for the admin actions (`Admin.ts`).
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Memo } from "../src/index.js"
import { AppConfig } from "./Config.js"
import * as Html from "./Html.js"
import type * as Loaders from "./Loaders.js"

export const defaultCount = 50
export const maxCount = 200

export interface KeyRow {
  readonly key: string
  /** The loader of this explorer that owns the key (`null`: none does, e.g. an older version's key). */
  readonly loader: string | null
  /** `fresh`: this window's and not invalidated; `stale`: an earlier window's; `invalidated`: marked stale. */
  readonly state: "fresh" | "stale" | "invalidated" | "empty"
  readonly windowMs: number | null
  readonly bucket: number | null
  readonly fence: number | null
  readonly computedAt: number | null
  readonly ageMs: number | null
  /** How long the lookup ran. */
  readonly durationMs: number | null
  /** The stored value's length in bytes of JSON. */
  readonly size: number | null
  readonly tags: ReadonlyArray<string>
  /** Values with a fence at or below this were invalidated. */
  readonly invalidatedThrough: number | null
  readonly lock: { readonly holder: string; readonly leaseLeftMs: number } | null
  readonly backoffLeftMs: number | null
  /** This process's answers for the key. */
  readonly served: { readonly hit: number; readonly stale: number; readonly miss: number } | null
}

export interface InspectorPage {
  readonly tenant: string
  readonly store: "redis" | "memory"
  /** The store's clock. */
  readonly now: number
  /** Whether the admin actions are on (`ADMIN_TOKEN` is set). */
  readonly admin: boolean
  readonly keys: ReadonlyArray<KeyRow>
  /** Pass it as `?cursor=` for the next page; `null` on the last one. */
  readonly next: string | null
  readonly count: number
}

export class BadQuery extends Data.TaggedError("BadQuery")<{ readonly message: string }> {}

/** The cursor the stores hand out: `<n>` (memory) or `<node>:<scan cursor>` (Redis). */
const cursorPattern = /^[0-9]{1,20}(?::[0-9]{1,20})?$/

export const parseQuery = (url: string): Effect.Effect<{ readonly cursor: string | undefined; readonly count: number }, BadQuery> => {
  const params = new URL(url, "http://explorer.invalid").searchParams
  const cursor = params.get("cursor") ?? undefined
  const countText = params.get("count") ?? undefined
  if (cursor !== undefined && !cursorPattern.test(cursor)) return Effect.fail(new BadQuery({ message: "cursor must be one the inspector gave" }))
  if (countText !== undefined && (!/^[1-9][0-9]{0,3}$/.test(countText) || Number(countText) > maxCount)) {
    return Effect.fail(new BadQuery({ message: `count must be a whole number from 1 to ${maxCount}` }))
  }
  return Effect.succeed({ cursor, count: countText === undefined ? defaultCount : Number(countText) })
}

const rowOf = (k: Memo.KeyState, now: number, loader: string | null): KeyRow => {
  const stored = Option.getOrUndefined(k.stored)
  const state = stored === undefined
    ? "empty"
    : stored.fence <= k.mark
    ? "invalidated"
    : stored.bucket >= Math.floor(now / stored.windowMs)
    ? "fresh"
    : "stale"
  return {
    key: k.key,
    loader,
    state,
    windowMs: stored?.windowMs ?? null,
    bucket: stored?.bucket ?? null,
    fence: stored?.fence ?? null,
    computedAt: stored?.computedAt ?? null,
    ageMs: stored === undefined ? null : Math.max(0, now - stored.computedAt),
    durationMs: stored === undefined ? null : Option.getOrNull(stored.durationMs),
    size: stored?.size ?? null,
    tags: stored?.tags ?? [],
    invalidatedThrough: k.mark >= 0 ? k.mark : null,
    lock: Option.match(k.lock, { onNone: () => null, onSome: (l) => ({ holder: l.holder, leaseLeftMs: l.ttlMs }) }),
    backoffLeftMs: Option.getOrNull(k.backoffMs),
    served: Option.getOrNull(k.served)
  }
}

/** One page of the inspector. */
export const inspect = (loaders: Loaders.Service, query: { readonly cursor: string | undefined; readonly count: number }) =>
  Effect.gen(function*() {
    const runtime = yield* Memo.Memo
    const config = yield* AppConfig
    const page = yield* Memo.inspect(query)
    return {
      tenant: runtime.store.tenant,
      store: runtime.store.kind,
      now: page.now,
      admin: Option.isSome(config.adminToken),
      keys: page.keys.map((k) => rowOf(k, page.now, Option.match(loaders.ownerOf(k.key), { onNone: () => null, onSome: (o) => o.loader }))),
      next: Option.getOrNull(page.cursor),
      count: query.count
    } satisfies InspectorPage
  })

const ms = (n: number | null) => (n === null ? "" : n < 1_000 ? `${Math.round(n)} ms` : n < 600_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n / 60_000)} min`)

const actionButton = (action: "invalidate" | "refresh", key: string) =>
  Html.html`<button type="button" data-action="${action}" data-key="${key}">${action === "invalidate" ? "Invalidate" : "Refresh"}</button>`

const tagCell = (tags: ReadonlyArray<string>, admin: boolean) =>
  tags.length === 0
    ? Html.html`<span class="muted">none</span>`
    : tags.map((tag) =>
      admin
        ? Html.html`<button type="button" data-action="invalidate-tag" data-tag="${tag}" title="Invalidate every key with this tag">${tag}</button> `
        : Html.html`<code>${tag}</code> `
    )

const href = (cursor: string | undefined, count: number) => {
  const params = new URLSearchParams()
  if (cursor !== undefined) params.set("cursor", cursor)
  if (count !== defaultCount) params.set("count", String(count))
  const query = params.toString()
  return query === "" ? "/cache" : `/cache?${query}`
}

export const render = (p: InspectorPage, query: { readonly cursor: string | undefined }): Html.Html => {
  const admin = p.admin
  const table = Html.table<KeyRow>([
    {
      label: "Key",
      cell: (r) => Html.html`<code>${r.key}</code><div class="muted">${r.loader === null ? "no loader of this explorer" : r.loader}</div>`
    },
    { label: "State", cell: (r) => Html.html`<span class="state-${r.state}">${r.state}</span>` },
    { label: "Window", cell: (r) => ms(r.windowMs), numeric: true },
    { label: "Bucket", cell: (r) => r.bucket ?? "", numeric: true },
    { label: "Fence", cell: (r) => r.fence ?? "", numeric: true },
    {
      label: "Computed",
      cell: (r) =>
        r.computedAt === null
          ? ""
          : Html.html`<time datetime="${new Date(r.computedAt).toISOString()}">${Html.utcTime(r.computedAt)}</time><div class="muted">${ms(r.ageMs)} ago</div>`,
      numeric: true
    },
    { label: "Lookup", cell: (r) => ms(r.durationMs), numeric: true },
    {
      label: "Lock",
      cell: (r) =>
        r.lock !== null
          ? Html.html`<code>${r.lock.holder}</code><div class="muted">lease ${ms(r.lock.leaseLeftMs)} left</div>`
          : r.backoffLeftMs !== null
          ? Html.html`<span class="state-stale">back-off</span><div class="muted">${ms(r.backoffLeftMs)} left</div>`
          : Html.html`<span class="muted">free</span>`
    },
    { label: "Tags", cell: (r) => tagCell(r.tags, admin) },
    {
      label: "Here hit/stale/miss",
      cell: (r) => (r.served === null ? Html.html`<span class="muted">not in L1</span>` : `${r.served.hit} / ${r.served.stale} / ${r.served.miss}`),
      numeric: true
    },
    ...(admin
      ? [{ label: "Actions", cell: (r: KeyRow) => (r.loader === null ? "" : Html.html`${actionButton("invalidate", r.key)} ${actionButton("refresh", r.key)}`) }]
      : [])
  ], p.keys, query.cursor === undefined ? "The cache holds no keys yet." : "No more keys.")
  return Html.html`<main class="wide">
<h1>Cache inspector</h1>
<div class="freshness">Tenant <code>${p.tenant}</code> · ${p.store === "redis" ? "Redis" : "in-memory store"} · store clock ${
    Html.utcDateTime(p.now)
  } · ${p.keys.length} keys on this page · <a href="/api/cache${query.cursor === undefined ? "" : `?cursor=${encodeURIComponent(query.cursor)}`}">JSON</a></div>
${
    admin
      ? Html.html`<section class="admin" id="admin" data-enabled="true">
  <label>Admin token <input type="password" id="admin-token" autocomplete="off" spellcheck="false" size="28"></label>
  <label>Tag <input type="text" id="admin-tag" spellcheck="false" size="14"></label>
  <button type="button" data-action="invalidate-tag">Invalidate tag</button>
  <output id="admin-result" role="status"></output>
</section>`
      : Html.html`<section class="admin" id="admin" data-enabled="false"><span class="muted">Read-only: set <code>ADMIN_TOKEN</code> to invalidate and refresh keys from here.</span></section>`
  }
<div id="inspector-table" class="keys">
${table}
<nav class="pager">${query.cursor === undefined ? "" : Html.link(href(undefined, p.count), "First page")}${
    p.next === null ? "" : Html.link(href(p.next, p.count), "Next page")
  }</nav>
</div>
</main>`
}

const badRequest = (message: string, format: "html" | "json") =>
  format === "json"
    ? HttpServerResponse.unsafeJson({ error: { code: "BadQuery", message } }, { status: 400, headers: { "cache-control": "no-store" } })
    : HttpServerResponse.text(
      Html.errorPage({ title: "Cache inspector", active: "cache", heading: "Bad request", message }).value,
      { status: 400, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
    )

const unavailable = (message: string, format: "html" | "json") =>
  format === "json"
    ? HttpServerResponse.unsafeJson({ error: { code: "RedisError", message } }, { status: 503, headers: { "cache-control": "no-store", "retry-after": "5" } })
    : HttpServerResponse.text(
      Html.errorPage({ title: "Cache inspector", active: "cache", heading: "The cache store is unavailable", message, retryAfterS: 5 }).value,
      { status: 503, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store", "retry-after": "5" } }
    )

const handler = (loaders: Loaders.Service, format: "html" | "json") => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const query = yield* parseQuery(request.url)
    const page = yield* inspect(loaders, query)
    return format === "json"
      ? HttpServerResponse.unsafeJson(page, { headers: { "cache-control": "no-store" } })
      : HttpServerResponse.text(Html.plainPage({ title: "Cache inspector", active: "cache", main: render(page, query), script: "admin" }).value, {
        contentType: "text/html; charset=utf-8",
        headers: { "cache-control": "no-store" }
      })
  }).pipe(
    Effect.catchTags({
      BadQuery: (e) => Effect.succeed(badRequest(e.message, format)),
      RedisError: (e) =>
        Effect.as(Effect.logWarning(`explorer: the cache inspector could not read the store: ${e.message}`), unavailable(e.message, format))
    })
  )

export const routes = (router: HttpLayerRouter.HttpRouter, loaders: Loaders.Service) =>
  Effect.gen(function*() {
    yield* router.add("GET", "/cache", handler(loaders, "html"))
    yield* router.add("GET", "/api/cache", handler(loaders, "json"))
  })
