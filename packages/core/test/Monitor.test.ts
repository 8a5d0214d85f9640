import { assert, describe, it } from "@effect/vitest"
import * as Monitor from "@spindle/core/Monitor"
import * as Prometheus from "@spindle/core/Prometheus"
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Fiber,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Metric,
  Option,
  Schedule,
  TestClock
} from "effect"

interface Warning {
  readonly message: unknown
  readonly annotations: Record<string, unknown>
}

const captureWarnings = (warnings: Array<Warning>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
        warnings.push({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      }
    })
  )

/** Forks `body` and waits until it has started running, so its fiber refs are in place. */
const forkStarted = <A, E>(wrap: (self: Effect.Effect<never>) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(wrap(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)))
    yield* Deferred.await(started)
    return fiber
  })

describe("Monitor", () => {
  it.effect("counts live fibers as they are forked and end", () =>
    Effect.gen(function*() {
      const monitor = yield* Monitor.Monitor
      const before = yield* monitor.liveFibers
      const latch = yield* Deferred.make<void>()
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(Deferred.await(latch)))
      assert.strictEqual(yield* monitor.liveFibers, before + 3)
      const ids = (yield* monitor.fibers).map((fiber) => fiber.id)
      for (const fiber of fibers) assert.include(ids, fiber.id().id)

      yield* Fiber.interrupt(fibers[0])
      assert.strictEqual(yield* monitor.liveFibers, before + 2)

      yield* Deferred.succeed(latch, undefined)
      yield* Fiber.joinAll(fibers.slice(1))
      assert.strictEqual(yield* monitor.liveFibers, before)

      const sample = yield* monitor.sample
      assert.strictEqual(sample.fibersLive, before)
      assert.strictEqual((yield* Metric.value(Monitor.fibersLive)).value, before)
    }).pipe(Effect.provide(Monitor.layer({ sampleInterval: "1 second" }))))

  it.effect("make watches only what runs under its supervisor", () =>
    Effect.scoped(
      Effect.gen(function*() {
        const monitor = yield* Monitor.make()
        yield* Effect.fork(Effect.never)
        assert.strictEqual(yield* monitor.liveFibers, 0)

        const fiber = yield* Effect.fork(Effect.never).pipe(Effect.supervised(monitor.supervisor))
        assert.strictEqual(yield* monitor.liveFibers, 1)
        const tracked = yield* monitor.supervisor.value
        assert.deepStrictEqual(tracked.map((f) => f.id().id), [fiber.id().id])

        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* monitor.liveFibers, 0)
      })
    ))

  it.effect("closing the layer removes the supervisor", () =>
    Effect.gen(function*() {
      const [monitor, inside] = yield* Effect.scoped(
        Effect.gen(function*() {
          const context = yield* Layer.build(Monitor.layer())
          const inside = yield* Effect.fork(Effect.never)
          return [Context.get(context, Monitor.Monitor), inside] as const
        })
      )
      assert.strictEqual(yield* monitor.liveFibers, 1)
      yield* Effect.fork(Effect.never)
      assert.strictEqual(yield* monitor.liveFibers, 1)
      yield* Fiber.interrupt(inside)
      assert.strictEqual(yield* monitor.liveFibers, 0)
    }))

  it.effect("reports fibers past the threshold with their name and age, and warns once per fiber", () => {
    const warnings: Array<Warning> = []
    return Effect.gen(function*() {
      const monitor = yield* Monitor.Monitor
      const countBefore = (yield* Metric.value(Monitor.longRunningFibersTotal)).count

      const named = yield* forkStarted(Monitor.withFiberName("report-named"))
      const spanned = yield* forkStarted(Effect.withSpan("report-span"))
      const logSpanned = yield* forkStarted(Effect.withLogSpan("report-log-span"))
      const allowed = yield* forkStarted((self) =>
        self.pipe(Monitor.withFiberName("report-allowed"), Monitor.allowLongRunning)
      )
      const short = yield* Effect.fork(Effect.sleep("5 seconds"))

      yield* TestClock.adjust("9 seconds")
      yield* Fiber.join(short)
      assert.deepStrictEqual(yield* monitor.longRunning(), [])
      assert.deepStrictEqual(warnings, [])

      yield* TestClock.adjust("3 seconds")
      const reported = yield* monitor.longRunning()
      const byName = new Map(reported.map((fiber) => [fiber.name, fiber]))
      assert.strictEqual(byName.get("report-named")?.id, named.id().id)
      assert.strictEqual(byName.get("report-span")?.id, spanned.id().id)
      assert.strictEqual(byName.get("report-log-span")?.id, logSpanned.id().id)
      assert.isFalse(reported.some((fiber) => fiber.id === allowed.id().id || fiber.id === short.id().id))
      for (const name of ["report-named", "report-span", "report-log-span"]) {
        assert.strictEqual(Duration.toMillis(byName.get(name)!.age), 12_000)
        assert.strictEqual(byName.get(name)!.startedAt, 0)
      }
      // an explicit threshold overrides the configured one
      assert.isFalse((yield* monitor.longRunning("13 seconds")).some((fiber) => fiber.id === named.id().id))

      // the background check ran at 10, 11 and 12 seconds: one warning per fiber, at the 10s tick
      const warned = (name: string) => warnings.filter((warning) => warning.annotations.fiberName === name)
      for (const name of ["report-named", "report-span", "report-log-span"]) {
        assert.strictEqual(warned(name).length, 1, name)
        assert.strictEqual(warned(name)[0].annotations.age, "10s")
        assert.strictEqual(warned(name)[0].annotations.threshold, "10s")
      }
      assert.strictEqual(warned("report-named")[0].annotations.fiberId, named.id().id)
      assert.deepStrictEqual(warned("report-allowed"), [])

      yield* TestClock.adjust("30 seconds")
      for (const name of ["report-named", "report-span", "report-log-span"]) {
        assert.strictEqual(warned(name).length, 1, name)
      }
      const countAfter = (yield* Metric.value(Monitor.longRunningFibersTotal)).count
      assert.strictEqual(countAfter - countBefore, warnings.length)
      assert.isAtLeast(warnings.length, 3)

      // ages keep growing while the fibers live
      const later = (yield* monitor.fibers).find((fiber) => fiber.id === named.id().id)
      assert.strictEqual(later && Duration.toMillis(later.age), 42_000)
    }).pipe(
      Effect.provide(Monitor.layer({ sampleInterval: "1 second", longRunningThreshold: "10 seconds" })),
      Effect.provide(captureWarnings(warnings))
    )
  })

  it.live("samples event loop delay, utilization and memory into gauges", () =>
    Effect.gen(function*() {
      const monitor = yield* Monitor.Monitor
      // the delay histogram needs at least one tick of its resolution: poll until it has one
      const sample = yield* monitor.sample.pipe(
        Effect.repeat(
          Schedule.spaced("5 millis").pipe(
            Schedule.untilInput((sample: Monitor.Monitor.Sample) => Option.isSome(sample.eventLoopDelay)),
            Schedule.passthrough
          )
        ),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no event loop delay sample") })
      )
      const delay = Option.getOrThrow(sample.eventLoopDelay)
      const [p50, p99, max, mean] = [delay.p50, delay.p99, delay.max, delay.mean].map(Duration.toSeconds)
      assert.isAbove(max, 0)
      assert.isAtLeast(p50, 0)
      assert.isAtMost(p50, p99)
      assert.isAtMost(p99, max)
      assert.isAtMost(mean, max)
      assert.isAtLeast(sample.eventLoopUtilization, 0)
      assert.isAtMost(sample.eventLoopUtilization, 1)
      assert.isAbove(sample.residentMemoryBytes, 0)
      assert.isAbove(sample.heapUsedBytes, 0)

      const gauge = (metric: Metric.Metric.Gauge<number>) => Effect.map(Metric.value(metric), (state) => state.value)
      assert.strictEqual(yield* gauge(Metric.tagged(Monitor.eventLoopDelaySeconds, "quantile", "0.5")), p50)
      assert.strictEqual(yield* gauge(Metric.tagged(Monitor.eventLoopDelaySeconds, "quantile", "0.99")), p99)
      assert.strictEqual(yield* gauge(Metric.tagged(Monitor.eventLoopDelaySeconds, "quantile", "1")), max)
      assert.strictEqual(yield* gauge(Monitor.eventLoopDelayMeanSeconds), mean)
      assert.strictEqual(yield* gauge(Monitor.eventLoopUtilization), sample.eventLoopUtilization)
      assert.strictEqual(yield* gauge(Monitor.residentMemoryBytes), sample.residentMemoryBytes)
      assert.strictEqual(yield* gauge(Monitor.heapUsedBytes), sample.heapUsedBytes)

      const text = yield* Prometheus.render({ prefix: "spindle_event_loop_" })
      assert.include(text, "# TYPE spindle_event_loop_delay_seconds gauge\n")
      assert.include(text, `spindle_event_loop_delay_seconds{quantile="0.99"} ${p99}\n`)
      assert.include(text, `spindle_event_loop_utilization ${sample.eventLoopUtilization}\n`)
    }).pipe(Effect.provide(Monitor.layer({ sampleInterval: "1 minute", resolution: "1 millis" }))))
})
