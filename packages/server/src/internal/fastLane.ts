/**
 * The fast lane of `POST /v1/tasks`: the route a service takes most, answered straight from
 * Node's `request` event, without the HTTP platform's per-request machinery (request and
 * response objects, router, span, middleware chain), which costs several times what storing a
 * task does. It runs the same steps as the route's handler (`readJson`'s checks, the body's
 * Schema, `submitOne` through the coalescing inserter, `encodeTask`) and answers the same
 * status and JSON, errors included, with the same request id and log line.
 *
 * It takes only what it answers exactly like the platform path: a JSON body with a declared
 * length within the limit, the bearer token right when one is configured, no CORS. Anything
 * else (a chunked body, a missing or wrong token, CORS) goes the platform path, which answers it.
 *
 * @internal
 */
import { HttpApiSchema } from "@effect/platform"
import { TaskClient, TaskStore } from "@spindle/tasks"
import type { Context } from "effect"
import { Cause, Effect, Either, Exit, Redacted, Runtime, Schema } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { BadRequest, InternalError, PayloadTooLarge, SubmitRequest, UnknownTask } from "../Api.js"
import type { TaskCatalog } from "../TaskCatalog.js"
import type { Config } from "./config.js"
import { constantTimeEquals, logLine, requestIdFrom } from "./middleware.js"
import { badRequest, isJsonContentType, issuesOf, parseJsonText, tooLarge } from "./request.js"
import type { Inserter } from "./submission.js"
import { decodeBody, submitOne } from "./submission.js"
import { encodeTask } from "./wire.js"

/**
 * Where a server's fast lane is installed: the Node server consults it on every request; the
 * API's handlers fill it while they run.
 *
 * @internal
 */
export interface FastLane {
  current: ((request: IncomingMessage, response: ServerResponse) => boolean) | undefined
}

/** @internal */
export const make = (): FastLane => ({ current: undefined })

const PATH = "/v1/tasks"
const decodeSubmit = decodeBody(SubmitRequest)
const encoder = new TextEncoder()

const errorClasses = [
  BadRequest,
  PayloadTooLarge,
  UnknownTask,
  TaskClient.InvalidPayload,
  TaskClient.InvalidParams,
  TaskStore.TaskStoreError,
  InternalError
] as const

type LaneError = InstanceType<typeof errorClasses[number]>

const encoders = new Map<string, { readonly status: number; readonly encode: (error: LaneError) => unknown }>(
  errorClasses.map((errorClass) => [
    errorClass._tag,
    {
      status: HttpApiSchema.getStatusErrorAST(errorClass.ast),
      encode: Schema.encodeSync(errorClass as unknown as Schema.Schema<LaneError, unknown>)
    }
  ])
)

const encodeError = (error: LaneError): { readonly status: number; readonly body: unknown } => {
  const found = encoders.get(error._tag)!
  return { status: found.status, body: found.encode(error) }
}

/**
 * The lane's handler for these services. Returns false, having touched nothing, for a request
 * it leaves to the platform path.
 *
 * @internal
 */
export const handler = (options: {
  readonly config: Config
  readonly inserter: Inserter
  readonly catalog: Context.Tag.Service<TaskCatalog>
  readonly runtime: Runtime.Runtime<never>
  /** Counts the submissions in flight, so that shutdown can wait for them. */
  readonly track: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
}): (request: IncomingMessage, response: ServerResponse) => boolean => {
  const { catalog, config, inserter, runtime, track } = options
  if (config.corsOrigins.length > 0) return () => false
  const expected = config.token === undefined ? undefined : encoder.encode(Redacted.value(config.token))
  const limit = config.bodyLimitBytes
  const run = Runtime.runCallback(runtime)
  return (request, response) => {
    if (request.method !== "POST" || request.url !== PATH) return false
    const contentType = request.headers["content-type"]
    if (contentType === undefined || !isJsonContentType(contentType)) return false
    const length = Number(request.headers["content-length"])
    if (!Number.isSafeInteger(length) || length < 0 || length > limit) return false
    if (expected !== undefined) {
      const header = request.headers.authorization
      if (header === undefined || !header.startsWith("Bearer ")) return false
      if (!constantTimeEquals(encoder.encode(header.slice(7).trim()), expected)) return false
    }
    const givenId = request.headers["x-request-id"]
    const requestId = requestIdFrom(typeof givenId === "string" ? givenId : undefined)
    const started = config.requestLog ? performance.now() : 0
    const respond = (status: number, body: unknown) => {
      const text = JSON.stringify(body)
      response.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
        "x-request-id": requestId
      })
      response.end(text)
      if (config.requestLog) run(logLine("POST", PATH, status, requestId, started))
    }
    const chunks: Array<Buffer> = []
    let received = 0
    request.on("data", (chunk: Buffer) => {
      received += chunk.length
      if (received <= limit) chunks.push(chunk)
    })
    request.on("error", () => response.destroy())
    request.on("end", () => {
      if (received > limit) {
        const { body, status } = encodeError(tooLarge(limit))
        return respond(status, body)
      }
      const parsed = parseJsonText(
        chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
      )
      const submission = Either.isLeft(parsed)
        ? Effect.fail(parsed.left)
        : Effect.flatMap(
          Either.match(decodeSubmit(parsed.right), {
            onLeft: (error) => Effect.fail(badRequest(issuesOf(error, ["body"]), "invalid body")),
            onRight: Effect.succeed
          }),
          (body) => submitOne(inserter, catalog, body)
        )
      run(track(submission), {
        onExit: (exit) => {
          if (Exit.isSuccess(exit)) {
            const inserted = exit.value
            return respond(201, { id: inserted.task.id, created: inserted.created, task: encodeTask(inserted.task) })
          }
          const failure = Cause.failureOption(exit.cause)
          if (failure._tag === "Some") {
            const { body, status } = encodeError(failure.value)
            return respond(status, body)
          }
          const internal = new InternalError({ message: "internal error: the service failed unexpectedly", requestId })
          run(Effect.logError("unexpected failure", exit.cause).pipe(Effect.annotateLogs("requestId", requestId)))
          const { body, status } = encodeError(internal)
          respond(status, body)
        }
      })
    })
    return true
  }
}
