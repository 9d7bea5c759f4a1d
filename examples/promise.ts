import { createCache } from "lockstep/promise"
import { z } from "zod"

const Item = z.object({ id: z.number(), name: z.string(), stock: z.number() })

// Stands in for the expensive query.
const queryItem = async (id: number) => ({ id, name: `item ${id}`, stock: 3 * id })

// One cache per process, at module level: Redis when REDIS_URL is set, the in-memory store
// otherwise. It holds the runtime: L1, the Redis connections, the background refreshes.
export const cache = createCache({ redis: process.env.REDIS_URL, tenant: "shop" })

export const items = cache.loader({
  key: (id: number) => `item:${id}`,
  window: "1 minute",
  schema: Item, // zod, valibot, any Standard Schema, or an Effect Schema
  lookup: (id) => queryItem(id),
  tags: () => ["items"],
  timeout: "2 seconds"
})

// A route handler of any Promise-based framework (Express, Fastify, Hono, Remix…).
export async function handle(id: number): Promise<Response> {
  const info = await items.getWithInfo(id)
  return Response.json(info.value, { headers: cache.cacheHeaders(info) })
}

// After a write: every process answers the last value, marked stale, while one recomputes it.
export const afterStockChange = () => cache.invalidateTag("items")

// On shutdown: await cache.close()
