/**
 * A local stand-in for a slow, flaky external API: every answer takes 5–30 ms, some requests
 * fail with 503, and a few hang far longer than any sane client waits. The behaviour of each
 * request is drawn from a seeded generator, so a run is reproducible.
 */
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** How the fake API misbehaves. */
export interface FlakyServerOptions {
  /** Share of requests answered with 503 Service Unavailable. */
  readonly failureRate: number
  /** Share of requests that hang for `hangMillis` before answering. */
  readonly hangRate: number
  readonly hangMillis: number
  readonly seed: number
}

/** A running fake API and what it has seen. */
export interface FlakyServer {
  readonly url: string
  /** Requests received so far. */
  readonly requests: () => number
  /** Most requests in progress at once. */
  readonly peakInProgress: () => number
}

/** mulberry32: a tiny seeded generator of numbers in [0, 1). */
const seeded = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Starts the fake API on a free loopback port; it closes with the scope. */
export const flakyServer = (options: FlakyServerOptions) =>
  Effect.acquireRelease(
    Effect.async<FlakyServer>((resume) => {
      const random = seeded(options.seed)
      let requests = 0
      let inProgress = 0
      let peakInProgress = 0
      const server = Http.createServer((req, res) => {
        requests++
        inProgress++
        peakInProgress = Math.max(peakInProgress, inProgress)
        const roll = random()
        const status = roll < options.failureRate ? 503 : 200
        const delay = roll > 1 - options.hangRate ? options.hangMillis : 5 + Math.floor(random() * 25)
        const timer = setTimeout(() => {
          inProgress--
          res.writeHead(status, { "content-type": "application/json" })
          res.end(JSON.stringify(status === 200 ? { path: req.url, ok: true } : { error: "unavailable" }))
        }, delay)
        res.on("close", () => {
          if (!res.writableEnded) {
            clearTimeout(timer)
            inProgress--
          }
        })
      })
      server.keepAliveTimeout = 5_000
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed(Object.assign(server, {
          url: `http://127.0.0.1:${port}`,
          requests: () => requests,
          peakInProgress: () => peakInProgress
        })))
      })
    }),
    (server) =>
      Effect.async<void>((resume) => {
        const http = server as unknown as Http.Server
        http.closeAllConnections()
        http.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server): FlakyServer => server))
