import { assert, describe, it } from "@effect/vitest"
import * as Deadline from "@spindle/core/Deadline"
import {
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberRef,
  HashMap,
  Logger,
  LogLevel,
  Metric,
  Option,
  Ref,
  TestClock
} from "effect"

const count = (metric: Metric.Metric.Counter<number>, deadline: string) =>
  Effect.map(Metric.value(Metric.tagged(metric, "deadline", deadline)), (state) => state.count)

interface Logged {
  readonly level: LogLevel.LogLevel
  readonly message: unknown
  readonly annotations: Record<string, unknown>
}

/** Runs `f` with a logger that records every log line. */
const withLogs = <A, E, R>(f: (logs: ReadonlyArray<Logged>) => Effect.Effect<A, E, R>) => {
  const logs: Array<Logged> = []
  const logger = Logger.make<unknown, void>(({ annotations, logLevel, message }) => {
    logs.push({
      level: logLevel,
      message: Array.isArray(message) && message.length === 1 ? message[0] : message,
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return Effect.provide(f(logs), Logger.add(logger))
}

/**
 * An effect that never ends by itself and whose interruption takes `cleanup`
 * to finalize: `started` completes when the finalizer starts, `done` when it
 * ends.
 */
const slowToStop = (
  cleanup: Duration.DurationInput,
  started: Deferred.Deferred<void>,
  done: Deferred.Deferred<void>
) =>
  Effect.never.pipe(
    Effect.onInterrupt(() =>
      Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Effect.sleep(cleanup)),
        Effect.zipRight(Deferred.succeed(done, undefined))
      )
    )
  )

describe("Deadline", () => {
  describe("hard", () => {
    it.effect("fails with DeadlineExceeded exactly at the duration", () =>
      Effect.gen(function*() {
        const name = "hard-exact"
        const fiber = yield* Effect.never.pipe(Deadline.timeout({ hard: "1 second", name }), Effect.fork)
        yield* TestClock.adjust("999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.await(fiber)
        assert.deepStrictEqual(
          exit,
          Exit.fail(new Deadline.DeadlineExceeded({ deadline: name, duration: Duration.seconds(1) }))
        )
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          assert.instanceOf(error, Deadline.DeadlineExceeded)
          assert.strictEqual(error?.message, `Deadline "hard-exact" exceeded: interrupted after 1s`)
        }
        assert.strictEqual(yield* count(Deadline.hardExceededTotal, name), 1)
      }))

    it.effect("interrupts the effect: its finalizers run", () =>
      Effect.gen(function*() {
        const interrupted = yield* Deferred.make<void>()
        const fiber = yield* Effect.never.pipe(
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
          Deadline.hard("5 seconds"),
          Effect.fork
        )
        yield* TestClock.adjust("5 seconds")
        yield* Deferred.await(interrupted)
        const exit = yield* Fiber.await(fiber)
        assert.deepStrictEqual(exit, Exit.fail(new Deadline.DeadlineExceeded({ duration: Duration.seconds(5) })))
      }))

    it.effect("returns the value, or the effect's own failure, when it finishes first", () =>
      Effect.gen(function*() {
        const name = "hard-in-time"
        const ok = yield* Effect.sleep("999 millis").pipe(
          Effect.as(42),
          Deadline.hard("1 second", { name }),
          Effect.fork
        )
        const failed = yield* Effect.sleep("10 millis").pipe(
          Effect.zipRight(Effect.fail("boom" as const)),
          (self) => Deadline.hard(self, "1 second", { name }),
          Effect.fork
        )
        yield* TestClock.adjust("999 millis")
        assert.strictEqual(yield* Fiber.join(ok), 42)
        assert.deepStrictEqual(yield* Fiber.await(failed), Exit.fail("boom" as const))
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* count(Deadline.hardExceededTotal, name), 0)
      }))

    it.effect("without grace, the caller waits for the finalizers however long they take", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const done = yield* Deferred.make<void>()
        const fiber = yield* slowToStop("10 seconds", started, done).pipe(Deadline.hard("1 second"), Effect.fork)
        yield* TestClock.adjust("1 second")
        yield* Deferred.await(started)
        yield* TestClock.adjust("9999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(yield* Deferred.isDone(done))
        assert.deepStrictEqual(exit, Exit.fail(new Deadline.DeadlineExceeded({ duration: Duration.seconds(1) })))
      }))
  })

  describe("grace", () => {
    it.effect("lets a slow finalizer finish within the grace", () =>
      Effect.gen(function*() {
        const name = "grace-within"
        const started = yield* Deferred.make<void>()
        const done = yield* Deferred.make<void>()
        const fiber = yield* slowToStop("2 seconds", started, done).pipe(
          Deadline.timeout({ hard: "1 second", grace: "5 seconds", name }),
          Effect.fork
        )
        yield* TestClock.adjust("1 second")
        yield* Deferred.await(started)
        yield* TestClock.adjust("1 second")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "the caller waits for the finalizer")
        yield* TestClock.adjust("1 second")
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(yield* Deferred.isDone(done), "the finalizer finished before the caller got its error")
        assert.deepStrictEqual(
          exit,
          Exit.fail(new Deadline.DeadlineExceeded({ deadline: name, duration: Duration.seconds(1) }))
        )
        assert.strictEqual(yield* TestClock.currentTimeMillis, 3000)
        assert.strictEqual(yield* count(Deadline.abandonedTotal, name), 0)
      }))

    it.effect("past the grace, the caller gets DeadlineExceeded at once and the effect is abandoned", () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const name = "grace-past"
          const started = yield* Deferred.make<void>()
          const done = yield* Deferred.make<void>()
          const fiber = yield* slowToStop("10 seconds", started, done).pipe(
            Deadline.timeout({ hard: "1 second", grace: "3 seconds", name }),
            Effect.fork
          )
          yield* TestClock.adjust("1 second")
          yield* Deferred.await(started)
          yield* TestClock.adjust("2999 millis")
          assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
          yield* TestClock.adjust("1 millis")
          const exit = yield* Fiber.await(fiber)
          assert.deepStrictEqual(
            exit,
            Exit.fail(new Deadline.DeadlineExceeded({ deadline: name, duration: Duration.seconds(1) }))
          )
          assert.isFalse(yield* Deferred.isDone(done), "the caller did not wait for the finalizer")
          assert.strictEqual(yield* count(Deadline.abandonedTotal, name), 1)
          assert.strictEqual(yield* count(Deadline.hardExceededTotal, name), 1)
          const warnings = logs.filter((log) => log.level === LogLevel.Warning)
          assert.strictEqual(warnings.length, 1)
          assert.include(String(warnings[0]!.message), "abandoned")
          assert.strictEqual(warnings[0]!.annotations.deadline, name)
          // the abandoned effect still finishes its finalizer on its own
          yield* TestClock.adjust("7 seconds")
          yield* Deferred.await(done)
        })
      ))

    it.effect("applies to an interruption of the caller too", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const done = yield* Deferred.make<void>()
        const fiber = yield* slowToStop("1 minute", started, done).pipe(
          Deadline.timeout({ grace: "2 seconds" }),
          Effect.fork
        )
        yield* TestClock.adjust("10 seconds")
        const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
        yield* Deferred.await(started)
        yield* TestClock.adjust("1999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(interrupting)))
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.join(interrupting)
        assert.isTrue(Exit.isInterrupted(exit))
        assert.isFalse(yield* Deferred.isDone(done))
      }))

    it.effect("keeps the effect's result, failures and fiber refs when it finishes in time", () =>
      Effect.gen(function*() {
        const ref = FiberRef.unsafeMake(0)
        const value = yield* FiberRef.set(ref, 7).pipe(
          Effect.zipRight(Effect.sleep("1 second")),
          Effect.as("done"),
          Deadline.timeout({ hard: "2 seconds", grace: "1 second" }),
          Effect.fork,
          Effect.tap(() => TestClock.adjust("1 second")),
          Effect.flatMap(Fiber.join)
        )
        assert.strictEqual(value, "done")
        const failed = yield* Effect.exit(
          Deadline.timeout(Effect.fail("boom"), { hard: "1 second", grace: "1 second" })
        )
        assert.deepStrictEqual(failed, Exit.fail("boom"))
        const inherited = yield* FiberRef.set(ref, 9).pipe(Deadline.timeout({ hard: "1 second", grace: "1 second" }))
        assert.strictEqual(inherited, undefined)
        assert.strictEqual(yield* FiberRef.get(ref), 9)
      }))
  })

  describe("soft", () => {
    it.effect("warns once without interrupting, and the value comes back", () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const name = "soft-once"
          const calls = yield* Ref.make<Array<Deadline.SoftInfo>>([])
          const fiber = yield* Effect.sleep("10 seconds").pipe(
            Effect.as("report.pdf"),
            Deadline.soft("1 second", { name, onSoft: (info) => Ref.update(calls, (all) => [...all, info]) }),
            Effect.fork
          )
          yield* TestClock.adjust("999 millis")
          assert.deepStrictEqual(yield* Ref.get(calls), [])
          yield* TestClock.adjust("1 millis")
          assert.deepStrictEqual(yield* Ref.get(calls), [{
            name,
            soft: Duration.seconds(1),
            elapsed: Duration.seconds(1)
          }])
          for (let i = 0; i < 8; i++) yield* TestClock.adjust("1 second")
          assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "not interrupted")
          yield* TestClock.adjust("1 second")
          assert.strictEqual(yield* Fiber.join(fiber), "report.pdf")
          assert.strictEqual((yield* Ref.get(calls)).length, 1)
          assert.strictEqual(yield* count(Deadline.softExceededTotal, name), 1)
          const warnings = logs.filter((log) => log.level === LogLevel.Warning)
          assert.strictEqual(warnings.length, 1)
          assert.include(String(warnings[0]!.message), "soft timeout")
          assert.deepStrictEqual(warnings[0]!.annotations, { deadline: name, softMillis: 1000, elapsedMillis: 1000 })
        })
      ))

    it.effect("nothing fires when the effect finishes first, and the watcher is stopped", () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const name = "soft-in-time"
          const calls = yield* Ref.make(0)
          const fiber = yield* Effect.sleep("500 millis").pipe(
            Effect.as(1),
            Deadline.timeout({
              soft: "1 second",
              hard: "1 minute",
              name,
              onSoft: () => Ref.update(calls, (n) => n + 1)
            }),
            Effect.fork
          )
          yield* TestClock.adjust("500 millis")
          assert.strictEqual(yield* Fiber.join(fiber), 1)
          yield* TestClock.adjust("1 hour")
          assert.strictEqual(yield* Ref.get(calls), 0)
          assert.strictEqual(yield* count(Deadline.softExceededTotal, name), 0)
          assert.strictEqual(yield* count(Deadline.hardExceededTotal, name), 0)
          assert.deepStrictEqual(logs, [])
        })
      ))

    it.effect("the effect's failure is untouched", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.sleep("2 seconds").pipe(
          Effect.zipRight(Effect.fail("boom" as const)),
          Deadline.soft("1 second"),
          Effect.fork
        )
        yield* TestClock.adjust("2 seconds")
        assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail("boom"))
      }))

    it.effect("soft then hard: one warning, then DeadlineExceeded at the hard duration", () =>
      Effect.gen(function*() {
        const name = "soft-then-hard"
        const calls = yield* Ref.make(0)
        const fiber = yield* Effect.never.pipe(
          (self) =>
            Deadline.timeout(self, {
              soft: "1 second",
              hard: "3 seconds",
              name,
              onSoft: () => Ref.update(calls, (n) => n + 1)
            }),
          Effect.fork
        )
        yield* TestClock.adjust("2999 millis")
        assert.strictEqual(yield* Ref.get(calls), 1)
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        assert.deepStrictEqual(
          yield* Fiber.await(fiber),
          Exit.fail(new Deadline.DeadlineExceeded({ deadline: name, duration: Duration.seconds(3) }))
        )
        assert.strictEqual(yield* Ref.get(calls), 1)
        assert.strictEqual(yield* count(Deadline.softExceededTotal, name), 1)
        assert.strictEqual(yield* count(Deadline.hardExceededTotal, name), 1)
      }))
  })
})
