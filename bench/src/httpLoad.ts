/**
 * A lean HTTP/1.1 load generator for the HTTP benchmark: `connections` keep-alive sockets, one
 * request in flight on each (no pipelining), the request bytes built once, responses parsed just
 * enough to find their status and end (Content-Length or chunked). Cheap enough that on a 2-core
 * machine the server, not the generator, is what is measured.
 *
 * @since 0.1.0
 */
import { connect, type Socket } from "node:net"
import { performance } from "node:perf_hooks"

/**
 * What to send and for how long.
 *
 * @since 0.1.0
 */
export interface LoadOptions {
  readonly host: string
  readonly port: number
  readonly method: "GET" | "POST"
  readonly path: string
  readonly body?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly connections: number
  /** Stop sending after this long (the requests in flight still finish). */
  readonly durationMs: number
}

/**
 * What came back.
 *
 * @since 0.1.0
 */
export interface LoadResult {
  readonly requests: number
  /** Answers with a 2xx status. */
  readonly ok: number
  /** Count of answers by status. */
  readonly statuses: Readonly<Record<number, number>>
  /** Sockets that failed or closed with a request in flight. */
  readonly errors: number
  readonly elapsedMs: number
  /** 2xx answers per second. */
  readonly okPerSecond: number
  readonly latencyP50Ms: number
  readonly latencyP99Ms: number
}

/**
 * The raw bytes of one request.
 *
 * @since 0.1.0
 */
export const requestBytes = (options: Pick<LoadOptions, "host" | "port" | "method" | "path" | "body" | "headers">) => {
  const body = options.body === undefined ? undefined : Buffer.from(options.body)
  const lines = [`${options.method} ${options.path} HTTP/1.1`, `host: ${options.host}:${options.port}`]
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push("content-type: application/json", `content-length: ${body.length}`)
  const head = Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1")
  return body === undefined ? head : Buffer.concat([head, body])
}

const CRLFCRLF = Buffer.from("\r\n\r\n")

/**
 * Parses responses out of a byte stream: feed chunks, get the status of each complete response.
 *
 * @since 0.1.0
 */
export class ResponseParser {
  private buffer: Buffer = Buffer.alloc(0)

  /** Statuses of the responses completed by this chunk, in order. */
  feed(chunk: Buffer): Array<number> {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    const done: Array<number> = []
    for (;;) {
      const headEnd = this.buffer.indexOf(CRLFCRLF)
      if (headEnd < 0) return done
      const head = this.buffer.toString("latin1", 0, headEnd)
      const status = Number(head.slice(9, 12))
      const lower = head.toLowerCase()
      const lengthAt = lower.indexOf("\r\ncontent-length:")
      let end: number
      if (lengthAt >= 0) {
        const lineEnd = lower.indexOf("\r\n", lengthAt + 2)
        const length = Number(lower.slice(lengthAt + 17, lineEnd < 0 ? undefined : lineEnd).trim())
        end = headEnd + 4 + length
        if (this.buffer.length < end) return done
      } else if (lower.includes("\r\ntransfer-encoding: chunked")) {
        const chunkedEnd = this.chunkedEnd(headEnd + 4)
        if (chunkedEnd < 0) return done
        end = chunkedEnd
      } else {
        end = headEnd + 4
      }
      done.push(status)
      this.buffer = this.buffer.subarray(end)
    }
  }

  private chunkedEnd(start: number): number {
    let at = start
    for (;;) {
      const lineEnd = this.buffer.indexOf("\r\n", at, "latin1")
      if (lineEnd < 0) return -1
      const size = parseInt(this.buffer.toString("latin1", at, lineEnd), 16)
      if (Number.isNaN(size)) throw new Error("malformed chunked response")
      const next = lineEnd + 2 + size + 2
      if (this.buffer.length < next) return -1
      if (size === 0) return next
      at = next
    }
  }
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

/**
 * Sends requests on `connections` sockets until `durationMs` has passed, then waits for the
 * requests in flight.
 *
 * @since 0.1.0
 */
export const runLoad = (options: LoadOptions): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const bytes = requestBytes(options)
    const statuses: Record<number, number> = {}
    const latencies: Array<number> = []
    let requests = 0
    let ok = 0
    let errors = 0
    let open = options.connections
    const started = performance.now()
    const deadline = started + options.durationMs
    const finish = () => {
      if (--open > 0) return
      const elapsedMs = performance.now() - started
      const sorted = Float64Array.from(latencies).sort()
      resolve({
        requests,
        ok,
        statuses,
        errors,
        elapsedMs,
        okPerSecond: (ok / elapsedMs) * 1000,
        latencyP50Ms: percentile(sorted, 0.5),
        latencyP99Ms: percentile(sorted, 0.99)
      })
    }
    for (let i = 0; i < options.connections; i++) {
      const socket: Socket = connect({ host: options.host, port: options.port, noDelay: true })
      const parser = new ResponseParser()
      let sentAt = 0
      let inFlight = false
      let closed = false
      const send = () => {
        if (performance.now() >= deadline) {
          closed = true
          socket.end()
          return finish()
        }
        inFlight = true
        requests++
        sentAt = performance.now()
        socket.write(bytes)
      }
      socket.on("connect", send)
      socket.on("data", (chunk) => {
        let answered: Array<number>
        try {
          answered = parser.feed(chunk)
        } catch (error) {
          socket.destroy()
          return reject(error)
        }
        for (const status of answered) {
          inFlight = false
          latencies.push(performance.now() - sentAt)
          statuses[status] = (statuses[status] ?? 0) + 1
          if (status >= 200 && status < 300) ok++
          send()
        }
      })
      // A failed socket also emits "close", where it is counted.
      socket.on("error", () => {})
      socket.on("close", () => {
        if (closed) return
        closed = true
        if (inFlight) errors++
        finish()
      })
    }
  })
