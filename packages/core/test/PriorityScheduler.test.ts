import { assert, describe, it } from "@effect/vitest"
import * as PriorityScheduler from "@spindle/core/PriorityScheduler"
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberRef,
  Metric,
  MetricState,
  Option,
  Scope,
  TestClock
} from "effect"

type Priority = PriorityScheduler.Priority

/** Waits (yielding, never sleeping) until the scheduler's stats satisfy `predicate`. */
const awaitStats = (
  scheduler: PriorityScheduler.PriorityScheduler,
  predicate: (stats: PriorityScheduler.PriorityScheduler.Stats) => boolean
): Effect.Effect<PriorityScheduler.PriorityScheduler.Stats> =>
  Effect.zipLeft(scheduler.stats, Effect.yieldNow()).pipe(Effect.repeat({ until: predicate }))

/** The state of a metric in the global registry, by name and tags. */
const metricState = (name: string, tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      const labels = new Map(pair.metricKey.tags.map((label) => [label.key, label.value]))
      if (Object.entries(tags).every(([key, value]) => labels.get(key) === value)) return pair.metricState
    }
    return undefined
  })

const counterValue = (name: string, tags: Record<string, string>) =>
  Effect.map(metricState(name, tags), (state) => MetricState.isCounterState(state) ? Number(state.count) : -1)

const gaugeValue = (name: string, tags: Record<string, string>) =>
  Effect.map(metricState(name, tags), (state) => MetricState.isGaugeState(state) ? Number(state.value) : -1)

/**
 * Saturates a scheduler of concurrency 1: `queued[level]` tasks queued at each
 * level while paused, then resumed. Returns the levels of the first
 * `dispatches` tasks run, in order, and the stats at the last of them (to
 * check that no level ran dry, i.e. that the scheduler stayed saturated).
 */
const dispatchOrder = (
  options: Omit<PriorityScheduler.PriorityScheduler.Options, "concurrency">,
  queued: Partial<Record<Priority, number>>,
  dispatches: number
) =>
  Effect.gen(function*() {
    const scheduler = yield* PriorityScheduler.make({ ...options, concurrency: 1, onClose: "interrupt" })
    const order: Array<Priority> = []
    const last = yield* Deferred.make<PriorityScheduler.PriorityScheduler.Stats>()
    yield* scheduler.pause
    for (const level of PriorityScheduler.priorities) {
      const task = Effect.suspend(() =>
        order.push(level) === dispatches
          ? Effect.flatMap(scheduler.stats, (s) => Deferred.succeed(last, s))
          : Effect.void
      )
      for (let i = 0; i < (queued[level] ?? 0); i++) yield* scheduler.fork(task, { priority: level })
    }
    yield* scheduler.resume
    const stats = yield* Deferred.await(last)
    return { order: order.slice(0, dispatches), stats }
  })

/** Every level in `levels` still had queued tasks when the last dispatch was made. */
const assertSaturated = (stats: PriorityScheduler.PriorityScheduler.Stats, levels: ReadonlyArray<Priority>) => {
  for (const level of levels) assert.isTrue(stats.levels[level].queued > 0, `${level} ran dry`)
}

const countLevels = (order: ReadonlyArray<Priority>) => {
  const counts: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  for (const level of order) counts[level]++
  return counts
}

const assertWithin5Percent = (actual: number, expected: number) =>
  assert.isTrue(Math.abs(actual - expected) <= expected * 0.05, `${actual} is not within 5% of ${expected}`)

describe("PriorityScheduler", () => {
  describe("weighted policy", () => {
    it.scoped("dispatches 4:3:2:1 by default under saturation, exactly and interleaved", () =>
      Effect.gen(function*() {
        // every level has more queued than its share of the 10,000 dispatches
        const { order, stats } = yield* dispatchOrder(
          { name: "wfq-default" },
          { critical: 5_000, high: 4_000, normal: 3_000, low: 2_000 },
          10_000
        )
        assertSaturated(stats, PriorityScheduler.priorities)
        const counts = countLevels(order)
        assertWithin5Percent(counts.critical, 4000)
        assertWithin5Percent(counts.high, 3000)
        assertWithin5Percent(counts.normal, 2000)
        assertWithin5Percent(counts.low, 1000)
        // smooth weighted round-robin is exact and deterministic
        assert.deepStrictEqual(counts, { critical: 4000, high: 3000, normal: 2000, low: 1000 })
        // and smooth: every window of 10 dispatches already has the exact ratio, interleaved
        assert.deepStrictEqual(order.slice(0, 10), [
          "critical",
          "high",
          "normal",
          "critical",
          "high",
          "low",
          "critical",
          "normal",
          "high",
          "critical"
        ])
        for (let start = 0; start < order.length; start += 10) {
          assert.deepStrictEqual(countLevels(order.slice(start, start + 10)), {
            critical: 4,
            high: 3,
            normal: 2,
            low: 1
          })
        }
        assert.strictEqual(stats.total.dispatched, 10_000)
      }))

    it.scoped("follows custom weights, and shares among the non-empty levels only", () =>
      Effect.gen(function*() {
        const custom = yield* dispatchOrder(
          { name: "wfq-custom", weights: { critical: 10, high: 5, normal: 3, low: 2 } },
          { critical: 6_000, high: 3_000, normal: 2_000, low: 1_500 },
          10_000
        )
        assertSaturated(custom.stats, PriorityScheduler.priorities)
        const counts = countLevels(custom.order)
        assertWithin5Percent(counts.critical, 5000)
        assertWithin5Percent(counts.high, 2500)
        assertWithin5Percent(counts.normal, 1500)
        assertWithin5Percent(counts.low, 1000)
        assert.deepStrictEqual(custom.stats.weights, { critical: 10, high: 5, normal: 3, low: 2 })

        // partial weights keep the other defaults: 4 : 3 : 2 : 3 here
        const partial = yield* dispatchOrder(
          { name: "wfq-partial", weights: { low: 3 } },
          { critical: 500, high: 400, normal: 300, low: 400 },
          1_200
        )
        assertSaturated(partial.stats, PriorityScheduler.priorities)
        assert.deepStrictEqual(countLevels(partial.order), { critical: 400, high: 300, normal: 200, low: 300 })

        // only critical and low waiting: 4 : 1 between them
        const two = yield* dispatchOrder({ name: "wfq-two" }, { critical: 4_500, low: 1_500 }, 5_000)
        assertSaturated(two.stats, ["critical", "low"])
        assert.deepStrictEqual(countLevels(two.order), { critical: 4000, high: 0, normal: 0, low: 1000 })
      }))

    it.scoped("keeps FIFO order within each level", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "fifo", concurrency: 2 })
        const seen: Record<Priority, Array<number>> = { critical: [], high: [], normal: [], low: [] }
        yield* scheduler.pause
        const tasks = []
        for (let i = 0; i < 200; i++) {
          const level = PriorityScheduler.priorities[(i * 7) % 4]
          tasks.push(yield* scheduler.fork(Effect.sync(() => seen[level].push(i)), { priority: level }))
        }
        yield* scheduler.resume
        yield* Effect.forEach(tasks, (task) => task.await, { discard: true })
        for (const level of PriorityScheduler.priorities) {
          assert.strictEqual(seen[level].length, 50)
          assert.deepStrictEqual(seen[level], [...seen[level]].sort((a, b) => a - b))
        }
      }))
  })

  describe("strict policy", () => {
    it.scoped("runs every critical task before any high, every high before any normal, and so on", () =>
      Effect.gen(function*() {
        const name = "strict-order"
        const scheduler = yield* PriorityScheduler.make({ name, concurrency: 1, policy: "strict" })
        const order: Array<string> = []
        yield* scheduler.pause
        const tasks = []
        for (let i = 0; i < 80; i++) {
          const level = PriorityScheduler.priorities[3 - (i % 4)] // low first, critical last
          tasks.push(yield* scheduler.fork(Effect.sync(() => order.push(`${level}-${i}`)), { priority: level }))
        }
        const paused = yield* scheduler.stats
        assert.isTrue(paused.paused)
        assert.strictEqual(paused.levels.low.queued, 20)
        assert.strictEqual(paused.total.dispatched, 0)
        assert.strictEqual(yield* gaugeValue("spindle_scheduler_queued", { scheduler: name, level: "high" }), 20)

        yield* scheduler.resume
        yield* Effect.forEach(tasks, (task) => task.await, { discard: true })
        const levels = order.map((tag) => tag.split("-")[0])
        const expected = PriorityScheduler.priorities.flatMap((level) => Array.from({ length: 20 }, () => level))
        assert.deepStrictEqual(levels, expected)
        // FIFO within a level
        const critical = order.slice(0, 20).map((tag) => Number(tag.split("-")[1]))
        assert.deepStrictEqual(critical, Array.from({ length: 20 }, (_, i) => i * 4 + 3))

        const stats = yield* scheduler.stats
        assert.strictEqual(stats.total.completed, 80)
        assert.strictEqual(stats.levels.low.dispatched, 20)
        assert.strictEqual(
          yield* counterValue("spindle_scheduler_dispatched_total", { scheduler: name, level: "low" }),
          20
        )
        assert.strictEqual(yield* gaugeValue("spindle_scheduler_queued", { scheduler: name, level: "high" }), 0)
      }))
  })

  describe("aging", () => {
    /**
     * Strict policy, concurrency 1, a low task queued at t=0 and a steady
     * stream of high tasks (each runs 1s, one arrives every second, two are
     * always queued). Returns the scheduler, the low task and the run order.
     */
    const starvationSetup = (name: string, aging: PriorityScheduler.PriorityScheduler.Options["aging"]) =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({
          name,
          concurrency: 1,
          policy: "strict",
          aging,
          onClose: "interrupt"
        })
        const order: Array<string> = []
        let highs = 0
        const high = Effect.suspend(() => {
          const id = ++highs
          return scheduler.fork(Effect.as(Effect.sleep("1 second"), id).pipe(Effect.tap(() => order.push(`H${id}`))), {
            priority: "high"
          })
        })
        yield* scheduler.pause
        const low = yield* scheduler.fork(Effect.sync(() => order.push("L")), { priority: "low" })
        yield* Effect.repeatN(high, 2)
        yield* scheduler.resume
        yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep("1 second"), high)))
        return { scheduler, low, order }
      })

    it.scoped("without aging, the strict policy starves a low task", () =>
      Effect.gen(function*() {
        const { low, order, scheduler } = yield* starvationSetup("starved", undefined)
        yield* TestClock.adjust("40 seconds")
        assert.strictEqual(order.length, 40)
        assert.isFalse(order.includes("L"))
        assert.strictEqual(yield* low.status, "queued")
        assert.strictEqual((yield* scheduler.stats).levels.low.queued, 1)
      }))

    it.scoped("promotes a starved low task one level per `after` until it runs", () =>
      Effect.gen(function*() {
        const name = "aging"
        const { low, order, scheduler } = yield* starvationSetup(name, { after: "10.25 seconds" })

        yield* TestClock.adjust("10 seconds")
        assert.strictEqual((yield* scheduler.stats).levels.low.queued, 1)

        // t = 10.25: low → normal; still below the stream of highs
        yield* TestClock.adjust("1 second")
        let stats = yield* scheduler.stats
        assert.strictEqual(stats.levels.low.queued, 0)
        assert.strictEqual(stats.levels.normal.queued, 1)
        assert.strictEqual(stats.levels.low.promoted, 1)

        // t = 20.5: normal → high, behind the two highs already queued
        yield* TestClock.adjust("9.75 seconds")
        stats = yield* scheduler.stats
        assert.strictEqual(stats.levels.low.promoted, 2)
        assert.strictEqual(stats.levels.high.queued, 3)
        assert.isFalse(order.includes("L"))
        assert.strictEqual(
          yield* counterValue("spindle_scheduler_promoted_total", { scheduler: name, level: "low" }),
          1
        )
        assert.strictEqual(
          yield* counterValue("spindle_scheduler_promoted_total", { scheduler: name, level: "normal" }),
          1
        )

        // t = 23: the two highs ahead of it have run, then it runs, FIFO among the highs
        yield* TestClock.adjust("2.5 seconds")
        yield* low.await
        assert.strictEqual(order.indexOf("L"), 23)
        assert.deepStrictEqual(order.slice(0, 23), Array.from({ length: 23 }, (_, i) => `H${i + 1}`))
        stats = yield* scheduler.stats
        assert.strictEqual(stats.levels.low.dispatched, 1)
        assert.strictEqual(stats.levels.low.promoted, 2)
        assert.strictEqual(stats.levels.high.promoted, 0) // the highs never waited long enough
        assert.strictEqual(Duration.toMillis(stats.levels.low.maxWait), 23_000)
      }))
  })

  describe("capacity", () => {
    it.scoped("reject mode fails at once with SchedulerFull", () =>
      Effect.gen(function*() {
        const name = "reject"
        const scheduler = yield* PriorityScheduler.make({ name, concurrency: 1, capacity: 2, onFull: "reject" })
        const gate = yield* Deferred.make<void>()
        const blocker = yield* scheduler.fork(Deferred.await(gate))
        yield* awaitStats(scheduler, (s) => s.total.running === 1)
        const queued = [yield* scheduler.fork(Effect.succeed(1)), yield* scheduler.fork(Effect.succeed(2))]

        const error = yield* Effect.flip(scheduler.submit(Effect.succeed(3), { priority: "low" }))
        assert.instanceOf(error, PriorityScheduler.SchedulerFull)
        assert.deepStrictEqual(
          { tag: error._tag, scheduler: error.scheduler, priority: error.priority, capacity: error.capacity },
          { tag: "SchedulerFull", scheduler: name, priority: "low", capacity: 2 }
        )
        const forkError = yield* Effect.flip(scheduler.fork(Effect.succeed(4), { priority: "critical" }))
        assert.strictEqual(forkError._tag, "SchedulerFull")

        const stats = yield* scheduler.stats
        assert.strictEqual(stats.levels.low.rejected, 1)
        assert.strictEqual(stats.levels.critical.rejected, 1)
        assert.strictEqual(
          yield* counterValue("spindle_scheduler_rejected_total", { scheduler: name, level: "low" }),
          1
        )

        yield* Deferred.succeed(gate, void 0)
        yield* blocker.await
        assert.deepStrictEqual(yield* Effect.forEach(queued, (task) => task.await), [1, 2])
        // room again
        assert.strictEqual(yield* scheduler.submit(Effect.succeed(5)), 5)
      }))

    it.scoped("backpressure mode makes submitters wait for room, in arrival order", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "backpressure", concurrency: 1, capacity: 1 })
        const order: Array<string> = []
        const gate = yield* Deferred.make<void>()
        yield* scheduler.fork(Effect.zipRight(Deferred.await(gate), Effect.sync(() => order.push("blocker"))))
        yield* awaitStats(scheduler, (s) => s.total.running === 1)
        const a = yield* scheduler.fork(Effect.sync(() => order.push("a")))

        const submitter = yield* Effect.fork(scheduler.submit(Effect.sync(() => order.push("b")).pipe(Effect.as("b"))))
        const forker = yield* Effect.fork(scheduler.fork(Effect.sync(() => order.push("c")), { priority: "critical" }))
        let stats = yield* awaitStats(scheduler, (s) => s.waiting === 2)
        assert.strictEqual(stats.total.queued, 1)
        assert.isTrue(Option.isNone(yield* Fiber.poll(submitter)))
        assert.isTrue(Option.isNone(yield* Fiber.poll(forker)))

        yield* Deferred.succeed(gate, void 0)
        assert.strictEqual(yield* Fiber.join(submitter), "b")
        const c = yield* Fiber.join(forker)
        yield* c.await
        yield* a.await
        assert.deepStrictEqual(order, ["blocker", "a", "b", "c"])
        stats = yield* scheduler.stats
        assert.strictEqual(stats.waiting, 0)
        assert.strictEqual(stats.total.completed, 4)
      }))

    it.scoped("interrupting a submitter waiting for room withdraws its task", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "backpressure-interrupt", concurrency: 1, capacity: 1 })
        let ran = false
        const gate = yield* Deferred.make<void>()
        const blocker = yield* scheduler.fork(Deferred.await(gate))
        yield* awaitStats(scheduler, (s) => s.total.running === 1)
        const queued = yield* scheduler.fork(Effect.void)
        const waiter = yield* Effect.fork(scheduler.fork(Effect.sync(() => {
          ran = true
        })))
        yield* awaitStats(scheduler, (s) => s.waiting === 1)
        yield* Fiber.interrupt(waiter)
        const stats = yield* scheduler.stats
        assert.strictEqual(stats.waiting, 0)
        assert.strictEqual(stats.total.cancelled, 1)
        yield* Deferred.succeed(gate, void 0)
        yield* blocker.await
        yield* queued.await
        yield* scheduler.submit(Effect.void)
        assert.isFalse(ran)
      }))
  })

  describe("concurrency", () => {
    it.scoped("never runs more than `concurrency` tasks at once", () =>
      Effect.gen(function*() {
        const name = "concurrency"
        const scheduler = yield* PriorityScheduler.make({ name, concurrency: 3 })
        let running = 0
        let max = 0
        const task = Effect.acquireUseRelease(
          Effect.sync(() => {
            running++
            max = Math.max(max, running)
          }),
          () => Effect.sleep("1 second"),
          () =>
            Effect.sync(() => {
              running--
            })
        )
        const tasks = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => PriorityScheduler.priorities[i % 4]),
          (priority) => scheduler.fork(task, { priority })
        )
        const stats = yield* awaitStats(scheduler, (s) => s.total.running === 3)
        assert.strictEqual(stats.total.queued, 17)
        assert.strictEqual(yield* gaugeValue("spindle_scheduler_running", { scheduler: name }), 3)
        for (let second = 0; second < 7; second++) yield* TestClock.adjust("1 second")
        yield* Effect.forEach(tasks, (t) => t.await, { discard: true })
        assert.strictEqual(max, 3)
        assert.strictEqual((yield* scheduler.stats).total.completed, 20)
        assert.strictEqual(yield* gaugeValue("spindle_scheduler_running", { scheduler: name }), 0)
      }))
  })

  describe("cancellation", () => {
    it.scoped("interrupting a queued caller removes its task: it never runs", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "cancel-queued", concurrency: 1 })
        const gate = yield* Deferred.make<void>()
        const blocker = yield* scheduler.fork(Deferred.await(gate))
        yield* awaitStats(scheduler, (s) => s.total.running === 1)
        let ran = false
        const caller = yield* Effect.fork(scheduler.submit(
          Effect.sync(() => {
            ran = true
          }),
          { priority: "critical" }
        ))
        yield* awaitStats(scheduler, (s) => s.levels.critical.queued === 1)
        yield* Fiber.interrupt(caller)
        let stats = yield* scheduler.stats
        assert.strictEqual(stats.total.queued, 0)
        assert.strictEqual(stats.levels.critical.cancelled, 1)

        yield* Deferred.succeed(gate, void 0)
        yield* blocker.await
        assert.strictEqual(yield* scheduler.submit(Effect.succeed("after")), "after")
        assert.isFalse(ran)
        stats = yield* scheduler.stats
        assert.strictEqual(stats.levels.critical.dispatched, 0)
      }))

    it.scoped("interrupting a running caller interrupts its task", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "cancel-running", concurrency: 1 })
        const started = yield* Deferred.make<void>()
        let finalized = false
        const caller = yield* Effect.fork(scheduler.submit(
          Effect.zipRight(Deferred.succeed(started, void 0), Effect.never).pipe(Effect.onInterrupt(() =>
            Effect.sync(() => {
              finalized = true
            })
          ))
        ))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(caller)
        assert.isTrue(finalized)
        const stats = yield* scheduler.stats
        assert.strictEqual(stats.total.running, 0)
        assert.strictEqual(stats.total.interrupted, 1)
      }))

    it.scoped("a task handle reports its status and can be cancelled while queued", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "handle", concurrency: 1 })
        const gate = yield* Deferred.make<void>()
        const first = yield* scheduler.fork(Effect.as(Deferred.await(gate), "first"), { priority: "high" })
        const second = yield* scheduler.fork(Effect.succeed("second"), { priority: "low" })
        yield* awaitStats(scheduler, (s) => s.total.running === 1)
        assert.strictEqual(first.priority, "high")
        assert.strictEqual(yield* first.status, "running")
        assert.strictEqual(yield* second.status, "queued")
        assert.isTrue(Option.isNone(yield* second.poll))

        yield* second.cancel
        assert.strictEqual(yield* second.status, "done")
        const exit = yield* Effect.exit(second.await)
        assert.isTrue(Exit.isInterrupted(exit))

        yield* Deferred.succeed(gate, void 0)
        assert.strictEqual(yield* first.await, "first")
        assert.deepStrictEqual(yield* first.poll, Option.some(Exit.succeed("first")))
        assert.strictEqual((yield* scheduler.stats).levels.low.cancelled, 1)
      }))
  })

  describe("close", () => {
    it.effect("drain runs everything queued, and the scope's close waits for it", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const scheduler = yield* PriorityScheduler.make({ name: "drain", concurrency: 1 }).pipe(Scope.extend(scope))
        const order: Array<number> = []
        yield* scheduler.pause
        const tasks = yield* Effect.forEach(
          [1, 2, 3, 4, 5],
          (i) => scheduler.fork(Effect.zipRight(Effect.sleep("1 second"), Effect.sync(() => order.push(i))))
        )
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        yield* awaitStats(scheduler, (s) => s.closed && s.total.running === 1)

        const late = yield* Effect.flip(scheduler.submit(Effect.void, { priority: "high" }))
        assert.instanceOf(late, PriorityScheduler.SchedulerClosed)
        assert.strictEqual(late.reason, "Closed")
        assert.strictEqual(late.priority, "high")

        yield* TestClock.adjust("4 seconds")
        assert.isTrue(Option.isNone(yield* Fiber.poll(closing)))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(closing)
        assert.deepStrictEqual(order, [1, 2, 3, 4, 5])
        for (const task of tasks) assert.strictEqual(yield* task.status, "done")
        const stats = yield* scheduler.stats
        assert.strictEqual(stats.total.completed, 5)
        assert.isFalse(stats.paused)
      }))

    it.effect("interrupt fails queued tasks with SchedulerClosed and interrupts running ones", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const scheduler = yield* PriorityScheduler.make({ name: "interrupt", concurrency: 1, onClose: "interrupt" })
          .pipe(Scope.extend(scope))
        let interrupted = false
        let queuedRan = false
        const started = yield* Deferred.make<void>()
        const running = yield* Effect.fork(scheduler.submit(
          Effect.zipRight(Deferred.succeed(started, void 0), Effect.never).pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                interrupted = true
              })
            )
          ),
          { priority: "critical" }
        ))
        yield* Deferred.await(started)
        const markRan = Effect.sync(() => {
          queuedRan = true
        })
        const queuedTask = yield* scheduler.fork(markRan, { priority: "low" })
        const queuedCaller = yield* Effect.fork(scheduler.submit(markRan, { priority: "high" }))
        yield* awaitStats(scheduler, (s) => s.total.queued === 2)

        yield* Scope.close(scope, Exit.void)
        assert.isTrue(interrupted)
        assert.isFalse(queuedRan)

        const runningError = yield* Effect.flip(Fiber.join(running))
        assert.strictEqual(runningError._tag, "SchedulerClosed")
        assert.strictEqual((runningError as PriorityScheduler.SchedulerClosed).reason, "Interrupted")
        const dropped = yield* Effect.flip(queuedTask.await)
        assert.deepStrictEqual(
          { tag: dropped._tag, reason: dropped.reason, priority: dropped.priority },
          { tag: "SchedulerClosed", reason: "Dropped", priority: "low" }
        )
        const droppedCaller = yield* Effect.flip(Fiber.join(queuedCaller))
        assert.strictEqual((droppedCaller as PriorityScheduler.SchedulerClosed).reason, "Dropped")

        const late = yield* Effect.flip(scheduler.fork(Effect.void))
        assert.strictEqual(late._tag, "SchedulerClosed")
        assert.strictEqual((late as PriorityScheduler.SchedulerClosed).reason, "Closed")

        const stats = yield* scheduler.stats
        assert.strictEqual(stats.total.interrupted, 1)
        assert.strictEqual(stats.total.cancelled, 2)
        assert.strictEqual(stats.total.queued + stats.total.running, 0)
      }))

    it.effect("closing fails submitters still waiting for room with SchedulerClosed", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const scheduler = yield* PriorityScheduler.make({ name: "close-waiters", concurrency: 1, capacity: 1 })
          .pipe(Scope.extend(scope))
        yield* scheduler.pause
        yield* scheduler.fork(Effect.void)
        const waiter = yield* Effect.fork(scheduler.submit(Effect.void, { priority: "low" }))
        yield* awaitStats(scheduler, (s) => s.waiting === 1)
        yield* Scope.close(scope, Exit.void)
        const error = yield* Effect.flip(Fiber.join(waiter))
        assert.strictEqual((error as PriorityScheduler.SchedulerClosed).reason, "Closed")
        assert.strictEqual((yield* scheduler.stats).total.completed, 1)
      }))

    it.effect("drainTimeout interrupts what is left after the grace period", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const scheduler = yield* PriorityScheduler.make({
          name: "drain-timeout",
          concurrency: 1,
          drainTimeout: "5 seconds"
        })
          .pipe(Scope.extend(scope))
        const slow = yield* scheduler.fork(Effect.sleep("1 minute"))
        yield* awaitStats(scheduler, (s) => s.total.running === 1)
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(closing)
        const error = yield* Effect.flip(slow.await)
        assert.strictEqual(error.reason, "Interrupted")
      }))
  })

  describe("context", () => {
    class Tenant extends Context.Tag("test/Tenant")<Tenant, string>() {}

    it.scoped("runs the task with the services and fiber refs of its submitter", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "context", concurrency: 1 })
        const ref = FiberRef.unsafeMake("default")
        const seen = yield* scheduler.submit(
          Effect.all([Tenant, FiberRef.get(ref)]),
          { priority: "high" }
        ).pipe(Effect.provideService(Tenant, "acme"), Effect.locally(ref, "submitter"))
        assert.deepStrictEqual(seen, ["acme", "submitter"])
        const viaPipe = yield* Tenant.pipe(
          PriorityScheduler.submit(scheduler, { priority: "low" }),
          Effect.provideService(Tenant, "globex")
        )
        assert.strictEqual(viaPipe, "globex")
      }))

    it.scoped("passes the task's own failures and defects through", () =>
      Effect.gen(function*() {
        const scheduler = yield* PriorityScheduler.make({ name: "failures", concurrency: 2 })
        const failure = yield* Effect.flip(scheduler.submit(Effect.fail("boom" as const)))
        assert.strictEqual(failure, "boom")
        const defect = yield* Effect.exit(scheduler.submit(Effect.die("bug")))
        assert.isTrue(Exit.isFailure(defect) && Cause.isDie(defect.cause))
        const stats = yield* scheduler.stats
        assert.strictEqual(stats.levels.normal.failed, 2)
      }))
  })

  it.scoped("dies on invalid options", () =>
    Effect.gen(function*() {
      const exits = yield* Effect.forEach(
        [
          { name: "bad", concurrency: 0 },
          { name: "bad", concurrency: 1, capacity: 0 },
          { name: "bad", concurrency: 1, weights: { low: 0 } },
          { name: "bad", concurrency: 1, aging: { after: "0 millis" } }
        ] satisfies Array<PriorityScheduler.PriorityScheduler.Options>,
        (options) => Effect.exit(PriorityScheduler.make(options))
      )
      for (const exit of exits) {
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      }
      assert.isTrue(
        PriorityScheduler.isPriorityScheduler(yield* PriorityScheduler.make({ name: "ok", concurrency: 1 }))
      )
    }))
})
