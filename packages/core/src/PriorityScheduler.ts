/**
 * A priority scheduler: effects are submitted at one of four levels
 * (`critical`, `high`, `normal`, `low`) and at most `concurrency` of them run
 * at once. When a slot frees, the scheduler picks the next task by policy:
 *
 * - `"weighted"` (default): deterministic smooth weighted round-robin (nginx's
 *   algorithm) among the non-empty levels, weights 4 : 3 : 2 : 1 unless
 *   configured. Under saturation the dispatch ratio is exact, not random, and
 *   the levels are interleaved (4 : 1 gives `a a b a a`, not `a a a a b`).
 * - `"strict"`: always the highest non-empty level.
 *
 * Within a level tasks are served first in, first out. With `aging`, a task
 * that has waited `after` in its level is promoted one level up (and again
 * after another `after`, up to `critical`), so nothing starves, even under the
 * strict policy.
 *
 * Effect's `TPriorityQueue` hands out equal priorities newest first and a
 * `Semaphore` has no notion of priority; this module keeps one FIFO queue per
 * level and a counted set of slots, and runs every task in its own fiber with
 * the context and fiber refs of its submitter.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/priorityScheduler.js"

/**
 * The identifier of `PriorityScheduler` values.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 *
 * const isPriorityScheduler = (u: object): boolean => PriorityScheduler.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId as never

/**
 * The type of `PriorityScheduler.TypeId`.
 *
 * @example
 * ```ts
 * import type { PriorityScheduler } from "@spindle/core"
 *
 * type Branded = { readonly [K in PriorityScheduler.TypeId]: PriorityScheduler.TypeId }
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * The four priority levels, as a Schema (so a priority can be stored with a
 * durable task or read from a request).
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Schema } from "effect"
 *
 * const priority = Schema.decodeUnknownSync(PriorityScheduler.Priority)("high")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const Priority: Schema.Literal<["critical", "high", "normal", "low"]> = Schema.Literal(
  "critical",
  "high",
  "normal",
  "low"
)

/**
 * A priority level: `"critical" | "high" | "normal" | "low"`.
 *
 * @example
 * ```ts
 * import type { PriorityScheduler } from "@spindle/core"
 *
 * const urgent: PriorityScheduler.Priority = "critical"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Priority = typeof Priority.Type

/**
 * The levels from the highest to the lowest.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 *
 * PriorityScheduler.priorities // ["critical", "high", "normal", "low"]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const priorities: readonly ["critical", "high", "normal", "low"] = internal.priorities

/**
 * How the next task is picked when a slot frees: `"weighted"` (smooth weighted
 * round-robin among the non-empty levels) or `"strict"` (the highest non-empty
 * level).
 *
 * @example
 * ```ts
 * import type { PriorityScheduler } from "@spindle/core"
 *
 * const policy: PriorityScheduler.Policy = "strict"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Policy = "weighted" | "strict"

/**
 * The share of each level under the weighted policy: positive finite numbers.
 *
 * @example
 * ```ts
 * import type { PriorityScheduler } from "@spindle/core"
 *
 * const weights: PriorityScheduler.Weights = { critical: 8, high: 4, normal: 2, low: 1 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Weights = { readonly [P in Priority]: number }

/**
 * The default weights, critical 4 : high 3 : normal 2 : low 1.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 *
 * PriorityScheduler.defaultWeights.low // 1
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const defaultWeights: Weights = internal.defaultWeights

/**
 * A priority scheduler.
 *
 * - `submit(effect, { priority })` queues the effect and waits for its own
 *   result. Interrupting the caller while the task is queued removes it (it
 *   never runs); while it runs, interrupts it.
 * - `fork(effect, { priority })` queues the effect and returns a `Task`
 *   handle at once (after waiting for room under backpressure).
 * - `pause` / `resume` stop and restart dispatching without closing.
 * - `stats` reads the live statistics.
 *
 * The task runs in a fiber of its own, with the services and fiber refs
 * (log annotations, spans, clock...) of the fiber that submitted it, and is
 * always interruptible by the scheduler.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const scheduler = yield* PriorityScheduler.make({ name: "reports", concurrency: 2 })
 *   const urgent = yield* scheduler.submit(Effect.succeed("pager"), { priority: "critical" })
 *   const task = yield* scheduler.fork(Effect.succeed("digest"), { priority: "low" })
 *   const digest = yield* task.await
 *   return [urgent, digest]
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PriorityScheduler extends Pipeable {
  readonly [TypeId]: TypeId
  /** The name used in metrics (`scheduler=<name>`), stats and errors. */
  readonly name: string
  /** How many tasks run at once. */
  readonly concurrency: number
  /**
   * Queues `effect` at `priority` (default `"normal"`) and waits for its
   * result. Fails at once with `SchedulerFull` when the queue is full in
   * `"reject"` mode (waits for room in `"backpressure"` mode), and with
   * `SchedulerClosed` when the scheduler is closed or closes before the task
   * has run (or interrupts it while it runs, `onClose: "interrupt"`).
   *
   * A task that submits to its own scheduler and waits keeps its slot while
   * it waits: with every slot taken that way, nothing more can run.
   */
  submit<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<A, E | SchedulerFull | SchedulerClosed, R>
  /**
   * Queues `effect` and returns its handle without waiting for it to run. In
   * `"backpressure"` mode it first waits for room in the queue (interrupting
   * that wait withdraws the task). The task then belongs to the scheduler: it
   * is not interrupted with the caller, only by `Task.cancel` or by closing the
   * scheduler in `"interrupt"` mode.
   */
  fork<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<Task<A, E>, SchedulerFull | SchedulerClosed, R>
  /** Stops dispatching (running tasks go on, submissions still queue). */
  readonly pause: Effect.Effect<void>
  /** Starts dispatching again. */
  readonly resume: Effect.Effect<void>
  /** A snapshot of the live statistics. */
  readonly stats: Effect.Effect<PriorityScheduler.Stats>
}

/**
 * The types that go with a `PriorityScheduler`: its options, submit options and stats.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace PriorityScheduler {
  /**
   * Options of `PriorityScheduler.make`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** Names the scheduler in stats, errors and the `scheduler` metric tag. Keep it unique per process. */
    readonly name: string
    /** How many tasks run at once; a positive integer. */
    readonly concurrency: number
    /** `"weighted"` (default) or `"strict"`. */
    readonly policy?: Policy | undefined
    /** Weights of the weighted policy; missing levels keep their default (4 : 3 : 2 : 1). */
    readonly weights?: Partial<Weights> | undefined
    /**
     * Promotes a task one level up each time it has waited `after` in its
     * current level (low → normal → high → critical), so a low task reaches
     * `critical` after `3 × after` at most. Within its new level it queues
     * behind the tasks already there. Time is read from the `Clock`, and
     * promotions happen when they fall due, by a fiber of the scheduler.
     */
    readonly aging?: { readonly after: Duration.DurationInput } | undefined
    /** Maximum number of queued (not yet running) tasks; a positive integer. Unbounded when omitted. */
    readonly capacity?: number | undefined
    /**
     * When the queue is full: `"backpressure"` (default) makes `submit` / `fork`
     * wait for room, in arrival order whatever their priority; `"reject"` fails
     * them at once with `SchedulerFull`.
     */
    readonly onFull?: "backpressure" | "reject" | undefined
    /**
     * When the scope closes, intake stops first (later submissions and those
     * waiting for room fail with `SchedulerClosed` `"Closed"`), then:
     * `"drain"` (default) runs everything already queued (resuming a paused
     * scheduler) and waits for it; `"interrupt"` fails every queued task with
     * `SchedulerClosed` `"Dropped"` and interrupts the running ones (their
     * submitters get `SchedulerClosed` `"Interrupted"`). The scope's close waits
     * for either.
     */
    readonly onClose?: "drain" | "interrupt" | undefined
    /**
     * With `onClose: "drain"`: how long to drain before falling back to
     * `"interrupt"` for what is left. Unlimited when omitted.
     */
    readonly drainTimeout?: Duration.DurationInput | undefined
  }

  /**
   * Options of `submit` and `fork`: the priority level (default `"normal"`).
   *
   * @since 0.1.0
   * @category models
   */
  export interface SubmitOptions {
    /** The level of the task; `"normal"` when omitted. */
    readonly priority?: Priority | undefined
  }

  /**
   * Counters of one level. `queued` counts the tasks sitting in that level's
   * queue now (after aging); every other figure counts tasks by the level they
   * were submitted at.
   *
   * @since 0.1.0
   * @category models
   */
  export interface LevelStats {
    /** Tasks in this level's queue now. */
    readonly queued: number
    /** Tasks running now. */
    readonly running: number
    /** Tasks handed a slot so far. */
    readonly dispatched: number
    /** Tasks that ran and succeeded. */
    readonly completed: number
    /** Tasks that ran and failed or died. */
    readonly failed: number
    /** Tasks interrupted while running (by their caller, `Task.cancel`, themselves or the close). */
    readonly interrupted: number
    /** Tasks withdrawn before running: caller interrupted, `Task.cancel`, or dropped by the close. */
    readonly cancelled: number
    /** Submissions refused with `SchedulerFull`. */
    readonly rejected: number
    /** Promotions by aging (a low task that reached critical counts 3). */
    readonly promoted: number
    /** Mean time from submission to dispatch (including any wait for room). */
    readonly meanWait: Duration.Duration
    /** Longest time from submission to dispatch. */
    readonly maxWait: Duration.Duration
  }

  /**
   * Live statistics of a scheduler. Counts are exact at the time of reading.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    readonly name: string
    readonly policy: Policy
    readonly weights: Weights
    readonly concurrency: number
    /** The queue bound, if any. */
    readonly capacity: Option.Option<number>
    readonly paused: boolean
    /** `true` once intake has stopped (the scope is closing or closed). */
    readonly closed: boolean
    /** Submitters waiting for room in the queue (backpressure). */
    readonly waiting: number
    readonly levels: { readonly [P in Priority]: LevelStats }
    /** The sum over the levels (`meanWait` and `maxWait` over all tasks). */
    readonly total: LevelStats
  }
}

/**
 * Where a task submitted with `fork` stands.
 *
 * @example
 * ```ts
 * import type { PriorityScheduler } from "@spindle/core"
 *
 * const status: PriorityScheduler.TaskStatus = "queued"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = "queued" | "running" | "done"

/**
 * The handle of a task submitted with `fork`.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const scheduler = yield* PriorityScheduler.make({ name: "exports", concurrency: 1 })
 *   const task = yield* scheduler.fork(Effect.succeed(42), { priority: "high" })
 *   const status = yield* task.status
 *   const value = yield* task.await
 *   return { status, value }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Task<A, E> {
  /** The level it was submitted at. */
  readonly priority: Priority
  /** Waits for the result (any number of times, from any fiber). */
  readonly await: Effect.Effect<A, E | SchedulerClosed>
  /** The result if the task is done. */
  readonly poll: Effect.Effect<Option.Option<Exit.Exit<A, E | SchedulerClosed>>>
  /** `"queued"`, `"running"` or `"done"`. */
  readonly status: Effect.Effect<TaskStatus>
  /**
   * Withdraws the task if it is queued (it never runs; `await` then reports an
   * interruption), interrupts it and waits for it to end if it is running.
   */
  readonly cancel: Effect.Effect<void>
}

/**
 * Submission refused because the queue holds `capacity` tasks (`onFull: "reject"`).
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const scheduler: PriorityScheduler.PriorityScheduler
 *
 * const sendOrDrop = scheduler.submit(Effect.succeed("sent"), { priority: "low" }).pipe(
 *   Effect.catchTag("SchedulerFull", (error) => Effect.succeed(`dropped at ${error.priority}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SchedulerFull extends Data.TaggedError("SchedulerFull")<{
  /** The scheduler's name. */
  readonly scheduler: string
  /** The level of the refused task. */
  readonly priority: Priority
  /** The queue bound that was reached. */
  readonly capacity: number
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `scheduler "${this.scheduler}" is full (${this.capacity} queued), ${this.priority} task rejected`
  }
}

/**
 * Why a task met a closed scheduler:
 * - `"Closed"`: submitted after intake stopped, or still waiting for room when it stopped;
 * - `"Dropped"`: queued when the scheduler closed with `onClose: "interrupt"`;
 * - `"Interrupted"`: running when the scheduler closed with `onClose: "interrupt"` (it was interrupted).
 *
 * @example
 * ```ts
 * import type { PriorityScheduler } from "@spindle/core"
 *
 * const retryable = (reason: PriorityScheduler.SchedulerClosedReason) => reason !== "Interrupted"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type SchedulerClosedReason = "Closed" | "Dropped" | "Interrupted"

/**
 * The scheduler is closed, or closed before the task could finish.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const scheduler: PriorityScheduler.PriorityScheduler
 *
 * const run = scheduler.submit(Effect.succeed(1)).pipe(
 *   Effect.catchTag("SchedulerClosed", (error) => Effect.logWarning(`not run: ${error.reason}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SchedulerClosed extends Data.TaggedError("SchedulerClosed")<{
  readonly reason: SchedulerClosedReason
  /** The scheduler's name. */
  readonly scheduler: string
  /** The level the task was submitted at. */
  readonly priority: Priority
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    switch (this.reason) {
      case "Closed":
        return `scheduler "${this.scheduler}" is closed, ${this.priority} task not accepted`
      case "Dropped":
        return `scheduler "${this.scheduler}" closed, queued ${this.priority} task dropped`
      case "Interrupted":
        return `scheduler "${this.scheduler}" closed, running ${this.priority} task interrupted`
    }
  }
}

/**
 * Starts a scheduler in the current scope. Closing the scope stops intake,
 * then drains or interrupts (`onClose`), and waits for that.
 *
 * Metrics, tagged `scheduler=<name>` and `level=<priority>`:
 * `spindle_scheduler_queued` (gauge, by current level),
 * `spindle_scheduler_dispatched_total`, `spindle_scheduler_wait_seconds`
 * (histogram of submission-to-dispatch time), `spindle_scheduler_promoted_total`
 * (by the level the task left), `spindle_scheduler_rejected_total`; and
 * `spindle_scheduler_running` (gauge, tagged `scheduler` only).
 *
 * Dies with an `IllegalArgumentException` if `concurrency` or `capacity` is
 * not a positive integer, a weight is not a positive finite number, or
 * `aging.after` is not positive.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const scheduler = yield* PriorityScheduler.make({
 *     name: "backtests",
 *     concurrency: 4,
 *     policy: "weighted",
 *     weights: { low: 1, normal: 2, high: 4, critical: 8 },
 *     aging: { after: "30 seconds" },
 *     capacity: 1000,
 *     onFull: "reject",
 *     onClose: "drain"
 *   })
 *   return yield* scheduler.submit(Effect.succeed("done"), { priority: "high" })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: PriorityScheduler.Options) => Effect.Effect<PriorityScheduler, never, Scope.Scope> =
  internal.make

/**
 * Provides a scheduler under a tag of your own; it closes with the layer.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Context, Effect } from "effect"
 *
 * class Jobs extends Context.Tag("app/Jobs")<Jobs, PriorityScheduler.PriorityScheduler>() {}
 *
 * const JobsLive = PriorityScheduler.layer(Jobs, { name: "jobs", concurrency: 8 })
 *
 * const program = Effect.gen(function*() {
 *   const jobs = yield* Jobs
 *   return yield* jobs.submit(Effect.succeed("ok"), { priority: "low" })
 * }).pipe(Effect.provide(JobsLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <I>(
  tag: Context.Tag<I, PriorityScheduler>,
  options: PriorityScheduler.Options
) => Layer.Layer<I> = internal.layer

/**
 * Submits an effect to a scheduler and waits for its result:
 * `PriorityScheduler.submit(effect, scheduler, { priority })` or
 * `effect.pipe(PriorityScheduler.submit(scheduler, { priority }))`.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const scheduler = yield* PriorityScheduler.make({ name: "mail", concurrency: 2 })
 *   const a = yield* PriorityScheduler.submit(Effect.succeed(1), scheduler, { priority: "high" })
 *   const b = yield* Effect.succeed(2).pipe(PriorityScheduler.submit(scheduler))
 *   return a + b
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const submit: {
  (
    scheduler: PriorityScheduler,
    options?: PriorityScheduler.SubmitOptions | undefined
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SchedulerFull | SchedulerClosed, R>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    scheduler: PriorityScheduler,
    options?: PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<A, E | SchedulerFull | SchedulerClosed, R>
} = internal.submit

/**
 * Reads a scheduler's live statistics.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const scheduler = yield* PriorityScheduler.make({ name: "etl", concurrency: 1 })
 *   yield* scheduler.submit(Effect.void, { priority: "low" })
 *   const { levels, total } = yield* PriorityScheduler.stats(scheduler)
 *   return { low: levels.low.completed, all: total.dispatched }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = (scheduler: PriorityScheduler): Effect.Effect<PriorityScheduler.Stats> => scheduler.stats

/**
 * Returns `true` if the value is a `PriorityScheduler`.
 *
 * @example
 * ```ts
 * import { PriorityScheduler } from "@spindle/core"
 *
 * PriorityScheduler.isPriorityScheduler({}) // false
 * ```
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPriorityScheduler: (u: unknown) => u is PriorityScheduler = internal.isPriorityScheduler
