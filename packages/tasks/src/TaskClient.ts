/**
 * The client applications use to work with durable tasks: submit one or many (validated
 * against the task's payload Schema, nothing stored on bad input), await a typed result, get,
 * list, cancel, retry, statistics and the event stream.
 *
 * The client is a typed facade over the raw `TaskStore`: it encodes payloads and decodes
 * results and failures with the task definition's Schemas. Awaiting a result follows the
 * store's event stream (it subscribes first, then reads the current record, so a task that
 * finishes in between is not missed) rather than polling; only as a backstop against a lost
 * event does it re-read a task it has heard nothing about for `recheckInterval` (30 s). A client
 * holds one subscription to the store's events, whatever the number of tasks awaited, and routes
 * each finishing event to the awaits of its task.
 *
 * Errors are `Schema.TaggedError`s annotated with the HTTP status the server answers with:
 *
 * | error | status | when |
 * | --- | --- | --- |
 * | `InvalidPayload` | 400 | the payload does not match the task's Schema (with the path of the fault) |
 * | `InvalidParams` | 400 | an option is out of range (limit, cursor, maxAttempts, delay...) |
 * | `TaskNameMismatch` | 400 | the task id belongs to another task definition |
 * | `TaskNotFound` | 404 | no task with this id (from `TaskStore`) |
 * | `IllegalTransition` | 409 | cancel or retry not allowed in the task's status (from `TaskStatus`) |
 * | `TaskCancelled` | 409 | the awaited task was cancelled |
 * | `TaskFailed` | 422 | the awaited task failed with its typed failure (decoded) |
 * | `TaskDefect` | 500 | the awaited task failed without a typed failure (a defect, a lost worker) |
 * | `TaskTimedOut` | 500 | the awaited task's last attempt exceeded its hard timeout |
 * | `TaskDecodeError` | 500 | a stored payload, result or failure no longer decodes with the definition |
 * | `AwaitTimeout` | 504 | the task did not finish within the await's `timeout` |
 * | `TaskStoreError` | 503 | the store failed (from `TaskStore`) |
 *
 * Metrics: `spindle_tasks_submitted_total{name,queue}` counts tasks created by `submit` and
 * `submitMany` (a submission answered with an existing task by its idempotency key is not
 * counted).
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import type { Duration, Option, Scope, Stream } from "effect"
import { Context, Effect, Layer, Schema } from "effect"
import * as internal from "./internal/taskClient.js"
import type * as Task from "./Task.js"
import type { TaskEvent, TaskEventType } from "./TaskEvent.js"
import type { Priority, TaskRecord } from "./TaskRecord.js"
import { TaskError } from "./TaskRecord.js"
import type { IllegalTransition } from "./TaskStatus.js"
import type { TaskNotFound, TaskStoreError } from "./TaskStore.js"
import { TaskStore } from "./TaskStore.js"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * One fault of an invalid payload: where (the path from the payload's root) and what.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const issue: TaskClient.PayloadIssue = { path: ["to"], message: "Expected string, actual 1" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const PayloadIssue = Schema.Struct({
  path: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export interface PayloadIssue extends Schema.Schema.Type<typeof PayloadIssue> {}

/**
 * A payload does not match its task's Schema. Nothing was stored. `issues` lists every fault
 * with its path; `index` is the position of the bad payload in a `submitMany` call. Answered
 * with 400 over HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.InvalidPayload({
 *   taskName: "send-email",
 *   message: "invalid payload for task \"send-email\"",
 *   issues: [{ path: ["to"], message: "Expected string, actual 1" }]
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>("@spindle/tasks/InvalidPayload")(
  "InvalidPayload",
  {
    taskName: Schema.String,
    index: Schema.optional(Schema.Int),
    message: Schema.String,
    issues: Schema.Array(PayloadIssue)
  },
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * An option or parameter is out of range (a `limit` outside 1..1000, an empty cursor, a
 * `maxAttempts` below 1, both `runAt` and `delay`...). Nothing was done. Answered with 400 over
 * HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.InvalidParams({ parameter: "limit", message: "limit must be an integer in 1..1000" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidParams extends Schema.TaggedError<InvalidParams>("@spindle/tasks/InvalidParams")(
  "InvalidParams",
  { parameter: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * A typed operation was given the id of a task of another definition. Answered with 400 over
 * HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.TaskNameMismatch({ taskId: "t1", expected: "send-email", actual: "resize" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNameMismatch extends Schema.TaggedError<TaskNameMismatch>("@spindle/tasks/TaskNameMismatch")(
  "TaskNameMismatch",
  { taskId: Schema.String, expected: Schema.String, actual: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `task ${this.taskId} is a "${this.actual}" task, not "${this.expected}"`
  }
}

/**
 * The awaited task failed with the typed failure of its definition: `value` is the decoded
 * failure, `error` what the store kept (tag, message, cause and the encoded value). `status` is
 * `failed` (the error was not retried) or `dead` (every attempt failed). Answered with 422 over
 * HTTP (send `error`, which is JSON, rather than `value`).
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.TaskFailed<string>({
 *   taskId: "t1",
 *   taskName: "job",
 *   status: "dead",
 *   attempt: 3,
 *   error: { tag: "QuotaExceeded", message: "quota exceeded", cause: "QuotaExceeded", value: "quota" },
 *   value: "quota"
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskFailed<out E = unknown> extends Schema.TaggedError<TaskFailed>("@spindle/tasks/TaskFailed")(
  "TaskFailed",
  {
    taskId: Schema.String,
    taskName: Schema.String,
    status: Schema.Literal("failed", "dead"),
    attempt: Schema.Int,
    error: TaskError,
    value: Schema.Unknown
  },
  HttpApiSchema.annotations({ status: 422 })
) {
  /** The decoded typed failure. */
  declare readonly value: E

  override get message(): string {
    return `task ${this.taskId} (${this.taskName}) ended ${this.status} after ${this.attempt} attempt(s): ${this.error.tag}: ${this.error.message}`
  }
}

/**
 * The awaited task ended `failed` or `dead` without a typed failure of its definition: the
 * handler died (a defect), was interrupted, or its worker lost the lease. `error` is what the
 * store kept, when it kept one. Answered with 500 over HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.TaskDefect({ taskId: "t1", taskName: "job", status: "dead", attempt: 1, error: null })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskDefect extends Schema.TaggedError<TaskDefect>("@spindle/tasks/TaskDefect")(
  "TaskDefect",
  {
    taskId: Schema.String,
    taskName: Schema.String,
    status: Schema.Literal("failed", "dead"),
    attempt: Schema.Int,
    error: Schema.NullOr(TaskError)
  },
  HttpApiSchema.annotations({ status: 500 })
) {
  override get message(): string {
    const why = this.error === null ? "no error recorded" : `${this.error.tag}: ${this.error.message}`
    return `task ${this.taskId} (${this.taskName}) ended ${this.status} after ${this.attempt} attempt(s): ${why}`
  }
}

/**
 * The awaited task's last attempt exceeded its hard timeout (status `timed-out`). Not to be
 * confused with `AwaitTimeout`, which is the caller giving up waiting. Answered with 500 over
 * HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.TaskTimedOut({ taskId: "t1", taskName: "job", attempt: 1, error: null })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskTimedOut extends Schema.TaggedError<TaskTimedOut>("@spindle/tasks/TaskTimedOut")(
  "TaskTimedOut",
  { taskId: Schema.String, taskName: Schema.String, attempt: Schema.Int, error: Schema.NullOr(TaskError) },
  HttpApiSchema.annotations({ status: 500 })
) {
  override get message(): string {
    return `task ${this.taskId} (${this.taskName}) timed out on attempt ${this.attempt}`
  }
}

/**
 * The awaited task was cancelled. Answered with 409 over HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.TaskCancelled({ taskId: "t1", taskName: "job" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskCancelled extends Schema.TaggedError<TaskCancelled>("@spindle/tasks/TaskCancelled")(
  "TaskCancelled",
  { taskId: Schema.String, taskName: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {
  override get message(): string {
    return `task ${this.taskId} (${this.taskName}) was cancelled`
  }
}

/**
 * A stored payload, result or failure value does not decode with the task definition's
 * Schema (the definition changed since the task was stored). Answered with 500 over HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.TaskDecodeError({ taskId: "t1", taskName: "job", field: "result", message: "Expected number" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskDecodeError extends Schema.TaggedError<TaskDecodeError>("@spindle/tasks/TaskDecodeError")(
  "TaskDecodeError",
  {
    taskId: Schema.String,
    taskName: Schema.String,
    field: Schema.Literal("payload", "result", "failure"),
    message: Schema.String
  },
  HttpApiSchema.annotations({ status: 500 })
) {}

/**
 * The awaited task did not finish within the `timeout` given to `await`. The task itself goes
 * on. Answered with 504 over HTTP.
 *
 * @example
 * ```ts
 * import { TaskClient } from "@spindle/tasks"
 *
 * const error = new TaskClient.AwaitTimeout({ taskId: "t1", timeoutMs: 30000 })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class AwaitTimeout extends Schema.TaggedError<AwaitTimeout>("@spindle/tasks/AwaitTimeout")(
  "AwaitTimeout",
  { taskId: Schema.String, timeoutMs: Schema.Number },
  HttpApiSchema.annotations({ status: 504 })
) {
  override get message(): string {
    return `task ${this.taskId} did not finish within ${this.timeoutMs} ms`
  }
}

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export declare namespace TaskClient {
  /**
   * Options of `submit`. Defaults come from the task definition.
   *
   * @since 0.1.0
   * @category models
   */
  export interface SubmitOptions {
    /** Not run before this time (the task is `scheduled` until then). Exclusive with `delay`. */
    readonly runAt?: Date | undefined
    /** Not run before now + `delay`. Exclusive with `runAt`. */
    readonly delay?: Duration.DurationInput | undefined
    readonly priority?: Priority | undefined
    readonly queue?: string | undefined
    /**
     * While an unfinished task of the same name has this key, submitting returns that task
     * (`created: false`). Defaults to the definition's `unique(payload)`; `null` opts out.
     */
    readonly idempotencyKey?: string | null | undefined
    readonly parentId?: string | undefined
    /** Added to the definition's tags. */
    readonly tags?: ReadonlyArray<string> | undefined
    /** Overrides the definition's `maxAttempts` (an integer >= 1). */
    readonly maxAttempts?: number | undefined
  }

  /**
   * Options of `submitMany`: those of `submit` applied to every task, except the idempotency
   * key, which comes from the definition's `unique(payload)` for each payload.
   *
   * @since 0.1.0
   * @category models
   */
  export interface SubmitManyOptions extends Omit<SubmitOptions, "idempotencyKey"> {}

  /**
   * A submitted task: its id, its definition, whether this call created it (false when an
   * unfinished task with the same idempotency key already existed: that one is returned), and
   * the stored record.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Handle<T extends Task.Task.Any> {
    readonly id: string
    readonly task: T
    readonly created: boolean
    readonly record: TaskRecord
  }

  /**
   * Options of `await`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface AwaitOptions {
    /** Give up with `AwaitTimeout` after this long (the task goes on). Default: wait forever. */
    readonly timeout?: Duration.DurationInput | undefined
    /**
     * `await` follows the store's events; as a backstop against a lost event (a dropped
     * database connection), it also re-reads the task after this long without news. Default
     * 30 seconds.
     */
    readonly recheckInterval?: Duration.DurationInput | undefined
  }

  /**
   * Everything `await` can fail with.
   *
   * @since 0.1.0
   * @category models
   */
  export type AwaitError<T extends Task.Task.Any> =
    | TaskFailed<Task.Task.Failure<T>>
    | TaskDefect
    | TaskTimedOut
    | TaskCancelled
    | TaskDecodeError
    | TaskNameMismatch
    | AwaitTimeout
    | TaskNotFound
    | TaskStoreError

  /**
   * A record with its payload, result and failure decoded by the definition's Schemas.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Typed<T extends Task.Task.Any> {
    readonly record: TaskRecord
    readonly payload: Task.Task.Payload<T>
    /** Some once succeeded. */
    readonly result: Option.Option<Task.Task.Success<T>>
    /** Some when the last attempt failed with the definition's typed failure. */
    readonly failure: Option.Option<Task.Task.Failure<T>>
  }

  /**
   * Options of `retry`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface RetryOptions {
    /** Run again at this time rather than now. Exclusive with `delay`. */
    readonly runAt?: Date | undefined
    /** Run again after this delay. Exclusive with `runAt`. */
    readonly delay?: Duration.DurationInput | undefined
    /** More attempts to grant (an integer >= 1). Default 1. */
    readonly extraAttempts?: number | undefined
  }

  /**
   * Options of `stats`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface StatsOptions {
    /** The throughput window, in minutes (an integer in 1..1440). Default 60. */
    readonly minutes?: number | undefined
  }

  /**
   * Which events `events` delivers; every field given must match.
   *
   * @since 0.1.0
   * @category models
   */
  export interface EventFilter {
    readonly ids?: ReadonlyArray<string> | undefined
    readonly names?: ReadonlyArray<string> | undefined
    readonly queues?: ReadonlyArray<string> | undefined
    readonly types?: ReadonlyArray<TaskEventType> | undefined
  }

  /**
   * The client's operations.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /**
     * Validates the payload with the task's Schema and stores the task. An invalid payload
     * fails with `InvalidPayload` (naming the path of each fault) and stores nothing.
     */
    readonly submit: <T extends Task.Task.Any>(
      task: T,
      payload: Task.Task.Payload<T>,
      options?: SubmitOptions
    ) => Effect.Effect<Handle<T>, InvalidPayload | InvalidParams | TaskStoreError>

    /**
     * Like `submit` for a value of unknown shape (a JSON body): decodes it with the task's
     * payload Schema, then encodes it for storage.
     */
    readonly submitUnknown: <T extends Task.Task.Any>(
      task: T,
      input: unknown,
      options?: SubmitOptions
    ) => Effect.Effect<Handle<T>, InvalidPayload | InvalidParams | TaskStoreError>

    /**
     * Validates every payload first (the first bad one fails the call with its `index`, and
     * nothing is stored), then stores them all in one store round trip. Handles come back in
     * input order.
     */
    readonly submitMany: <T extends Task.Task.Any>(
      task: T,
      payloads: Iterable<Task.Task.Payload<T>>,
      options?: SubmitManyOptions
    ) => Effect.Effect<ReadonlyArray<Handle<T>>, InvalidPayload | InvalidParams | TaskStoreError>

    /** Like `submitMany` for values of unknown shape. */
    readonly submitManyUnknown: <T extends Task.Task.Any>(
      task: T,
      inputs: Iterable<unknown>,
      options?: SubmitManyOptions
    ) => Effect.Effect<ReadonlyArray<Handle<T>>, InvalidPayload | InvalidParams | TaskStoreError>

    /**
     * Waits for a task to finish and returns its decoded success, or fails with its decoded
     * typed failure (`TaskFailed`) or how else it ended (`TaskDefect`, `TaskTimedOut`,
     * `TaskCancelled`). A task already finished answers at once. Follows the store's events
     * (re-reading only as a backstop); with `timeout`, gives up with `AwaitTimeout`.
     */
    readonly await: {
      <T extends Task.Task.Any>(
        handle: Handle<T>,
        options?: AwaitOptions
      ): Effect.Effect<Task.Task.Success<T>, AwaitError<T>>
      <T extends Task.Task.Any>(
        task: T,
        id: string,
        options?: AwaitOptions
      ): Effect.Effect<Task.Task.Success<T>, AwaitError<T>>
    }

    /**
     * Waits for any task to finish (whatever its status) and returns its final record: the
     * untyped form of `await`, for an HTTP long poll.
     */
    readonly awaitRecord: (
      id: string,
      options?: AwaitOptions
    ) => Effect.Effect<TaskRecord, AwaitTimeout | TaskNotFound | TaskStoreError>

    readonly get: (id: string) => Effect.Effect<Option.Option<TaskRecord>, TaskStoreError>

    /** `get` with the payload, result and failure decoded by the definition's Schemas. */
    readonly getTyped: <T extends Task.Task.Any>(
      task: T,
      id: string
    ) => Effect.Effect<Option.Option<Typed<T>>, TaskNameMismatch | TaskDecodeError | TaskStoreError>

    /** A page of tasks; `limit` must be in 1..1000 and `cursor` a cursor returned before. */
    readonly list: (
      params?: TaskStore.ListParams
    ) => Effect.Effect<TaskStore.Page, InvalidParams | TaskStoreError>

    /**
     * Cancels a task: a pending or scheduled one at once, a running one by asking its worker
     * to interrupt it. Fails with IllegalTransition for a finished task.
     */
    readonly cancel: (
      id: string
    ) => Effect.Effect<TaskRecord, TaskNotFound | IllegalTransition | TaskStoreError>

    /** Retries a task that ended failed, dead, cancelled or timed-out. */
    readonly retry: (
      id: string,
      options?: RetryOptions
    ) => Effect.Effect<TaskRecord, InvalidParams | TaskNotFound | IllegalTransition | TaskStoreError>

    /**
     * Counts by status, name and queue; throughput per minute; success rate; mean and p95
     * duration; hourly trend.
     */
    readonly stats: (options?: StatsOptions) => Effect.Effect<TaskStore.Stats, InvalidParams | TaskStoreError>

    /** Lifecycle events as they happen (a hot stream), filtered. */
    readonly events: (filter?: EventFilter) => Stream.Stream<TaskEvent>
  }
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * The task client service; `TaskClient.layer` builds it over a `TaskStore`.
 *
 * @example
 * ```ts
 * import { MemoryStore, Task, TaskClient } from "@spindle/tasks"
 * import { Effect, Schema } from "effect"
 *
 * const SendEmail = Task.make("send-email", {
 *   payload: Schema.Struct({ to: Schema.String }),
 *   success: Schema.Struct({ messageId: Schema.String }),
 *   failure: Schema.String
 * })
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* TaskClient.TaskClient
 *   const handle = yield* client.submit(SendEmail, { to: "ada@example.com" })
 *   const { messageId } = yield* client.await(handle, { timeout: "1 minute" })
 *   return messageId
 * }).pipe(Effect.provide(TaskClient.TaskClient.layer), Effect.provide(MemoryStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskClient extends Context.Tag("@spindle/tasks/TaskClient")<TaskClient, TaskClient.Service>() {
  /**
   * The client over the `TaskStore` in context.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<TaskClient, never, TaskStore> = Layer.scoped(
    TaskClient,
    Effect.flatMap(TaskStore, internal.make)
  )
}

/**
 * Builds a client over a store, for code that holds a store and wants the typed facade without
 * a Layer. The client keeps one subscription to the store's events (for `await`) until the
 * scope closes.
 *
 * @example
 * ```ts
 * import { TaskClient, TaskStore } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const client = Effect.flatMap(TaskStore.TaskStore, TaskClient.make)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (store: Context.Tag.Service<TaskStore>) => Effect.Effect<TaskClient.Service, never, Scope.Scope> =
  internal.make

/**
 * The client over the `TaskStore` in context (the same as `TaskClient.layer`).
 *
 * @example
 * ```ts
 * import { MemoryStore, TaskClient } from "@spindle/tasks"
 * import { Layer } from "effect"
 *
 * const live = TaskClient.layer.pipe(Layer.provide(MemoryStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<TaskClient, never, TaskStore> = TaskClient.layer

/**
 * The predicate of an event filter, as `events(filter)` applies it: every list given must
 * contain the event's value (no filter keeps every event).
 *
 * @example
 * ```ts
 * import { TaskClient, type TaskEvent } from "@spindle/tasks"
 * import { Stream } from "effect"
 *
 * const failuresOf = (events: Stream.Stream<TaskEvent.TaskEvent>) =>
 *   Stream.filter(events, TaskClient.eventMatches({ names: ["send-email"], types: ["failed"] }))
 * ```
 *
 * @since 0.1.0
 * @category filtering
 */
export const eventMatches: (filter: TaskClient.EventFilter | undefined) => (event: TaskEvent) => boolean =
  internal.eventMatches
