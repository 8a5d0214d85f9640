/**
 * Retry policies as data.
 *
 * A `RetryPolicy` is a plain value: it can be stored with a durable task,
 * sent over HTTP (through {@link Schema}), inspected ({@link delays},
 * {@link nextDelay}) and compiled to an Effect `Schedule` ({@link toSchedule},
 * {@link retry}).
 *
 * - `Fixed`: the same `delay` before every retry.
 * - `Linear`: `initial + increment × n` before retry `n` (0-based).
 * - `Exponential`: `initial × factor^n` before retry `n` (0-based).
 * - `Delays`: an explicit list of delays, one per retry (the list bounds the
 *   number of retries).
 * - `Custom`: any `Schedule` written in code. It works everywhere except in
 *   {@link Schema} and {@link nextDelay}: only the four data variants are
 *   `Serializable`, and encoding a custom policy fails with a clear message.
 *
 * Every policy takes the same options:
 *
 * - `maxAttempts`: the TOTAL number of attempts, the first one included
 *   (`maxAttempts: 3` = the first try and at most 2 retries). Without it, a
 *   policy retries for as long as its delays go on: forever for `Fixed`,
 *   `Linear` and `Exponential`. Set it.
 * - `maxDelay`: caps every delay (applied before jitter, so a jittered delay
 *   never exceeds it either).
 * - `jitter`: `"none"` (default), `"full"` (uniform in `[0, d]`) or `"equal"`
 *   (`d/2` + uniform in `[0, d/2]`), drawn from Effect's `Random` service.
 * - `retryOn`: a list of error `_tag`s. When set, only failures whose `_tag`
 *   is listed are retried; any other failure, including one without a
 *   `_tag`, fails at once.
 * - `name`: tags the retry metrics (`policy=<name>`).
 *
 * In the encoded (JSON) form every duration is a number of milliseconds.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Metric from "effect/Metric"
import type * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type * as S from "effect/Schema"
import * as internal from "./internal/retryPolicy.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * How a delay is randomized: `"none"` keeps it, `"full"` draws it uniformly in
 * `[0, d]`, `"equal"` draws it uniformly in `[d/2, d]`.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const jitter: RetryPolicy.Jitter = "equal"
 * const policy = RetryPolicy.exponential({ initial: "100 millis", jitter, maxAttempts: 5 })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Jitter = "none" | "full" | "equal"

/**
 * The parts shared by every retry policy: the common fields and the constructor options.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace RetryPolicy {
  /**
   * The options every policy carries, as stored in the policy.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Common {
    /** Tags the retry metrics with `policy=<name>`. */
    readonly name?: string
    /**
     * The total number of attempts, the first one included: `3` means one
     * attempt and at most two retries. Absent: no limit besides the policy's
     * own delays.
     */
    readonly maxAttempts?: number
    /** The longest delay between two attempts (applied before jitter). */
    readonly maxDelay?: Duration.Duration
    /** How delays are randomized; `"none"` when absent. */
    readonly jitter?: Jitter
    /**
     * When set, only failures whose `_tag` is in this list are retried; every
     * other failure (untagged ones included) fails at once.
     */
    readonly retryOn?: ReadonlyArray<string>
  }

  /**
   * The options accepted by every constructor.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** Tags the retry metrics with `policy=<name>`. */
    readonly name?: string | undefined
    /**
     * The total number of attempts, the first one included (an integer >= 1):
     * `3` means one attempt and at most two retries.
     */
    readonly maxAttempts?: number | undefined
    /** The longest delay between two attempts (applied before jitter). */
    readonly maxDelay?: Duration.DurationInput | undefined
    /** How delays are randomized; `"none"` by default. */
    readonly jitter?: Jitter | undefined
    /** Retry only failures whose `_tag` is listed. */
    readonly retryOn?: Iterable<string> | undefined
  }
}

/**
 * The same delay before every retry.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy: RetryPolicy.Fixed = RetryPolicy.fixed({ delay: "1 second", maxAttempts: 3 })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Fixed extends RetryPolicy.Common {
  readonly _tag: "Fixed"
  readonly delay: Duration.Duration
}

/**
 * `initial + increment × n` before retry `n` (0-based).
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * // 1s, 3s, 5s, ...
 * const policy: RetryPolicy.Linear = RetryPolicy.linear({ initial: "1 second", increment: "2 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Linear extends RetryPolicy.Common {
  readonly _tag: "Linear"
  readonly initial: Duration.Duration
  readonly increment: Duration.Duration
}

/**
 * `initial × factor^n` before retry `n` (0-based).
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * // 100ms, 200ms, 400ms, 800ms, then 1s for every later retry
 * const policy: RetryPolicy.Exponential = RetryPolicy.exponential({ initial: "100 millis", maxDelay: "1 second" })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Exponential extends RetryPolicy.Common {
  readonly _tag: "Exponential"
  readonly initial: Duration.Duration
  readonly factor: number
}

/**
 * An explicit delay before each retry; the policy gives up when the list is
 * exhausted (or earlier, by `maxAttempts`).
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy: RetryPolicy.Delays = RetryPolicy.fromDelays({ delays: ["1 minute", "10 minutes", "1 hour"] })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Delays extends RetryPolicy.Common {
  readonly _tag: "Delays"
  readonly delays: ReadonlyArray<Duration.Duration>
}

/**
 * A policy around a `Schedule` written in code. The schedule receives each
 * failure as its input. It cannot be encoded: keep it for in-process retries.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Schedule } from "effect"
 *
 * const policy: RetryPolicy.Custom = RetryPolicy.custom(Schedule.fibonacci("10 millis"), { maxAttempts: 6 })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Custom extends RetryPolicy.Common {
  readonly _tag: "Custom"
  readonly schedule: Schedule.Schedule<unknown, unknown>
}

/**
 * The policies that are plain data and round-trip through {@link Schema}.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const stored: RetryPolicy.Serializable = RetryPolicy.linear({ initial: "1 second", maxAttempts: 4 })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Serializable = Fixed | Linear | Exponential | Delays

/**
 * A retry policy: one of the data variants or a custom schedule.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const policy: RetryPolicy.RetryPolicy = RetryPolicy.exponential({ initial: "200 millis", maxAttempts: 5 })
 * const program = Effect.fail("boom").pipe(RetryPolicy.retry(policy))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RetryPolicy = Serializable | Custom

/**
 * The options shared by every encoded policy; durations in milliseconds.
 *
 * @example
 * ```ts
 * import type { RetryPolicy } from "@spindle/core"
 *
 * const common: RetryPolicy.CommonEncoded = { maxAttempts: 5, maxDelay: 30_000, jitter: "full" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonEncoded {
  readonly name?: string
  readonly maxAttempts?: number
  /** Milliseconds. */
  readonly maxDelay?: number
  readonly jitter?: Jitter
  readonly retryOn?: ReadonlyArray<string>
}

/**
 * The JSON form of a policy: every duration is a number of milliseconds.
 *
 * @example
 * ```ts
 * import type { RetryPolicy } from "@spindle/core"
 *
 * const json: RetryPolicy.Encoded = { _tag: "Exponential", initial: 100, factor: 2, maxAttempts: 5 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Encoded =
  | CommonEncoded & { readonly _tag: "Fixed"; readonly delay: number }
  | CommonEncoded & { readonly _tag: "Linear"; readonly initial: number; readonly increment: number }
  | CommonEncoded & { readonly _tag: "Exponential"; readonly initial: number; readonly factor: number }
  | CommonEncoded & { readonly _tag: "Delays"; readonly delays: ReadonlyArray<number> }

// -----------------------------------------------------------------------------
// Schema
// -----------------------------------------------------------------------------

/**
 * The Schema of the serializable policies: decodes JSON (durations as
 * non-negative, finite milliseconds) into a policy and encodes it back.
 *
 * It validates what it decodes: a negative or non-finite delay, a `factor`
 * below 1, a `maxAttempts` that is not an integer >= 1 or an unknown `_tag`
 * fails with a message naming the faulty path. A `Custom` policy is not
 * representable: its type is excluded, and encoding one anyway fails with a
 * message saying so.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Schema } from "effect"
 *
 * const policy = RetryPolicy.exponential({ initial: "100 millis", maxAttempts: 5, retryOn: ["HttpError"] })
 * const json = Schema.encodeSync(RetryPolicy.Schema)(policy)
 * // { _tag: "Exponential", initial: 100, factor: 2, maxAttempts: 5, retryOn: ["HttpError"] }
 * const back = Schema.decodeUnknownSync(RetryPolicy.Schema)(JSON.parse(JSON.stringify(json)))
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Schema: S.Schema<Serializable, Encoded> = internal.schema

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * The same `delay` before every retry.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy = RetryPolicy.fixed({ delay: "500 millis", maxAttempts: 4, jitter: "equal" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fixed: (
  options: { readonly delay: Duration.DurationInput } & RetryPolicy.Options
) => Fixed = internal.fixed

/**
 * `initial + increment × n` before retry `n` (0-based); `increment` defaults
 * to `initial` (1s, 2s, 3s, ... for `initial: "1 second"`).
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy = RetryPolicy.linear({ initial: "1 second", increment: "500 millis", maxAttempts: 5 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const linear: (
  options: {
    readonly initial: Duration.DurationInput
    readonly increment?: Duration.DurationInput | undefined
  } & RetryPolicy.Options
) => Linear = internal.linear

/**
 * `initial × factor^n` before retry `n` (0-based); `factor` defaults to 2.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy = RetryPolicy.exponential({
 *   initial: "100 millis",
 *   factor: 3,
 *   maxDelay: "10 seconds",
 *   jitter: "full",
 *   maxAttempts: 8,
 *   retryOn: ["Timeout", "Unavailable"],
 *   name: "payments"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const exponential: (
  options: {
    readonly initial: Duration.DurationInput
    readonly factor?: number | undefined
  } & RetryPolicy.Options
) => Exponential = internal.exponential

/**
 * One explicit delay per retry: retries stop when the list is exhausted (or
 * earlier, by `maxAttempts`). Handy for stored tasks ("retry after 1 minute,
 * then 10 minutes, then 1 hour").
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy = RetryPolicy.fromDelays({ delays: ["1 minute", "10 minutes", "1 hour"] })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDelays: (
  options: { readonly delays: Iterable<Duration.DurationInput> } & RetryPolicy.Options
) => Delays = internal.fromDelays

/**
 * Wraps a `Schedule` written in code, which receives each failure as input.
 * The common options still apply on top of it. A custom policy cannot be
 * encoded with {@link Schema} nor used with {@link nextDelay}.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Schedule } from "effect"
 *
 * const policy = RetryPolicy.custom(Schedule.fibonacci("100 millis"), { maxAttempts: 6, maxDelay: "2 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const custom: (
  schedule: Schedule.Schedule<unknown, unknown>,
  options?: RetryPolicy.Options
) => Custom = internal.custom

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Compiles a policy to a `Schedule` that takes the failure as input and
 * outputs the delay before the next attempt. It applies `maxDelay`, `jitter`
 * (from the `Random` service), `maxAttempts` (as `maxAttempts - 1`
 * recurrences) and `retryOn`. It records no metrics: use {@link retry} for
 * that.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const schedule = RetryPolicy.toSchedule(RetryPolicy.fixed({ delay: "1 second", maxAttempts: 3 }))
 * const program = Effect.fail("boom").pipe(Effect.retry(schedule))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const toSchedule: (policy: RetryPolicy) => Schedule.Schedule<Duration.Duration, unknown> = internal.toSchedule

/**
 * Runs an effect and retries its failures as the policy says. Defects and
 * interruptions are never retried. When the policy gives up, the last
 * failure is returned.
 *
 * Metrics (tagged `policy=<name>` when the policy has a name): every retry
 * increments `spindle_retry_retries_total`; a success after at least one
 * retry increments `spindle_retry_succeeded_after_retry_total`; a retryable
 * failure with no attempt left increments `spindle_retry_exhausted_total`.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Data, Effect } from "effect"
 *
 * class Unavailable extends Data.TaggedError("Unavailable") {}
 *
 * const policy = RetryPolicy.exponential({ initial: "100 millis", maxAttempts: 4, retryOn: ["Unavailable"] })
 * const call = Effect.fail(new Unavailable())
 *
 * const piped = call.pipe(RetryPolicy.retry(policy))
 * const direct = RetryPolicy.retry(call, policy)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const retry: {
  (policy: RetryPolicy): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: RetryPolicy): Effect.Effect<A, E, R>
} = internal.retry

// -----------------------------------------------------------------------------
// Getters
// -----------------------------------------------------------------------------

/**
 * The delays the policy would wait before each retry, in order, by stepping
 * its schedule (without `retryOn`, which depends on the failures; a custom
 * schedule is stepped with `undefined` as input). Jitter is
 * drawn from the `Random` service, so a seeded `Random` gives a
 * reproducible sequence.
 *
 * `count` bounds the list; it defaults to the number of retries the policy
 * allows (`maxAttempts - 1`, or the length of a `Delays` list), or to 10 when
 * the policy is unbounded.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Effect, Random } from "effect"
 *
 * const policy = RetryPolicy.exponential({ initial: "100 millis", maxDelay: "1 second", maxAttempts: 6 })
 * // 100ms, 200ms, 400ms, 800ms, 1s
 * const exact = RetryPolicy.delays(policy)
 * const jittered = RetryPolicy.delays({ ...policy, jitter: "full" }, { count: 3 }).pipe(
 *   Effect.withRandom(Random.make("seed"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const delays: (
  policy: RetryPolicy,
  options?: { readonly count?: number | undefined }
) => Effect.Effect<Array<Duration.Duration>> = internal.delays

/**
 * For a durable runtime that persists the next run time: given the attempt
 * that just failed (1 for the first attempt), the delay before the next
 * attempt, or `None` when the policy allows no more attempts.
 *
 * It is pure: pass `random` (a number in `[0, 1)`, e.g. from `Random.next`)
 * to apply the policy's jitter; without it the capped, un-jittered delay is
 * returned (the upper bound of the jittered one). It does not look at
 * `retryOn`: check {@link isRetryable} with the failure first.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Effect, Random } from "effect"
 *
 * const policy = RetryPolicy.exponential({ initial: "1 second", maxAttempts: 3, jitter: "full" })
 *
 * RetryPolicy.nextDelay(policy, 1) // Some(1 second), the upper bound
 * RetryPolicy.nextDelay(policy, 3) // None: three attempts were made
 *
 * const runAt = Effect.gen(function*() {
 *   const random = yield* Random.next
 *   return RetryPolicy.nextDelay(policy, 2, { random })
 * })
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const nextDelay: (
  policy: Serializable,
  attempt: number,
  options?: { readonly random?: number | undefined }
) => Option.Option<Duration.Duration> = internal.nextDelay

/**
 * Whether the policy's `retryOn` allows retrying this failure: always `true`
 * without `retryOn`; otherwise only for a value whose `_tag` is listed.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 *
 * const policy = RetryPolicy.fixed({ delay: "1 second", retryOn: ["Timeout"] })
 * RetryPolicy.isRetryable(policy, { _tag: "Timeout" }) // true
 * RetryPolicy.isRetryable(policy, new Error("boom")) // false
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const isRetryable: {
  (error: unknown): (policy: RetryPolicy) => boolean
  (policy: RetryPolicy, error: unknown): boolean
} = internal.isRetryable

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

/**
 * `spindle_retry_retries_total`: retries started by {@link retry}, tagged
 * `policy=<name>` for named policies.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const count = Metric.value(Metric.tagged(RetryPolicy.retriesTotal, "policy", "payments"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const retriesTotal: Metric.Metric.Counter<number> = internal.retriesTotal

/**
 * `spindle_retry_exhausted_total`: effects that {@link retry} gave up on
 * (a retryable failure with no attempt or delay left), tagged
 * `policy=<name>` for named policies. Failures rejected by `retryOn` are not
 * counted.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const count = Metric.value(Metric.tagged(RetryPolicy.exhaustedTotal, "policy", "payments"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const exhaustedTotal: Metric.Metric.Counter<number> = internal.exhaustedTotal

/**
 * `spindle_retry_succeeded_after_retry_total`: effects that succeeded under
 * {@link retry} after at least one retry, tagged `policy=<name>` for named
 * policies.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const count = Metric.value(Metric.tagged(RetryPolicy.succeededAfterRetryTotal, "policy", "payments"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const succeededAfterRetryTotal: Metric.Metric.Counter<number> = internal.succeededAfterRetryTotal
