/**
 * The fast lane of `POST /v1/tasks`: the route a service takes most, answered straight from
 * Node's `request` event, without the HTTP platform's per-request machinery (request and
 * response objects, router, span, middleware chain), which costs several times what storing a
 * task does. It runs the same steps as the route's handler (`readJson`'s checks, the body's
 * Schema, `prepareItemSync`, `encodeTask`) and answers the same status and JSON, errors
 * included, with the same request id and log line. Submissions that arrive within the coalescing
 * window are stored together, in one `tasksInsert` (up to 500 at once), batched here without a
 * fiber per request.
 *
 * It takes only what it answers exactly like the platform path: a JSON body with a declared
 * length within the limit, the bearer token right when one is configured, no CORS. Anything
 * else (a chunked body, a missing or wrong token, CORS) goes the platform path, which answers it.
 *
 * @internal
 */
import { HttpApiSchema } from "@effect/platform"
import { TaskClient, type TaskRecord, TaskStore } from "@spindle/tasks"
import type { Context } from "effect"
import { Cause, Duration, Effect, Either, Exit, type Fiber, Redacted, Schema } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { BadRequest, InternalError, PayloadTooLarge, SubmitRequest, UnknownTask } from "../Api.js"
import type { TaskCatalog } from "../TaskCatalog.js"
import type { Config } from "./config.js"
import { constantTimeEquals, logLine, requestIdFrom } from "./middleware.js"
import { badRequest, isJsonContentType, issuesOf, parseJsonText, tooLarge } from "./request.js"
import type { Prepared } from "./submission.js"
import { decodeBody, insertTasks, prepareItem, prepareItemSync } from "./submission.js"
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

const MAX_BATCH = 500

interface Pending {
  readonly task: TaskRecord.NewTask
  readonly done: (exit: Exit.Exit<TaskStore.TaskStore.Inserted, LaneError>) => void
}

const storeFailure = (cause: Cause.Cause<TaskStore.TaskStoreError>): LaneError => {
  const failure = Cause.failureOption(cause)
  return failure._tag === "Some"
    ? failure.value
    : new InternalError({ message: "internal error: the service failed unexpectedly" })
}

/**
 * The lane's handler for these services (`handle` returns false, having touched nothing, for a
 * request it leaves to the platform path), and `flush`, which stores what waits in the window.
 *
 * @internal
 */
export const handler = (options: {
  readonly config: Config
  readonly store: Context.Tag.Service<TaskStore.TaskStore>
  readonly catalog: Context.Tag.Service<TaskCatalog>
  /** Runs an effect in a fiber that shutdown can wait for (a `FiberSet` run function). */
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
}): {
  readonly handle: (request: IncomingMessage, response: ServerResponse) => boolean
  readonly flush: () => void
} => {
  const { catalog, config, run, store } = options
  const windowMs = Duration.toMillis(config.coalesceWindow)

  let queue: Array<Pending> = []
  let timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined
  const insert = (batch: ReadonlyArray<Pending>) => insertTasks(store, batch.map((pending) => pending.task))
  const flush = () => {
    if (timer !== undefined) {
      if (windowMs > 0) clearTimeout(timer as ReturnType<typeof setTimeout>)
      else clearImmediate(timer as ReturnType<typeof setImmediate>)
      timer = undefined
    }
    while (queue.length > 0) {
      const batch = queue.length <= MAX_BATCH ? queue : queue.slice(0, MAX_BATCH)
      queue = queue.length <= MAX_BATCH ? [] : queue.slice(MAX_BATCH)
      run(insert(batch)).addObserver((exit) => {
        if (Exit.isSuccess(exit)) {
          for (let i = 0; i < batch.length; i++) batch[i]!.done(Exit.succeed(exit.value[i]!))
        } else {
          const error = storeFailure(exit.cause)
          if (error._tag === "InternalError") run(Effect.logError("storing submitted tasks failed", exit.cause))
          for (const pending of batch) pending.done(Exit.fail(error))
        }
      })
    }
  }
  const enqueue = (pending: Pending) => {
    queue.push(pending)
    if (queue.length >= MAX_BATCH) flush()
    else if (timer === undefined) timer = windowMs > 0 ? setTimeout(flush, windowMs) : setImmediate(flush)
  }

  if (config.corsOrigins.length > 0) return { handle: () => false, flush }
  const expected = config.token === undefined ? undefined : encoder.encode(Redacted.value(config.token))
  const limit = config.bodyLimitBytes
  const handle = (request: IncomingMessage, response: ServerResponse): boolean => {
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
    const fail = (error: LaneError) => {
      const { body, status } = encodeError(error)
      respond(status, body)
    }
    const done = (exit: Exit.Exit<TaskStore.TaskStore.Inserted, LaneError>) => {
      if (Exit.isSuccess(exit)) {
        const inserted = exit.value
        return respond(201, { id: inserted.task.id, created: inserted.created, task: encodeTask(inserted.task) })
      }
      const failure = Cause.failureOption(exit.cause)
      if (failure._tag === "Some") return fail(failure.value)
      run(Effect.logError("unexpected failure", exit.cause).pipe(Effect.annotateLogs("requestId", requestId)))
      fail(new InternalError({ message: "internal error: the service failed unexpectedly", requestId }))
    }
    const chunks: Array<Buffer> = []
    let received = 0
    request.on("data", (chunk: Buffer) => {
      received += chunk.length
      if (received <= limit) chunks.push(chunk)
    })
    request.on("error", () => response.destroy())
    request.on("end", () => {
      if (received > limit) return fail(tooLarge(limit))
      const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
      const parsed = parseJsonText(text)
      if (Either.isLeft(parsed)) return fail(parsed.left)
      const body = decodeSubmit(parsed.right)
      if (Either.isLeft(body)) return fail(badRequest(issuesOf(body.left, ["body"]), "invalid body"))
      const now = Date.now()
      const sync = prepareItemSync(catalog, body.right, ["body"], undefined, now)
      if (sync !== undefined) {
        return Either.isLeft(sync) ? fail(sync.left) : enqueue({ task: sync.right.newTask, done })
      }
      // A payload Schema with an asynchronous transformation: prepared by the runtime.
      run(prepareItem(catalog, body.right, ["body"], undefined, now)).addObserver((
        exit: Exit.Exit<Prepared, LaneError>
      ) =>
        Exit.isSuccess(exit) ? enqueue({ task: exit.value.newTask, done }) : done(exit as Exit.Exit<never, LaneError>)
      )
    })
    return true
  }
  return { handle, flush }
}
