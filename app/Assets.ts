/**
 * The pages' style sheet and browser scripts: files of their own in `app/assets/`, served under
 * URLs that carry a hash of their content (`/assets/refresh.<hash>.js`). A browser may keep them
 * for a year (`immutable`), and a changed file gets a new URL, so a page never runs an old
 * script. The pages have no inline script or style: the Content-Security-Policy allows scripts
 * and styles from this origin only (`'self'`), and each tag also carries the file's Subresource
 * Integrity hash.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"

export interface Asset {
  /** The file's name with its content hash: `refresh.3f2a9c1d0b7e4a55.js`. */
  readonly name: string
  /** Where it is served: `/assets/<name>`. */
  readonly path: `/${string}`
  /** `sha256-<base64>`, for the tag's `integrity` attribute. */
  readonly integrity: string
  readonly contentType: string
  readonly body: string
}

/** Reads `app/assets/<file>` once, when the server starts. */
const load = (file: string, contentType: string): Asset => {
  const body = readFileSync(new URL(`./assets/${file}`, import.meta.url), "utf8")
  const digest = createHash("sha256").update(body, "utf8").digest()
  const dot = file.lastIndexOf(".")
  const name = `${file.slice(0, dot)}.${digest.toString("hex").slice(0, 16)}${file.slice(dot)}`
  return { name, path: `/assets/${name}` as const, integrity: `sha256-${digest.toString("base64")}`, contentType, body }
}

export const styles = load("explorer.css", "text/css; charset=utf-8")
export const refreshScript = load("refresh.js", "text/javascript; charset=utf-8")
export const adminScript = load("admin.js", "text/javascript; charset=utf-8")

export const all: ReadonlyArray<Asset> = [styles, refreshScript, adminScript]

/** A hashed URL names one content forever. */
export const cacheControl = "public, max-age=31536000, immutable"

export const response = (asset: Asset): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(asset.body, { contentType: asset.contentType, headers: { "cache-control": cacheControl } })
