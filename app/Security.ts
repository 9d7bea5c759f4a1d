/**
 * The security headers every response carries (pages, JSON, errors, 404s, `/metrics`), added by
 * a pre-response handler that the server runs on every response it writes, error responses
 * included:
 * - `Content-Security-Policy`: nothing but this origin: the pages' scripts and style sheet are
 *   files served from `/assets/` (`Assets.ts`), never inline (no `'unsafe-inline'`); no framing
 *   (`frame-ancestors 'none'`), no forms, no `<base>`;
 * - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`
 *   (for browsers without `frame-ancestors`), `Cross-Origin-Opener-Policy` and
 *   `Cross-Origin-Resource-Policy: same-origin`.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"

export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

export const headers: Readonly<Record<string, string>> = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin"
}

const entries = Object.entries(headers)

/** Whether `response` already carries every header with its value (a page made with them, `Http.ts`). */
const carries = (response: HttpServerResponse.HttpServerResponse) => {
  for (const [name, value] of entries) if (response.headers[name] !== value) return false
  return true
}

/** Setting headers copies the response: skipped when it would change nothing. */
const addHeaders = (_request: unknown, response: HttpServerResponse.HttpServerResponse) =>
  Effect.succeed(carries(response) ? response : HttpServerResponse.setHeaders(response, headers))

/** For `HttpLayerRouter.serve`'s `middleware`: every response of the app gets the headers. */
export const middleware = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.zipRight(HttpApp.appendPreResponseHandler(addHeaders), app)
