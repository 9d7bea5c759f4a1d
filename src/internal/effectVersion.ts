/**
 * Which `effect` lockstep runs with. It is a peer dependency, but npm only warns about a peer
 * conflict in a project that already has its own `effect` (`npm i effect@latest` exits 0), and
 * effect 4 then fails at import with `ERR_MODULE_NOT_FOUND …effect/dist/Either.js`, which says
 * nothing of versions. The package's entry points check first (the build puts the check before
 * any import of `effect`) and fail with this message instead. Imports nothing from `effect`.
 */

/** The `effect` versions lockstep supports, as its `peerDependencies` says. */
export const supported = "^3.22.0"

/** Whether `version` is in `^3.22.0`: a 3.x release from 3.22 on (prereleases of those included). */
export const isSupported = (version: string): boolean => {
  const match = /^3\.(\d+)\.\d+/.exec(version)
  return match !== null && Number(match[1]) >= 22
}

/** The error for an installed `effect` that lockstep does not support, or `undefined`. */
export const check = (version: unknown): Error | undefined => {
  if (typeof version === "string" && isSupported(version)) return undefined
  const installed = typeof version === "string" ? `effect ${version} is installed` : "the installed effect's version could not be read"
  return new Error(
    `lockstep supports effect ${supported} (the 3.x line from 3.22), but ${installed}. ` +
      `Install a supported one (npm install effect@~3.22), or check \`npm ls effect\` for a second copy.`
  )
}

/** Reads `effect/package.json` through `load` (a `require`) and throws `check`'s error. */
export const assert = (load: (id: string) => unknown): void => {
  let version: unknown
  try {
    version = (load("effect/package.json") as { readonly version?: unknown }).version
  } catch {
    version = undefined
  }
  const error = check(version)
  if (error !== undefined) throw error
}
