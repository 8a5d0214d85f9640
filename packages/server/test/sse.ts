/**
 * A small Server-Sent Events client for the tests: `fetch` plus a stream reader, parsing blocks
 * as they arrive into a queue. The connection is aborted when the scope closes.
 */
import { Data, Effect, Option, Queue } from "effect"
import type { Scope } from "effect"

/** One SSE block: its fields (a comment block has only `comment`). */
export interface Block {
  readonly id?: string
  readonly event?: string
  readonly data?: string
  readonly retry?: string
  readonly comment?: string
}

export class SseError extends Data.TaggedError("SseError")<{ readonly message: string }> {}

export interface Connection {
  readonly status: number
  readonly headers: globalThis.Headers
  /** The body, when the answer is not an event stream. */
  readonly text: Option.Option<string>
  /** The next block; `None` once the stream ended. */
  readonly next: Effect.Effect<Option.Option<Block>>
  /** Abort the request (the client goes away). */
  readonly abort: Effect.Effect<void>
}

export const parseBlock = (text: string): Block => {
  const block: Record<string, string> = {}
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) {
      block.comment = line.slice(1).trim()
      continue
    }
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
    block[field] = field === "data" && block.data !== undefined ? `${block.data}\n${value}` : value
  }
  return block
}

export const connect = (
  url: string,
  headers: Record<string, string> = {}
): Effect.Effect<Connection, SseError, Scope.Scope> =>
  Effect.gen(function*() {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    const response = yield* Effect.tryPromise({
      try: () => fetch(url, { headers, signal: controller.signal }),
      catch: (error) => new SseError({ message: String(error) })
    })
    const abort = Effect.sync(() => controller.abort())
    if (!(response.headers.get("content-type") ?? "").startsWith("text/event-stream") || response.body === null) {
      const text = yield* Effect.tryPromise({
        try: () => response.text(),
        catch: (error) => new SseError({ message: String(error) })
      })
      return {
        status: response.status,
        headers: response.headers,
        text: Option.some(text),
        next: Effect.succeed(Option.none()),
        abort
      }
    }
    const blocks = yield* Queue.unbounded<Option.Option<Block>>()
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    yield* Effect.forkScoped(Effect.promise(async () => {
      let buffer = ""
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          buffer += decoder.decode(value, { stream: true })
          let end = buffer.indexOf("\n\n")
          while (end !== -1) {
            blocks.unsafeOffer(Option.some(parseBlock(buffer.slice(0, end))))
            buffer = buffer.slice(end + 2)
            end = buffer.indexOf("\n\n")
          }
        }
      } catch {
        // aborted or reset: the stream ended
      }
      blocks.unsafeOffer(Option.none())
    }))
    return { status: response.status, headers: response.headers, text: Option.none(), next: Queue.take(blocks), abort }
  })

/** The next block that is not a comment (heartbeats are skipped). */
export const nextBlock = (connection: Connection): Effect.Effect<Option.Option<Block>> =>
  Effect.flatMap(
    connection.next,
    (block) =>
      Option.isSome(block) && block.value.comment !== undefined && block.value.event === undefined ?
        nextBlock(connection) :
        Effect.succeed(block)
  )

/** The next `n` blocks with an `event:` field (heartbeats, `retry` and `id`-only blocks skipped). */
export const takeEvents = (connection: Connection, n: number): Effect.Effect<Array<Block>, SseError> =>
  Effect.gen(function*() {
    const out: Array<Block> = []
    while (out.length < n) {
      const block = yield* connection.next
      if (Option.isNone(block)) {
        return yield* new SseError({ message: `the stream ended after ${out.length} of ${n} events` })
      }
      if (block.value.event !== undefined) out.push(block.value)
    }
    return out
  })

/** Reads blocks until the stream ends; returns the events seen meanwhile. */
export const untilEnd = (connection: Connection): Effect.Effect<Array<Block>> =>
  Effect.gen(function*() {
    const out: Array<Block> = []
    for (;;) {
      const block = yield* connection.next
      if (Option.isNone(block)) return out
      if (block.value.event !== undefined) out.push(block.value)
    }
  })
