/**
 * The HTTP API of the task service, declared apart from its handlers: the routes, their
 * parameters, bodies, answers and errors. `HttpApiClient.make(Api)` derives a typed client from
 * it (the `spindle` command uses one), and `/openapi.json` is generated from it.
 *
 * Times travel as ISO 8601 strings; payloads and results as the JSON their task's Schemas
 * encode to.
 *
 * @since 0.1.0
 */
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "@effect/platform"
import { TaskClient, TaskEvent, TaskRecord, TaskStatus, TaskStore } from "@spindle/tasks"
import { Schema } from "effect"

// -----------------------------------------------------------------------------
// Wire models
// -----------------------------------------------------------------------------

/**
 * A task as the API returns it: the stored record with its times as ISO 8601 strings.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 * import { Schema } from "effect"
 *
 * const decode = Schema.decodeUnknownSync(Api.TaskView)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskView = Schema.Struct({
  ...TaskRecord.TaskRecord.fields,
  runAt: Schema.Date,
  createdAt: Schema.Date,
  updatedAt: Schema.Date,
  startedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date),
  leaseExpiresAt: Schema.NullOr(Schema.Date)
}).annotations({ identifier: "Task" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskView extends Schema.Schema.Type<typeof TaskView> {}

/**
 * Options of a submission; every field is optional and defaults to the task definition's.
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const options: Api.SubmitOptions = { priority: "high", delayMs: 5_000, tags: ["import"] }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SubmitOptions = Schema.Struct({
  /** Not run before this time. Exclusive with `delayMs`. */
  runAt: Schema.optional(Schema.Date),
  /** Not run before now + `delayMs`. Exclusive with `runAt`. */
  delayMs: Schema.optional(Schema.NonNegativeInt),
  priority: Schema.optional(TaskRecord.Priority),
  queue: Schema.optional(Schema.NonEmptyTrimmedString),
  /** While an unfinished task of the same name has this key, that task is returned instead. */
  idempotencyKey: Schema.optional(Schema.NullOr(Schema.String)),
  parentId: Schema.optional(Schema.String),
  tags: Schema.optional(Schema.Array(Schema.String)),
  maxAttempts: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions extends Schema.Schema.Type<typeof SubmitOptions> {}

/**
 * The body of `POST /v1/tasks`: the registered task's name, its payload (validated against the
 * task's payload Schema), and options.
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const body: typeof Api.SubmitRequest.Encoded = {
 *   name: "send-email",
 *   payload: { to: "ada@example.com" },
 *   priority: "high"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SubmitRequest = Schema.Struct({
  name: Schema.String,
  payload: Schema.Unknown,
  ...SubmitOptions.fields
}).annotations({ identifier: "SubmitRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export interface SubmitRequest extends Schema.Schema.Type<typeof SubmitRequest> {}

/**
 * The answer to a submission: `created` is false when an unfinished task with the same
 * idempotency key already existed (that task is returned).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const isNew = (answer: Api.Submitted) => answer.created
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const Submitted = Schema.Struct({
  id: Schema.String,
  created: Schema.Boolean,
  task: TaskView
}).annotations({ identifier: "Submitted" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Submitted extends Schema.Schema.Type<typeof Submitted> {}

/**
 * The body of `POST /v1/tasks/batch`: 1 to 1,000 submissions, of one task or of several, stored
 * in one round trip. Every payload is validated first; one bad payload rejects the batch
 * (its fault's path starts with `tasks`, its index) and nothing is stored.
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const body: typeof Api.SubmitBatchRequest.Encoded = {
 *   tasks: [{ name: "resize", payload: { url: "a.png" } }, { name: "resize", payload: { url: "b.png" } }]
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SubmitBatchRequest = Schema.Struct({
  tasks: Schema.Array(SubmitRequest).pipe(Schema.minItems(1), Schema.maxItems(1000))
}).annotations({ identifier: "SubmitBatchRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export interface SubmitBatchRequest extends Schema.Schema.Type<typeof SubmitBatchRequest> {}

/**
 * The answer to a batch: one entry per submission, in the request's order.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const ids = (answer: Api.SubmittedBatch) => answer.items.map((item) => item.id)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SubmittedBatch = Schema.Struct({
  items: Schema.Array(Submitted)
}).annotations({ identifier: "SubmittedBatch" })

/**
 * @since 0.1.0
 * @category models
 */
export interface SubmittedBatch extends Schema.Schema.Type<typeof SubmittedBatch> {}

const CommaList = <A extends string, I extends string>(item: Schema.Schema<A, I>) =>
  Schema.optional(Schema.compose(Schema.split(","), Schema.Array(item)))

/**
 * The query of `GET /v1/tasks`: filters (comma-separated lists), sort, page size and cursor.
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const query: typeof Api.ListQuery.Encoded = { status: "failed,dead", queue: "emails", limit: "20" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const ListQuery = Schema.Struct({
  status: CommaList(TaskStatus.TaskStatus),
  name: CommaList(Schema.String),
  queue: CommaList(Schema.String),
  /** Tasks carrying every one of these tags. */
  tag: CommaList(Schema.String),
  sort: Schema.optional(Schema.Literal("createdAt", "updatedAt", "runAt", "priority")),
  order: Schema.optional(Schema.Literal("asc", "desc")),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
  cursor: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ListQuery extends Schema.Schema.Type<typeof ListQuery> {}

/**
 * A page of tasks; `nextCursor` is absent on the last page.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const hasMore = (page: Api.TaskPage) => page.nextCursor !== undefined
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskPage = Schema.Struct({
  items: Schema.Array(TaskView),
  nextCursor: Schema.optional(Schema.String)
}).annotations({ identifier: "TaskPage" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskPage extends Schema.Schema.Type<typeof TaskPage> {}

/**
 * The body of `POST /v1/tasks/:id/retry` (optional): when to run again and how many more
 * attempts to grant.
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const body: typeof Api.RetryRequest.Encoded = { delayMs: 60_000, extraAttempts: 2 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const RetryRequest = Schema.Struct({
  runAt: Schema.optional(Schema.Date),
  delayMs: Schema.optional(Schema.NonNegativeInt),
  extraAttempts: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)))
}).annotations({ identifier: "RetryRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryRequest extends Schema.Schema.Type<typeof RetryRequest> {}

/**
 * The query of `GET /v1/tasks/:id/result`: how long to wait for the task to finish, in
 * milliseconds (0..300,000, default 30,000).
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const query: typeof Api.ResultQuery.Encoded = { waitMs: "5000" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const ResultQuery = Schema.Struct({
  waitMs: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 300_000)))
})

/**
 * The answer of `GET /v1/tasks/:id/result`: `finished` is false when the wait ran out first
 * (the task goes on); `result` is the encoded success, `error` why it did not succeed.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const succeeded = (answer: Api.TaskResult) => answer.status === "succeeded"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskResult = Schema.Struct({
  id: Schema.String,
  status: TaskStatus.TaskStatus,
  finished: Schema.Boolean,
  result: Schema.Unknown,
  error: Schema.NullOr(TaskRecord.TaskError),
  task: TaskView
}).annotations({ identifier: "TaskResult" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskResult extends Schema.Schema.Type<typeof TaskResult> {}

/**
 * A task's log lines, oldest first.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const messages = (logs: Api.TaskLogs) => logs.items.map((line) => line.message)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskLogs = Schema.Struct({
  items: Schema.Array(Schema.Struct({ ...TaskRecord.TaskLogLine.fields, at: Schema.Date }))
}).annotations({ identifier: "TaskLogs" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskLogs extends Schema.Schema.Type<typeof TaskLogs> {}

const Counts = Schema.Struct(
  Object.fromEntries(TaskStatus.all.map((status) => [status, Schema.Int])) as {
    readonly [S in TaskStatus.TaskStatus]: typeof Schema.Int
  }
)

/**
 * Statistics: counts by status, name and queue; throughput per minute; success rate; mean and
 * p95 duration; hourly trend (`TaskStore.Stats` with ISO times).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const failing = (stats: Api.StatsView) => stats.successRate < 0.9
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const StatsView = Schema.Struct({
  total: Schema.Int,
  byStatus: Counts,
  byName: Schema.Array(Schema.Struct({ name: Schema.String, counts: Counts })),
  byQueue: Schema.Array(Schema.Struct({ queue: Schema.String, paused: Schema.Boolean, counts: Counts })),
  throughput: Schema.Array(Schema.Struct({ minute: Schema.Date, succeeded: Schema.Int, failed: Schema.Int })),
  successRate: Schema.Number,
  meanDurationMs: Schema.Number,
  p95DurationMs: Schema.Number,
  hourly: Schema.Array(Schema.Struct({ hour: Schema.Date, succeeded: Schema.Int, failed: Schema.Int }))
}).annotations({ identifier: "Stats" })

/**
 * @since 0.1.0
 * @category models
 */
export interface StatsView extends Schema.Schema.Type<typeof StatsView> {}

/**
 * The query of `GET /v1/stats`: the throughput window in minutes (1..1440, default 60).
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const query: typeof Api.StatsQuery.Encoded = { minutes: "15" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const StatsQuery = Schema.Struct({
  minutes: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1440)))
})

/**
 * A queue, whether it is paused, and its counts by status.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const backlog = (queue: Api.QueueView) => queue.counts.pending + queue.counts.scheduled
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const QueueView = Schema.Struct({
  queue: Schema.String,
  paused: Schema.Boolean,
  counts: Counts
}).annotations({ identifier: "Queue" })

/**
 * @since 0.1.0
 * @category models
 */
export interface QueueView extends Schema.Schema.Type<typeof QueueView> {}

/**
 * A registered task definition: what `POST /v1/tasks` accepts, with the JSON Schema of its
 * payload.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const names = (defs: ReadonlyArray<Api.DefinitionView>) => defs.map((def) => def.name)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const DefinitionView = Schema.Struct({
  name: Schema.String,
  queue: Schema.String,
  priority: TaskRecord.Priority,
  maxAttempts: Schema.Int,
  timeoutMs: Schema.NullOr(Schema.Number),
  softTimeoutMs: Schema.NullOr(Schema.Number),
  tags: Schema.Array(Schema.String),
  payloadSchema: Schema.Unknown
}).annotations({ identifier: "TaskDefinition" })

/**
 * @since 0.1.0
 * @category models
 */
export interface DefinitionView extends Schema.Schema.Type<typeof DefinitionView> {}

/**
 * The query of `GET /v1/events`: only events matching every filter given (comma-separated
 * lists). Resume after a dropped connection with the `Last-Event-ID` header (or `lastEventId`).
 *
 * @example
 * ```ts
 * import type { Api } from "@spindle/server"
 *
 * const query: typeof Api.EventsQuery.Encoded = { id: "0lx3k2…", type: "progress,succeeded" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const EventsQuery = Schema.Struct({
  id: CommaList(Schema.String),
  name: CommaList(Schema.String),
  queue: CommaList(Schema.String),
  type: CommaList(TaskEvent.TaskEventType),
  lastEventId: Schema.optional(Schema.String)
})

/**
 * A lifecycle event as sent in the `data:` line of `GET /v1/events` (its `id:` line is the
 * service's event-log id: consecutive per server, resumable with `Last-Event-ID` while held).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 * import { Schema } from "effect"
 *
 * const parse = Schema.decodeUnknownSync(Schema.parseJson(Api.EventView))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const EventView = Schema.Struct({ ...TaskEvent.TaskEvent.fields, at: Schema.Date }).annotations({
  identifier: "TaskEvent"
})

/**
 * @since 0.1.0
 * @category models
 */
export interface EventView extends Schema.Schema.Type<typeof EventView> {}

/**
 * The answer of `GET /readyz`: ready when the store answers and its migrations are applied.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const ok = (answer: Api.Readiness) => answer.ready
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const Readiness = Schema.Struct({
  ready: Schema.Boolean,
  store: Schema.String,
  checks: Schema.Array(
    Schema.Struct({ name: Schema.String, ok: Schema.Boolean, message: Schema.optional(Schema.String) })
  )
}).annotations({ identifier: "Readiness" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Readiness extends Schema.Schema.Type<typeof Readiness> {}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * A fault in a request, with where it is: `path` starts with `body`, `query`, `path` or
 * `headers`. Every 4xx the service answers has this shape or extends it.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const issue: Api.Issue = { path: ["body", "payload", "to"], message: "Expected string, actual 1" }
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const Issue = Schema.Struct({
  path: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category errors
 */
export interface Issue extends Schema.Schema.Type<typeof Issue> {}

/**
 * The request could not be read: malformed JSON, a wrong content type, or a parameter, query,
 * header or body that does not match the route's Schema. Answered with 400.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.BadRequest({ message: "malformed JSON", issues: [{ path: ["body"], message: "Unexpected token" }] })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>("@spindle/server/BadRequest")(
  "BadRequest",
  { message: Schema.String, issues: Schema.Array(Issue) },
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * No task definition of this name is registered with the service. Answered with 404 (the
 * issue's path is `["body", "name"]`, or `["body", "tasks", i, "name"]` in a batch).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.UnknownTask({ name: "send-emial", message: "no task named \"send-emial\"", issues: [] })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownTask extends Schema.TaggedError<UnknownTask>("@spindle/server/UnknownTask")(
  "UnknownTask",
  { name: Schema.String, message: Schema.String, issues: Schema.Array(Issue) },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The body is larger than the configured limit. Answered with 413 (the connection is kept).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.PayloadTooLarge({ limitBytes: 1_048_576, message: "body over 1 MiB" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>("@spindle/server/PayloadTooLarge")(
  "PayloadTooLarge",
  { limitBytes: Schema.Int, message: Schema.String },
  HttpApiSchema.annotations({ status: 413 })
) {}

/**
 * A bearer token is configured and the request did not carry it. Answered with 401.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.Unauthorized({ message: "missing or wrong bearer token" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("@spindle/server/Unauthorized")(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/**
 * No route answers this method and path. Answered with 404 (the issue's path is `["path"]`).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.NotFound({
 *   method: "GET",
 *   path: "/v1/taks",
 *   message: "no route for GET /v1/taks",
 *   issues: [{ path: ["path"], message: "no route for GET /v1/taks" }]
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>("@spindle/server/NotFound")(
  "NotFound",
  { method: Schema.String, path: Schema.String, message: Schema.String, issues: Schema.Array(Issue) },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The service failed unexpectedly (a defect, logged with the request id). Answered with 500.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.InternalError({ message: "internal error", requestId: "4f1c…" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalError extends Schema.TaggedError<InternalError>("@spindle/server/InternalError")(
  "InternalError",
  { message: Schema.String, requestId: Schema.optional(Schema.String) },
  HttpApiSchema.annotations({ status: 500 })
) {}

// -----------------------------------------------------------------------------
// Middleware
// -----------------------------------------------------------------------------

/**
 * Bearer-token authentication of the `/v1` routes (and of health, readiness and metrics when
 * so configured). With no token configured every request passes.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const middleware = Api.Authorization
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@spindle/server/Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

// -----------------------------------------------------------------------------
// Groups
// -----------------------------------------------------------------------------

const TaskId = Schema.Struct({ id: Schema.String })
const StoreErrors = [TaskStore.TaskStoreError] as const

/**
 * Submitting, reading, listing, cancelling and retrying tasks, under `/v1`.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const group = Api.TasksGroup
 * ```
 *
 * @since 0.1.0
 * @category groups
 */
export class TasksGroup extends HttpApiGroup.make("tasks")
  .add(
    HttpApiEndpoint.post("submit", "/tasks")
      .setPayload(SubmitRequest)
      .addSuccess(Submitted, { status: 201 })
      .addError(TaskClient.InvalidPayload)
      .addError(TaskClient.InvalidParams)
      .addError(UnknownTask)
      .addError(PayloadTooLarge)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.post("submitBatch", "/tasks/batch")
      .setPayload(SubmitBatchRequest)
      .addSuccess(SubmittedBatch, { status: 201 })
      .addError(TaskClient.InvalidPayload)
      .addError(TaskClient.InvalidParams)
      .addError(UnknownTask)
      .addError(PayloadTooLarge)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.get("list", "/tasks")
      .setUrlParams(ListQuery)
      .addSuccess(TaskPage)
      .addError(TaskClient.InvalidParams)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.get("get", "/tasks/:id")
      .setPath(TaskId)
      .addSuccess(TaskView)
      .addError(TaskStore.TaskNotFound)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.get("result", "/tasks/:id/result")
      .setPath(TaskId)
      .setUrlParams(ResultQuery)
      .addSuccess(TaskResult)
      .addError(TaskStore.TaskNotFound)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.get("logs", "/tasks/:id/logs")
      .setPath(TaskId)
      .addSuccess(TaskLogs)
      .addError(TaskStore.TaskNotFound)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.post("cancel", "/tasks/:id/cancel")
      .setPath(TaskId)
      .addSuccess(TaskView)
      .addError(TaskStore.TaskNotFound)
      .addError(TaskStatus.IllegalTransition)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.post("retry", "/tasks/:id/retry")
      .setPath(TaskId)
      .setPayload(RetryRequest)
      .addSuccess(TaskView)
      .addError(TaskStore.TaskNotFound)
      .addError(TaskStatus.IllegalTransition)
      .addError(TaskClient.InvalidParams)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.get("definitions", "/definitions")
      .addSuccess(Schema.Array(DefinitionView))
  )
  .prefix("/v1")
  .middleware(Authorization)
{}

/**
 * Statistics and queues, under `/v1`.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const group = Api.QueuesGroup
 * ```
 *
 * @since 0.1.0
 * @category groups
 */
export class QueuesGroup extends HttpApiGroup.make("queues")
  .add(
    HttpApiEndpoint.get("stats", "/stats")
      .setUrlParams(StatsQuery)
      .addSuccess(StatsView)
      .addError(TaskClient.InvalidParams)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.get("list", "/queues")
      .addSuccess(Schema.Array(QueueView))
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.post("pause", "/queues/:name/pause")
      .setPath(Schema.Struct({ name: Schema.NonEmptyTrimmedString }))
      .addSuccess(QueueView)
      .addError(...StoreErrors)
  )
  .add(
    HttpApiEndpoint.post("resume", "/queues/:name/resume")
      .setPath(Schema.Struct({ name: Schema.NonEmptyTrimmedString }))
      .addSuccess(QueueView)
      .addError(...StoreErrors)
  )
  .prefix("/v1")
  .middleware(Authorization)
{}

/**
 * `GET /v1/events`: Server-Sent Events of task lifecycle events (`id:` the service's event-log
 * id, consecutive per server; `event:` its type; `data:` an `EventView` as JSON), filtered,
 * resumable with `Last-Event-ID` while the missed events are still held by the service, otherwise
 * answered with an `event: reset` telling the client to reload.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const group = Api.EventsGroup
 * ```
 *
 * @since 0.1.0
 * @category groups
 */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("events", "/events")
      .setUrlParams(EventsQuery)
      .setHeaders(Schema.Struct({ "last-event-id": Schema.optional(Schema.String) }))
      .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
  )
  .prefix("/v1")
  .middleware(Authorization)
{}

/**
 * The store is unreachable or its migrations are not applied. Answered with 503 by `/readyz`.
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const error = new Api.NotReady({ store: "sqlite", checks: [{ name: "store", ok: false, message: "SQLITE_CANTOPEN" }] })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class NotReady extends Schema.TaggedError<NotReady>("@spindle/server/NotReady")(
  "NotReady",
  Readiness.fields,
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * Health, readiness and Prometheus metrics, at the root. Guarded by the bearer token only when
 * the service is configured so (`protectSystemRoutes`).
 *
 * @example
 * ```ts
 * import { Api } from "@spindle/server"
 *
 * const group = Api.SystemGroup
 * ```
 *
 * @since 0.1.0
 * @category groups
 */
export class SystemGroup extends HttpApiGroup.make("system")
  .add(HttpApiEndpoint.get("health", "/healthz").addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(HttpApiEndpoint.get("ready", "/readyz").addSuccess(Readiness).addError(NotReady))
  .add(
    HttpApiEndpoint.get("metrics", "/metrics").addSuccess(
      HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" })
    )
  )
  .middleware(Authorization)
{}

/**
 * The whole API. Every route may also answer `BadRequest` (400) for a request it cannot read,
 * `PayloadTooLarge` (413), and `InternalError` (500); a path no route answers gets `NotFound`
 * (404).
 *
 * @example
 * ```ts
 * import { HttpApiClient } from "@effect/platform"
 * import { Api } from "@spindle/server"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* HttpApiClient.make(Api.SpindleApi, { baseUrl: "http://127.0.0.1:7400" })
 *   return yield* client.queues.stats({ urlParams: {} })
 * })
 * ```
 *
 * @since 0.1.0
 * @category api
 */
export class SpindleApi extends HttpApi.make("spindle")
  .add(TasksGroup)
  .add(QueuesGroup)
  .add(EventsGroup)
  .add(SystemGroup)
  .addError(BadRequest)
  .addError(PayloadTooLarge)
  .addError(NotFound)
  .addError(InternalError)
  .annotate(OpenApi.Title, "Spindle task service")
  .annotate(OpenApi.Description, "Durable tasks: submit, inspect, cancel, retry; statistics; live events.")
{}
