/**
 * The explorer's ledger from the environment: MariaDB (`Ledger/Mysql.ts`) when `MYSQL_HOST` is
 * set, otherwise the in-memory synthetic ledger (`Ledger/Memory.ts`).
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { Ledger } from "../Ledger.js"
import * as Memory from "./Memory.js"
import * as Mysql from "./Mysql.js"

/** MariaDB when `MYSQL_HOST` is set, otherwise the in-memory synthetic ledger. */
export const layerFromEnv: Layer.Layer<Ledger, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Config.option(Config.string("MYSQL_HOST")), (host) => Option.isSome(host) ? Mysql.layer : Memory.layer)
)
