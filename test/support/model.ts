/**
 * What the model tests share: how many runs and which seed (fixed in CI; `npm run model` changes
 * both), and generators of the text a cache key or a tenant may be made of.
 *
 * - `LOCKSTEP_MODEL_RUNS`: runs of each property (default: the property's CI count);
 * - `LOCKSTEP_MODEL_SEED`: fast-check's seed (default `DEFAULT_SEED`);
 * - `LOCKSTEP_MODEL_PATH`: a counterexample's path, printed by fast-check on failure, to replay
 *   it straight away (with the same seed).
 */
import * as fc from "fast-check"

/** The seed CI runs with, so a failure there is a failure on every machine. */
export const DEFAULT_SEED = 20_240_613

const envNumber = (name: string): number | undefined => {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === "") return undefined
  const n = Number(raw)
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be a whole number, got ${JSON.stringify(raw)}`)
  return n
}

export const seed = (): number => envNumber("LOCKSTEP_MODEL_SEED") ?? DEFAULT_SEED

/**
 * fast-check's parameters for a property that CI runs `ciRuns` times; `share` scales the count
 * `LOCKSTEP_MODEL_RUNS` asks for (a property whose runs take real time runs fewer of them).
 */
export const parameters = <T>(ciRuns: number, share = 1): fc.Parameters<T> => {
  const asked = envNumber("LOCKSTEP_MODEL_RUNS")
  const path = process.env.LOCKSTEP_MODEL_PATH
  return {
    numRuns: asked === undefined ? ciRuns : Math.max(1, Math.round(asked * share)),
    seed: seed(),
    ...(path ? { path } : {}),
    // the counterexample, shrunk, with the seed and path that replay it
    verbose: 1
  }
}

/** How long a test may take for `runs` runs of `msPerRun`, with room for a slow machine. */
export const budget = (parameters: { readonly numRuns?: number | undefined }, msPerRun: number): number =>
  60_000 + 4 * (parameters.numRuns ?? 100) * msPerRun

/** Any UTF-16 code unit: lone surrogates, U+FFFD, controls, the separators the key encoding escapes. */
const codeUnit: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  { weight: 3, arbitrary: fc.constantFrom("\uD800", "\uDBFF", "\uDC00", "\uDFFF", "\uD83D", "\uD83C", "\uDE00", "\uFFFD") },
  { weight: 3, arbitrary: fc.constantFrom("%", "%u", "%h", "%7D", ":", "{", "}", " ", "\t", "\n", "*", "?", "[", "\\", "|") },
  { weight: 4, arbitrary: fc.constantFrom("a", "b", "k", "é", "ключ", "😀", "0") }
)

/** Short text of any code units. */
export const text = (maxLength = 12): fc.Arbitrary<string> => fc.string({ unit: codeUnit, maxLength })

/**
 * A cache key: short text, or text whose encoding is near or past the 200 characters after
 * which the store hashes it (with the full key kept in the record).
 */
export const key: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: text() },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 190, max: 260 }), text(6)).map(([n, tail]) => "L".repeat(n) + tail)
  },
  // escapes make it longer: 70 lone surrogates are 420 characters encoded
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 30, max: 80 }), text(4)).map(([n, tail]) => "\uD800".repeat(n) + tail) }
)

/**
 * One to three distinct keys, sometimes two that differ only in a lone surrogate (which ioredis
 * would send as the same U+FFFD: the encoding must keep them apart).
 */
export const keys: fc.Arbitrary<ReadonlyArray<string>> = fc.oneof(
  { weight: 4, arbitrary: fc.uniqueArray(key, { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: text(6).map((base) => [`${base}\uD83D`, `${base}\uD83C`]) }
)

/** The text of a tenant (made unique to its run by `uniqueTenant`). */
export const tenant: fc.Arbitrary<string> = fc.string({ unit: codeUnit, minLength: 1, maxLength: 40 })

let tenants = 0
/** A tenant of that text no other run uses (at most 128 characters), so runs never meet on one server. */
export const uniqueTenant = (text: string): string => `${text}#${process.pid}.${Date.now().toString(36)}.${++tenants}`
