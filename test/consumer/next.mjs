// A Next.js app's view of `lockstep/next` under plain Node (Next itself not installed: it is an
// optional peer): the module next.config.mjs points at, and its default export driven as Next
// drives it, on the in-memory store (no REDIS_HOST).
import { createRequire } from "node:module"

const resolved = import.meta.resolve("lockstep/next")
const { default: handler } = await import(resolved)

const entry = (html) => ({
  value: new Response(html).body,
  tags: ["report"],
  stale: 0,
  timestamp: Date.now(),
  expire: 60,
  revalidate: 60
})

const miss = await handler.get("report", [])
await handler.set("report", Promise.resolve(entry("<p>report</p>")))
const hit = await handler.get("report", [])
const html = await new Response(hit.value).text()
// a new stream from each get
const again = await new Response((await handler.get("report", [])).value).text()
await handler.updateTags(["report"])
const expired = await handler.get("report", [])
await handler.close()

const required = createRequire(import.meta.url)("lockstep/next")
console.log(JSON.stringify({
  resolved,
  required: typeof required.default.get,
  miss: miss === undefined,
  html,
  again,
  expiredRenders: expired === undefined,
  expiration: await handler.getExpiration(["report"])
}))
