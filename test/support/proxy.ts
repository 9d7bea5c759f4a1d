/**
 * A TCP proxy on loopback between one pod and Redis, driven from the test process: the network
 * faults the kernel here cannot make (no `netem`).
 *
 * - `normal()`: bytes pass through as they come.
 * - `latency({ up, down })`: each chunk is held `up` ms on its way to Redis and `down` ms on its
 *   way back, in order (a chunk never overtakes an earlier one).
 * - `blackHole()`: connections stay open and new ones are accepted, but nothing is forwarded and
 *   nothing is answered: no RST, no FIN, as a route that drops every packet. What was sent
 *   meanwhile waits in the proxy and is delivered when the path heals (`normal()` or
 *   `latency()`), as TCP's retransmissions would deliver it; a byte is never lost or reordered,
 *   so a client's replies stay matched to its commands.
 * - `reset()`: every open connection is destroyed with an RST (new ones pass as before).
 */
import * as Net from "node:net"

export type Mode =
  | { readonly _tag: "normal" }
  | { readonly _tag: "latency"; readonly upMs: number; readonly downMs: number }
  | { readonly _tag: "blackHole" }

export interface Proxy {
  /** The port pods connect to (as `REDIS_PORT`). */
  readonly port: number
  readonly mode: () => Mode
  readonly normal: () => void
  readonly latency: (ms: { readonly up?: number; readonly down?: number }) => void
  readonly blackHole: () => void
  /** Destroys every open connection with an RST; returns how many there were. */
  readonly reset: () => number
  /** Open client connections right now. */
  readonly connections: () => number
  /** Connections accepted since the start. */
  readonly accepted: () => number
  /** Bytes forwarded so far, each way. */
  readonly forwarded: () => { readonly up: number; readonly down: number }
  readonly close: () => Promise<void>
}

/**
 * One direction of one connection: chunks wait in order until the mode lets them through, then
 * leave after the direction's delay. The source is paused while chunks queue, so a client that
 * writes a lot while the path is cut fills the socket buffers (as on a real network) rather
 * than this process's memory.
 */
interface Lane {
  readonly push: (chunk: Buffer) => void
  /** The mode changed: send what may go now. */
  readonly pump: () => void
  readonly clear: () => void
}

const lane = (
  from: Net.Socket,
  to: Net.Socket,
  delayOf: () => number | undefined,
  count: (n: number) => void
): Lane => {
  const queue: Array<{ readonly chunk: Buffer; readonly at: number }> = []
  let timer: NodeJS.Timeout | undefined
  let lastDue = 0
  const pump = () => {
    if (timer !== undefined) {
      clearTimeout(timer)
      timer = undefined
    }
    const delay = delayOf()
    if (delay === undefined) return // black hole: hold everything
    while (queue.length > 0) {
      // due when its delay has passed since it arrived, never before the chunk ahead of it
      const due = Math.max(queue[0]!.at + delay, lastDue)
      const wait = due - Date.now()
      if (wait > 0) {
        timer = setTimeout(pump, wait)
        return
      }
      const { chunk } = queue.shift()!
      lastDue = due
      if (!to.destroyed) {
        to.write(chunk)
        count(chunk.length)
      }
    }
    if (from.isPaused()) from.resume()
  }
  return {
    push: (chunk) => {
      queue.push({ chunk, at: Date.now() })
      if (queue.length > 64) from.pause()
      if (timer === undefined) pump()
    },
    pump,
    clear: () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      queue.length = 0
    }
  }
}

export const startProxy = (options: { readonly targetPort: number; readonly targetHost?: string; readonly port?: number }): Promise<Proxy> =>
  new Promise((resolve, reject) => {
    let mode: Mode = { _tag: "normal" }
    let accepted = 0
    const forwarded = { up: 0, down: 0 }
    const open = new Set<{ readonly client: Net.Socket; readonly upstream: Net.Socket; readonly lanes: ReadonlyArray<Lane> }>()
    const delayOf = (direction: "up" | "down") => (): number | undefined =>
      mode._tag === "blackHole" ? undefined : mode._tag === "latency" ? (direction === "up" ? mode.upMs : mode.downMs) : 0
    const pumpAll = () => {
      for (const c of open) for (const l of c.lanes) l.pump()
    }

    const server = Net.createServer({ pauseOnConnect: true }, (client) => {
      accepted++
      const upstream = Net.connect({ port: options.targetPort, host: options.targetHost ?? "127.0.0.1" })
      const up = lane(client, upstream, delayOf("up"), (n) => (forwarded.up += n))
      const down = lane(upstream, client, delayOf("down"), (n) => (forwarded.down += n))
      const conn = { client, upstream, lanes: [up, down] }
      open.add(conn)
      client.setNoDelay(true)
      upstream.setNoDelay(true)
      client.on("data", up.push)
      upstream.on("data", down.push)
      let closed = false
      const close = () => {
        if (closed) return
        closed = true
        open.delete(conn)
        up.clear()
        down.clear()
        client.destroy()
        upstream.destroy()
      }
      // Redis went away: the client sees the connection close (as it would without the proxy).
      // The client closing its side closes ours to Redis.
      for (const s of [client, upstream]) {
        s.on("error", close)
        s.on("close", close)
        s.on("end", close)
      }
      upstream.once("connect", () => client.resume())
    })
    server.on("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject)
      server.on("error", () => {})
      const address = server.address()
      if (typeof address !== "object" || address === null) return reject(new Error("proxy: no address"))
      const reset = () => {
        const n = open.size
        for (const c of [...open]) {
          for (const l of c.lanes) l.clear()
          c.client.resetAndDestroy()
          c.upstream.destroy()
        }
        return n
      }
      resolve({
        port: address.port,
        mode: () => mode,
        normal: () => {
          mode = { _tag: "normal" }
          pumpAll()
        },
        latency: (ms) => {
          mode = { _tag: "latency", upMs: ms.up ?? 0, downMs: ms.down ?? 0 }
          pumpAll()
        },
        blackHole: () => {
          mode = { _tag: "blackHole" }
          pumpAll()
        },
        reset,
        connections: () => open.size,
        accepted: () => accepted,
        forwarded: () => ({ ...forwarded }),
        close: () =>
          new Promise<void>((done) => {
            reset()
            server.close(() => done())
          })
      })
    })
  })
