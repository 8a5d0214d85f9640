import { assert, describe, it } from "@effect/vitest"
import * as Limiter from "@spindle/core/Limiter"
import {
  Array as Arr,
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Metric,
  MetricState,
  TestClock
} from "effect"

class Boom extends Data.TaggedError("Boom")<{ readonly item: number }> {}

/** Lets every forked fiber run until it is done or suspended. */
const settle = TestClock.adjust(Duration.zero)

/** Counts effects running at once and remembers the maximum. */
const makeTracker = () => {
  let current = 0
  let max = 0
  const track = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        current++
        if (current > max) max = current
      }),
      () => effect,
      () => Effect.sync(() => current--)
    )
  return { track, max: () => max, current: () => current }
}

const yields = (n: number): Effect.Effect<void> =>
  Effect.forEach(Arr.range(1, n), () => Effect.yieldNow(), { discard: true })

const metricState = (name: string, limiter: string) =>
  Effect.map(Metric.snapshot, (pairs) => {
    const pair = pairs.find((p) =>
      p.metricKey.name === name && p.metricKey.tags.some((t) => t.key === "limiter" && t.value === limiter)
    )
    if (pair === undefined) throw new Error(`metric ${name}{limiter=${limiter}} not found`)
    return pair.metricState
  })

const counterValue = (name: string, limiter: string) =>
  Effect.map(metricState(name, limiter), (state) => {
    assert.isTrue(MetricState.isCounterState(state))
    return Number((state as MetricState.MetricState.Counter<number>).count)
  })

const gaugeValue = (name: string, limiter: string) =>
  Effect.map(metricState(name, limiter), (state) => {
    assert.isTrue(MetricState.isGaugeState(state))
    return Number((state as MetricState.MetricState.Gauge<number>).value)
  })

describe("Limiter", () => {
  describe("run", () => {
    it.effect("never exceeds its limit with 1,000 concurrent submissions, and the peak reaches it", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-run-limit", limit: 10 })
        const tracker = makeTracker()
        const results = yield* Effect.forEach(
          Arr.range(0, 999),
          (i) => limiter.run(tracker.track(Effect.as(yields(1), i))),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results, Arr.range(0, 999))
        assert.strictEqual(tracker.max(), 10)
        const stats = yield* limiter.stats
        assert.strictEqual(stats.peak, 10)
        assert.strictEqual(stats.completed, 1000)
        assert.strictEqual(stats.inFlight, 0)
        assert.strictEqual(stats.waiting, 0)
      }))

    it.effect("is dual: Limiter.run(limiter, effect) and effect.pipe(Limiter.run(limiter))", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-run-dual", limit: 1 })
        const a = yield* Limiter.run(limiter, Effect.succeed(1))
        const b = yield* Effect.succeed(2).pipe(Limiter.run(limiter))
        assert.strictEqual(a + b, 3)
        assert.strictEqual((yield* Limiter.stats(limiter)).completed, 2)
        assert.isTrue(Limiter.isLimiter(limiter))
        assert.isFalse(Limiter.isLimiter({}))
      }))

    it.effect("hands permits over in FIFO order", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-run-fifo", limit: 1 })
        const gate = yield* Deferred.make<void>()
        const order: Array<number> = []
        const holder = yield* Effect.fork(limiter.run(Deferred.await(gate)))
        yield* settle
        const waiters = yield* Effect.forEach(
          Arr.range(1, 5),
          (i) => Effect.fork(limiter.run(Effect.sync(() => order.push(i)))).pipe(Effect.zipLeft(settle))
        )
        assert.strictEqual((yield* limiter.stats).waiting, 5)
        yield* Deferred.succeed(gate, void 0)
        yield* Fiber.join(holder)
        yield* Fiber.joinAll(waiters)
        assert.deepStrictEqual(order, [1, 2, 3, 4, 5])
      }))

    it.effect("passes failures, defects and values through and counts them", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-run-outcomes", limit: 2 })
        const failure = yield* Effect.flip(limiter.run(Effect.fail(new Boom({ item: 1 }))))
        assert.deepStrictEqual(failure, new Boom({ item: 1 }))
        const defect = yield* Effect.exit(limiter.run(Effect.die("bug")))
        assert.isTrue(Exit.isFailure(defect) && Cause.isDie(defect.cause))
        assert.strictEqual(yield* limiter.run(Effect.succeed("ok")), "ok")
        const stats = yield* limiter.stats
        assert.strictEqual(stats.completed, 1)
        assert.strictEqual(stats.failed, 2)
        assert.strictEqual(stats.inFlight, 0)
      }))

    it.effect("dies on an invalid limit", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Limiter.make({ name: "test-invalid", limit: 0 }))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const defect = Cause.dieOption(exit.cause)
          assert.isTrue(defect._tag === "Some" && Cause.isIllegalArgumentException(defect.value))
        }
      }))

    it.effect("is provided under a user's tag by layer", () =>
      Effect.gen(function*() {
        class Api extends Context.Tag("test/Api")<Api, Limiter.Limiter>() {}
        const limiter = yield* Effect.provide(Api, Limiter.layer(Api, { name: "test-layer", limit: 3 }))
        assert.strictEqual(limiter.name, "test-layer")
        assert.strictEqual(limiter.limit, 3)
        assert.strictEqual(yield* limiter.run(Effect.succeed(5)), 5)
      }))
  })

  describe("forEach", () => {
    it.effect("keeps input order, never exceeds the limit, and reaches it", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-order", limit: 8 })
        const tracker = makeTracker()
        const items = Arr.range(0, 999)
        const results = yield* limiter.forEach(items, (i) => tracker.track(Effect.as(yields((i * 7) % 5), i * 2)))
        assert.deepStrictEqual(results, items.map((i) => i * 2))
        assert.strictEqual(tracker.max(), 8)
        const stats = yield* limiter.stats
        assert.strictEqual(stats.peak, 8)
        assert.strictEqual(stats.completed, 1000)
      }))

    it.effect("keeps input order when later items finish first", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-reverse", limit: 5 })
        const fiber = yield* Effect.fork(
          limiter.forEach(["a", "b", "c", "d", "e"], (s, i) => Effect.as(Effect.sleep(Duration.seconds(5 - i)), s))
        )
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* Fiber.join(fiber), ["a", "b", "c", "d", "e"])
      }))

    it.effect("accepts any iterable and an empty input", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-iterable", limit: 2 })
        const results = yield* limiter.forEach(new Set([3, 1, 2]), (n) => Effect.succeed(n * 10))
        assert.deepStrictEqual(results, [30, 10, 20])
        assert.deepStrictEqual(yield* limiter.forEach([], () => Effect.succeed(1)), [])
      }))

    it.effect("shares its permits with run", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-shared", limit: 4 })
        const gate = yield* Deferred.make<void>()
        const holders = yield* Effect.fork(
          Effect.forEach(Arr.range(1, 3), () => limiter.run(Deferred.await(gate)), { concurrency: "unbounded" })
        )
        yield* settle
        const tracker = makeTracker()
        const results = yield* limiter.forEach(Arr.range(0, 49), (i) => tracker.track(Effect.as(yields(2), i)))
        assert.deepStrictEqual(results, Arr.range(0, 49))
        assert.strictEqual(tracker.max(), 1)
        yield* Deferred.succeed(gate, void 0)
        yield* Fiber.join(holders)
        assert.strictEqual((yield* limiter.stats).peak, 4)
      }))

    it.effect("fail-fast: fails with the first typed error and interrupts the rest", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-failfast", limit: 4 })
        const othersStarted = yield* Deferred.make<void>()
        const started: Array<number> = []
        const interrupted: Array<number> = []
        const error = yield* Effect.flip(limiter.forEach(Arr.range(0, 9), (i) => {
          started.push(i)
          if (i === 2) {
            return Effect.zipRight(Deferred.await(othersStarted), Effect.fail(new Boom({ item: i })))
          }
          return Effect.suspend(() => started.length === 4 ? Deferred.succeed(othersStarted, void 0) : Effect.void)
            .pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Effect.sync(() => interrupted.push(i)))
            )
        }))
        assert.deepStrictEqual(error, new Boom({ item: 2 }))
        assert.deepStrictEqual([...started].sort(), [0, 1, 2, 3])
        assert.deepStrictEqual([...interrupted].sort(), [0, 1, 3])
        const stats = yield* limiter.stats
        assert.strictEqual(stats.failed, 1)
        assert.strictEqual(stats.interrupted, 3)
        assert.strictEqual(stats.completed, 0)
        assert.strictEqual(stats.inFlight, 0)
        assert.strictEqual(stats.waiting, 0)
      }))

    it.effect("settle: returns every success and typed failure in input order", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-settle", limit: 3 })
        const results = yield* limiter.forEach(
          Arr.range(0, 9),
          (i) => i % 3 === 0 ? Effect.fail(new Boom({ item: i })) : Effect.as(yields(i % 4), `ok ${i}`),
          { mode: "settle" }
        )
        assert.deepStrictEqual(
          results,
          Arr.range(0, 9).map((i) => i % 3 === 0 ? Either.left(new Boom({ item: i })) : Either.right(`ok ${i}`))
        )
        const stats = yield* limiter.stats
        assert.strictEqual(stats.completed, 6)
        assert.strictEqual(stats.failed, 4)
        assert.strictEqual(stats.inFlight, 0)
      }))

    it.effect("settle: a defect is not a result, it propagates", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-foreach-settle-defect", limit: 2 })
        const exit = yield* Effect.exit(
          limiter.forEach([1, 2, 3], (i) => i === 2 ? Effect.die("bug") : Effect.succeed(i), { mode: "settle" })
        )
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        assert.strictEqual((yield* limiter.stats).inFlight, 0)
      }))
  })

  describe("stats", () => {
    it.effect("waiting, in flight, peak, completed, failed and wait times are exact under TestClock", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-stats-exact", limit: 2 })
        // A: 1s, B: 2s, C: 1s then fails, D: 1s. At t=0 A and B run, C and D queue;
        // t=1 A ends, C gets its permit (waited 1s); t=2 B ends, D gets its permit
        // (waited 2s) and C fails; t=3 D ends.
        const a = yield* Effect.fork(limiter.run(Effect.sleep("1 second")))
        const b = yield* Effect.fork(limiter.run(Effect.sleep("2 seconds")))
        yield* settle
        const c = yield* Effect.fork(
          limiter.run(Effect.zipRight(Effect.sleep("1 second"), Effect.fail(new Boom({ item: 3 }))))
        )
        const d = yield* Effect.fork(limiter.run(Effect.sleep("1 second")))
        yield* settle

        let stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 2)
        assert.strictEqual(stats.waiting, 2)
        assert.strictEqual(stats.peak, 2)
        assert.strictEqual(stats.completed, 0)

        yield* TestClock.adjust("1 second")
        stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 2)
        assert.strictEqual(stats.waiting, 1)
        assert.strictEqual(stats.completed, 1)
        assert.strictEqual(Duration.toMillis(stats.maxWait), 1000)

        yield* TestClock.adjust("1 second")
        stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 1)
        assert.strictEqual(stats.waiting, 0)
        assert.strictEqual(stats.completed, 2)
        assert.strictEqual(stats.failed, 1)

        yield* TestClock.adjust("1 second")
        yield* Fiber.join(a)
        yield* Fiber.join(b)
        assert.deepStrictEqual(yield* Effect.flip(Fiber.join(c)), new Boom({ item: 3 }))
        yield* Fiber.join(d)
        stats = yield* limiter.stats
        assert.deepStrictEqual(
          {
            inFlight: stats.inFlight,
            waiting: stats.waiting,
            peak: stats.peak,
            completed: stats.completed,
            failed: stats.failed,
            interrupted: stats.interrupted,
            meanWaitMillis: Duration.toMillis(stats.meanWait),
            maxWaitMillis: Duration.toMillis(stats.maxWait)
          },
          {
            inFlight: 0,
            waiting: 0,
            peak: 2,
            completed: 3,
            failed: 1,
            interrupted: 0,
            meanWaitMillis: 750, // (0 + 0 + 1000 + 2000) / 4
            maxWaitMillis: 2000
          }
        )
      }))

    it.effect("metrics follow the stats, tagged with the limiter name", () =>
      Effect.gen(function*() {
        const name = "test-stats-metrics"
        const limiter = yield* Limiter.make({ name, limit: 1 })
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(limiter.run(Deferred.await(gate)))
        yield* settle
        const waiter = yield* Effect.fork(limiter.run(Effect.fail(new Boom({ item: 1 }))))
        yield* settle
        assert.strictEqual(yield* gaugeValue("spindle_limiter_in_flight", name), 1)
        assert.strictEqual(yield* gaugeValue("spindle_limiter_waiting", name), 1)

        yield* TestClock.adjust("3 seconds")
        yield* Deferred.succeed(gate, void 0)
        yield* Fiber.join(holder)
        yield* Fiber.await(waiter)
        yield* limiter.forEach(Arr.range(1, 10), () => Effect.void)
        yield* settle

        assert.strictEqual(yield* counterValue("spindle_limiter_completed_total", name), 11)
        assert.strictEqual(yield* counterValue("spindle_limiter_failed_total", name), 1)
        assert.strictEqual(yield* gaugeValue("spindle_limiter_in_flight", name), 0)
        assert.strictEqual(yield* gaugeValue("spindle_limiter_waiting", name), 0)
        const histogram = yield* metricState("spindle_limiter_wait_seconds", name)
        assert.isTrue(MetricState.isHistogramState(histogram))
        const h = histogram as MetricState.MetricState.Histogram
        assert.strictEqual(h.count, 1)
        assert.strictEqual(h.sum, 3)
      }))
  })

  describe("interruption", () => {
    it.effect("interrupting waiters and runners releases their permits", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-interrupt", limit: 2 })
        const runners = yield* Effect.forEach(Arr.range(1, 2), () => Effect.fork(limiter.run(Effect.never)))
        yield* settle
        const waiters = yield* Effect.forEach(Arr.range(1, 3), () => Effect.fork(limiter.run(Effect.never)))
        yield* settle
        let stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 2)
        assert.strictEqual(stats.waiting, 3)

        // a queued waiter leaves the queue
        yield* Fiber.interrupt(waiters[0])
        stats = yield* limiter.stats
        assert.strictEqual(stats.waiting, 2)

        // an interrupted runner hands its permit to the next waiter
        yield* Fiber.interrupt(runners[0])
        yield* settle
        stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 2)
        assert.strictEqual(stats.waiting, 1)
        assert.strictEqual(stats.interrupted, 1)

        yield* Fiber.interruptAll([...runners, ...waiters])
        stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 0)
        assert.strictEqual(stats.waiting, 0)
        assert.strictEqual(stats.interrupted, 3)

        // later runs still get the full limit
        const tracker = makeTracker()
        yield* Effect.forEach(Arr.range(1, 20), () => limiter.run(tracker.track(yields(2))), {
          concurrency: "unbounded"
        })
        assert.strictEqual(tracker.max(), 2)
      }))

    it.effect("a waiter interrupted right after it was granted a permit passes it on", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-interrupt-granted", limit: 1 })
        const gate = yield* Deferred.make<void>()
        const waiterRan = yield* Deferred.make<void>()
        const waiterFiber = yield* Deferred.make<Fiber.RuntimeFiber<boolean>>()
        // the holder finishes (granting the waiter) and interrupts the waiter in the same step
        const holder = yield* Effect.fork(
          Effect.zipRight(
            limiter.run(Deferred.await(gate)),
            Effect.flatMap(Deferred.await(waiterFiber), Fiber.interrupt)
          )
        )
        yield* settle
        const waiter = yield* Effect.fork(limiter.run(Deferred.succeed(waiterRan, void 0)))
        yield* Deferred.succeed(waiterFiber, waiter)
        yield* settle
        yield* Deferred.succeed(gate, void 0)
        yield* Fiber.join(holder)
        yield* Fiber.await(waiter)
        const stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 0)
        assert.strictEqual(stats.waiting, 0)
        assert.isFalse(yield* Deferred.isDone(waiterRan))
        assert.strictEqual(yield* limiter.run(Effect.succeed("next")), "next")
      }))

    it.effect("interrupting a forEach releases every permit", () =>
      Effect.gen(function*() {
        const limiter = yield* Limiter.make({ name: "test-interrupt-foreach", limit: 3 })
        const gate = yield* Deferred.make<void>()
        const outsider = yield* Effect.fork(limiter.run(Deferred.await(gate)))
        yield* settle
        const fiber = yield* Effect.fork(limiter.forEach(Arr.range(0, 99), () => Effect.never))
        yield* settle
        let stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 3)
        assert.strictEqual(stats.waiting, 1)
        yield* Fiber.interrupt(fiber)
        stats = yield* limiter.stats
        assert.strictEqual(stats.inFlight, 1)
        assert.strictEqual(stats.waiting, 0)
        assert.strictEqual(stats.interrupted, 2)
        yield* Deferred.succeed(gate, void 0)
        yield* Fiber.join(outsider)
        const tracker = makeTracker()
        yield* limiter.forEach(Arr.range(0, 29), () => tracker.track(yields(2)))
        assert.strictEqual(tracker.max(), 3)
        assert.strictEqual((yield* limiter.stats).inFlight, 0)
      }))
  })
})
