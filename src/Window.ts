/**
 * Epoch-aligned windows: `bucket = floor(now / windowMs)`. Every process that agrees on the time
 * agrees on the bucket, which is what lets a fleet share "the value of this window" without
 * talking to each other.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"

/**
 * A window length that is not a positive, finite whole number of milliseconds.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidWindow extends Data.TaggedError("InvalidWindow")<{
  readonly input: unknown
  readonly message: string
}> {}

/** Windows longer than this cannot be represented exactly in buckets times milliseconds. */
const maxWindowMs = 366 * 24 * 60 * 60 * 1000

/**
 * Validates a window length and returns it in whole milliseconds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toMillis = (input: Duration.DurationInput): Either.Either<number, InvalidWindow> => {
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") {
    return Either.left(new InvalidWindow({ input, message: `window ${describe(input)} is not a duration` }))
  }
  const ms = Duration.toMillis(decoded.value)
  if (!Number.isFinite(ms) || ms < 1) {
    return Either.left(
      new InvalidWindow({ input, message: `window ${describe(input)} must be at least 1 millisecond` })
    )
  }
  if (ms > maxWindowMs) {
    return Either.left(new InvalidWindow({ input, message: `window ${describe(input)} is longer than a year` }))
  }
  if (!Number.isInteger(ms)) {
    return Either.left(
      new InvalidWindow({ input, message: `window ${describe(input)} must be a whole number of milliseconds` })
    )
  }
  return Either.right(ms)
}

const describe = (input: unknown): string => {
  try {
    return typeof input === "string" ? JSON.stringify(input) : String(input)
  } catch {
    return "(unprintable)"
  }
}

/**
 * The bucket an instant falls in.
 *
 * @since 0.1.0
 */
export const bucketOf = (nowMs: number, windowMs: number): number => Math.floor(nowMs / windowMs)

/**
 * The instant a bucket starts.
 *
 * @since 0.1.0
 */
export const startOf = (bucket: number, windowMs: number): number => bucket * windowMs

/**
 * The first instant of the window after the one `nowMs` falls in.
 *
 * @since 0.1.0
 */
export const nextBoundary = (nowMs: number, windowMs: number): number => (bucketOf(nowMs, windowMs) + 1) * windowMs

/**
 * Milliseconds from `nowMs` to the next boundary: always in `(0, windowMs]`.
 *
 * @since 0.1.0
 */
export const untilNextBoundary = (nowMs: number, windowMs: number): number =>
  nextBoundary(nowMs, windowMs) - nowMs
