import type { HttpServerRequest } from "@effect/platform"
import { Effect, Either, ParseResult, Stream } from "effect"
import { IncomingMessage } from "node:http"
import { BadRequest, PayloadTooLarge } from "../Api.js"
import type { Issue } from "../Api.js"

// -----------------------------------------------------------------------------
// Issues
// -----------------------------------------------------------------------------

/** Issue messages echo the faulty value: a 1 MiB string is not echoed whole. @internal */
export const MAX_MESSAGE_LENGTH = 500

/** @internal */
export const truncate = (message: string): string =>
  message.length <= MAX_MESSAGE_LENGTH ? message : `${message.slice(0, MAX_MESSAGE_LENGTH)}… (truncated)`

type PathKey = string | number

const toKey = (key: PropertyKey): PathKey => typeof key === "symbol" ? String(key) : key

/** The issues of a parse error, each path prefixed (`["body"]`, `["body", "payload"]`...). @internal */
export const issuesOf = (error: ParseResult.ParseError, prefix: ReadonlyArray<PathKey>): Array<Issue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: [...prefix, ...issue.path.map(toKey)],
    message: truncate(issue.message)
  }))

/** `body.tasks[3].payload.to` @internal */
export const formatPath = (path: ReadonlyArray<PathKey>): string => {
  let out = ""
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`
    else out += out === "" ? key : `.${key}`
  }
  return out === "" ? "(root)" : out
}

/** A one-line summary of issues: the first, and how many more. @internal */
export const summarize = (issues: ReadonlyArray<Issue>): string => {
  const first = issues[0]
  if (first === undefined) return "invalid request"
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
  return `${formatPath(first.path)}: ${first.message}${more}`
}

/** @internal */
export const badRequest = (issues: ReadonlyArray<Issue>, prefix?: string): BadRequest =>
  new BadRequest({ message: prefix === undefined ? summarize(issues) : `${prefix}: ${summarize(issues)}`, issues })

/** @internal */
export const tooLarge = (limitBytes: number): PayloadTooLarge =>
  new PayloadTooLarge({ limitBytes, message: `the request body is larger than ${limitBytes} bytes` })

// -----------------------------------------------------------------------------
// Body
// -----------------------------------------------------------------------------

/** JSON nested deeper than this is refused (it would not serialize back: a stack overflow). @internal */
export const MAX_DEPTH = 64

const tooDeep = (value: unknown, depth: number): boolean => {
  if (value === null || typeof value !== "object") return false
  if (depth >= MAX_DEPTH) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (tooDeep(value[i], depth + 1)) return true
    return false
  }
  for (const key in value) {
    if (tooDeep((value as Record<string, unknown>)[key], depth + 1)) return true
  }
  return false
}

/** @internal */
export const isJsonContentType = (contentType: string): boolean => {
  const mediaType = contentType.split(";", 1)[0]!.trim().toLowerCase()
  return mediaType === "application/json" || (mediaType.startsWith("application/") && mediaType.endsWith("+json"))
}

const contentLengthOf = (request: HttpServerRequest.HttpServerRequest): number | undefined => {
  const header = request.headers["content-length"]
  if (header === undefined) return undefined
  const length = Number(header)
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** Whether the declared length of the body is over the limit. @internal */
export const declaredTooLarge = (request: HttpServerRequest.HttpServerRequest, limitBytes: number): boolean => {
  const length = contentLengthOf(request)
  return length !== undefined && length > limitBytes
}

const unreadable = (cause: unknown) =>
  badRequest([{ path: ["body"], message: `the body could not be read: ${String(cause)}` }])

/** Past the limit, how much more of a body is read (and dropped) so that its 413 reaches the client. */
const drainBytesOf = (limitBytes: number): number => Math.max(limitBytes * 8, 8 * 1024 * 1024)

/**
 * Reads a Node request's body keeping at most `limitBytes`. Past the limit the rest is read and
 * dropped, so that the client gets its 413 rather than a reset connection (whether the body has
 * a Content-Length or is chunked); past the drain allowance reading stops and the connection
 * is dropped.
 */
const readNode = (
  source: IncomingMessage,
  limitBytes: number
): Effect.Effect<string, BadRequest | PayloadTooLarge> =>
  Effect.async((resume) => {
    const drainBytes = drainBytesOf(limitBytes)
    const chunks: Array<Buffer> = []
    let total = 0
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      source.off("aborted", onAborted)
    }
    const onData = (chunk: Buffer) => {
      total += chunk.length
      if (total <= limitBytes) chunks.push(chunk)
      else if (total > drainBytes) {
        cleanup()
        source.destroy()
        resume(Effect.fail(tooLarge(limitBytes)))
      }
    }
    const onEnd = () => {
      cleanup()
      resume(
        total > limitBytes
          ? Effect.fail(tooLarge(limitBytes))
          : Effect.succeed(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8"))
      )
    }
    const onError = (error: unknown) => {
      cleanup()
      resume(Effect.fail(unreadable(error)))
    }
    const onAborted = () => onError(new Error("the client aborted the request"))
    if (source.readableEnded) {
      resume(Effect.fail(unreadable(new Error("the body was already read"))))
      return
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    source.once("aborted", onAborted)
    return Effect.sync(cleanup)
  })

/** The same for requests of other servers, through the platform's stream of the body. */
const readStream = (
  request: HttpServerRequest.HttpServerRequest,
  limitBytes: number
): Effect.Effect<string, BadRequest | PayloadTooLarge> =>
  Effect.suspend(() => {
    const drainBytes = drainBytesOf(limitBytes)
    const chunks: Array<Uint8Array> = []
    let total = 0
    return request.stream.pipe(
      Stream.runForEachWhile((chunk) =>
        Effect.sync(() => {
          total += chunk.length
          if (total <= limitBytes) chunks.push(chunk)
          return total <= drainBytes
        })
      ),
      Effect.mapError(unreadable),
      Effect.flatMap(() => {
        if (total > limitBytes) return Effect.fail(tooLarge(limitBytes))
        const bytes = new Uint8Array(total)
        let offset = 0
        for (const chunk of chunks) {
          bytes.set(chunk, offset)
          offset += chunk.length
        }
        return Effect.succeed(new TextDecoder().decode(bytes))
      })
    )
  })

const nodeSource = (request: HttpServerRequest.HttpServerRequest): IncomingMessage | undefined => {
  const source = (request as { readonly source?: unknown }).source
  return source instanceof IncomingMessage ? source : undefined
}

/**
 * The body as JSON: its content type must be JSON (or absent), its length within the limit
 * (413 otherwise, the connection kept; a declared length over it is refused before, by
 * `apiMiddleware`), its text well-formed and not too deeply nested. An
 * empty body is `undefined` when `optional`, a fault otherwise.
 *
 * @internal
 */
export const readJson = (
  request: HttpServerRequest.HttpServerRequest,
  limitBytes: number,
  optional: boolean
): Effect.Effect<unknown, BadRequest | PayloadTooLarge> => {
  const contentType = request.headers["content-type"]
  if (contentType !== undefined && !isJsonContentType(contentType)) {
    return Effect.fail(badRequest([{
      path: ["headers", "content-type"],
      message: `expected application/json, got "${truncate(contentType)}"`
    }]))
  }
  const source = nodeSource(request)
  const text = source === undefined ? readStream(request, limitBytes) : readNode(source, limitBytes)
  return Effect.flatMap(text, (text) => {
    if (optional && text.trim().length === 0) return Effect.succeed(undefined)
    const parsed = parseJsonText(text)
    return Either.isRight(parsed) ? Effect.succeed(parsed.right) : Effect.fail(parsed.left)
  })
}

/**
 * A body's text as JSON: not empty, well-formed, not too deeply nested.
 *
 * @internal
 */
export const parseJsonText = (text: string): Either.Either<unknown, BadRequest> => {
  if (text.trim().length === 0) {
    return Either.left(badRequest([{ path: ["body"], message: "the body is empty: expected a JSON object" }]))
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return Either.left(badRequest([{ path: ["body"], message: `malformed JSON: ${truncate(reason)}` }]))
  }
  if (tooDeep(value, 0)) {
    return Either.left(badRequest([{ path: ["body"], message: `JSON nested deeper than ${MAX_DEPTH} levels` }]))
  }
  return Either.right(value)
}
