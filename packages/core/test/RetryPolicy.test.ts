import { assert, describe, it } from "@effect/vitest"
import * as RetryPolicy from "@spindle/core/RetryPolicy"
import {
  Cause,
  Data,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Metric,
  Option,
  Random,
  Ref,
  Schedule,
  Schema,
  TestClock
} from "effect"

class Unavailable extends Data.TaggedError("Unavailable")<{ readonly attempt: number }> {}
class Invalid extends Data.TaggedError("Invalid")<{ readonly attempt: number }> {}

const millis = (durations: ReadonlyArray<Duration.Duration>): Array<number> => durations.map(Duration.toMillis)

/** The delays `nextDelay` gives after attempts 1, 2, ... until it says None. */
const nextDelays = (policy: RetryPolicy.Serializable, max = 50): Array<number> => {
  const out: Array<number> = []
  for (let attempt = 1; attempt <= max; attempt++) {
    const next = RetryPolicy.nextDelay(policy, attempt)
    if (Option.isNone(next)) break
    out.push(Duration.toMillis(next.value))
  }
  return out
}

/** An effect that fails with `error(n)` on its n-th run (1-based) and counts its runs. */
const failing = <E>(runs: Ref.Ref<number>, error: (n: number) => E) =>
  Effect.flatMap(Ref.updateAndGet(runs, (n) => n + 1), (n) => Effect.fail(error(n)))

const count = (metric: Metric.Metric.Counter<number>, policy: string) =>
  Effect.map(Metric.value(Metric.tagged(metric, "policy", policy)), (state) => state.count)

describe("RetryPolicy", () => {
  describe("delays follow the formulas", () => {
    it.effect("fixed: the same delay, maxAttempts - 1 times", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.fixed({ delay: "250 millis", maxAttempts: 5 })
        const delays = millis(yield* RetryPolicy.delays(policy))
        assert.deepStrictEqual(delays, [250, 250, 250, 250])
        assert.deepStrictEqual(nextDelays(policy), delays)
      }))

    it.effect("linear: initial + increment × n", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.linear({ initial: "100 millis", increment: "50 millis", maxAttempts: 6 })
        const expected = [0, 1, 2, 3, 4].map((n) => 100 + 50 * n)
        const delays = millis(yield* RetryPolicy.delays(policy))
        assert.deepStrictEqual(delays, expected)
        assert.deepStrictEqual(nextDelays(policy), expected)
        // increment defaults to initial
        assert.deepStrictEqual(
          millis(yield* RetryPolicy.delays(RetryPolicy.linear({ initial: "1 second" }), { count: 3 })),
          [1000, 2000, 3000]
        )
      }))

    it.effect("exponential: initial × factor^n", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.exponential({ initial: "100 millis", factor: 3, maxAttempts: 6 })
        const expected = [0, 1, 2, 3, 4].map((n) => 100 * Math.pow(3, n))
        const delays = millis(yield* RetryPolicy.delays(policy))
        assert.deepStrictEqual(delays, expected)
        assert.deepStrictEqual(nextDelays(policy), expected)
        // factor defaults to 2
        assert.deepStrictEqual(
          millis(yield* RetryPolicy.delays(RetryPolicy.exponential({ initial: "10 millis" }), { count: 4 })),
          [10, 20, 40, 80]
        )
      }))

    it.effect("fromDelays: the listed delays, bounded by the list and by maxAttempts", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.fromDelays({ delays: ["1 second", "1 minute", "1 hour"] })
        assert.deepStrictEqual(millis(yield* RetryPolicy.delays(policy)), [1000, 60_000, 3_600_000])
        assert.deepStrictEqual(nextDelays(policy), [1000, 60_000, 3_600_000])
        const shorter = RetryPolicy.fromDelays({ delays: [10, 20, 30], maxAttempts: 3 })
        assert.deepStrictEqual(millis(yield* RetryPolicy.delays(shorter)), [10, 20])
        assert.deepStrictEqual(nextDelays(shorter), [10, 20])
        assert.deepStrictEqual(yield* RetryPolicy.delays(RetryPolicy.fromDelays({ delays: [] })), [])
      }))

    it.effect("maxDelay caps every delay", () =>
      Effect.gen(function*() {
        const exponential = RetryPolicy.exponential({ initial: "100 millis", maxDelay: "500 millis", maxAttempts: 7 })
        assert.deepStrictEqual(millis(yield* RetryPolicy.delays(exponential)), [100, 200, 400, 500, 500, 500])
        assert.deepStrictEqual(nextDelays(exponential), [100, 200, 400, 500, 500, 500])
        const linear = RetryPolicy.linear({ initial: "1 second", maxDelay: "2500 millis" })
        assert.deepStrictEqual(millis(yield* RetryPolicy.delays(linear, { count: 4 })), [1000, 2000, 2500, 2500])
      }))

    it.effect("an unbounded policy yields `count` delays, 10 by default", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.fixed({ delay: "1 second" })
        assert.strictEqual((yield* RetryPolicy.delays(policy)).length, 10)
        assert.strictEqual((yield* RetryPolicy.delays(policy, { count: 25 })).length, 25)
        assert.isTrue(Option.isSome(RetryPolicy.nextDelay(policy, 1_000_000)))
      }))

    it.effect("custom: the schedule's delays, with the common options on top", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.custom(Schedule.fibonacci("100 millis"), { maxAttempts: 7, maxDelay: "600 millis" })
        assert.deepStrictEqual(millis(yield* RetryPolicy.delays(policy)), [100, 100, 200, 300, 500, 600])
      }))
  })

  describe("nextDelay", () => {
    it("counts attempts from 1 and says None once maxAttempts were made", () => {
      const policy = RetryPolicy.exponential({ initial: "1 second", maxAttempts: 3 })
      assert.deepStrictEqual(RetryPolicy.nextDelay(policy, 1), Option.some(Duration.seconds(1)))
      assert.deepStrictEqual(RetryPolicy.nextDelay(policy, 2), Option.some(Duration.seconds(2)))
      assert.isTrue(Option.isNone(RetryPolicy.nextDelay(policy, 3)))
      assert.isTrue(Option.isNone(RetryPolicy.nextDelay(policy, 4)))
      assert.isTrue(Option.isNone(RetryPolicy.nextDelay(RetryPolicy.fixed({ delay: 10, maxAttempts: 1 }), 1)))
    })

    it("applies jitter from the given random number, and returns the upper bound without one", () => {
      const full = RetryPolicy.fixed({ delay: "1 second", jitter: "full" })
      const equal = RetryPolicy.fixed({ delay: "1 second", jitter: "equal" })
      assert.strictEqual(Duration.toMillis(Option.getOrThrow(RetryPolicy.nextDelay(full, 1, { random: 0.25 }))), 250)
      assert.strictEqual(Duration.toMillis(Option.getOrThrow(RetryPolicy.nextDelay(equal, 1, { random: 0.5 }))), 750)
      assert.strictEqual(Duration.toMillis(Option.getOrThrow(RetryPolicy.nextDelay(full, 1))), 1000)
    })
  })

  describe("maxAttempts", () => {
    for (const maxAttempts of [1, 2, 4]) {
      it.effect(`an effect that always fails runs exactly ${maxAttempts} time(s), at the policy's delays`, () =>
        Effect.gen(function*() {
          const runs = yield* Ref.make(0)
          const policy = RetryPolicy.fixed({ delay: "1 second", maxAttempts })
          const fiber = yield* failing(runs, (attempt) => new Unavailable({ attempt })).pipe(
            RetryPolicy.retry(policy),
            Effect.fork
          )
          yield* TestClock.adjust(0)
          assert.strictEqual(yield* Ref.get(runs), 1)
          for (let attempt = 2; attempt <= maxAttempts; attempt++) {
            yield* TestClock.adjust("999 millis")
            assert.strictEqual(yield* Ref.get(runs), attempt - 1)
            yield* TestClock.adjust("1 millis")
            assert.strictEqual(yield* Ref.get(runs), attempt)
          }
          const exit = yield* Fiber.await(fiber)
          assert.deepStrictEqual(exit, Exit.fail(new Unavailable({ attempt: maxAttempts })))
          yield* TestClock.adjust("1 hour")
          assert.strictEqual(yield* Ref.get(runs), maxAttempts)
        }))
    }

    it.effect("exponential delays are waited exactly, and a later success is returned", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const policy = RetryPolicy.exponential({ initial: "100 millis", maxAttempts: 10 })
        const fiber = yield* Ref.updateAndGet(runs, (n) => n + 1).pipe(
          Effect.filterOrFail((n) => n >= 4, (n) => new Unavailable({ attempt: n })),
          RetryPolicy.retry(policy),
          Effect.fork
        )
        // attempt 1 at 0, 2 at 100, 3 at 300, 4 at 700
        for (const [at, expected] of [[99, 1], [100, 2], [299, 2], [300, 3], [699, 3], [700, 4]] as const) {
          yield* TestClock.setTime(at)
          assert.strictEqual(yield* Ref.get(runs), expected, `runs at ${at}ms`)
        }
        assert.strictEqual(yield* Fiber.join(fiber), 4)
      }))

    it.effect("toSchedule works with Effect.retry directly", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const schedule = RetryPolicy.toSchedule(RetryPolicy.linear({ initial: "10 millis", maxAttempts: 3 }))
        const fiber = yield* failing(runs, () => "boom").pipe(Effect.retry(schedule), Effect.fork)
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail("boom"))
        assert.strictEqual(yield* Ref.get(runs), 3)
      }))

    it.effect("a custom schedule is bounded by maxAttempts too", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const policy = RetryPolicy.custom(Schedule.spaced("1 second"), { maxAttempts: 3 })
        const fiber = yield* failing(runs, () => "boom").pipe(RetryPolicy.retry(policy), Effect.fork)
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail("boom"))
        assert.strictEqual(yield* Ref.get(runs), 3)
      }))
  })

  describe("jitter", () => {
    const base = RetryPolicy.exponential({ initial: "100 millis", maxDelay: "5 seconds", maxAttempts: 41 })
    const upper = (n: number) => Math.min(100 * Math.pow(2, n), 5000)

    it.effect("full jitter stays in [0, d] and is deterministic with a seeded Random", () =>
      Effect.gen(function*() {
        const policy: RetryPolicy.Exponential = { ...base, jitter: "full" }
        const first = millis(yield* Effect.withRandom(RetryPolicy.delays(policy), Random.make("seed-1")))
        const again = millis(yield* Effect.withRandom(RetryPolicy.delays(policy), Random.make("seed-1")))
        const other = millis(yield* Effect.withRandom(RetryPolicy.delays(policy), Random.make("seed-2")))
        assert.strictEqual(first.length, 40)
        first.forEach((d, n) => assert.isTrue(d >= 0 && d <= upper(n), `delay ${n}: ${d} not in [0, ${upper(n)}]`))
        assert.deepStrictEqual(again, first)
        assert.notDeepEqual(other, first)
        // the draws are spread over the range, not pinned to a bound
        assert.isTrue(first.some((d, n) => d < upper(n) / 2) && first.some((d, n) => d > upper(n) / 2))
      }))

    it.effect("equal jitter stays in [d/2, d] and is deterministic with a seeded Random", () =>
      Effect.gen(function*() {
        const policy: RetryPolicy.Exponential = { ...base, jitter: "equal" }
        const first = millis(yield* Effect.withRandom(RetryPolicy.delays(policy), Random.make(42)))
        const again = millis(yield* Effect.withRandom(RetryPolicy.delays(policy), Random.make(42)))
        assert.strictEqual(first.length, 40)
        first.forEach((d, n) =>
          assert.isTrue(d >= upper(n) / 2 && d <= upper(n), `delay ${n}: ${d} not in [${upper(n) / 2}, ${upper(n)}]`)
        )
        assert.deepStrictEqual(again, first)
        assert.isTrue(first.some((d, n) => d < upper(n) * 0.75) && first.some((d, n) => d > upper(n) * 0.75))
      }))

    it.effect("retry waits the jittered delays drawn from Random", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.fixed({ delay: "1 second", jitter: "full", maxAttempts: 2 })
        const [expected] = millis(yield* Effect.withRandom(RetryPolicy.delays(policy), Random.make("r")))
        const runs = yield* Ref.make(0)
        const fiber = yield* failing(runs, () => "boom").pipe(
          RetryPolicy.retry(policy),
          Effect.withRandom(Random.make("r")),
          Effect.fork
        )
        yield* TestClock.adjust(Math.ceil(expected!) - 1)
        assert.strictEqual(yield* Ref.get(runs), 1)
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Ref.get(runs), 2)
        assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail("boom"))
      }))
  })

  describe("retryOn", () => {
    it.effect("retries only the listed tags; another tag fails at once", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const policy = RetryPolicy.fixed({ delay: "1 second", maxAttempts: 10, retryOn: ["Unavailable"] })
        const fiber = yield* failing(runs, (attempt) =>
          attempt < 3 ? new Unavailable({ attempt }) : new Invalid({ attempt })).pipe(
            RetryPolicy.retry(policy),
            Effect.fork
          )
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(new Invalid({ attempt: 3 })))
        assert.strictEqual(yield* Ref.get(runs), 3)
      }))

    it.effect("an error without a _tag is not retried when retryOn is set, and is retried without it", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const fiber = yield* failing(runs, () => new Error("plain")).pipe(
          RetryPolicy.retry(RetryPolicy.fixed({ delay: 10, maxAttempts: 5, retryOn: ["Unavailable"] })),
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
        assert.strictEqual(yield* Ref.get(runs), 1)

        const runs2 = yield* Ref.make(0)
        const fiber2 = yield* failing(runs2, () => new Error("plain")).pipe(
          RetryPolicy.retry(RetryPolicy.fixed({ delay: 10, maxAttempts: 5 })),
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber2)))
        assert.strictEqual(yield* Ref.get(runs2), 5)
      }))

    it.effect("defects are never retried", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const fiber = yield* Ref.update(runs, (n) => n + 1).pipe(
          Effect.zipRight(Effect.die("bug")),
          RetryPolicy.retry(RetryPolicy.fixed({ delay: 10, maxAttempts: 5 })),
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        assert.strictEqual(yield* Ref.get(runs), 1)
      }))

    it("isRetryable reads the _tag", () => {
      const policy = RetryPolicy.fixed({ delay: 1, retryOn: ["Unavailable"] })
      assert.isTrue(RetryPolicy.isRetryable(policy, new Unavailable({ attempt: 1 })))
      assert.isFalse(RetryPolicy.isRetryable(policy, new Invalid({ attempt: 1 })))
      assert.isFalse(RetryPolicy.isRetryable(policy, "Unavailable"))
      assert.isFalse(RetryPolicy.isRetryable(policy, { _tag: 1 }))
      assert.isTrue(RetryPolicy.isRetryable(RetryPolicy.fixed({ delay: 1 }), "anything"))
      assert.isTrue(RetryPolicy.isRetryable({ _tag: "Unavailable" })(policy))
    })
  })

  describe("metrics", () => {
    it.effect("counts retries, exhaustion and success after retry, tagged with the policy name", () =>
      Effect.gen(function*() {
        const name = "metrics-test-policy"
        const policy = RetryPolicy.fixed({ delay: "1 second", maxAttempts: 3, name, retryOn: ["Unavailable"] })

        const runs = yield* Ref.make(0)
        const exhausted = yield* failing(runs, (attempt) => new Unavailable({ attempt })).pipe(
          RetryPolicy.retry(policy),
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        yield* Fiber.await(exhausted)
        assert.strictEqual(yield* count(RetryPolicy.retriesTotal, name), 2)
        assert.strictEqual(yield* count(RetryPolicy.exhaustedTotal, name), 1)
        assert.strictEqual(yield* count(RetryPolicy.succeededAfterRetryTotal, name), 0)

        const runs2 = yield* Ref.make(0)
        const recovered = yield* Ref.updateAndGet(runs2, (n) => n + 1).pipe(
          Effect.filterOrFail((n) => n >= 2, (n) => new Unavailable({ attempt: n })),
          RetryPolicy.retry(policy),
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* Fiber.join(recovered), 2)
        assert.strictEqual(yield* count(RetryPolicy.retriesTotal, name), 3)
        assert.strictEqual(yield* count(RetryPolicy.succeededAfterRetryTotal, name), 1)

        // a failure rejected by retryOn is not "exhausted"; a first-try success is not "after retry"
        yield* Effect.exit(RetryPolicy.retry(Effect.fail(new Invalid({ attempt: 1 })), policy))
        yield* RetryPolicy.retry(Effect.succeed(1), policy)
        assert.strictEqual(yield* count(RetryPolicy.retriesTotal, name), 3)
        assert.strictEqual(yield* count(RetryPolicy.exhaustedTotal, name), 1)
        assert.strictEqual(yield* count(RetryPolicy.succeededAfterRetryTotal, name), 1)
      }))
  })

  describe("Schema", () => {
    const policies: ReadonlyArray<RetryPolicy.Serializable> = [
      RetryPolicy.fixed({ delay: "1 second" }),
      RetryPolicy.linear({
        initial: "100 millis",
        increment: "250 millis",
        maxAttempts: 4,
        jitter: "equal",
        name: "linear"
      }),
      RetryPolicy.exponential({
        initial: "200 millis",
        factor: 1.5,
        maxDelay: "30 seconds",
        maxAttempts: 8,
        jitter: "full",
        retryOn: ["Unavailable", "Timeout"],
        name: "payments"
      }),
      RetryPolicy.fromDelays({ delays: ["1 minute", "10 minutes", "1 hour"], maxAttempts: 3 })
    ]

    it("round-trips every data policy through JSON", () => {
      for (const policy of policies) {
        const json = JSON.stringify(Schema.encodeSync(RetryPolicy.Schema)(policy))
        const decoded = Schema.decodeUnknownSync(RetryPolicy.Schema)(JSON.parse(json))
        assert.deepStrictEqual(decoded, policy)
      }
    })

    it("encodes durations as milliseconds", () => {
      assert.deepStrictEqual(Schema.encodeSync(RetryPolicy.Schema)(policies[2]!), {
        _tag: "Exponential",
        initial: 200,
        factor: 1.5,
        maxDelay: 30_000,
        maxAttempts: 8,
        jitter: "full",
        retryOn: ["Unavailable", "Timeout"],
        name: "payments"
      })
      assert.deepStrictEqual(Schema.encodeSync(RetryPolicy.Schema)(policies[3]!), {
        _tag: "Delays",
        delays: [60_000, 600_000, 3_600_000],
        maxAttempts: 3
      })
    })

    it("rejects a bad encoded policy with a readable message", () => {
      const decode = Schema.decodeUnknownEither(RetryPolicy.Schema)
      const message = (input: unknown): string => {
        const result = decode(input)
        assert.isTrue(Either.isLeft(result), `expected ${JSON.stringify(input)} to be rejected`)
        return Either.isLeft(result) ? result.left.message : ""
      }
      const negative = message({ _tag: "Fixed", delay: -5 })
      assert.include(negative, `["delay"]`)
      assert.include(negative, "Expected a non-negative, finite number of milliseconds, actual -5")
      assert.include(
        message({ _tag: "Exponential", initial: 100, factor: 0.5 }),
        "Expected a finite growth factor >= 1"
      )
      assert.include(message({ _tag: "Fixed", delay: 10, maxAttempts: 0 }), `["maxAttempts"]`)
      assert.include(message({ _tag: "Delays", delays: [1, "x"] }), "[1]")
      assert.include(message({ _tag: "Fixed", delay: 10, jitter: "some" }), `["jitter"]`)
      assert.include(message({ _tag: "Sometimes" }), `actual "Sometimes"`)
      assert.include(message(42), "Expected a RetryPolicy")
    })

    it("rejects a custom policy clearly", () => {
      const custom = RetryPolicy.custom(Schedule.spaced("1 second"))
      // excluded by the type; forced here to check the runtime message
      const result = Schema.encodeEither(RetryPolicy.Schema)(custom as unknown as RetryPolicy.Serializable)
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.include(
          result.left.message,
          "a Custom retry policy holds a Schedule built in code and cannot be encoded"
        )
      }
    })
  })
})
