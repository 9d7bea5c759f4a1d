/** How a page that could not be answered explains itself: its status, heading and message. */
import * as Duration from "effect/Duration"
import type { Memo } from "../src/index.js"
import type { RefreshFailure } from "./Loaders.js"

export const describeFailure = (error: RefreshFailure | Memo.LookupManyMismatch): { readonly status: number; readonly heading: string; readonly message: string } => {
  switch (error._tag) {
    case "LedgerTimeout":
      return {
        status: 503,
        heading: "The ledger is too slow right now",
        message: `The database stopped the query "${error.query}" after ${error.seconds} s (its statement time limit), and no earlier value of this page is cached yet.`
      }
    case "LedgerError":
      return {
        status: 503,
        heading: error.reason === "Unavailable" ? "The ledger database is unavailable" : "The ledger query failed",
        message: `${error.message}. No earlier value of this page is cached yet.`
      }
    case "WaitTimeout":
      return {
        status: 503,
        heading: "Still computing",
        message: `This page is still being computed after ${Duration.format(error.timeout)}; try again in a moment.`
      }
    case "NotFound":
      return { status: 404, heading: "Not found", message: `${error.message}.` }
    case "EntityMissing":
      return { status: 404, heading: "Not found", message: `${error.message[0]!.toUpperCase()}${error.message.slice(1)}.` }
    case "LookupManyMismatch":
      return {
        status: 503,
        heading: "The ledger answered a list incompletely",
        message: `${error.message}. No earlier value of this page is cached yet.`
      }
  }
}

