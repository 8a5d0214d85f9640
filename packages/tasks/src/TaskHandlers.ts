/**
 * Handlers: the code that runs a task. A handler is registered for one task definition; the
 * worker decodes the stored payload with the definition's Schema before the handler runs (a
 * payload that does not decode fails the task, not retried) and encodes its success or typed
 * failure for storage. Handlers are gathered by `layer`, whose requirements are the handlers'
 * requirements, so what a handler needs is a typed dependency of the worker's layer.
 *
 * @since 0.1.0
 */
import type { Effect, Layer, ParseResult } from "effect"
import { Context, Data } from "effect"
import * as internal from "./internal/taskHandlers.js"
import type * as Task from "./Task.js"
import type { TaskContext } from "./TaskContext.js"

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
 * A handler of one task definition, needing `R`.
 *
 * @example
 * ```ts
 * import { Task, TaskHandlers } from "@spindle/tasks"
 * import { Effect, Schema } from "effect"
 *
 * const Double = Task.make("double", { payload: Schema.Number, success: Schema.Number, failure: Schema.Never })
 * const handler: TaskHandlers.Handler<typeof Double> = TaskHandlers.handler(Double, (n) => Effect.succeed(n * 2))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler<T extends Task.Task.Any = Task.Task.Any, R = never> {
  readonly [TypeId]: TypeId
  readonly task: T
  readonly handle: (
    payload: Task.Task.Payload<T>,
    ctx: TaskContext.Service
  ) => Effect.Effect<Task.Task.Success<T>, Task.Task.Failure<T>, R | TaskContext>
}

/**
 * A handler run failed without succeeding: `failure` is the handler's typed failure (`error`,
 * with its encoded form in `encoded` when the failure Schema could encode it); `result` means
 * the handler succeeded with a value its success Schema could not encode.
 *
 * @example
 * ```ts
 * import { TaskHandlers } from "@spindle/tasks"
 *
 * const error = new TaskHandlers.HandlerError({ reason: "failure", error: "quota exceeded", encoded: "quota exceeded" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlerError extends Data.TaggedError("HandlerError")<{
  readonly reason: "failure" | "result"
  readonly error: unknown
  readonly encoded?: unknown
}> {}

/**
 * @since 0.1.0
 */
export declare namespace TaskHandlers {
  /**
   * One registered handler in its runnable form: its requirements provided, working on stored
   * (encoded) values.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Entry {
    readonly task: Task.Task.Any
    /** Decodes a stored payload with the definition's Schema. */
    readonly decode: (encoded: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
    /**
     * Runs the handler on a decoded payload; succeeds with the encoded result. It needs the
     * attempt's `TaskContext` and the services of `context`, which the caller provides (the
     * worker starts each attempt's fiber with them, rather than providing them per attempt).
     */
    readonly run: (payload: unknown, ctx: TaskContext.Service) => Effect.Effect<unknown, HandlerError, unknown>
    /** The services the handler needs, captured when the handlers' layer was built. */
    readonly context: Context.Context<never>
  }

  /**
   * The registry the worker reads.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Registry {
    readonly entries: ReadonlyMap<string, Entry>
    /** The task names with a handler. */
    readonly names: ReadonlyArray<string>
  }

  /**
   * The requirements of a handler.
   *
   * @since 0.1.0
   * @category models
   */
  export type Context<H> = H extends Handler<any, infer R> ? R : never
}

/**
 * The handlers a worker runs, by task name.
 *
 * @example
 * ```ts
 * import { TaskHandlers } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const names = Effect.map(TaskHandlers.TaskHandlers, (registry) => registry.names)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskHandlers extends Context.Tag("@spindle/tasks/TaskHandlers")<TaskHandlers, TaskHandlers.Registry>() {}

/**
 * Defines the handler of a task. It receives the decoded payload and the attempt's context (also
 * available as the `TaskContext` service), and returns the task's success or fails with its typed
 * failure.
 *
 * @example
 * ```ts
 * import { Task, TaskHandlers } from "@spindle/tasks"
 * import { Effect, Schema } from "effect"
 *
 * const Resize = Task.make("resize", {
 *   payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
 *   success: Schema.Struct({ url: Schema.String }),
 *   failure: Schema.Never
 * })
 *
 * const ResizeHandler = TaskHandlers.handler(Resize, (payload, ctx) =>
 *   Effect.gen(function*() {
 *     yield* ctx.progress(0.5, "downloaded")
 *     return { url: `${payload.url}?w=${payload.width}` }
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const handler: <T extends Task.Task.Any, R = never>(
  task: T,
  handle: (
    payload: Task.Task.Payload<T>,
    ctx: TaskContext.Service
  ) => Effect.Effect<Task.Task.Success<T>, Task.Task.Failure<T>, R>
) => Handler<T, Exclude<R, TaskContext>> = internal.handler

/**
 * Registers handlers: a layer providing `TaskHandlers`, requiring what the handlers require.
 * Dies when two handlers share a task name.
 *
 * @example
 * ```ts
 * import { Task, TaskHandlers } from "@spindle/tasks"
 * import { Effect, Schema } from "effect"
 *
 * const Ping = Task.make("ping", { payload: Schema.Void, success: Schema.String, failure: Schema.Never })
 * const HandlersLive = TaskHandlers.layer(TaskHandlers.handler(Ping, () => Effect.succeed("pong")))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <const Handlers extends ReadonlyArray<Handler<any, any>>>(
  ...handlers: Handlers
) => Layer.Layer<TaskHandlers, never, TaskHandlers.Context<Handlers[number]>> = internal.layer

/**
 * Builds a registry from handlers whose requirements are provided by `context` (the machinery of
 * `layer`, for tests and custom runtimes).
 *
 * @example
 * ```ts
 * import { Task, TaskHandlers } from "@spindle/tasks"
 * import { Context, Effect, Schema } from "effect"
 *
 * const Ping = Task.make("ping", { payload: Schema.Void, success: Schema.String, failure: Schema.Never })
 * const registry = TaskHandlers.registry([TaskHandlers.handler(Ping, () => Effect.succeed("pong"))], Context.empty())
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const registry: <R>(
  handlers: ReadonlyArray<Handler<any, R>>,
  context: Context.Context<R>
) => TaskHandlers.Registry = internal.registry
