/**
 * Cron tasks: submit a task on every tick of a cron expression. Every node of a deployment may
 * run the same schedules: each tick is inserted with `cron:<task name>:<tick ISO time>` as both
 * its id and its idempotency key, so exactly one insert per tick creates the task and the others
 * get the existing one back (the unique key while it is unfinished, the id after that).
 *
 * Parsing and the next tick come from effect's `Cron` module; waiting uses the `Clock`, so
 * `TestClock` drives schedules in tests.
 *
 * @since 0.1.0
 */
import type { Cron as EffectCron, DateTime, Effect, Layer, ParseResult } from "effect"
import * as internal from "./internal/cron.js"
import type * as Task from "./Task.js"
import type { TaskStore, TaskStoreError } from "./TaskStore.js"

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
 * A schedule: a task definition, a cron and the payload each tick submits.
 *
 * @example
 * ```ts
 * import { Cron, Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Cleanup = Task.make("cleanup", { payload: Schema.Struct({ days: Schema.Int }), success: Schema.Void, failure: Schema.Never })
 * const nightly: Cron.Schedule<typeof Cleanup> = Cron.schedule(Cleanup, { cron: "0 3 * * *", payload: { days: 30 } })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Schedule<T extends Task.Task.Any = Task.Task.Any> {
  readonly [TypeId]: TypeId
  readonly task: T
  readonly cron: EffectCron.Cron
  readonly payload: Task.Task.Payload<T>
}

/**
 * @since 0.1.0
 */
export declare namespace Schedule {
  /**
   * Options of `schedule`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options<T extends Task.Task.Any> {
    /** A cron expression (five fields, or six with seconds first) or a parsed `Cron`. */
    readonly cron: string | EffectCron.Cron
    readonly payload: Task.Task.Payload<T>
    /** The time zone of a cron expression given as a string. Default: the machine's. */
    readonly tz?: DateTime.TimeZone | string | undefined
  }
}

/**
 * Schedules a task. Dies with `IllegalArgumentException` on an invalid cron expression.
 *
 * @example
 * ```ts
 * import { Cron, Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Report = Task.make("report", { payload: Schema.Void, success: Schema.Void, failure: Schema.Never })
 * const everyFiveMinutes = Cron.schedule(Report, { cron: "*\/5 * * * *", payload: undefined, tz: "UTC" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule: <T extends Task.Task.Any>(task: T, options: Schedule.Options<T>) => Schedule<T> =
  internal.schedule

/**
 * The idempotency key of one tick of a schedule: `cron:<task name>:<tick ISO time>`.
 *
 * @example
 * ```ts
 * import { Cron, Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Report = Task.make("report", { payload: Schema.Void, success: Schema.Void, failure: Schema.Never })
 * const key = Cron.idempotencyKey(Cron.schedule(Report, { cron: "0 * * * *", payload: undefined }), new Date(0))
 * // "cron:report:1970-01-01T00:00:00.000Z"
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const idempotencyKey: (schedule: Schedule, tick: Date) => string = internal.idempotencyKey

/**
 * Submits the task of one tick (at most once per tick across every node sharing the store, while
 * that tick's task is unfinished).
 *
 * @example
 * ```ts
 * import { Cron, Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Report = Task.make("report", { payload: Schema.Void, success: Schema.Void, failure: Schema.Never })
 * const fired = Cron.fire(Cron.schedule(Report, { cron: "0 * * * *", payload: undefined }), new Date())
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const fire: (
  schedule: Schedule,
  tick: Date
) => Effect.Effect<TaskStore.Inserted, TaskStoreError | ParseResult.ParseError, TaskStore> = internal.fire

/**
 * Runs schedules forever: sleeps until each next tick, then fires it. Errors of one tick are
 * logged and the schedule goes on.
 *
 * @example
 * ```ts
 * import { Cron, Task } from "@spindle/tasks"
 * import { Effect, Schema } from "effect"
 *
 * const Report = Task.make("report", { payload: Schema.Void, success: Schema.Void, failure: Schema.Never })
 * const fiber = Effect.fork(Cron.run([Cron.schedule(Report, { cron: "0 * * * *", payload: undefined })]))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const run: (schedules: ReadonlyArray<Schedule>) => Effect.Effect<never, never, TaskStore> = internal.run

/**
 * Runs schedules for the lifetime of the layer (a scheduler on its own; a worker can also run
 * them through its `cron` option).
 *
 * @example
 * ```ts
 * import { Cron, Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Report = Task.make("report", { payload: Schema.Void, success: Schema.Void, failure: Schema.Never })
 * const SchedulerLive = Cron.layer(Cron.schedule(Report, { cron: "0 * * * *", payload: undefined }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (...schedules: ReadonlyArray<Schedule>) => Layer.Layer<never, never, TaskStore> = internal.layer
