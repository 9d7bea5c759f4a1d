/**
 * lockstep: one producer run per window for the whole fleet.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Memo from "./Memo.js"

/** @since 0.1.0 */
export * as Metrics from "./Metrics.js"

/** @since 0.1.0 */
export * as Redis from "./Redis.js"

/** @since 0.1.0 */
export * as Window from "./Window.js"
