/**
 * What a handler knows about the task it runs: its id, name, queue and attempt, and two ways to
 * report back while it works: `progress(fraction, message)` (throttled, so a tight loop does
 * not hammer the store) and `log(message)` (lines kept with the task, written in batches).
 *
 * The worker provides a `TaskContext` to every attempt, and also passes it to the handler as its
 * second argument.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Context } from "effect"
import * as internal from "./internal/taskContext.js"
import type { TaskLogLine } from "./TaskRecord.js"

/**
 * @since 0.1.0
 */
export declare namespace TaskContext {
  /**
   * The level of a log line.
   *
   * @since 0.1.0
   * @category models
   */
  export type Level = TaskLogLine["level"]

  /**
   * The service a handler sees.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly id: string
    readonly name: string
    readonly queue: string
    /** The attempt that runs now, 1 for the first. */
    readonly attempt: number
    readonly maxAttempts: number
    /** The worker running the attempt. */
    readonly workerId: string
    /**
     * Reports progress (clamped to 0..1) with an optional message. Writes at most once per the
     * worker's progress interval; the latest value is always written before the attempt ends.
     * Never fails: a store error is logged.
     */
    readonly progress: (fraction: number, message?: string) => Effect.Effect<void>
    /** Appends a line to the task's log (written in batches; flushed before the attempt ends). */
    readonly log: (message: string, level?: Level) => Effect.Effect<void>
  }
}

/**
 * The context of the running attempt, provided by the worker.
 *
 * @example
 * ```ts
 * import { TaskContext } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const work = Effect.gen(function*() {
 *   const ctx = yield* TaskContext.TaskContext
 *   yield* ctx.log(`attempt ${ctx.attempt} of ${ctx.maxAttempts}`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskContext extends Context.Tag("@spindle/tasks/TaskContext")<TaskContext, TaskContext.Service>() {}

/**
 * Reports progress of the running task.
 *
 * @example
 * ```ts
 * import { TaskContext } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const work = Effect.forEach([1, 2, 3, 4], (i) => TaskContext.progress(i / 4, `step ${i}`), { discard: true })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const progress = (fraction: number, message?: string): Effect.Effect<void, never, TaskContext> =>
  internal.withContext(TaskContext, (ctx) => ctx.progress(fraction, message))

/**
 * Appends a line to the running task's log.
 *
 * @example
 * ```ts
 * import { TaskContext } from "@spindle/tasks"
 *
 * const work = TaskContext.log("fetched 20 rows")
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const log = (message: string, level?: TaskContext.Level): Effect.Effect<void, never, TaskContext> =>
  internal.withContext(TaskContext, (ctx) => ctx.log(message, level))
