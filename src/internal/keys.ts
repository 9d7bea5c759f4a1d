/**
 * Redis key layout. Every key of one cache key shares the hash tag `{<key>}`, so the scripts
 * touch a single Cluster slot.
 *
 * The encoding is injective over UTF-16 code units, so every JavaScript string is a key of its
 * own, tenants too:
 * - `%`, the separators (`:` in the tenant, `{` and `}`) and whitespace are percent-escaped as
 *   their UTF-8 bytes (`%3A`);
 * - a lone surrogate, which ioredis would send as U+FFFD (so that `"a\uD83D"` and `"a\uD83C"`
 *   became one key), is escaped as `%u` and its four hex digits (`%uD83D`);
 * - the empty string is `%` alone, which no escape produces;
 * - text whose escaped form is longer than `maxEncodedLength` is replaced by `%h` and its
 *   SHA-256, and the full escaped text goes into the record (`k`), compared on every read.
 *
 * No escape starts with `%u` or `%h` other than those, so two different strings never share
 * an encoding. Keys without lone surrogates or hashing encode as they always did.
 */
import { createHash } from "node:crypto"

/** Escaped keys longer than this are hashed. */
export const maxEncodedLength = 200

const percent = (c: string): string =>
  Array.from(new TextEncoder().encode(c), (b) => "%" + b.toString(16).toUpperCase().padStart(2, "0")).join("")

const loneSurrogate = (c: string) => "%u" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")

/** Lone surrogates (a high one not followed by a low one, or a low one not preceded by a high one). */
const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

const escapeWith = (special: RegExp) => (s: string): string =>
  s.length === 0 ? "%" : s.replace(special, percent).replace(lone, loneSurrogate)

const escapeTenant = escapeWith(/[%:{}\s]/gu)
const escapeKey = escapeWith(/[%{}\s]/gu)

/** How a text appears in Redis keys, and what a record must carry to prove it is the one. */
interface Encoded {
  readonly escaped: string
  readonly inKey: string
  /** The full escaped text when `inKey` is a hash, else "". */
  readonly full: string
}

const encode = (escaped: string): Encoded =>
  escaped.length <= maxEncodedLength
    ? { escaped, inKey: escaped, full: "" }
    : { escaped, inKey: "%h" + createHash("sha256").update(escaped).digest("hex"), full: escaped }

/** The Redis keys of one cache key. */
export interface Keys {
  /** The last-known-good record (a hash). */
  readonly value: string
  /** The lock, or a back-off marker. */
  readonly lock: string
  /** The fence counter. */
  readonly fence: string
  /** Producer failures since the last commit, which size the back-off. */
  readonly failures: string
  /** The fence counter's value at the last invalidation. */
  readonly mark: string
  /** The escaped key when it was too long to be part of the names (compared on read), else "". */
  readonly full: string
  /** The escaped key, as notices carry it. */
  readonly escaped: string
}

/** The tenant part of every key: checked and escaped once per store. */
export const tenantPrefix = (tenant: string): string => escapeTenant(tenant)

export const make = (prefix: string, key: string): Keys => {
  const k = encode(escapeKey(key))
  const base = `${prefix}:lockstep:{${k.inKey}}`
  return {
    value: `${base}:v`,
    lock: `${base}:l`,
    fence: `${base}:f`,
    failures: `${base}:e`,
    mark: `${base}:i`,
    full: k.full,
    escaped: k.escaped
  }
}

/** The record's name alone, and what it must carry (`full`): what a plain read needs of `make`. */
export const record = (prefix: string, key: string): Pick<Keys, "value" | "full"> => {
  const k = encode(escapeKey(key))
  return { value: `${prefix}:lockstep:{${k.inKey}}:v`, full: k.full }
}

/** The set of the keys a tag was given to (in a slot of its own). */
export const tagKey = (prefix: string, tag: string): string => `${prefix}:lockstep:tag:{${encode(escapeKey(tag)).inKey}}`

/** The pattern `SCAN` uses to find every value record of a tenant. */
export const valuePattern = (prefix: string): string => `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}:lockstep:{*}:v`

/** The cache key of a value record's name, when it was not hashed (the record holds it otherwise). */
export const keyOfValue = (prefix: string, redisKey: string): string | undefined => {
  const head = `${prefix}:lockstep:{`
  if (!redisKey.startsWith(head) || !redisKey.endsWith("}:v")) return undefined
  const inKey = redisKey.slice(head.length, -3)
  return inKey.startsWith("%h") ? undefined : unescape(inKey)
}

/** The inverse of the key escape: the original string of an escaped (not hashed) key. */
export const unescape = (escaped: string): string => {
  if (escaped === "%") return ""
  const bytes: Array<number> = []
  let out = ""
  const flush = () => {
    if (bytes.length > 0) {
      out += new TextDecoder().decode(new Uint8Array(bytes))
      bytes.length = 0
    }
  }
  for (let i = 0; i < escaped.length;) {
    if (escaped[i] === "%" && escaped[i + 1] === "u") {
      flush()
      out += String.fromCharCode(parseInt(escaped.slice(i + 2, i + 6), 16))
      i += 6
    } else if (escaped[i] === "%") {
      bytes.push(parseInt(escaped.slice(i + 1, i + 3), 16))
      i += 3
    } else {
      flush()
      out += escaped[i]
      i++
    }
  }
  flush()
  return out
}

/** CRC16/XMODEM, the checksum Redis Cluster maps keys to slots with. */
const crc16 = (bytes: Uint8Array): number => {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** The Cluster slot of a Redis key name: of its hash tag (`{...}`, when not empty), else of the whole name. */
export const slotOf = (name: string): number => {
  const open = name.indexOf("{")
  const close = open < 0 ? -1 : name.indexOf("}", open + 1)
  const hashed = close > open + 1 ? name.slice(open + 1, close) : name
  return crc16(Buffer.from(hashed, "utf8")) % 16384
}
