/**
 * The core modules composed as a service would compose them: prioritized jobs, each calling a
 * flaky dependency through a shared limiter, a rate limit, a retry policy and a deadline, with
 * every number visible in the Prometheus exposition afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deadline, Limiter, PriorityScheduler, Prometheus, RateLimiter, RetryPolicy } from "@spindle/core"
import { Data, Effect, Fiber, Ref, TestClock } from "effect"

class Flaky extends Data.TaggedError("Flaky")<{ readonly call: number }> {}

const sampleValue = (text: string, name: string, labels: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels))
  assert.isDefined(line, `no sample ${name} with ${labels}`)
  return Number(line!.slice(line!.lastIndexOf(" ") + 1))
}

describe("core modules composed", () => {
  it.scoped("prioritized jobs through limiter, rate limit, retry and deadline; all of it in /metrics", () =>
    Effect.gen(function*() {
      const scheduler = yield* PriorityScheduler.make({ name: "composition-jobs", concurrency: 4, policy: "strict" })
      const limiter = yield* Limiter.make({ name: "composition-dependency", limit: 2 })
      const rate = yield* RateLimiter.make({
        name: "composition-dependency",
        algorithm: "token-bucket",
        limit: 10,
        interval: "1 second",
        onExceeded: "delay"
      })
      const policy = RetryPolicy.fixed({ name: "composition", delay: "100 millis", maxAttempts: 3 })
      const calls = yield* Ref.make(0)
      const inFlight = yield* Ref.make({ now: 0, peak: 0 })

      // every third call to the dependency fails once; each call takes 50 ms
      const dependency = (job: number) =>
        Effect.gen(function*() {
          const call = yield* Ref.updateAndGet(calls, (n) => n + 1)
          yield* Ref.update(inFlight, ({ now, peak }) => ({ now: now + 1, peak: Math.max(peak, now + 1) }))
          yield* Effect.sleep("50 millis").pipe(
            Effect.ensuring(Ref.update(inFlight, (s) => ({ ...s, now: s.now - 1 })))
          )
          if (call % 3 === 0) return yield* new Flaky({ call })
          return job * 10
        })

      const job = (n: number) =>
        dependency(n).pipe(
          rate.run,
          limiter.run,
          Deadline.timeout({ name: "composition-call", hard: "1 second" }),
          RetryPolicy.retry(policy)
        )

      const fiber = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (n) => scheduler.submit(job(n), { priority: n % 2 === 0 ? "high" : "low" }),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* TestClock.adjust("10 seconds")
      const results = yield* Fiber.join(fiber)

      assert.deepStrictEqual(results, Array.from({ length: 12 }, (_, i) => i * 10))
      const limiterStats = yield* limiter.stats
      assert.strictEqual((yield* Ref.get(inFlight)).peak, 2, "the limiter held the dependency to 2 at once")
      const totalCalls = yield* Ref.get(calls)
      assert.isAbove(totalCalls, 12, "some calls were retried")
      assert.strictEqual(limiterStats.completed + limiterStats.failed, totalCalls)
      assert.strictEqual(limiterStats.failed, totalCalls - 12)

      const text = yield* Prometheus.render({ prefix: "spindle_" })
      assert.strictEqual(
        sampleValue(text, "spindle_limiter_completed_total", `limiter="composition-dependency"`),
        limiterStats.completed
      )
      assert.strictEqual(
        sampleValue(text, "spindle_retry_retries_total", `policy="composition"`),
        totalCalls - 12
      )
      assert.strictEqual(
        sampleValue(text, "spindle_rate_limiter_admitted_total", `limiter="composition-dependency"`),
        totalCalls
      )
      const dispatched = sampleValue(text, "spindle_scheduler_dispatched_total", `scheduler="composition-jobs"`)
      assert.isAbove(dispatched, 0)
    }))
})
