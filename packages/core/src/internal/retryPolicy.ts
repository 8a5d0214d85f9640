import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import { hasProperty, isString } from "effect/Predicate"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import * as Schema from "effect/Schema"
import type * as RetryPolicy from "../RetryPolicy.js"

// -----------------------------------------------------------------------------
// Schema
// -----------------------------------------------------------------------------

const formatActual = (actual: unknown): string => {
  if (typeof actual === "number") return String(actual)
  try {
    return JSON.stringify(actual) ?? String(actual)
  } catch {
    return String(actual)
  }
}

const expecting = (description: string) => ({
  description,
  message: (issue: ParseResult.ParseIssue) => ({
    message: `Expected ${description}, actual ${formatActual(issue.actual)}`,
    override: true
  })
})

/** @internal */
export const Millis = Schema.transform(
  Schema.Number.pipe(Schema.filter((n) => Number.isFinite(n) && n >= 0, { jsonSchema: { minimum: 0 } })),
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (millis) => Duration.millis(millis),
    encode: (duration) => Duration.toMillis(duration)
  }
).annotations({
  identifier: "Millis",
  description: "a non-negative, finite number of milliseconds",
  message: (issue) => ({
    message: `Expected a non-negative, finite number of milliseconds, actual ${
      formatActual(Duration.isDuration(issue.actual) ? Duration.toMillis(issue.actual) : issue.actual)
    }`,
    override: true
  })
})

const commonFields = {
  name: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  maxAttempts: Schema.optionalWith(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isInteger(n) && n >= 1, { jsonSchema: { type: "integer", minimum: 1 } })
    )
      .annotations(
        expecting("an integer >= 1 (the total number of attempts, the first one included)")
      ),
    { exact: true }
  ),
  maxDelay: Schema.optionalWith(Millis, { exact: true }),
  jitter: Schema.optionalWith(Schema.Literal("none", "full", "equal"), { exact: true }),
  retryOn: Schema.optionalWith(Schema.Array(Schema.NonEmptyString), { exact: true })
}

/** @internal */
export const FixedSchema = Schema.TaggedStruct("Fixed", {
  delay: Millis,
  ...commonFields
}).annotations({ identifier: "RetryPolicy.Fixed" })

/** @internal */
export const LinearSchema = Schema.TaggedStruct("Linear", {
  initial: Millis,
  increment: Millis,
  ...commonFields
}).annotations({ identifier: "RetryPolicy.Linear" })

/** @internal */
export const ExponentialSchema = Schema.TaggedStruct("Exponential", {
  initial: Millis,
  factor: Schema.Number.pipe(Schema.filter((n) => Number.isFinite(n) && n >= 1, { jsonSchema: { minimum: 1 } }))
    .annotations(
      expecting("a finite growth factor >= 1")
    ),
  ...commonFields
}).annotations({ identifier: "RetryPolicy.Exponential" })

/** @internal */
export const DelaysSchema = Schema.TaggedStruct("Delays", {
  delays: Schema.Array(Millis),
  ...commonFields
}).annotations({ identifier: "RetryPolicy.Delays" })

const customRejection = "a Custom retry policy holds a Schedule built in code and cannot be encoded; " +
  "only the Fixed, Linear, Exponential and Delays policies round-trip through RetryPolicy.Schema"

/** @internal */
export const schema: Schema.Schema<RetryPolicy.Serializable, RetryPolicy.Encoded> = Schema.Union(
  FixedSchema,
  LinearSchema,
  ExponentialSchema,
  DelaysSchema
).annotations({
  identifier: "RetryPolicy",
  message: (issue) =>
    hasProperty(issue.actual, "_tag") && issue.actual._tag === "Custom"
      ? { message: customRejection, override: true }
      : {
        message: `Expected a RetryPolicy (an object whose _tag is "Fixed", "Linear", "Exponential" or "Delays"), ` +
          `actual ${formatActual(issue.actual)}`,
        override: false
      }
})

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

type Mutable<A> = { -readonly [K in keyof A]: A[K] }

const common = (options: RetryPolicy.RetryPolicy.Options | undefined): RetryPolicy.RetryPolicy.Common => {
  const out: Mutable<RetryPolicy.RetryPolicy.Common> = {}
  if (options === undefined) return out
  if (options.name !== undefined) out.name = options.name
  if (options.maxAttempts !== undefined) out.maxAttempts = options.maxAttempts
  if (options.maxDelay !== undefined) out.maxDelay = Duration.decode(options.maxDelay)
  if (options.jitter !== undefined) out.jitter = options.jitter
  if (options.retryOn !== undefined) out.retryOn = Array.from(options.retryOn)
  return out
}

/** @internal */
export const fixed = (
  options: { readonly delay: Duration.DurationInput } & RetryPolicy.RetryPolicy.Options
): RetryPolicy.Fixed => ({ _tag: "Fixed", delay: Duration.decode(options.delay), ...common(options) })

/** @internal */
export const linear = (
  options: {
    readonly initial: Duration.DurationInput
    readonly increment?: Duration.DurationInput | undefined
  } & RetryPolicy.RetryPolicy.Options
): RetryPolicy.Linear => {
  const initial = Duration.decode(options.initial)
  return {
    _tag: "Linear",
    initial,
    increment: options.increment === undefined ? initial : Duration.decode(options.increment),
    ...common(options)
  }
}

/** @internal */
export const exponential = (
  options: {
    readonly initial: Duration.DurationInput
    readonly factor?: number | undefined
  } & RetryPolicy.RetryPolicy.Options
): RetryPolicy.Exponential => ({
  _tag: "Exponential",
  initial: Duration.decode(options.initial),
  factor: options.factor ?? 2,
  ...common(options)
})

/** @internal */
export const fromDelays = (
  options: { readonly delays: Iterable<Duration.DurationInput> } & RetryPolicy.RetryPolicy.Options
): RetryPolicy.Delays => ({
  _tag: "Delays",
  delays: Array.from(options.delays, (delay) => Duration.decode(delay)),
  ...common(options)
})

/** @internal */
export const custom = (
  schedule: Schedule.Schedule<unknown, unknown>,
  options?: RetryPolicy.RetryPolicy.Options
): RetryPolicy.Custom => ({ _tag: "Custom", schedule, ...common(options) })

// -----------------------------------------------------------------------------
// Pure helpers
// -----------------------------------------------------------------------------

/**
 * The number of retries a policy allows by its `maxAttempts`, or `undefined`
 * when it sets none. Values below 1 count as 1 attempt (no retry).
 *
 * @internal
 */
export const retryLimit = (policy: RetryPolicy.RetryPolicy): number | undefined => {
  if (policy.maxAttempts === undefined) return undefined
  const attempts = Math.floor(policy.maxAttempts)
  return Number.isNaN(attempts) || attempts < 1 ? 0 : attempts - 1
}

/** @internal */
export const isRetryable: {
  (error: unknown): (policy: RetryPolicy.RetryPolicy) => boolean
  (policy: RetryPolicy.RetryPolicy, error: unknown): boolean
} = dual(2, (policy: RetryPolicy.RetryPolicy, error: unknown): boolean => {
  if (policy.retryOn === undefined) return true
  return hasProperty(error, "_tag") && isString(error._tag) && policy.retryOn.includes(error._tag)
})

/**
 * The un-capped, un-jittered delay before retry number `n` (0-based), or
 * `undefined` when a `Delays` policy has no more delays.
 */
const baseDelay = (policy: RetryPolicy.Serializable, n: number): Duration.Duration | undefined => {
  switch (policy._tag) {
    case "Fixed":
      return policy.delay
    case "Linear":
      return Duration.sum(policy.initial, Duration.times(policy.increment, n))
    case "Exponential":
      return Duration.times(policy.initial, Math.pow(policy.factor, n))
    case "Delays":
      return policy.delays[n]
  }
}

const applyJitter = (jitter: RetryPolicy.Jitter | undefined, delay: Duration.Duration, random: number) => {
  if (jitter === undefined || jitter === "none" || !Duration.isFinite(delay)) return delay
  const millis = Duration.toMillis(delay)
  return jitter === "full"
    ? Duration.millis(millis * random)
    : Duration.millis(millis / 2 + (millis / 2) * random)
}

const capDelay = (maxDelay: Duration.Duration | undefined, delay: Duration.Duration) =>
  maxDelay === undefined ? delay : Duration.min(delay, maxDelay)

/** @internal */
export const nextDelay = (
  policy: RetryPolicy.Serializable,
  attempt: number,
  options?: { readonly random?: number | undefined }
): Option.Option<Duration.Duration> => {
  const failed = Number.isNaN(attempt) ? 1 : Math.max(1, Math.floor(attempt))
  const limit = retryLimit(policy)
  if (limit !== undefined && failed > limit) return Option.none()
  const base = baseDelay(policy, failed - 1)
  if (base === undefined) return Option.none()
  const capped = capDelay(policy.maxDelay, base)
  const random = options?.random
  return Option.some(random === undefined ? capped : applyJitter(policy.jitter, capped, random))
}

// -----------------------------------------------------------------------------
// Schedules
// -----------------------------------------------------------------------------

const baseSchedule = (policy: RetryPolicy.RetryPolicy): Schedule.Schedule<unknown, unknown> => {
  switch (policy._tag) {
    case "Fixed":
      return Schedule.spaced(policy.delay)
    case "Linear": {
      const { increment, initial } = policy
      return Schedule.delayedSchedule(
        Schedule.map(Schedule.forever, (n) => Duration.sum(initial, Duration.times(increment, n)))
      )
    }
    case "Exponential":
      return Schedule.exponential(policy.initial, policy.factor)
    case "Delays": {
      const [first, ...rest] = policy.delays
      return first === undefined ? Schedule.stop : Schedule.fromDelays(first, ...rest)
    }
    case "Custom":
      return policy.schedule
  }
}

/**
 * The delays of a policy, as a schedule that ignores its input (no `retryOn`).
 */
const delaySchedule = (policy: RetryPolicy.RetryPolicy): Schedule.Schedule<unknown, unknown> => {
  let schedule = baseSchedule(policy)
  const { jitter, maxDelay } = policy
  if (maxDelay !== undefined) {
    schedule = Schedule.modifyDelay(schedule, (_, delay) => Duration.min(delay, maxDelay))
  }
  if (jitter !== undefined && jitter !== "none") {
    schedule = Schedule.modifyDelayEffect(
      schedule,
      (_, delay) => Effect.map(Random.next, (random) => applyJitter(jitter, delay, random))
    )
  }
  const limit = retryLimit(policy)
  if (limit !== undefined) {
    schedule = Schedule.zipLeft(schedule, Schedule.recurs(limit))
  }
  return schedule
}

/** @internal */
export const toSchedule = (policy: RetryPolicy.RetryPolicy): Schedule.Schedule<Duration.Duration, unknown> => {
  const schedule = delaySchedule(policy)
  return Schedule.delays(
    policy.retryOn === undefined ? schedule : Schedule.whileInput(schedule, (error) => isRetryable(policy, error))
  )
}

const DEFAULT_COUNT = 10

/** @internal */
export const delays = (
  policy: RetryPolicy.RetryPolicy,
  options?: { readonly count?: number | undefined }
): Effect.Effect<Array<Duration.Duration>> =>
  Effect.suspend(() => {
    const schedule = delaySchedule(policy)
    const count = options?.count ??
      retryLimit(policy) ??
      (policy._tag === "Delays" ? policy.delays.length : DEFAULT_COUNT)
    const out: Array<Duration.Duration> = []
    const loop = (now: number, state: unknown): Effect.Effect<Array<Duration.Duration>> =>
      out.length >= count ?
        Effect.succeed(out) :
        Effect.flatMap(schedule.step(now, undefined, state), ([next, , decision]) => {
          if (ScheduleDecision.isDone(decision)) return Effect.succeed(out)
          const start = ScheduleIntervals.start(decision.intervals)
          if (!Number.isFinite(start)) {
            out.push(Duration.infinity)
            return Effect.succeed(out)
          }
          out.push(Duration.millis(start - now))
          return loop(start, next)
        })
    return loop(0, schedule.initial)
  })

// -----------------------------------------------------------------------------
// Retry
// -----------------------------------------------------------------------------

/** @internal */
export const retriesTotal = Metric.counter("spindle_retry_retries_total", {
  description: "Retries started by RetryPolicy.retry (one per retry, not counting first attempts)",
  incremental: true
})

/** @internal */
export const exhaustedTotal = Metric.counter("spindle_retry_exhausted_total", {
  description: "Effects that RetryPolicy.retry gave up on: a retryable error and no attempt left",
  incremental: true
})

/** @internal */
export const succeededAfterRetryTotal = Metric.counter("spindle_retry_succeeded_after_retry_total", {
  description: "Effects that succeeded under RetryPolicy.retry after at least one retry",
  incremental: true
})

const tagged = (metric: Metric.Metric.Counter<number>, name: string | undefined): Metric.Metric.Counter<number> =>
  name === undefined ? metric : Metric.tagged(metric, "policy", name)

/** @internal */
export const retry = dual<
  (policy: RetryPolicy.RetryPolicy) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: RetryPolicy.RetryPolicy) => Effect.Effect<A, E, R>
>(2, <A, E, R>(self: Effect.Effect<A, E, R>, policy: RetryPolicy.RetryPolicy): Effect.Effect<A, E, R> => {
  const retries = tagged(retriesTotal, policy.name)
  const exhausted = tagged(exhaustedTotal, policy.name)
  const succeeded = tagged(succeededAfterRetryTotal, policy.name)
  const schedule = toSchedule(policy)
  return Effect.suspend(() => {
    let retried = false
    const counted = Schedule.onDecision(schedule, (_, decision) => {
      if (ScheduleDecision.isDone(decision)) return Effect.void
      retried = true
      return Metric.increment(retries)
    })
    return Effect.onExit(Effect.retry(self, counted), (exit) => {
      if (Exit.isSuccess(exit)) return retried ? Metric.increment(succeeded) : Effect.void
      const failure = Cause.failureOption(exit.cause)
      return Option.isSome(failure) && isRetryable(policy, failure.value) ? Metric.increment(exhausted) : Effect.void
    })
  })
})
