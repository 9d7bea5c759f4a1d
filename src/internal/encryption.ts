/**
 * A loader's values encrypted at rest and on the bus: AES-256-GCM (node:crypto), a fresh 96-bit
 * IV per value, the key's id in the text so that keys can be rotated (values written with a
 * previous key still read while it is listed). What fails to decrypt (a key no longer listed,
 * a tampered record) reads as undecodable: recomputed, never a crash.
 */
import * as Crypto from "node:crypto"
import * as Redacted from "effect/Redacted"

export interface Keys {
  readonly key: Redacted.Redacted<string | Uint8Array>
  readonly previousKeys?: ReadonlyArray<Redacted.Redacted<string | Uint8Array>> | undefined
}

const prefix = "lockstep:aes-256-gcm:"

interface Key {
  readonly id: string
  readonly bytes: Buffer
}

/** The 32 bytes of a key given as bytes or base64 text, or an error message. */
const keyOf = (input: unknown, name: string): Key | string => {
  if (!Redacted.isRedacted(input)) return `${name} must be a Redacted key (Redacted.make(...))`
  const value = Redacted.value(input as Redacted.Redacted<unknown>)
  const bytes = typeof value === "string" ? Buffer.from(value, "base64") : value instanceof Uint8Array ? Buffer.from(value) : undefined
  if (bytes === undefined || bytes.length !== 32) {
    return `${name} must be 32 bytes (AES-256), as bytes or base64 text (e.g. \`openssl rand -base64 32\`)`
  }
  return { id: Crypto.createHash("sha256").update(bytes).digest("hex").slice(0, 8), bytes }
}

/** The codec of `keys`, or a message saying what is wrong with them. */
export const make = (keys: Keys): { readonly encrypt: (plain: string) => string; readonly decrypt: (data: string) => string | undefined } | string => {
  if (typeof keys !== "object" || keys === null) return "encrypt must be { key, previousKeys? }"
  const current = keyOf(keys.key, "encrypt.key")
  if (typeof current === "string") return current
  const all = new Map<string, Buffer>([[current.id, current.bytes]])
  for (const [i, previous] of (keys.previousKeys ?? []).entries()) {
    const k = keyOf(previous, `encrypt.previousKeys[${i}]`)
    if (typeof k === "string") return k
    all.set(k.id, k.bytes)
  }
  return {
    encrypt: (plain) => {
      const iv = Crypto.randomBytes(12)
      const cipher = Crypto.createCipheriv("aes-256-gcm", current.bytes, iv)
      const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()])
      return `${prefix}${current.id}:${iv.toString("base64")}:${cipher.getAuthTag().toString("base64")}:${sealed.toString("base64")}`
    },
    decrypt: (data) => {
      if (!data.startsWith(prefix)) return undefined
      const [id, iv, tag, sealed] = data.slice(prefix.length).split(":")
      const key = id === undefined ? undefined : all.get(id)
      if (key === undefined || iv === undefined || tag === undefined || sealed === undefined) return undefined
      try {
        const decipher = Crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64"))
        decipher.setAuthTag(Buffer.from(tag, "base64"))
        return Buffer.concat([decipher.update(Buffer.from(sealed, "base64")), decipher.final()]).toString("utf8")
      } catch {
        return undefined
      }
    }
  }
}
