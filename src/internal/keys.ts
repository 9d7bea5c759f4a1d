/**
 * Redis key layout. Every key of one cache key shares the hash tag `{<key>}`, so the scripts
 * touch a single Cluster slot. Tenant and key text are percent-escaped so that neither can
 * contain the separators (`:` in the tenant, `{` / `}` in the key): no tenant or key can ever
 * spell the records of another.
 */

const escapeTenant = (s: string): string => s.replace(/[%:{}\s]/g, (c) => percent(c))
const escapeKey = (s: string): string => s.replace(/[%{}\s]/g, (c) => percent(c))
const percent = (c: string): string =>
  Array.from(new TextEncoder().encode(c), (b) => "%" + b.toString(16).toUpperCase().padStart(2, "0")).join("")

/** The Redis keys of one cache key: value record, lock, fence counter, failures since a commit. */
export interface Keys {
  readonly value: string
  readonly lock: string
  readonly fence: string
  readonly failures: string
}

export const make = (tenant: string, key: string): Keys => {
  const prefix = `${escapeTenant(tenant)}:lockstep:{${escapeKey(key)}}`
  return { value: `${prefix}:v`, lock: `${prefix}:l`, fence: `${prefix}:f`, failures: `${prefix}:e` }
}

/** Upper bound on key length, so that a key can never become a multi-kilobyte Redis key. */
export const maxKeyLength = 512
