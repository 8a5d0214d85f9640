import { assert, describe, it } from "@effect/vitest"
import * as Batcher from "@spindle/core/Batcher"
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Metric,
  Option,
  Ref,
  Scope,
  TestClock
} from "effect"

class Boom extends Data.TaggedError("Boom")<{ readonly item: string }> {}

/** Waits (yielding, never sleeping) until the batcher's stats satisfy `predicate`. */
const awaitStats = <A, B, E>(
  batcher: Batcher.Batcher<A, B, E>,
  predicate: (stats: Batcher.Stats) => boolean
): Effect.Effect<Batcher.Stats> =>
  Effect.zipLeft(batcher.stats, Effect.yieldNow()).pipe(Effect.repeat({ until: predicate }))

/** A batcher whose `run` records every batch it sees and maps items with `f`. */
const recording = <A, B>(
  options: Omit<Batcher.Options<A, B>, "run">,
  f: (item: A) => B
) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<ReadonlyArray<A>>>([])
    const batcher = yield* Batcher.make<A, B>({
      ...options,
      run: (items) => Effect.as(Ref.update(seen, (batches) => [...batches, items]), items.map(f))
    })
    return { batcher, seen: Ref.get(seen) }
  })

/** State of a metric in the global registry, by name and tags. */
const metricState = <S>(name: string, tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs): S | undefined => {
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      const labels = new Map(pair.metricKey.tags.map((label) => [label.key, label.value]))
      if (Object.entries(tags).every(([key, value]) => labels.get(key) === value)) {
        return pair.metricState as unknown as S
      }
    }
    return undefined
  })

/** Value of a counter in the global registry, by name and tags. */
const counterValue = (name: string, tags: Record<string, string>) =>
  Effect.map(metricState<{ readonly count: number }>(name, tags), (state) => state?.count ?? 0)

/** Count and sum of a histogram in the global registry, by name and tags. */
const histogram = (name: string, tags: Record<string, string>) =>
  Effect.map(
    metricState<{ readonly count: number; readonly sum: number }>(name, tags),
    (state) => ({ count: state?.count ?? 0, sum: state?.sum ?? 0 })
  )

describe("Batcher", () => {
  it.scoped("flushes when a batch reaches maxSize, without any clock advance", () =>
    Effect.gen(function*() {
      const { batcher, seen } = yield* recording<number, number>(
        { name: "size", maxSize: 3, maxWait: "1 hour" },
        (n) => n * 10
      )
      const results = yield* Effect.forEach([1, 2, 3], batcher.submit, { concurrency: "unbounded" })
      assert.deepStrictEqual(results, [10, 20, 30])
      assert.deepStrictEqual(yield* seen, [[1, 2, 3]])
      const stats = yield* batcher.stats
      assert.deepStrictEqual(yield* Batcher.stats(batcher), stats)
      assert.strictEqual(stats.submitted, 3)
      assert.strictEqual(stats.batches, 1)
      assert.strictEqual(stats.flushedBySize, 1)
      assert.strictEqual(stats.flushedByTime, 0)
      assert.strictEqual(stats.pending, 0)
      assert.strictEqual(yield* counterValue("spindle_batcher_flushes_total", { batcher: "size", reason: "size" }), 1)
    }))

  it.scoped("flushes a partial batch maxWait after its first item, not before", () =>
    Effect.gen(function*() {
      const { batcher, seen } = yield* recording<number, number>(
        { name: "time", maxSize: 10, maxWait: "100 millis" },
        (n) => n + 1
      )
      const fiber = yield* Effect.fork(Effect.forEach([1, 2], batcher.submit, { concurrency: "unbounded" }))
      yield* awaitStats(batcher, (stats) => stats.submitted === 2)
      assert.deepStrictEqual(yield* seen, [])

      yield* TestClock.adjust("99 millis")
      assert.deepStrictEqual(yield* seen, [])
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))

      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [2, 3])
      assert.deepStrictEqual(yield* seen, [[1, 2]])
      const stats = yield* batcher.stats
      assert.strictEqual(stats.flushedByTime, 1)
      assert.strictEqual(stats.flushedBySize, 0)
      assert.strictEqual(yield* counterValue("spindle_batcher_flushes_total", { batcher: "time", reason: "time" }), 1)
      // First item enqueued at 0, batch completed at 100 millis.
      assert.deepStrictEqual(
        yield* histogram("spindle_batcher_flush_latency_seconds", { batcher: "time" }),
        { count: 1, sum: 0.1 }
      )
      assert.deepStrictEqual(yield* histogram("spindle_batcher_batch_size", { batcher: "time" }), { count: 1, sum: 2 })
    }))

  it.scoped("gives each caller its own result across many batches", () =>
    Effect.gen(function*() {
      const { batcher, seen } = yield* recording<number, string>(
        { name: "own-results", maxSize: 50, maxWait: "10 millis", concurrency: 4 },
        (n) => `item-${n}`
      )
      const items = Array.from({ length: 1_000 }, (_, i) => i)
      const results = yield* Effect.forEach(items, batcher.submit, { concurrency: "unbounded" })
      assert.deepStrictEqual(results, items.map((n) => `item-${n}`))
      const batches = yield* seen
      assert.strictEqual(batches.length, 20)
      assert.isTrue(batches.every((batch) => batch.length === 50))
      const stats = yield* batcher.stats
      assert.strictEqual(stats.submitted, 1_000)
      assert.strictEqual(stats.batches, 20)
      assert.strictEqual(stats.pending, 0)
    }))

  it.scoped("merges identical keys: run sees the item once, every caller gets the result", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const seen = yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([])
      const batcher = yield* Batcher.make({
        name: "merge",
        maxSize: 2,
        maxWait: "1 hour",
        key: (id: string) => id,
        run: (ids: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            yield* Ref.update(seen, (batches) => [...batches, ids])
            const call = yield* Ref.updateAndGet(calls, (n) => n + 1)
            return ids.map((id) => ({ id, call }))
          })
      })
      // "a" twice then "b": the second "a" is merged, so the batch is full (2 items) at "b".
      const results = yield* Effect.forEach(["a", "a", "b"], batcher.submit, { concurrency: "unbounded" })
      assert.deepStrictEqual(yield* seen, [["a", "b"]])
      assert.deepStrictEqual(results, [{ id: "a", call: 1 }, { id: "a", call: 1 }, { id: "b", call: 1 }])
      assert.strictEqual(results[0], results[1])
      const stats = yield* batcher.stats
      assert.strictEqual(stats.merged, 1)
      assert.strictEqual(stats.submitted, 3)
      assert.strictEqual(yield* counterValue("spindle_batcher_merged_total", { batcher: "merge" }), 1)
    }))

  it.scoped("a failing batch fails only its callers, typed, while a concurrent batch succeeds", () =>
    Effect.gen(function*() {
      const started = yield* Ref.make(0)
      const bothRunning = yield* Deferred.make<void>()
      const batcher = yield* Batcher.make({
        name: "failing",
        maxSize: 2,
        maxWait: "1 hour",
        concurrency: 2,
        run: (items: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            if ((yield* Ref.updateAndGet(started, (n) => n + 1)) === 2) {
              yield* Deferred.succeed(bothRunning, undefined)
            }
            // Both batches are in run at the same time before either completes.
            yield* Deferred.await(bothRunning)
            const bad = items.find((item) => item.startsWith("bad"))
            return bad === undefined ? items.map((item) => item.toUpperCase()) : yield* new Boom({ item: bad })
          })
      })
      const good = yield* Effect.fork(Effect.all([batcher.submit("ok1"), batcher.submit("ok2")], { concurrency: 2 }))
      const badFirst = yield* Effect.fork(Effect.exit(batcher.submit("bad")))
      const badSecond = yield* Effect.fork(Effect.exit(batcher.submit("ok3")))

      assert.deepStrictEqual(yield* Fiber.join(good), ["OK1", "OK2"])
      for (const exit of [yield* Fiber.join(badFirst), yield* Fiber.join(badSecond)]) {
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error))
        if (Option.isSome(error)) {
          assert.instanceOf(error.value, Batcher.BatchError)
          assert.strictEqual(error.value.reason, "RunFailed")
          assert.strictEqual(error.value.batcher, "failing")
          assert.strictEqual(error.value.batchSize, 2)
          assert.deepStrictEqual(error.value.cause, new Boom({ item: "bad" }))
        }
      }
      const stats = yield* batcher.stats
      assert.strictEqual(stats.batches, 2)
      assert.strictEqual(stats.failed, 1)
      // The batcher keeps working after a failed batch.
      assert.deepStrictEqual(
        yield* Effect.all([batcher.submit("x"), batcher.submit("y")], { concurrency: 2 }),
        ["X", "Y"]
      )
    }))

  it.scoped("reports a result-count mismatch to the batch's callers as a typed error", () =>
    Effect.gen(function*() {
      const batcher = yield* Batcher.make({
        name: "mismatch",
        maxSize: 3,
        maxWait: "1 hour",
        run: (items: ReadonlyArray<number>) => Effect.succeed(items.slice(1))
      })
      const exits = yield* Effect.forEach([1, 2, 3], (n) => Effect.exit(batcher.submit(n)), {
        concurrency: "unbounded"
      })
      for (const exit of exits) {
        assert.deepStrictEqual(
          exit,
          Exit.fail(
            new Batcher.BatchError({
              reason: "ResultCountMismatch",
              batcher: "mismatch",
              batchSize: 3,
              expected: 3,
              actual: 2
            })
          )
        )
      }
      assert.strictEqual((yield* batcher.stats).failed, 1)
    }))

  it.scoped("passes defects of run to the batch's callers as defects", () =>
    Effect.gen(function*() {
      const batcher = yield* Batcher.make({
        name: "defect",
        maxSize: 1,
        maxWait: "1 hour",
        run: (_: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<number>> => Effect.dieMessage("kaput")
      })
      const exit = yield* Effect.exit(batcher.submit(1))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.strictEqual((yield* batcher.stats).failed, 1)
    }))

  for (const concurrency of [1, 3]) {
    it.scoped(`runs at most ${concurrency} batch(es) at once`, () =>
      Effect.gen(function*() {
        const inFlight = yield* Ref.make(0)
        const peak = yield* Ref.make(0)
        const full = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const batcher = yield* Batcher.make({
          name: `concurrency-${concurrency}`,
          maxSize: 1,
          maxWait: "1 hour",
          ...(concurrency === 1 ? {} : { concurrency }),
          run: (items: ReadonlyArray<number>) =>
            Effect.gen(function*() {
              const now = yield* Ref.updateAndGet(inFlight, (n) => n + 1)
              yield* Ref.update(peak, (p) => Math.max(p, now))
              if (now === concurrency) yield* Deferred.succeed(full, undefined)
              yield* Deferred.await(release)
              yield* Ref.update(inFlight, (n) => n - 1)
              return items
            })
        })
        const fiber = yield* Effect.fork(
          Effect.forEach([1, 2, 3, 4, 5, 6], batcher.submit, { concurrency: "unbounded" })
        )
        yield* Deferred.await(full)
        // Let every other fiber run until it is suspended: no further batch may start.
        yield* TestClock.adjust("1 millis")
        assert.strictEqual(yield* Ref.get(inFlight), concurrency)
        assert.strictEqual((yield* batcher.stats).running, concurrency)
        yield* Deferred.succeed(release, undefined)
        assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 2, 3, 4, 5, 6])
        assert.strictEqual(yield* Ref.get(peak), concurrency)
        assert.strictEqual((yield* batcher.stats).batches, 6)
      }))
  }

  it.scoped("an interrupted caller does not break the batch for the others", () =>
    Effect.gen(function*() {
      const { batcher, seen } = yield* recording<string, string>(
        { name: "interrupt", maxSize: 3, maxWait: "1 hour" },
        (s) => s + "!"
      )
      const a = yield* Effect.fork(batcher.submit("a"))
      const b = yield* Effect.fork(batcher.submit("b"))
      yield* awaitStats(batcher, (stats) => stats.submitted === 2)
      yield* Fiber.interrupt(b)
      const c = yield* batcher.submit("c")
      assert.strictEqual(c, "c!")
      assert.strictEqual(yield* Fiber.join(a), "a!")
      assert.deepStrictEqual(yield* seen, [["a", "b", "c"]])
      assert.strictEqual((yield* batcher.stats).pending, 0)
    }))

  it.effect("closing the scope flushes pending items and refuses later submissions with Closed", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const seen = yield* Ref.make<ReadonlyArray<ReadonlyArray<number>>>([])
      const release = yield* Deferred.make<void>()
      const batcher = yield* Batcher.make({
        name: "close",
        maxSize: 2,
        maxWait: "1 hour",
        run: (items: ReadonlyArray<number>) =>
          Effect.gen(function*() {
            yield* Ref.update(seen, (batches) => [...batches, items])
            if (items[0] === 1) yield* Deferred.await(release)
            return items.map((n) => -n)
          })
      }).pipe(Scope.extend(scope))
      // [1, 2] is running (blocked), [3] waits in the open batch.
      const running = yield* Effect.fork(Effect.forEach([1, 2], batcher.submit, { concurrency: "unbounded" }))
      yield* awaitStats(batcher, (stats) => stats.running === 1)
      const open = yield* Effect.fork(batcher.submit(3))
      yield* awaitStats(batcher, (stats) => stats.submitted === 3)

      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* awaitStats(batcher, (stats) => stats.flushedByClose === 1)
      // New submissions are refused while closing, and after.
      assert.deepStrictEqual(
        yield* Effect.exit(batcher.submit(4)),
        Exit.fail(new Batcher.BatchError({ reason: "Closed", batcher: "close", batchSize: 0 }))
      )
      assert.isTrue(Option.isNone(yield* Fiber.poll(closing)))

      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(yield* Fiber.join(running), [-1, -2])
      assert.strictEqual(yield* Fiber.join(open), -3)
      assert.deepStrictEqual(yield* Ref.get(seen), [[1, 2], [3]])
      const stats = yield* batcher.stats
      assert.strictEqual(stats.flushedBySize, 1)
      assert.strictEqual(stats.flushedByClose, 1)
      assert.strictEqual(stats.pending, 0)
      const after = yield* Effect.flip(batcher.submit(5))
      assert.strictEqual(after.reason, "Closed")
    }))

  it.effect("with an infinite maxWait, a partial batch waits for more items or for the scope to close", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { batcher, seen } = yield* recording<number, number>(
        { name: "no-timer", maxSize: 3, maxWait: Duration.infinity },
        (n) => n
      ).pipe(Scope.extend(scope))
      const fiber = yield* Effect.fork(Effect.forEach([1, 2], batcher.submit, { concurrency: "unbounded" }))
      yield* awaitStats(batcher, (stats) => stats.submitted === 2)
      yield* TestClock.adjust("1 day")
      assert.deepStrictEqual(yield* seen, [])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 2])
      assert.deepStrictEqual(yield* seen, [[1, 2]])
      assert.strictEqual((yield* batcher.stats).flushedByClose, 1)
    }))

  it.scoped("provides a batcher through a layer under the user's tag", () =>
    Effect.gen(function*() {
      class Lengths extends Context.Tag("Lengths")<Lengths, Batcher.Batcher<string, number>>() {}
      const layer = Batcher.layer(Lengths, {
        name: "layer",
        maxSize: 2,
        maxWait: "1 hour",
        run: (words: ReadonlyArray<string>) => Effect.succeed(words.map((word) => word.length))
      })
      const results = yield* Effect.flatMap(
        Lengths,
        (lengths) => Effect.all([lengths.submit("ab"), lengths.submit("abcd")], { concurrency: 2 })
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(results, [2, 4])
    }))
})

describe("Batcher.batchProcess", () => {
  it.effect("keeps input order and bounds concurrency", () =>
    Effect.gen(function*() {
      const inFlight = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const chunks = yield* Ref.make<ReadonlyArray<ReadonlyArray<number>>>([])
      const items = Array.from({ length: 10 }, (_, i) => i)
      const fiber = yield* Batcher.batchProcess(
        items,
        { size: 3, concurrency: 2 },
        (chunk: ReadonlyArray<number>, index) =>
          Effect.gen(function*() {
            yield* Ref.update(chunks, (all) => [...all, chunk])
            const now = yield* Ref.updateAndGet(inFlight, (n) => n + 1)
            yield* Ref.update(peak, (p) => Math.max(p, now))
            // Later chunks finish first.
            yield* Effect.sleep(`${(4 - index) * 10} millis`)
            yield* Ref.update(inFlight, (n) => n - 1)
            return chunk.map((n) => n * 2)
          })
      ).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(fiber), items.map((n) => n * 2))
      assert.strictEqual(yield* Ref.get(peak), 2)
      assert.deepStrictEqual(
        [...(yield* Ref.get(chunks))].sort((a, b) => a[0] - b[0]),
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
      )
    }))

  it.effect("fails with a typed error carrying the cause, or the result-count mismatch", () =>
    Effect.gen(function*() {
      const failed = yield* Effect.flip(
        Batcher.batchProcess(
          ["a", "b", "bad", "c"],
          { size: 2, name: "offline" },
          (chunk: ReadonlyArray<string>) =>
            chunk.includes("bad") ? Effect.fail(new Boom({ item: "bad" })) : Effect.succeed(chunk)
        )
      )
      assert.strictEqual(failed.reason, "RunFailed")
      assert.strictEqual(failed.batcher, "offline")
      assert.deepStrictEqual(failed.cause, new Boom({ item: "bad" }))

      const mismatch = yield* Effect.flip(
        Batcher.batchProcess({ size: 2 }, (chunk: ReadonlyArray<number>) => Effect.succeed(chunk.slice(1)))([1, 2, 3])
      )
      assert.strictEqual(mismatch.reason, "ResultCountMismatch")
      assert.strictEqual(mismatch.batcher, "batchProcess")
      assert.strictEqual(mismatch.expected, 2)
      assert.strictEqual(mismatch.actual, 1)
    }))

  it.effect("returns an empty array for an empty list", () =>
    Effect.gen(function*() {
      const results = yield* Batcher.batchProcess([], { size: 5 }, (chunk: ReadonlyArray<number>) =>
        Effect.succeed(chunk))
      assert.deepStrictEqual(results, [])
    }))
})
