/**
 * Task definitions: a name, Schemas for the payload, the success and the failure, and how the
 * task runs (queue, priority, attempts, retry policy, timeouts). A definition is plain data
 * shared by the code that submits the task and the worker that runs it; handlers are
 * registered separately, through a Layer, so their requirements are typed dependencies.
 *
 * @since 0.1.0
 */
import type { RetryPolicy } from "@spindle/core"
import type { Duration, Effect, ParseResult, Schema } from "effect"
import * as internal from "./internal/task.js"
import type { NewTask, Priority } from "./TaskRecord.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = internal.TypeId as never

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Any Schema without requirements, `never` included (`Schema.Never` as the failure of a task
 * that cannot fail): the bound of a task's payload, success and failure Schemas.
 *
 * @example
 * ```ts
 * import type { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const failure: Task.AnySchema = Schema.Never
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type AnySchema =
  | Schema.Schema<any, any, never>
  | Schema.Schema<any, never, never>
  | Schema.Schema<never, any, never>
  | Schema.Schema<never, never, never>

/**
 * A task definition.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const SendEmail = Task.make("send-email", {
 *   payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
 *   success: Schema.Struct({ messageId: Schema.String }),
 *   failure: Schema.Never,
 *   queue: "email",
 *   maxAttempts: 5
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Task<
  Name extends string = string,
  Payload extends AnySchema = AnySchema,
  Success extends AnySchema = AnySchema,
  Failure extends AnySchema = AnySchema
> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly payload: Payload
  readonly success: Success
  readonly failure: Failure
  /** Default `"default"`. */
  readonly queue: string
  /** Default `"normal"`. */
  readonly priority: Priority
  /** Attempts in all, the first included. Default: the retry policy's `maxAttempts`, else 1. */
  readonly maxAttempts: number
  readonly retry: RetryPolicy.Serializable | undefined
  /** Hard timeout of one attempt: the handler is interrupted and the attempt fails. */
  readonly timeout: Duration.Duration | undefined
  /** Soft timeout of one attempt: a warning (log, metric, event) without interrupting. */
  readonly softTimeout: Duration.Duration | undefined
  /**
   * Derives an idempotency key from the payload: while a task with the same name and key is
   * unfinished, submitting another returns the existing task.
   */
  readonly unique: ((payload: Schema.Schema.Type<Payload>) => string) | undefined
  /** Tags added to every task of this definition. */
  readonly tags: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 */
export declare namespace Task {
  /**
   * Options of `make`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options<
    Payload extends AnySchema,
    Success extends AnySchema,
    Failure extends AnySchema
  > {
    readonly payload: Payload
    readonly success: Success
    readonly failure: Failure
    readonly queue?: string | undefined
    readonly priority?: Priority | undefined
    readonly maxAttempts?: number | undefined
    readonly retry?: RetryPolicy.Serializable | undefined
    readonly timeout?: Duration.DurationInput | undefined
    readonly softTimeout?: Duration.DurationInput | undefined
    readonly unique?: ((payload: Schema.Schema.Type<Payload>) => string) | undefined
    readonly tags?: ReadonlyArray<string> | undefined
  }

  /**
   * Any task definition.
   *
   * @since 0.1.0
   * @category models
   */
  export type Any = Task<string, AnySchema, AnySchema, AnySchema>

  /**
   * The decoded payload type of a definition.
   *
   * @since 0.1.0
   * @category models
   */
  export type Payload<T extends Any> = Schema.Schema.Type<T["payload"]>

  /**
   * The decoded success type of a definition.
   *
   * @since 0.1.0
   * @category models
   */
  export type Success<T extends Any> = Schema.Schema.Type<T["success"]>

  /**
   * The decoded failure type of a definition.
   *
   * @since 0.1.0
   * @category models
   */
  export type Failure<T extends Any> = Schema.Schema.Type<T["failure"]>
}

/**
 * Defines a task. Dies with `IllegalArgumentException` on an empty name, `maxAttempts` below 1,
 * or a non-positive timeout.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", { status: Schema.Number }) {}
 *
 * const Notify = Task.make("notify", {
 *   payload: Schema.Struct({ userId: Schema.String, text: Schema.String }),
 *   success: Schema.Void,
 *   failure: Unavailable,
 *   retry: RetryPolicy.exponential({ initial: "1 second", maxAttempts: 5, retryOn: ["Unavailable"] }),
 *   timeout: "30 seconds",
 *   softTimeout: "10 seconds",
 *   unique: (payload) => `${payload.userId}:${payload.text}`
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <
  const Name extends string,
  Payload extends AnySchema,
  Success extends AnySchema,
  Failure extends AnySchema
>(
  name: Name,
  options: Task.Options<Payload, Success, Failure>
) => Task<Name, Payload, Success, Failure> = internal.make

/**
 * Whether a value is a task definition.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 *
 * Task.isTask({}) // false
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isTask: (u: unknown) => u is Task.Any = internal.isTask

/**
 * Validates and encodes a payload for storage (JSON). Fails with the Schema's ParseError,
 * which names the path of the fault.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Resize = Task.make("resize", { payload: Schema.Struct({ width: Schema.Int }), success: Schema.Void, failure: Schema.Never })
 * const encoded = Task.encodePayload(Resize, { width: 100 })
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodePayload: <T extends Task.Any>(
  task: T,
  payload: Task.Payload<T>
) => Effect.Effect<unknown, ParseResult.ParseError> = internal.encodePayload

/**
 * Decodes a stored payload (JSON) with the definition's Schema.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Resize = Task.make("resize", { payload: Schema.Struct({ width: Schema.Int }), success: Schema.Void, failure: Schema.Never })
 * const payload = Task.decodePayload(Resize, { width: 100 })
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodePayload: <T extends Task.Any>(
  task: T,
  encoded: unknown
) => Effect.Effect<Task.Payload<T>, ParseResult.ParseError> = internal.decodePayload

/**
 * Validates an unknown value (a JSON body from HTTP, say) as this task's payload and encodes
 * it for storage in one step.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Resize = Task.make("resize", { payload: Schema.Struct({ width: Schema.Int }), success: Schema.Void, failure: Schema.Never })
 * const stored = Task.validatePayload(Resize, JSON.parse('{"width":100}'))
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const validatePayload: <T extends Task.Any>(
  task: T,
  input: unknown
) => Effect.Effect<unknown, ParseResult.ParseError> = internal.validatePayload

/**
 * Encodes a handler's success for storage.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Count = Task.make("count", { payload: Schema.Void, success: Schema.Number, failure: Schema.Never })
 * const stored = Task.encodeSuccess(Count, 42)
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeSuccess: <T extends Task.Any>(
  task: T,
  value: Task.Success<T>
) => Effect.Effect<unknown, ParseResult.ParseError> = internal.encodeSuccess

/**
 * Decodes a stored result.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Count = Task.make("count", { payload: Schema.Void, success: Schema.Number, failure: Schema.Never })
 * const value = Task.decodeSuccess(Count, 42)
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeSuccess: <T extends Task.Any>(
  task: T,
  encoded: unknown
) => Effect.Effect<Task.Success<T>, ParseResult.ParseError> = internal.decodeSuccess

/**
 * Encodes a handler's typed failure for storage (in `TaskError.value`).
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Job = Task.make("job", { payload: Schema.Void, success: Schema.Void, failure: Schema.String })
 * const stored = Task.encodeFailure(Job, "quota exceeded")
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeFailure: <T extends Task.Any>(
  task: T,
  error: Task.Failure<T>
) => Effect.Effect<unknown, ParseResult.ParseError> = internal.encodeFailure

/**
 * Decodes a stored typed failure.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Job = Task.make("job", { payload: Schema.Void, success: Schema.Void, failure: Schema.String })
 * const error = Task.decodeFailure(Job, "quota exceeded")
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeFailure: <T extends Task.Any>(
  task: T,
  encoded: unknown
) => Effect.Effect<Task.Failure<T>, ParseResult.ParseError> = internal.decodeFailure

/**
 * What a submission may set on a new task; anything left out comes from the definition.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewTaskOptions {
  readonly queue?: string | undefined
  readonly priority?: Priority | undefined
  readonly maxAttempts?: number | undefined
  /** Not run before this time; undefined for now. */
  readonly runAt?: Date | undefined
  /** Undefined for the definition's `unique(payload)`; null for none. */
  readonly idempotencyKey?: string | null | undefined
  readonly parentId?: string | undefined
  /** Added to the definition's tags. */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * The row to store for a validated payload (`decoded` and its `encoded` form): the definition's
 * queue, priority, attempts, retry policy, timeouts, idempotency key and tags, each overridden by
 * the options given. Used by `TaskClient` and by the task service's HTTP API alike.
 *
 * @example
 * ```ts
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Resize = Task.make("resize", {
 *   payload: Schema.Struct({ url: Schema.String }),
 *   success: Schema.Void,
 *   failure: Schema.Never,
 *   queue: "images"
 * })
 * const row = Task.toNewTask(Resize, { url: "a.png" }, { url: "a.png" }, { priority: "high" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const toNewTask: <T extends Task.Any>(
  task: T,
  decoded: Task.Payload<T>,
  encoded: unknown,
  options?: NewTaskOptions
) => NewTask = internal.toNewTask
