/**
 * Every loader of the explorer, built once from the configuration: one per fixed page, one
 * family per drill-down page, and the directory of ids. Routes, keep-warm and the admin actions
 * share these instances.
 *
 * It is also the registry of cache keys: `ownerOf(key)` finds the loader a key of the store
 * belongs to (a fixed page's key, or a family's `<prefix><id>`) and the argument it was made
 * from, because a loader's `invalidate` and `refresh` take the argument, not the key.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Memo, type Redis } from "../src/index.js"
import { AppConfig, type AppSettings, type DrillName, drillNames, type PageName, pageNames } from "./Config.js"
import type { EntityKind, Ledger, LedgerFailure } from "./Ledger.js"
import * as Directory from "./pages/directory.js"
import { type DrillFailure, type DrillLoader, idOfKey } from "./pages/Drill.js"
import * as Pages from "./pages/index.js"
import type { PageLoader } from "./pages/Page.js"

/** A drill-down request for an id that is malformed or not in the directory. */
export class NotFound extends Data.TaggedError("NotFound")<{
  readonly message: string
}> {}

export type RefreshFailure = DrillFailure | Memo.WaitTimeout | NotFound

/** The loader that owns a key, ready to act on it. */
export interface Owner {
  /** The page (`dashboard`, …), the drill-down family (`item`, …) or `directory`. */
  readonly loader: string
  readonly invalidate: Effect.Effect<void, Redis.RedisError, Memo.Memo>
  readonly refresh: Effect.Effect<Memo.Info<unknown>, RefreshFailure, Memo.Memo | Ledger>
}

export interface Service {
  readonly pages: { readonly [K in PageName]: PageLoader<any> }
  readonly drills: { readonly [K in DrillName]: DrillLoader<any> }
  readonly directory: Directory.DirectoryLoader
  /** Whether `id` is in the directory of its kind (the directory loader's cached value). */
  readonly exists: (kind: EntityKind, id: number) => Effect.Effect<boolean, LedgerFailure | Memo.WaitTimeout, Memo.Memo | Ledger>
  readonly ownerOf: (key: string) => Option.Option<Owner>
}

export class Loaders extends Context.Tag("explorer/Loaders")<Loaders, Service>() {}

const entityKinds: ReadonlyArray<EntityKind> = ["item", "shop", "account"]

export const make = (config: AppSettings): Service => {
  const { windows, requestTimeout, drillRetain } = config
  const pages = Object.fromEntries(pageNames.map((name) => [name, Pages.byName[name].loader(windows[name], requestTimeout)])) as Service["pages"]
  const drills = Object.fromEntries(
    drillNames.map((name) => [name, Pages.drills[name].loader(windows[name], requestTimeout, drillRetain)])
  ) as Service["drills"]
  const directory = Directory.loader(windows.directory, requestTimeout)
  const exists: Service["exists"] = (kind, id) => Effect.map(directory.get(kind), (ranges) => Directory.has(ranges, id))

  const byKey = new Map<string, Owner>()
  for (const name of pageNames) {
    const loader = pages[name]
    byKey.set(Pages.byName[name].key, { loader: name, invalidate: loader.invalidate(), refresh: loader.refresh() })
  }
  for (const kind of entityKinds) {
    byKey.set(Directory.key(kind), { loader: "directory", invalidate: directory.invalidate(kind), refresh: directory.refresh(kind) })
  }
  const ownerOf = (key: string): Option.Option<Owner> => {
    const fixed = byKey.get(key)
    if (fixed !== undefined) return Option.some(fixed)
    for (const name of drillNames) {
      const drill = Pages.drills[name]
      const id = idOfKey(drill.keyPrefix, key)
      if (Option.isNone(id)) continue
      const loader = drills[name]
      return Option.some({
        loader: name,
        invalidate: loader.invalidate(id.value),
        // only an id of the directory: a refresh must not create records for ids that do not exist
        refresh: Effect.flatMap(exists(drill.kind, id.value), (yes): Owner["refresh"] =>
          yes ? loader.refresh(id.value) : Effect.fail(new NotFound({ message: `there is no ${drill.kind} ${id.value}` })))
      })
    }
    return Option.none()
  }
  return { pages, drills, directory, exists, ownerOf }
}

export const layer: Layer.Layer<Loaders, never, AppConfig> = Layer.effect(Loaders, Effect.map(AppConfig, make))
