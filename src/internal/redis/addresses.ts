/**
 * Node lists for Redis Cluster seeds and Sentinel sets: `host:port,host:port,…`, with IPv6
 * hosts in brackets (`[::1]:7000`). Every entry needs an explicit port: a list that silently
 * fell back to 6379 or 26379 would connect to the wrong thing, or to nothing, far from the typo.
 */
import * as Either from "effect/Either"

/** One Redis or Sentinel address. */
export interface Address {
  readonly host: string
  readonly port: number
}

const entry = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^\s:[\]/,]+)):(\d{1,5})$/

/** Checks one address given in code (not parsed), with the same rules as a parsed entry. */
export const validateAddress = (address: Address): Either.Either<Address, string> =>
  address.host.length === 0 || /[\s,/]/.test(address.host)
    ? Either.left(`${JSON.stringify(address.host)} is not a host name or address`)
    : !Number.isSafeInteger(address.port) || address.port < 1 || address.port > 65535
    ? Either.left(`port ${address.port} of ${address.host} is not between 1 and 65535`)
    : Either.right(address)

/**
 * Parses `host:port,host:port,…`. Blank entries around commas are ignored (a trailing comma is
 * harmless); a list without any entry is an error, and so is any entry without a valid port.
 * Duplicates are dropped, first occurrence kept.
 */
export const parseAddresses = (text: string): Either.Either<ReadonlyArray<Address>, string> => {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  if (parts.length === 0) return Either.left("expected a comma-separated list of host:port, got an empty list")
  const seen = new Set<string>()
  const out: Array<Address> = []
  for (const part of parts) {
    const m = entry.exec(part)
    if (m === null) {
      return Either.left(
        `${JSON.stringify(part)} is not host:port (IPv6 as [address]:port), in ${JSON.stringify(text)}`
      )
    }
    const address = validateAddress({ host: (m[1] ?? m[2])!, port: Number(m[3]) })
    if (Either.isLeft(address)) return Either.left(`${address.left}, in ${JSON.stringify(text)}`)
    const id = `${address.right.host}:${address.right.port}`
    if (!seen.has(id)) {
      seen.add(id)
      out.push(address.right)
    }
  }
  return Either.right(out)
}

/** `host:port`, bracketing IPv6 hosts: for messages. */
export const format = (a: Address): string => a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
