import { Layer } from "effect"
import { Redis as IORedis } from "ioredis"
import { Memo, Redis } from "lockstep"

// A client of your own: lockstep changes none of its options and never closes it.
export const client = new IORedis({ host: "redis.internal", ...Redis.failFastOptions(500) })
export const CacheLive = Memo.layer.pipe(Layer.provide(Layer.succeed(Redis.Redis, Redis.fromClient(client, { tenant: "shop" }))))
