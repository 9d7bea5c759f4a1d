/**
 * The fault suite's TCP proxy, on real loopback sockets in front of an echo server: pass-through,
 * latency each way, a silent black hole that heals without losing or reordering a byte, and a
 * reset the client sees as `ECONNRESET`.
 */
import * as Net from "node:net"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type Proxy, startProxy } from "./support/proxy.js"

let echo: Net.Server
let echoPort: number
let proxy: Proxy
const clients: Array<Net.Socket> = []

beforeEach(async () => {
  echo = Net.createServer((s) => {
    s.on("error", () => {})
    s.pipe(s)
  })
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r))
  echoPort = (echo.address() as Net.AddressInfo).port
  proxy = await startProxy({ targetPort: echoPort })
})

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy()
  await proxy.close()
  await new Promise<void>((r) => echo.close(() => r()))
})

/** A client on the proxy that collects what comes back, and the instant each byte count arrived. */
const connect = async () => {
  const socket = Net.connect({ port: proxy.port, host: "127.0.0.1" })
  clients.push(socket)
  let received = ""
  const errors: Array<string> = []
  let closed = false
  socket.on("data", (d) => (received += d.toString()))
  socket.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message))
  socket.on("close", () => (closed = true))
  await new Promise<void>((r) => socket.once("connect", () => r()))
  /** Resolves with the elapsed ms once `text` has been received in full. */
  const until = (text: string, timeoutMs = 2_000) =>
    new Promise<number>((resolve, reject) => {
      const started = Date.now()
      const check = () => {
        if (received.includes(text)) {
          clearInterval(timer)
          resolve(Date.now() - started)
        } else if (Date.now() - started > timeoutMs) {
          clearInterval(timer)
          reject(new Error(`not received within ${timeoutMs} ms: ${JSON.stringify(text)}; got ${JSON.stringify(received)}`))
        }
      }
      const timer = setInterval(check, 2)
      check()
    })
  return { socket, until, received: () => received, errors, closed: () => closed }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

describe("test proxy", () => {
  it("passes bytes through both ways", async () => {
    const c = await connect()
    c.socket.write("hello")
    const ms = await c.until("hello")
    expect(ms).toBeLessThan(100)
    expect(proxy.accepted()).toBe(1)
    expect(proxy.connections()).toBe(1)
    expect(proxy.forwarded()).toEqual({ up: 5, down: 5 })
  })

  it("adds latency per direction, in order", async () => {
    const c = await connect()
    proxy.latency({ up: 150, down: 100 })
    c.socket.write("a")
    await sleep(20)
    c.socket.write("b")
    const ms = await c.until("ab")
    // both legs: at least 250 ms, and not one chunk overtook the other
    expect(ms).toBeGreaterThanOrEqual(240)
    expect(ms).toBeLessThan(600)
    expect(c.received()).toBe("ab")
    proxy.normal()
    c.socket.write("c")
    expect(await c.until("abc")).toBeLessThan(100)
  })

  it("black hole: keeps the connection, forwards nothing, never resets; heals without loss", async () => {
    const c = await connect()
    c.socket.write("before;")
    await c.until("before;")
    proxy.blackHole()
    c.socket.write("during;")
    // a connection opened while the path is cut is accepted, and hears nothing either
    const late = await connect()
    late.socket.write("late;")
    await sleep(400)
    expect(c.received()).toBe("before;")
    expect(late.received()).toBe("")
    expect(c.errors).toEqual([])
    expect(c.closed()).toBe(false)
    expect(proxy.connections()).toBe(2)
    proxy.normal()
    await c.until("before;during;")
    await late.until("late;")
    expect(c.received()).toBe("before;during;")
  })

  it("reset: open connections end with ECONNRESET; new ones pass", async () => {
    const c = await connect()
    c.socket.write("x")
    await c.until("x")
    expect(proxy.reset()).toBe(1)
    await sleep(100)
    expect(c.errors).toEqual(["ECONNRESET"])
    expect(c.closed()).toBe(true)
    const again = await connect()
    again.socket.write("y")
    await again.until("y")
  })
})
