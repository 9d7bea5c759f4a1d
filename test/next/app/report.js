import { appendFileSync } from "node:fs"
import { cacheLife, cacheTag } from "next/cache"

/** The slow part of a render: each run appends "<name> <epoch ms> <pid>" to COUNTER_FILE. */
const run = async (name, ms) => {
  const at = Date.now()
  appendFileSync(process.env.COUNTER_FILE, `${name} ${at} ${process.pid}\n`)
  await new Promise((resolve) => setTimeout(resolve, ms))
  return { run: `${at}-${process.pid}` }
}

/** A window of 2 seconds. */
export async function report() {
  "use cache: remote"
  cacheLife({ stale: 1, revalidate: 2, expire: 60 })
  cacheTag("report")
  return run("report", Number(process.env.RENDER_MS ?? 1000))
}

/** A long window, renewed by `revalidateTag("tagged", "max")` (POST /revalidate). */
export async function tagged() {
  "use cache: remote"
  cacheLife({ stale: 1, revalidate: 600, expire: 3600 })
  cacheTag("tagged")
  return run("tagged", 200)
}
