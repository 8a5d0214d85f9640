/**
 * Hard and soft deadlines for effects, with a grace period for finalizers.
 *
 * - Hard: past `hard`, the effect is interrupted and the caller fails with a
 *   typed {@link DeadlineExceeded}.
 * - Soft: past `soft`, a warning is logged ONCE (with `deadline`,
 *   `softMillis` and `elapsedMillis` log annotations), the
 *   `spindle_deadline_soft_exceeded_total` counter is incremented and the
 *   optional `onSoft` callback runs. The effect is not interrupted and its
 *   result is untouched; nothing happens if it finishes first, and the
 *   watcher fiber is stopped as soon as it does.
 * - Grace: when the effect is interrupted, by its hard deadline or because
 *   the caller itself is interrupted, its finalizers get up to `grace` to
 *   finish. Past the grace the effect is abandoned: it keeps finishing its
 *   finalizers on its own (detached, like `Effect.disconnect`), a warning is
 *   logged, `spindle_deadline_abandoned_total` is incremented, and the caller
 *   gets its `DeadlineExceeded` (or its interruption completes) right away.
 *   Without `grace`, Effect's default applies: the caller waits for the
 *   interrupted effect's finalizers however long they take.
 *
 * All time is read from Effect's `Clock`, so `TestClock` drives it in tests.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Metric from "effect/Metric"
import * as internal from "./internal/deadline.js"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * The effect ran past its hard deadline and was interrupted.
 *
 * `deadline` is the deadline's name (the field is not called `name`, which
 * every `Error` uses for its class name); `duration` is the hard timeout.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.never.pipe(
 *   Deadline.hard("5 seconds", { name: "fetch-report" }),
 *   Effect.catchTag("DeadlineExceeded", (error) => Effect.succeed(`gave up after ${error.duration}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class DeadlineExceeded extends Data.TaggedError("DeadlineExceeded")<{
  /** The name of the deadline, when it has one. */
  readonly deadline?: string | undefined
  /** The hard timeout that was exceeded. */
  readonly duration: Duration.Duration
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const who = this.deadline === undefined ? "Deadline" : `Deadline "${this.deadline}"`
    return `${who} exceeded: interrupted after ${Duration.format(this.duration)}`
  }
}

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * What the `onSoft` callback receives when an effect passes its soft deadline.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const onSoft = (info: Deadline.SoftInfo) =>
 *   Effect.log(`${info.name ?? "task"} still running after ${info.elapsed}`)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SoftInfo {
  /** The deadline's name, when it has one. */
  readonly name: string | undefined
  /** The soft timeout. */
  readonly soft: Duration.Duration
  /** How long the effect had been running when the warning fired. */
  readonly elapsed: Duration.Duration
}

/**
 * The option types of `Deadline.timeout`, `Deadline.hard` and `Deadline.soft`.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace Deadline {
  /**
   * Options of {@link timeout}. Every field is optional; `hard` and `soft` are
   * measured from the moment the effect starts.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options<R = never> {
    /** Interrupt the effect past this duration and fail with `DeadlineExceeded`. */
    readonly hard?: Duration.DurationInput | undefined
    /** Warn once (log, metric, `onSoft`) past this duration, without interrupting. */
    readonly soft?: Duration.DurationInput | undefined
    /**
     * How long an interrupted effect's finalizers may run before the effect is
     * abandoned; applies to the hard timeout and to interruption of the
     * caller. Without it, the caller waits for the finalizers to finish.
     */
    readonly grace?: Duration.DurationInput | undefined
    /** Names the deadline in logs, in errors and in the `deadline` metric tag. */
    readonly name?: string | undefined
    /** Runs once when the soft deadline passes; interrupted if the effect ends meanwhile. */
    readonly onSoft?: ((info: SoftInfo) => Effect.Effect<unknown, never, R>) | undefined
  }

  /**
   * Options of {@link hard}.
   *
   * @since 0.1.0
   * @category models
   */
  export interface HardOptions {
    /** How long the interrupted effect's finalizers may run; see {@link Options}. */
    readonly grace?: Duration.DurationInput | undefined
    /** Names the deadline in logs, in errors and in the `deadline` metric tag. */
    readonly name?: string | undefined
  }

  /**
   * Options of {@link soft}.
   *
   * @since 0.1.0
   * @category models
   */
  export interface SoftOptions<R = never> {
    /** Names the deadline in logs and in the `deadline` metric tag. */
    readonly name?: string | undefined
    /** Runs once when the soft deadline passes; interrupted if the effect ends meanwhile. */
    readonly onSoft?: ((info: SoftInfo) => Effect.Effect<unknown, never, R>) | undefined
  }
}

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Runs an effect under a hard deadline, a soft deadline and a grace period,
 * each optional (see the module documentation for their meaning).
 *
 * The soft watcher is a fiber forked beside the effect and interrupted as
 * soon as the effect ends. With `grace`, the effect runs on a detached fiber
 * so that it can be abandoned; without it, the hard deadline is
 * `Effect.timeoutTo` and the effect stays attached.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const report = Effect.sleep("20 seconds").pipe(Effect.as("report.pdf"))
 *
 * const program = report.pipe(
 *   Deadline.timeout({
 *     name: "monthly-report",
 *     soft: "10 seconds",
 *     hard: "1 minute",
 *     grace: "5 seconds",
 *     onSoft: (info) => Effect.log(`slow: ${info.elapsed}`)
 *   })
 * )
 *
 * const direct = Deadline.timeout(report, { hard: "1 minute" })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const timeout: {
  <R2 = never>(
    options: Deadline.Options<R2>
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | DeadlineExceeded, R | R2>
  <A, E, R, R2 = never>(
    self: Effect.Effect<A, E, R>,
    options: Deadline.Options<R2>
  ): Effect.Effect<A, E | DeadlineExceeded, R | R2>
} = internal.timeout

/**
 * A hard deadline alone: `timeout({ hard: duration, ...options })`.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const fetchUser = Effect.succeed({ id: 1 })
 * const program = fetchUser.pipe(Deadline.hard("2 seconds", { name: "fetch-user", grace: "500 millis" }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const hard: {
  (
    duration: Duration.DurationInput,
    options?: Deadline.HardOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | DeadlineExceeded, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    duration: Duration.DurationInput,
    options?: Deadline.HardOptions
  ): Effect.Effect<A, E | DeadlineExceeded, R>
} = internal.hard

/**
 * A soft deadline alone: warns once past `duration`, never interrupts, and
 * adds no error to the effect.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const backtest = Effect.sleep("3 minutes")
 * const program = backtest.pipe(
 *   Deadline.soft("1 minute", { name: "backtest", onSoft: (info) => Effect.log(`slow: ${info.elapsed}`) })
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const soft: {
  <R2 = never>(
    duration: Duration.DurationInput,
    options?: Deadline.SoftOptions<R2>
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R | R2>
  <A, E, R, R2 = never>(
    self: Effect.Effect<A, E, R>,
    duration: Duration.DurationInput,
    options?: Deadline.SoftOptions<R2>
  ): Effect.Effect<A, E, R | R2>
} = internal.soft

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

/**
 * `spindle_deadline_hard_exceeded_total`: effects interrupted by their hard
 * deadline, tagged `deadline=<name>` for named deadlines.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const count = Metric.value(Metric.tagged(Deadline.hardExceededTotal, "deadline", "fetch-user"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const hardExceededTotal: Metric.Metric.Counter<number> = internal.hardExceededTotal

/**
 * `spindle_deadline_soft_exceeded_total`: effects that ran past their soft
 * deadline (counted once per run), tagged `deadline=<name>` for named
 * deadlines.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const count = Metric.value(Metric.tagged(Deadline.softExceededTotal, "deadline", "backtest"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const softExceededTotal: Metric.Metric.Counter<number> = internal.softExceededTotal

/**
 * `spindle_deadline_abandoned_total`: interrupted effects whose finalizers
 * did not finish within the grace period, tagged `deadline=<name>` for named
 * deadlines.
 *
 * @example
 * ```ts
 * import { Deadline } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const count = Metric.value(Metric.tagged(Deadline.abandonedTotal, "deadline", "fetch-user"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const abandonedTotal: Metric.Metric.Counter<number> = internal.abandonedTotal
