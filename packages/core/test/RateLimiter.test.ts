import { assert, describe, it } from "@effect/vitest"
import * as RateLimiter from "@spindle/core/RateLimiter"
import {
  Array as Arr,
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Metric,
  Option,
  Ref,
  Schema,
  TestClock
} from "effect"

type Algorithm = RateLimiter.RateLimiter.Algorithm

let instance = 0

/** Options for `limit` units per `period`, as an `interval` or a `window` depending on the algorithm. */
const per = (algorithm: Algorithm, limit: number, period: Duration.DurationInput) => {
  const name = `test-${algorithm}-${++instance}`
  return algorithm === "token-bucket"
    ? { name, algorithm, limit, interval: period } as const
    : { name, algorithm, limit, window: period } as const
}

/** Waits (without time passing) until `n` callers are queued in the limiter. */
const awaitWaiting = (limiter: RateLimiter.RateLimiter<unknown>, n: number) =>
  Effect.yieldNow().pipe(
    Effect.zipRight(limiter.stats),
    Effect.repeat({ until: (stats) => stats.waiting >= n })
  )

const takeMany = (limiter: RateLimiter.RateLimiter, n: number, key?: string) =>
  Effect.forEach(Arr.range(1, n), () => Effect.either(limiter.take(key)))

const rights = <A, E>(results: ReadonlyArray<Either.Either<A, E>>) => results.filter(Either.isRight).length

const retryAfters = <A>(results: ReadonlyArray<Either.Either<A, RateLimiter.RateLimitExceeded>>) =>
  results.flatMap((r) => Either.isLeft(r) ? [Duration.toMillis(r.left.retryAfter)] : [])

const isDefect = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) && Option.exists(Cause.dieOption(exit.cause), Cause.isIllegalArgumentException)

/** What each algorithm must do with `limit: 10` per second. */
interface Expected {
  /** `retryAfter` of a unit call on an exhausted limiter. */
  readonly retryWhenEmpty: number
  /** Steps of `[advance ms, admitted of 25 tries, retryAfter of the next]` after exhausting it at 0. */
  readonly refills: ReadonlyArray<readonly [number, number, number]>
  /** Admission times of 25 callers queued at 0 in delay mode. */
  readonly delayedTimes: ReadonlyArray<number>
  /** `retryAfter` of a cost-4 call after two cost-4 calls. */
  readonly costRetry: number
  /** When a unit waiter is admitted after exhausting the limiter at 0. */
  readonly unitAfter: number
  /** When a unit waiter is admitted if the cost-10 head in front of it is interrupted at 500 ms. */
  readonly afterHeadInterruptedAt500: number
  /** After exhausting at 0: admission times of a cost-5 caller queued at 0 and a unit caller arriving at 100. */
  readonly fifo: readonly [number, number]
}

const expectations: Record<Algorithm, Expected> = {
  "token-bucket": {
    retryWhenEmpty: 100,
    refills: [[350, 3, 50], [650, 7, 100]],
    delayedTimes: [...Arr.replicate(0, 10), ...Arr.range(1, 15).map((i) => i * 100)],
    costRetry: 200,
    unitAfter: 100,
    afterHeadInterruptedAt500: 500,
    fifo: [500, 600]
  },
  "sliding-window": {
    retryWhenEmpty: 1000,
    refills: [[999, 0, 1], [1, 10, 1000]],
    delayedTimes: [...Arr.replicate(0, 10), ...Arr.replicate(1000, 10), ...Arr.replicate(2000, 5)],
    costRetry: 1000,
    unitAfter: 1000,
    afterHeadInterruptedAt500: 1000,
    fifo: [1000, 1000]
  }
}

const suite = (algorithm: Algorithm) => {
  const expected = expectations[algorithm]

  it.scoped("fail: admits exactly the limit, rejects the rest with the exact retryAfter", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "fail" })
      const first = yield* takeMany(limiter, 25)
      assert.strictEqual(rights(first), 10)
      assert.deepStrictEqual(first.slice(0, 10).map(Either.isRight), Arr.replicate(true, 10))
      assert.deepStrictEqual(retryAfters(first), Arr.replicate(expected.retryWhenEmpty, 15))
      const error = first[10]
      assert(error !== undefined && Either.isLeft(error))
      assert.strictEqual(error.left._tag, "RateLimitExceeded")
      assert.strictEqual(error.left.limiter, limiter.name)
      assert.strictEqual(error.left.key, undefined)
      assert.strictEqual(error.left.limit, 10)
      assert.include(error.left.message, `exceeded on "${limiter.name}"`)
      // a Schema.TaggedError: it can be stored with a task or sent over HTTP and decoded back
      const encoded = Schema.encodeSync(RateLimiter.RateLimitExceeded)(error.left)
      assert.strictEqual(encoded.retryAfter, expected.retryWhenEmpty)
      assert.deepStrictEqual(Schema.decodeSync(RateLimiter.RateLimitExceeded)(encoded), error.left)

      for (const [advance, admitted, retry] of expected.refills) {
        yield* TestClock.adjust(Duration.millis(advance))
        const results = yield* takeMany(limiter, 25)
        assert.strictEqual(rights(results), admitted)
        assert.strictEqual(retryAfters(results)[0], retry)
      }
      const stats = yield* limiter.stats
      assert.deepStrictEqual(yield* RateLimiter.stats(limiter), stats)
      const admitted = 10 + expected.refills.reduce((n, [, a]) => n + a, 0)
      assert.deepStrictEqual(stats, {
        admitted,
        delayed: 0,
        rejected: 25 * (1 + expected.refills.length) - admitted,
        waiting: 0,
        keys: 0,
        evicted: 0
      })
    }))

  it.scoped("delay: admission times are exactly the algorithm's, FIFO, with metrics", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "delay" })
      const fibers = yield* Effect.forEach(Arr.range(1, 25), () => Effect.fork(limiter.run(Clock.currentTimeMillis)))
      yield* TestClock.adjust("3 seconds")
      const times = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(times, expected.delayedTimes)

      const stats = yield* limiter.stats
      assert.deepStrictEqual(stats, { admitted: 25, delayed: 15, rejected: 0, waiting: 0, keys: 0, evicted: 0 })
      const tagged = <T, I, O>(metric: Metric.Metric<T, I, O>) => Metric.tagged(metric, "limiter", limiter.name)
      assert.strictEqual((yield* Metric.value(tagged(RateLimiter.admittedTotal))).count, 25)
      assert.strictEqual((yield* Metric.value(tagged(RateLimiter.delayedTotal))).count, 15)
      assert.strictEqual((yield* Metric.value(tagged(RateLimiter.rejectedTotal))).count, 0)
      const waits = yield* Metric.value(tagged(RateLimiter.waitSeconds))
      assert.strictEqual(waits.count, 15)
      const totalWait = expected.delayedTimes.reduce((sum, t) => sum + t, 0) / 1000
      assert.closeTo(waits.sum, totalWait, 1e-9)
    }))

  it.scoped("fail: the rejected counter is tagged with the limiter name", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 2, "1 second"), onExceeded: "fail" })
      yield* takeMany(limiter, 5)
      const tagged = <T, I, O>(metric: Metric.Metric<T, I, O>) => Metric.tagged(metric, "limiter", limiter.name)
      assert.strictEqual((yield* Metric.value(tagged(RateLimiter.admittedTotal))).count, 2)
      assert.strictEqual((yield* Metric.value(tagged(RateLimiter.rejectedTotal))).count, 3)
    }))

  it.scoped("cost: consumes several units; a cost over capacity or not an integer is a defect", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "fail" })
      yield* limiter.take(undefined, 4)
      yield* limiter.run(Effect.void, { cost: 4 })
      const usage = yield* limiter.usage()
      assert.strictEqual(usage.used, 8)
      assert.strictEqual(usage.available, 2)
      const error = yield* Effect.flip(limiter.take(undefined, 4))
      assert.strictEqual(Duration.toMillis(error.retryAfter), expected.costRetry)
      yield* limiter.take(undefined, 2)
      for (const bad of [0, 11, 1.5, -1, Number.NaN]) {
        assert(isDefect(yield* Effect.exit(limiter.take(undefined, bad))), `cost ${bad}`)
      }
      assert.strictEqual((yield* limiter.stats).admitted, 3)
    }))

  it.scoped("run: returns the effect's success and failure, and does not start an effect rejected by the limit", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 2, "1 second"), onExceeded: "fail" })
      const ran = yield* Ref.make(0)
      assert.strictEqual(yield* limiter.run(Effect.succeed(3)), 3)
      assert.deepStrictEqual(yield* Effect.either(limiter.run(Effect.fail("boom"))), Either.left("boom"))
      const rejected = yield* Effect.either(limiter.run(Ref.update(ran, (n) => n + 1)))
      assert(Either.isLeft(rejected) && rejected.left._tag === "RateLimitExceeded")
      assert.strictEqual(yield* Ref.get(ran), 0)
    }))

  it.scoped("withRateLimit: data-last and data-first, with key and cost", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 2, "1 second"), onExceeded: "fail" })
      const a = yield* Effect.succeed("a").pipe(RateLimiter.withRateLimit(limiter, { key: "k", cost: 2 }))
      assert.strictEqual(a, "a")
      const b = yield* Effect.either(RateLimiter.withRateLimit(Effect.succeed("b"), limiter, { key: "k" }))
      assert(Either.isLeft(b) && b.left.key === "k")
      assert.strictEqual(yield* RateLimiter.withRateLimit(Effect.succeed("c"), limiter), "c")
    }))

  it.scoped("keys are independent of each other and of the global bucket", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "fail" })
      const a = yield* takeMany(limiter, 12, "a")
      assert.strictEqual(rights(a), 10)
      const rejected = a[11]
      assert(rejected !== undefined && Either.isLeft(rejected) && rejected.left.key === "a")
      assert.strictEqual(rights(yield* takeMany(limiter, 12, "b")), 10)
      assert.strictEqual(rights(yield* takeMany(limiter, 12)), 10)
      const usageA = yield* limiter.usage("a")
      assert.strictEqual(usageA.used, 10)
      assert.strictEqual(usageA.available, 0)
      assert.strictEqual(Duration.toMillis(usageA.resetAfter), 1000)
      assert.deepStrictEqual(yield* limiter.usage("c"), {
        key: "c",
        capacity: 10,
        used: 0,
        available: 10,
        waiting: 0,
        resetAfter: Duration.zero
      })
      const stats = yield* limiter.stats
      assert.strictEqual(stats.keys, 2)
      assert.strictEqual(stats.admitted, 30)
      assert.strictEqual(stats.rejected, 6)
    }))

  it.scoped("delay: a later, cheaper caller does not overtake a waiting one", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "delay" })
      yield* limiter.take(undefined, 10)
      const a = yield* Effect.fork(limiter.run(Clock.currentTimeMillis, { cost: 5 }))
      yield* awaitWaiting(limiter, 1)
      yield* TestClock.adjust("100 millis")
      const b = yield* Effect.fork(limiter.run(Clock.currentTimeMillis))
      yield* awaitWaiting(limiter, 2)
      assert.strictEqual((yield* limiter.stats).admitted, 1)
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual([yield* Fiber.join(a), yield* Fiber.join(b)], expected.fifo)
    }))

  it.scoped("delay: a waiting key does not hold back other keys", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "delay" })
      yield* limiter.take("a", 10)
      const waiter = yield* Effect.fork(limiter.run(Clock.currentTimeMillis, { key: "a" }))
      yield* awaitWaiting(limiter, 1)
      // "b" and the global bucket are admitted at once, while "a" waits
      yield* limiter.take("b", 10)
      yield* limiter.take(undefined, 10)
      assert.strictEqual((yield* limiter.usage("a")).waiting, 1)
      yield* TestClock.adjust(Duration.millis(expected.unitAfter))
      assert.strictEqual(yield* Fiber.join(waiter), expected.unitAfter)
    }))

  it.scoped("idle keys are evicted by the sweeper, losslessly with the default TTL", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "fail" })
      const keys = Arr.range(1, 50).map((i) => `key-${i}`)
      yield* Effect.forEach(keys, (key) => limiter.take(key, 10))
      assert.strictEqual((yield* limiter.stats).keys, 50)
      yield* TestClock.adjust("999 millis")
      assert.strictEqual((yield* limiter.stats).keys, 50)
      assert.isTrue(Either.isLeft(yield* Effect.either(limiter.take("key-1", 10))))
      yield* TestClock.adjust("1001 millis")
      const stats = yield* limiter.stats
      assert.strictEqual(stats.keys, 0)
      assert.strictEqual(stats.evicted, 50)
      // a dropped key is exactly as a kept one would be: fully recovered
      yield* Effect.forEach(keys, (key) => limiter.take(key, 10))
      // nothing to sweep when there are no keys: a long idle period costs no wake-ups
      yield* TestClock.adjust("1 hour")
      assert.strictEqual((yield* limiter.stats).keys, 0)
      assert.strictEqual((yield* limiter.stats).evicted, 100)
    }))

  it.scoped("maxKeys drops the least recently used key; idleTimeToLive overrides the default", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        ...per(algorithm, 10, "1 second"),
        onExceeded: "fail",
        maxKeys: 3,
        idleTimeToLive: "100 millis"
      })
      yield* limiter.take("a")
      yield* limiter.take("b")
      yield* limiter.take("c")
      yield* limiter.take("a")
      yield* limiter.take("d")
      let stats = yield* limiter.stats
      assert.strictEqual(stats.keys, 3)
      assert.strictEqual(stats.evicted, 1)
      assert.strictEqual((yield* limiter.usage("a")).used, 2)
      assert.strictEqual((yield* limiter.usage("b")).used, 0)
      yield* TestClock.adjust("50 millis")
      yield* limiter.take("c")
      yield* TestClock.adjust("150 millis")
      // swept at 100 ms ("a", "d") and 200 ms ("c")
      stats = yield* limiter.stats
      assert.strictEqual(stats.keys, 0)
      assert.strictEqual(stats.evicted, 4)
    }))

  it.scoped("keys with waiters are never evicted", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        ...per(algorithm, 10, "1 second"),
        onExceeded: "delay",
        maxKeys: 1,
        idleTimeToLive: "100 millis"
      })
      yield* limiter.take("a", 10)
      const waiter = yield* Effect.fork(limiter.run(Clock.currentTimeMillis, { key: "a" }))
      yield* awaitWaiting(limiter, 1)
      yield* limiter.take("b")
      assert.strictEqual((yield* limiter.stats).keys, 2)
      yield* TestClock.adjust(Duration.millis(expected.unitAfter))
      assert.strictEqual(yield* Fiber.join(waiter), expected.unitAfter)
      const stats = yield* limiter.stats
      assert.strictEqual(stats.admitted, 3)
      assert.isTrue(stats.evicted >= 1)
    }))

  it.scoped("interrupting a delayed caller consumes nothing and lets the next one move up", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "delay" })
      const ran = yield* Ref.make(false)
      yield* limiter.take(undefined, 10)
      const a = yield* Effect.fork(limiter.run(Ref.set(ran, true), { cost: 5 }))
      const b = yield* Effect.fork(limiter.run(Clock.currentTimeMillis))
      yield* awaitWaiting(limiter, 2)
      yield* Fiber.interrupt(a)
      assert.strictEqual((yield* limiter.stats).waiting, 1)
      yield* TestClock.adjust(Duration.millis(expected.unitAfter))
      assert.strictEqual(yield* Fiber.join(b), expected.unitAfter)
      assert.isFalse(yield* Ref.get(ran))
      // at 1 s, the capacity is as if the interrupted caller had never come: 10 - b's 1
      yield* TestClock.adjust(Duration.millis(1000 - expected.unitAfter))
      assert.strictEqual((yield* limiter.usage()).available, 9)
      assert.deepStrictEqual(yield* limiter.stats, {
        admitted: 2,
        delayed: 2,
        rejected: 0,
        waiting: 0,
        keys: 0,
        evicted: 0
      })
    }))

  it.scoped("interrupting the head while it sleeps on the clock wakes the next caller", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "delay" })
      yield* limiter.take("k", 10)
      const head = yield* Effect.fork(limiter.take("k", 10))
      const next = yield* Effect.fork(limiter.run(Clock.currentTimeMillis, { key: "k" }))
      yield* awaitWaiting(limiter, 2)
      yield* TestClock.adjust("500 millis")
      assert.strictEqual((yield* limiter.stats).admitted, 1)
      yield* Fiber.interrupt(head)
      yield* TestClock.adjust(Duration.millis(expected.afterHeadInterruptedAt500 - 500))
      assert.strictEqual(yield* Fiber.join(next), expected.afterHeadInterruptedAt500)
    }))

  it.scoped("many interrupted waiters leak no capacity and block nobody", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ...per(algorithm, 10, "1 second"), onExceeded: "delay" })
      yield* limiter.take(undefined, 10)
      const fibers = yield* Effect.forEach(Arr.range(1, 100), (i) => Effect.fork(limiter.take(undefined, 1 + (i % 10))))
      yield* awaitWaiting(limiter, 100)
      yield* Fiber.interruptAll(fibers)
      assert.strictEqual((yield* limiter.stats).waiting, 0)
      const last = yield* Effect.fork(limiter.run(Clock.currentTimeMillis))
      yield* TestClock.adjust(Duration.millis(expected.unitAfter))
      assert.strictEqual(yield* Fiber.join(last), expected.unitAfter)
      const stats = yield* limiter.stats
      assert.strictEqual(stats.admitted, 2)
      assert.strictEqual(stats.delayed, 101)
    }))

  it.effect("invalid options are defects", () =>
    Effect.gen(function*() {
      const base = per(algorithm, 10, "1 second")
      const invalid: ReadonlyArray<RateLimiter.RateLimiter.Options> = [
        { ...base, onExceeded: "fail", limit: 0 },
        { ...base, onExceeded: "fail", limit: 2.5 },
        { ...base, onExceeded: "fail", name: "" },
        { ...base, onExceeded: "fail", maxKeys: 0 },
        { ...base, onExceeded: "fail", idleTimeToLive: Duration.zero },
        base.algorithm === "token-bucket"
          ? { ...base, onExceeded: "fail", interval: Duration.zero }
          : { ...base, onExceeded: "fail", window: Duration.zero }
      ]
      for (const options of invalid) {
        assert(isDefect(yield* Effect.exit(Effect.scoped(RateLimiter.make(options)))), JSON.stringify(options))
      }
    }))

  it.effect("layer provides a limiter under a tag", () =>
    Effect.gen(function*() {
      class Limited extends Context.Tag("Limited")<Limited, RateLimiter.RateLimiter>() {}
      const options = { ...per(algorithm, 1, "1 second"), onExceeded: "fail" } as const
      const result = yield* Effect.gen(function*() {
        const limiter = yield* Limited
        yield* limiter.take()
        return yield* Effect.either(limiter.take())
      }).pipe(Effect.provide(RateLimiter.layer(Limited, options)))
      assert(Either.isLeft(result) && result.left.limiter === options.name)
    }))
}

describe("RateLimiter", () => {
  describe("token-bucket", () => {
    suite("token-bucket")

    it.scoped("bursts up to capacity, then a steady rate, and refills up to capacity when idle", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "tb-capacity",
          algorithm: "token-bucket",
          limit: 10,
          interval: "1 second",
          capacity: 5,
          onExceeded: "delay"
        })
        const burst = (n: number) =>
          Effect.forEach(Arr.range(1, n), () => Effect.fork(limiter.run(Clock.currentTimeMillis)))
        const first = yield* burst(12)
        yield* TestClock.adjust("2 seconds")
        assert.deepStrictEqual(yield* Effect.forEach(first, Fiber.join), [
          0,
          0,
          0,
          0,
          0,
          100,
          200,
          300,
          400,
          500,
          600,
          700
        ])
        const usage = yield* limiter.usage()
        assert.strictEqual(usage.available, 5)
        const second = yield* burst(8)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(
          yield* Effect.forEach(second, Fiber.join),
          [2000, 2000, 2000, 2000, 2000, 2100, 2200, 2300]
        )
      }))

    it.scoped("refill periods that are not whole milliseconds do not drift", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "tb-thirds",
          algorithm: "token-bucket",
          limit: 3,
          interval: "1 second",
          onExceeded: "delay"
        })
        const fibers = yield* Effect.forEach(Arr.range(1, 9), () => Effect.fork(limiter.run(Clock.currentTimeMillis)))
        yield* TestClock.adjust("3 seconds")
        // the k-th token after the first three arrives at ceil(k * 1000 / 3)
        assert.deepStrictEqual(yield* Effect.forEach(fibers, Fiber.join), [0, 0, 0, 334, 667, 1000, 1334, 1667, 2000])

        const failing = yield* RateLimiter.make({
          name: "tb-thirds-fail",
          algorithm: "token-bucket",
          limit: 3,
          interval: "1 second",
          onExceeded: "fail"
        })
        yield* failing.take(undefined, 3)
        const retryAfter = failing.take().pipe(Effect.flip, Effect.map((e) => Duration.toMillis(e.retryAfter)))
        assert.strictEqual(yield* retryAfter, 334)
        yield* TestClock.adjust("333 millis")
        assert.strictEqual(yield* retryAfter, 1)
        yield* TestClock.adjust("1 millis")
        yield* failing.take()
      }))

    it.scoped("usage reports fractional tokens while the bucket refills", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "tb-usage",
          algorithm: "token-bucket",
          limit: 10,
          interval: "1 second",
          onExceeded: "fail"
        })
        yield* limiter.take("k", 10)
        yield* TestClock.adjust("50 millis")
        const usage = yield* limiter.usage("k")
        assert.strictEqual(usage.available, 0.5)
        assert.strictEqual(usage.used, 9.5)
        assert.strictEqual(Duration.toMillis(usage.resetAfter), 950)
        const error = yield* Effect.flip(limiter.take("k"))
        assert.strictEqual(Duration.toMillis(error.retryAfter), 50)
      }))
  })

  describe("sliding-window", () => {
    suite("sliding-window")

    it.scoped("boundaries: an admission leaves the window exactly `window` later", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "sw-edges",
          algorithm: "sliding-window",
          limit: 3,
          window: "1 second",
          onExceeded: "fail"
        })
        const retryAfter = limiter.take().pipe(Effect.flip, Effect.map((e) => Duration.toMillis(e.retryAfter)))
        yield* limiter.take() // t = 0
        yield* TestClock.adjust("500 millis")
        yield* limiter.take(undefined, 2) // t = 500
        assert.strictEqual(yield* retryAfter, 500)
        yield* TestClock.adjust("499 millis") // t = 999: the admission at 0 still counts
        assert.strictEqual(yield* retryAfter, 1)
        yield* TestClock.adjust("1 millis") // t = 1000: it no longer does
        yield* limiter.take()
        assert.strictEqual(yield* retryAfter, 500)
        yield* TestClock.adjust("499 millis") // t = 1499
        assert.strictEqual(yield* retryAfter, 1)
        assert.strictEqual((yield* limiter.usage()).used, 3)
        yield* TestClock.adjust("1 millis") // t = 1500: both units admitted at 500 expire
        yield* limiter.take(undefined, 2)
        assert.strictEqual(yield* retryAfter, 500)
        assert.strictEqual(Duration.toMillis((yield* limiter.usage()).resetAfter), 1000)
      }))

    it.scoped("delay: a caller that would fit does not overtake a waiting one", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "sw-fifo",
          algorithm: "sliding-window",
          limit: 10,
          window: "1 second",
          onExceeded: "delay"
        })
        yield* limiter.take(undefined, 6)
        yield* TestClock.adjust("500 millis")
        yield* limiter.take(undefined, 3)
        const a = yield* Effect.fork(limiter.run(Clock.currentTimeMillis, { cost: 5 }))
        yield* awaitWaiting(limiter, 1)
        yield* TestClock.adjust("100 millis")
        // 9 of 10 used: a unit call would fit, but it queues behind the cost-5 caller
        const b = yield* Effect.fork(limiter.run(Clock.currentTimeMillis))
        yield* awaitWaiting(limiter, 2)
        yield* TestClock.adjust("400 millis")
        assert.deepStrictEqual([yield* Fiber.join(a), yield* Fiber.join(b)], [1000, 1000])
        // at 1 s the 6 units of 0 ms have left the window: 3 (at 500 ms) + 5 + 1
        assert.strictEqual((yield* limiter.usage()).used, 9)
      }))

    it.scoped("delay: staggered arrivals with costs match a reference model, and no window exceeds the limit", () =>
      Effect.gen(function*() {
        const limit = 5
        const window = 1000
        const limiter = yield* RateLimiter.make({
          name: "sw-reference",
          algorithm: "sliding-window",
          limit,
          window: Duration.millis(window),
          onExceeded: "delay"
        })
        const arrivals = Arr.range(0, 29).map((j) => j * 83 + (j % 3) * 11)
        const costs = arrivals.map((_, j) => 1 + (j % 3))
        const fibers = yield* Effect.forEach(arrivals, (at, j) =>
          Effect.fork(
            Effect.sleep(Duration.millis(at)).pipe(
              Effect.zipRight(limiter.run(Clock.currentTimeMillis, { cost: costs[j]! }))
            )
          ))
        yield* TestClock.adjust("20 seconds")
        const times = yield* Effect.forEach(fibers, Fiber.join)

        // reference: FIFO, each caller admitted at the first instant its cost fits in (t - window, t]
        const reference: Array<number> = []
        arrivals.forEach((arrival, j) => {
          const earliest = Math.max(arrival, reference[j - 1] ?? 0)
          const candidates = [earliest, ...reference.map((t) => t + window)].filter((t) => t >= earliest).sort((x, y) =>
            x - y
          )
          const fits = (t: number) =>
            reference.reduce((sum, s, i) => s > t - window && s <= t ? sum + costs[i]! : sum, 0) + costs[j]! <= limit
          reference.push(candidates.find(fits)!)
        })
        assert.deepStrictEqual(times, reference)
        assert.isTrue(times.some((t, j) => t > arrivals[j]!), "some callers had to wait")

        // no half-open window [s, s + window) holds more than `limit` units
        for (const start of times) {
          const inWindow = times.reduce((sum, t, i) => t >= start && t < start + window ? sum + costs[i]! : sum, 0)
          assert.isAtMost(inWindow, limit)
        }
      }))
  })
})
