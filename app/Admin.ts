/**
 * The admin actions of the cache inspector, POST only, each with a JSON body:
 * - `POST /api/cache/invalidate` `{"key": "…"}`: marks the key's value stale everywhere (it stays
 *   as last-known-good; the next request recomputes it once fleet-wide);
 * - `POST /api/cache/refresh` `{"key": "…"}`: recomputes it now and answers the new value's window;
 * - `POST /api/cache/invalidate-tag` `{"tag": "…"}`: marks stale every key with the tag.
 *
 * Each needs `Authorization: Bearer <ADMIN_TOKEN>`. The token is compared in constant time
 * (`crypto.timingSafeEqual` on SHA-256 digests, so lengths never differ). A missing or wrong
 * token answers 401; with `ADMIN_TOKEN` unset, every admin route answers 403. Nothing is read
 * from cookies or any other credential a browser sends on its own, so another site cannot make
 * a reader's browser act (no CSRF surface). Every action is logged with its key or tag, and
 * every refusal with its reason.
 */
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash, timingSafeEqual } from "node:crypto"
import { Memo } from "../src/index.js"
import { AppConfig } from "./Config.js"
import { describeFailure } from "./Failure.js"
import type { Ledger } from "./Ledger.js"
import type * as Loaders from "./Loaders.js"

export type Action = "invalidate" | "refresh" | "invalidate-tag"

export const paths: Record<Action, HttpLayerRouter.PathInput> = {
  invalidate: "/api/cache/invalidate",
  refresh: "/api/cache/refresh",
  "invalidate-tag": "/api/cache/invalidate-tag"
}

/** Why an action was not carried out, as its HTTP answer. */
export class Refused extends Data.TaggedError("Refused")<{
  readonly status: number
  readonly code: string
  readonly message: string
}> {}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Whether `given` is the token, in time that does not depend on where they differ. */
export const tokenMatches = (given: string, token: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(given), digest(Redacted.value(token)))

/** Checks `Authorization: Bearer <token>`: 403 without `ADMIN_TOKEN`, 401 for a missing or wrong one. */
export const authorize = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.flatMap(AppConfig, (config) => {
    if (Option.isNone(config.adminToken)) {
      return Effect.fail(new Refused({ status: 403, code: "AdminDisabled", message: "admin actions are off: ADMIN_TOKEN is not set" }))
    }
    const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(request.headers["authorization"] ?? "")
    return m !== null && tokenMatches(m[1]!, config.adminToken.value)
      ? Effect.void
      : Effect.fail(new Refused({ status: 401, code: "Unauthorized", message: "a valid Authorization: Bearer token is required" }))
  })

const maxBody = 64 * 1024

const KeyBody = Schema.Struct({ key: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)) })
const TagBody = Schema.Struct({ tag: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1024)) })

const body = <A, I>(schema: Schema.Schema<A, I>) =>
  HttpServerRequest.schemaBodyJson(schema).pipe(
    HttpIncomingMessage.withMaxBodySize(Option.some(maxBody)),
    Effect.mapError(() =>
      new Refused({ status: 400, code: "BadRequest", message: `the body must be JSON like ${schema === (KeyBody as unknown) ? `{"key": "…"}` : `{"tag": "…"}`}, at most ${maxBody} bytes` })
    )
  )

const ownerOf = (loaders: Loaders.Service, key: string) =>
  Option.match(loaders.ownerOf(key), {
    onNone: () => Effect.fail(new Refused({ status: 404, code: "UnknownKey", message: "no loader of this explorer owns that key" })),
    onSome: Effect.succeed
  })

const storeDown = (e: { readonly message: string }) => new Refused({ status: 503, code: "RedisError", message: e.message })

const quoted = (text: string) => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)

const actions = (loaders: Loaders.Service): Record<
  Action,
  Effect.Effect<Record<string, unknown>, Refused, Memo.Memo | Ledger | HttpServerRequest.HttpServerRequest>
> => ({
  invalidate: Effect.gen(function*() {
    const { key } = yield* body(KeyBody)
    const owner = yield* ownerOf(loaders, key)
    yield* Effect.mapError(owner.invalidate, storeDown)
    yield* Effect.logInfo(`explorer admin: invalidated key ${quoted(key)} (${owner.loader})`)
    return { action: "invalidate", key, loader: owner.loader, message: `invalidated ${key}` }
  }),
  refresh: Effect.gen(function*() {
    const { key } = yield* body(KeyBody)
    const owner = yield* ownerOf(loaders, key)
    yield* Effect.logInfo(`explorer admin: refreshing key ${quoted(key)} (${owner.loader})`)
    const info = yield* Effect.mapError(owner.refresh, (e) => {
      const failure = describeFailure(e)
      return new Refused({ status: failure.status, code: e._tag, message: failure.message })
    })
    yield* Effect.logInfo(`explorer admin: refreshed key ${quoted(key)}: bucket ${info.bucket}, computed at ${info.computedAt}`)
    return {
      action: "refresh",
      key,
      loader: owner.loader,
      bucket: info.bucket,
      computedAt: info.computedAt,
      message: `refreshed ${key}: window ${info.bucket}, computed at ${new Date(info.computedAt).toISOString()}`
    }
  }),
  "invalidate-tag": Effect.gen(function*() {
    const { tag } = yield* body(TagBody)
    const keys = yield* Effect.mapError(Memo.invalidateTag(tag), storeDown)
    yield* Effect.logInfo(`explorer admin: invalidated tag ${quoted(tag)} (${keys} keys)`)
    return { action: "invalidate-tag", tag, keys, message: `invalidated tag ${tag}: ${keys} keys` }
  })
})

const answer = (status: number, json: unknown, extra: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(json, { status, headers: { "cache-control": "no-store", ...extra } })

const handle = (action: Action, run: Effect.Effect<Record<string, unknown>, Refused, Memo.Memo | Ledger | HttpServerRequest.HttpServerRequest>) =>
(request: HttpServerRequest.HttpServerRequest) =>
  authorize(request).pipe(
    Effect.tapError((e) => Effect.logWarning(`explorer admin: refused ${action} from ${request.remoteAddress.pipe(Option.getOrElse(() => "?"))}: ${e.status} ${e.message}`)),
    Effect.zipRight(run.pipe(Effect.tapError((e) => Effect.logWarning(`explorer admin: ${action} failed: ${e.status} ${e.message}`)))),
    Effect.map((result) => answer(200, { ok: true, ...result })),
    Effect.catchTag("Refused", (e) =>
      Effect.succeed(
        answer(e.status, { ok: false, error: { code: e.code, message: e.message } }, e.status === 401 ? { "www-authenticate": `Bearer realm="lockstep explorer"` } : {})
      ))
  )

/** `GET` on an admin route: the actions change state, so they are POST only. */
const postOnly = Effect.succeed(
  answer(405, { ok: false, error: { code: "MethodNotAllowed", message: "admin actions are POST only" } }, { allow: "POST" })
)

export const routes = (router: HttpLayerRouter.HttpRouter, loaders: Loaders.Service) =>
  Effect.gen(function*() {
    const run = actions(loaders)
    for (const action of Object.keys(paths) as ReadonlyArray<Action>) {
      yield* router.add("POST", paths[action], handle(action, run[action]))
      yield* router.add("GET", paths[action], postOnly)
    }
  })
