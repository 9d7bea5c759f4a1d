/**
 * npm runs `prepare` after installing this folder's dependencies: in a checkout (`npm ci`,
 * `npm install`), and in the clone it makes when a project depends on lockstep through git,
 * which then gets packed. That clone needs dist/; a checkout does not (the tests, the explorer
 * and the benchmarks run from src/), so `npm ci` skips the build to stay fast. `npm pack` and
 * `npm publish` build in `prepack`, so they skip it here as well.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const command = process.env.npm_command
if (command === "ci" || command === "pack" || command === "publish") {
  process.exit(0)
}
const build = spawnSync(process.execPath, [fileURLToPath(new URL("build.mjs", import.meta.url))], { stdio: "inherit" })
process.exit(build.status ?? 1)
