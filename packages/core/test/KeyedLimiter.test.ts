import { assert, describe, it } from "@effect/vitest"
import * as KeyedLimiter from "@spindle/core/KeyedLimiter"
import { Array as Arr, Context, Data, Deferred, Duration, Effect, Fiber, Option, TestClock } from "effect"

/** Lets every forked fiber run until it is done or suspended. */
const settle = TestClock.adjust(Duration.zero)

const yields = (n: number): Effect.Effect<void> =>
  Effect.forEach(Arr.range(1, n), () => Effect.yieldNow(), { discard: true })

describe("KeyedLimiter", () => {
  it.scoped("holds the limit per key while other keys proceed", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<string>({ name: "test-keyed-per-key", limitPerKey: 1 })
      const gate = yield* Deferred.make<void>()
      const a1 = yield* Effect.fork(limiter.run("a", Deferred.await(gate)))
      yield* settle
      const ranA: Array<number> = []
      const queuedA = yield* Effect.forEach(
        [2, 3],
        (n) => Effect.fork(limiter.run("a", Effect.sync(() => ranA.push(n)))).pipe(Effect.zipLeft(settle))
      )

      // "b" is not held back by "a"
      assert.strictEqual(yield* limiter.run("b", Effect.succeed("b done")), "b done")
      assert.deepStrictEqual(ranA, [])

      const a = Option.getOrThrow(yield* limiter.statsFor("a"))
      assert.strictEqual(a.inFlight, 1)
      assert.strictEqual(a.waiting, 2)
      assert.strictEqual(a.limit, 1)
      let totals = yield* limiter.stats
      assert.strictEqual(totals.keys, 1) // "b" went idle and was dropped
      assert.strictEqual(totals.inFlight, 1)
      assert.strictEqual(totals.waiting, 2)
      assert.strictEqual(totals.completed, 1)

      yield* Deferred.succeed(gate, void 0)
      yield* Fiber.join(a1)
      yield* Fiber.joinAll(queuedA)
      assert.deepStrictEqual(ranA, [2, 3])
      totals = yield* limiter.stats
      assert.strictEqual(totals.keys, 0)
      assert.strictEqual(totals.completed, 4)
      assert.strictEqual(totals.evicted, 2)
      assert.isTrue(Option.isNone(yield* limiter.statsFor("a")))
    }))

  it.scoped("never exceeds the per-key limit with many concurrent submissions over several keys", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<string>({ name: "test-keyed-many", limitPerKey: 3 })
      const current = new Map<string, number>()
      const max = new Map<string, number>()
      const keys = ["x", "y", "z"]
      const track = (key: string) =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            const n = (current.get(key) ?? 0) + 1
            current.set(key, n)
            max.set(key, Math.max(max.get(key) ?? 0, n))
          }),
          () => yields(1),
          () => Effect.sync(() => current.set(key, current.get(key)! - 1))
        )
      yield* Effect.forEach(
        Arr.range(0, 299),
        (i) => {
          const key = keys[i % 3]!
          return KeyedLimiter.run(limiter, key, track(key))
        },
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(keys.map((k) => max.get(k)), [3, 3, 3])
      const totals = yield* limiter.stats
      assert.deepStrictEqual(yield* KeyedLimiter.stats(limiter), totals)
      assert.strictEqual(totals.peak, 9)
      assert.strictEqual(totals.completed, 300)
      assert.strictEqual(totals.keys, 0)
    }))

  it.scoped("drops idle keys: distinct keys do not accumulate", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<number>({ name: "test-keyed-distinct", limitPerKey: 2 })
      yield* Effect.forEach(Arr.range(0, 1999), (i) => limiter.run(i, Effect.void), { concurrency: 50, discard: true })
      const totals = yield* limiter.stats
      assert.strictEqual(totals.keys, 0)
      assert.strictEqual(totals.evicted, 2000)
      assert.strictEqual(totals.completed, 2000)
    }))

  it.scoped("keeps idle keys for idleTimeToLive, then evicts them", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<string>({
        name: "test-keyed-ttl",
        limitPerKey: 2,
        idleTimeToLive: "1 minute"
      })
      yield* limiter.run("a", Effect.void) // idle since t=0
      yield* limiter.run("b", Effect.void) // idle since t=0
      assert.strictEqual((yield* limiter.stats).keys, 2)

      yield* TestClock.adjust("30 seconds")
      yield* limiter.run("b", Effect.void) // "b" idle again since t=30s
      const b = Option.getOrThrow(yield* limiter.statsFor("b"))
      assert.strictEqual(b.completed, 2)

      yield* TestClock.adjust("30 seconds") // t=60s: the sweeper evicts "a" only
      let totals = yield* limiter.stats
      assert.strictEqual(totals.keys, 1)
      assert.isTrue(Option.isNone(yield* limiter.statsFor("a")))
      assert.isTrue(Option.isSome(yield* limiter.statsFor("b")))

      yield* TestClock.adjust("1 minute") // t=120s: "b" has been idle 90s
      totals = yield* limiter.stats
      assert.strictEqual(totals.keys, 0)
      assert.strictEqual(totals.evicted, 2)
      assert.strictEqual(totals.completed, 3)
    }))

  it.scoped("a busy key is never evicted, even past its time to live", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<string>({
        name: "test-keyed-busy",
        limitPerKey: 1,
        idleTimeToLive: "1 second"
      })
      const fiber = yield* Effect.fork(limiter.run("slow", Effect.sleep("10 seconds")))
      yield* TestClock.adjust("5 seconds")
      const slow = Option.getOrThrow(yield* limiter.statsFor("slow"))
      assert.strictEqual(slow.inFlight, 1)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* limiter.stats).keys, 1)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* limiter.stats).keys, 0)
    }))

  it.scoped("interrupted waiters and runners release their permits and let the key go", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<string>({ name: "test-keyed-interrupt", limitPerKey: 1 })
      const runner = yield* Effect.fork(limiter.run("k", Effect.never))
      yield* settle
      const waiter = yield* Effect.fork(limiter.run("k", Effect.never))
      yield* settle
      let totals = yield* limiter.stats
      assert.strictEqual(totals.inFlight, 1)
      assert.strictEqual(totals.waiting, 1)
      yield* Fiber.interrupt(waiter)
      yield* Fiber.interrupt(runner)
      totals = yield* limiter.stats
      assert.strictEqual(totals.inFlight, 0)
      assert.strictEqual(totals.waiting, 0)
      assert.strictEqual(totals.interrupted, 1)
      assert.strictEqual(totals.keys, 0)
      assert.strictEqual(yield* limiter.run("k", Effect.succeed(1)), 1)
    }))

  it.scoped("compares keys structurally and is dual", () =>
    Effect.gen(function*() {
      const limiter = yield* KeyedLimiter.make<{ readonly host: string }>({
        name: "test-keyed-structural",
        limitPerKey: 1,
        idleTimeToLive: "1 minute"
      })
      yield* KeyedLimiter.run(limiter, Data.struct({ host: "a.example" }), Effect.void)
      yield* Effect.void.pipe(KeyedLimiter.run(limiter, Data.struct({ host: "a.example" })))
      const stats = Option.getOrThrow(yield* limiter.statsFor(Data.struct({ host: "a.example" })))
      assert.strictEqual(stats.completed, 2)
      assert.strictEqual((yield* limiter.stats).keys, 1)
      assert.isTrue(KeyedLimiter.isKeyedLimiter(limiter))
    }))

  it.effect("is provided under a user's tag by layer", () =>
    Effect.gen(function*() {
      class PerHost extends Context.Tag("test/PerHost")<PerHost, KeyedLimiter.KeyedLimiter<string>>() {}
      const result = yield* Effect.gen(function*() {
        const limiter = yield* PerHost
        return yield* limiter.run("h", Effect.succeed(limiter.limitPerKey))
      }).pipe(Effect.provide(KeyedLimiter.layer(PerHost, { name: "test-keyed-layer", limitPerKey: 4 })))
      assert.strictEqual(result, 4)
    }))
})
