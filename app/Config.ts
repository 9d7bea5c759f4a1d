/**
 * The explorer's configuration, read from the environment through Effect `Config`. Every value
 * has a default, so `npm start` runs with nothing set.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

export const pageNames = ["dashboard", "market", "chestshop", "health"] as const
export type PageName = (typeof pageNames)[number]

/** The drill-down pages: one entity each, keyed by its id. */
export const drillNames = ["item", "shop", "account"] as const
export type DrillName = (typeof drillNames)[number]

const duration = (name: string, fallback: Config.Config<Duration.Duration>) =>
  Config.duration(name).pipe(
    Config.orElse(() => fallback),
    Config.validate({ message: `${name} must be a positive duration`, validation: (d) => Duration.toMillis(d) > 0 })
  )

const defaultWindow = Config.duration("WINDOW").pipe(Config.withDefault(Duration.seconds(30)))

/**
 * One name per page: `WINDOW_DASHBOARD`, `WINDOW_MARKET`, `WINDOW_CHESTSHOP`, `WINDOW_HEALTH`,
 * the drill-down pages' `WINDOW_ITEM`, `WINDOW_SHOP`, `WINDOW_ACCOUNT`, and `WINDOW_DIRECTORY`
 * for the directory of ids they check first.
 */
const windows = Config.all({
  dashboard: duration("WINDOW_DASHBOARD", defaultWindow),
  market: duration("WINDOW_MARKET", defaultWindow),
  chestshop: duration("WINDOW_CHESTSHOP", defaultWindow),
  health: duration("WINDOW_HEALTH", defaultWindow),
  item: duration("WINDOW_ITEM", defaultWindow),
  shop: duration("WINDOW_SHOP", defaultWindow),
  account: duration("WINDOW_ACCOUNT", defaultWindow),
  directory: duration("WINDOW_DIRECTORY", defaultWindow)
})

/** The shortest `ADMIN_TOKEN` accepted. */
export const minTokenLength = 16

/** `ADMIN_TOKEN`: unset (or empty) turns the admin actions off. */
const adminToken = Config.option(Config.redacted("ADMIN_TOKEN")).pipe(
  Config.map(Option.filter((token) => Redacted.value(token) !== "")),
  Config.mapOrFail((token) =>
    Option.isSome(token) && Redacted.value(token.value).length < minTokenLength
      ? Either.left(ConfigError.InvalidData(["ADMIN_TOKEN"], `ADMIN_TOKEN must be at least ${minTokenLength} characters`))
      : Option.isSome(token) && /\s/.test(Redacted.value(token.value))
      // `Authorization: Bearer <token>` carries no whitespace: such a token could never match
      ? Either.left(ConfigError.InvalidData(["ADMIN_TOKEN"], "ADMIN_TOKEN must not contain whitespace (a Bearer token cannot carry it); check for a stray space or newline"))
      : Either.right(token)
  )
)

/**
 * The cache runtime's settings: `FAILURE_BACKOFF` (after a lookup's first failure, doubled per
 * further failure) and `MAX_FAILURE_BACKOFF` (its cap; a key also backs off at most one window).
 */
export const memo = {
  failureBackoff: Config.duration("FAILURE_BACKOFF").pipe(Config.withDefault(Duration.seconds(1))),
  maxFailureBackoff: Config.duration("MAX_FAILURE_BACKOFF").pipe(Config.withDefault(Duration.seconds(30)))
}

/** The HTTP server and page settings. */
export const app = Config.all({
  /**
   * How long a drill-down page's records stay in the store after its last refresh: a page read
   * now and then keeps its last value (no cold run), one nobody reads is dropped.
   */
  drillRetain: Config.duration("DRILL_RETAIN").pipe(Config.withDefault(Duration.days(7))),
  adminToken,
  port: Config.port("PORT").pipe(Config.withDefault(3000)),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  windows,
  /** How long after a window boundary browsers refresh (the server keeps pages warm before that). */
  refreshLag: Config.duration("REFRESH_LAG").pipe(Config.withDefault(Duration.millis(250))),
  /** When a refresh lands on a stale value, the browser tries once more after this long. */
  refreshRetry: Config.duration("REFRESH_RETRY").pipe(Config.withDefault(Duration.seconds(1))),
  /** Pages recomputed right after every boundary, comma-separated; empty for none. */
  keepWarm: Config.string("KEEP_WARM").pipe(
    Config.withDefault("dashboard,market"),
    Config.mapOrFail((text) => {
      const names = text.split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "none")
      const unknown = names.filter((s) => !(pageNames as ReadonlyArray<string>).includes(s))
      return unknown.length === 0
        ? Either.right(names as ReadonlyArray<PageName>)
        : Either.left(ConfigError.InvalidData(["KEEP_WARM"], `unknown page(s) ${unknown.join(", ")}; expected some of ${pageNames.join(", ")}`))
    })
  ),
  /** How long after a boundary `keepWarm` checks the window's value (keep it below `REFRESH_LAG`). */
  keepWarmLag: Config.duration("KEEP_WARM_LAG").pipe(Config.withDefault(Duration.millis(0))),
  /**
   * How long before a boundary `keepWarm` computes the next window's value: `auto` (learnt from
   * the page's recent run times), a duration shorter than the page's window, or `off` (at the
   * boundary, as the first request would).
   */
  keepWarmLead: Config.string("KEEP_WARM_LEAD").pipe(
    Config.withDefault("auto"),
    Config.mapOrFail((text): Either.Either<"auto" | false | Duration.Duration, ConfigError.ConfigError> => {
      const t = text.trim().toLowerCase()
      if (t === "auto") return Either.right("auto")
      if (t === "off" || t === "false" || t === "none") return Either.right(false)
      const d = Duration.decodeUnknown(text.trim())
      return d._tag === "Some" && Duration.toMillis(d.value) > 0
        ? Either.right(d.value)
        : Either.left(ConfigError.InvalidData(["KEEP_WARM_LEAD"], `KEEP_WARM_LEAD must be auto, off or a duration, got ${JSON.stringify(text)}`))
    })
  ),
  /** How long a request waits for a cold page before answering 503. */
  requestTimeout: Config.duration("REQUEST_TIMEOUT").pipe(Config.withDefault(Duration.seconds(15)))
}).pipe(
  Config.mapOrFail((c) => {
    const longest = Math.max(...drillNames.map((name) => Duration.toMillis(c.windows[name])))
    return Duration.toMillis(c.drillRetain) >= longest
      ? Either.right(c)
      : Either.left(ConfigError.InvalidData(["DRILL_RETAIN"], `DRILL_RETAIN must be at least the drill-down pages' longest window (${longest} ms)`))
  })
)

export type AppSettings = Config.Config.Success<typeof app>

export class AppConfig extends Context.Tag("explorer/AppConfig")<AppConfig, AppSettings>() {
  static readonly layer = Layer.effect(AppConfig, app)
}
