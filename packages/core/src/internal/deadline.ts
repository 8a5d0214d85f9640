import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Deadline from "../Deadline.js"

// `Deadline.DeadlineExceeded` is only read inside functions: the public module
// imports this one, so it is not initialized yet while this module loads.

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

/** @internal */
export const hardExceededTotal = Metric.counter("spindle_deadline_hard_exceeded_total", {
  description: "Effects interrupted because they ran past their hard deadline",
  incremental: true
})

/** @internal */
export const softExceededTotal = Metric.counter("spindle_deadline_soft_exceeded_total", {
  description: "Effects that ran past their soft deadline (warned once, not interrupted)",
  incremental: true
})

/** @internal */
export const abandonedTotal = Metric.counter("spindle_deadline_abandoned_total", {
  description: "Interrupted effects whose finalizers did not finish within the grace period",
  incremental: true
})

const tagged = (metric: Metric.Metric.Counter<number>, name: string | undefined): Metric.Metric.Counter<number> =>
  name === undefined ? metric : Metric.tagged(metric, "deadline", name)

const label = (name: string | undefined): string => name === undefined ? "Deadline" : `Deadline "${name}"`

// -----------------------------------------------------------------------------
// Soft
// -----------------------------------------------------------------------------

const withSoft = <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  soft: Duration.Duration,
  name: string | undefined,
  onSoft: ((info: Deadline.SoftInfo) => Effect.Effect<unknown, never, R2>) | undefined
): Effect.Effect<A, E, R | R2> => {
  return Effect.flatMap(Clock.currentTimeMillis, (start) => {
    const warn = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const info: Deadline.SoftInfo = { name, soft, elapsed: Duration.millis(now - start) }
      const log = Effect.logWarning(
        `${label(name)}: still running after the soft timeout of ${Duration.format(soft)}`
      ).pipe(Effect.annotateLogs({
        deadline: name ?? "",
        softMillis: Duration.toMillis(soft),
        elapsedMillis: Duration.toMillis(info.elapsed)
      }))
      return Effect.zipRight(
        Effect.zipRight(log, Metric.increment(tagged(softExceededTotal, name))),
        onSoft === undefined ? Effect.void : onSoft(info)
      )
    })
    // Forked from the uninterruptible acquire: make the watcher interruptible
    // so that the release does not wait for its sleep.
    const watcher = Effect.interruptible(Effect.zipRight(Effect.sleep(soft), warn))
    return Effect.acquireUseRelease(
      Effect.fork(watcher),
      () => self,
      (fiber) => Fiber.interrupt(fiber)
    )
  })
}

// -----------------------------------------------------------------------------
// Hard and grace
// -----------------------------------------------------------------------------

const hardOnly = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  hard: Duration.Duration,
  name: string | undefined
): Effect.Effect<A, E | Deadline.DeadlineExceeded, R> => {
  return Effect.flatten(Effect.timeoutTo(self, {
    duration: hard,
    onSuccess: Effect.succeed,
    onTimeout: () =>
      Effect.zipRight(
        Metric.increment(tagged(hardExceededTotal, name)),
        Effect.failSync(() => new Deadline.DeadlineExceeded({ deadline: name, duration: hard }))
      )
  }))
}

/**
 * Interrupts `fiber` and waits at most `grace` for it to finish its
 * finalizers; past the grace it is left to finish on its own.
 */
const interruptWithin = <A, E>(
  fiber: Fiber.RuntimeFiber<A, E>,
  grace: Duration.Duration,
  name: string | undefined
): Effect.Effect<void> =>
  Effect.fiberIdWith((id) => Fiber.interruptAsFork(fiber, id)).pipe(
    Effect.zipRight(Effect.timeoutOption(Effect.interruptible(Fiber.await(fiber)), grace)),
    Effect.flatMap(Option.match({
      onSome: () => Effect.void,
      onNone: () =>
        Effect.logWarning(
          `${label(name)}: finalizers did not finish within the grace period of ${
            Duration.format(grace)
          }; the effect is abandoned`
        ).pipe(
          Effect.annotateLogs({ deadline: name ?? "", graceMillis: Duration.toMillis(grace) }),
          Effect.zipRight(Metric.increment(tagged(abandonedTotal, name)))
        )
    }))
  )

/**
 * Runs `self` on a daemon fiber (so that an abandoned effect does not hold
 * the caller's fiber when it ends, as in `Effect.disconnect`) and interrupts
 * it with a grace period, on hard timeout and on interruption of the caller.
 */
const withGrace = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  hard: Duration.Duration | undefined,
  grace: Duration.Duration,
  name: string | undefined
): Effect.Effect<A, E | Deadline.DeadlineExceeded, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.forkDaemon(restore(self)), (fiber) => {
      const wait = hard === undefined
        ? Effect.asSome(Fiber.await(fiber))
        : Effect.timeoutOption(Fiber.await(fiber), hard)
      const exceeded = Metric.increment(tagged(hardExceededTotal, name)).pipe(
        Effect.zipRight(interruptWithin(fiber, grace, name)),
        Effect.zipRight(Effect.failSync(() => new Deadline.DeadlineExceeded({ deadline: name, duration: hard! })))
      )
      return restore(wait).pipe(
        Effect.onInterrupt(() => interruptWithin(fiber, grace, name)),
        Effect.flatMap((result): Effect.Effect<A, E | Deadline.DeadlineExceeded> =>
          Option.isSome(result) ? Effect.zipRight(Fiber.inheritAll(fiber), result.value) : exceeded
        )
      )
    })
  )

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

const decodeOption = (input: Duration.DurationInput | undefined): Duration.Duration | undefined =>
  input === undefined ? undefined : Duration.decode(input)

/** @internal */
export const timeout = dual<
  <R2 = never>(
    options: Deadline.Deadline.Options<R2>
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Deadline.DeadlineExceeded, R | R2>,
  <A, E, R, R2 = never>(
    self: Effect.Effect<A, E, R>,
    options: Deadline.Deadline.Options<R2>
  ) => Effect.Effect<A, E | Deadline.DeadlineExceeded, R | R2>
>(2, <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  options: Deadline.Deadline.Options<R2>
): Effect.Effect<A, E | Deadline.DeadlineExceeded, R | R2> => {
  const hard = decodeOption(options.hard)
  const soft = decodeOption(options.soft)
  const grace = decodeOption(options.grace)
  const name = options.name
  let effect: Effect.Effect<A, E | Deadline.DeadlineExceeded, R | R2> = self
  if (grace !== undefined) {
    effect = withGrace(effect, hard, grace, name)
  } else if (hard !== undefined) {
    effect = hardOnly(effect, hard, name)
  }
  // The soft watcher runs beside the caller, outside the hard deadline: it is
  // stopped as soon as the caller has its result.
  if (soft !== undefined) {
    effect = withSoft(effect, soft, name, options.onSoft)
  }
  return effect
})

/** @internal */
export const hard = dual<
  (
    duration: Duration.DurationInput,
    options?: Deadline.Deadline.HardOptions
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Deadline.DeadlineExceeded, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    duration: Duration.DurationInput,
    options?: Deadline.Deadline.HardOptions
  ) => Effect.Effect<A, E | Deadline.DeadlineExceeded, R>
>(
  (args) => Effect.isEffect(args[0]),
  (self, duration, options) => timeout(self, { ...options, hard: duration })
)

/** @internal */
export const soft = dual<
  <R2 = never>(
    duration: Duration.DurationInput,
    options?: Deadline.Deadline.SoftOptions<R2>
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R | R2>,
  <A, E, R, R2 = never>(
    self: Effect.Effect<A, E, R>,
    duration: Duration.DurationInput,
    options?: Deadline.Deadline.SoftOptions<R2>
  ) => Effect.Effect<A, E, R | R2>
>(
  (args) => Effect.isEffect(args[0]),
  (self, duration, options) => withSoft(self, Duration.decode(duration), options?.name, options?.onSoft)
)
