import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy } from "@spindle/core"
import * as MemoryStore from "@spindle/tasks/MemoryStore"
import * as Task from "@spindle/tasks/Task"
import * as TaskHandlers from "@spindle/tasks/TaskHandlers"
import * as TaskMetrics from "@spindle/tasks/TaskMetrics"
import type { NewTask, TaskRecord } from "@spindle/tasks/TaskRecord"
import { LeaseLost, TaskStore } from "@spindle/tasks/TaskStore"
import * as TaskWorker from "@spindle/tasks/TaskWorker"
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  Option,
  Schema,
  Scope,
  Stream,
  TestClock
} from "effect"

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

type Store = TaskStore["Type"]

const insert = <T extends Task.Task.Any>(
  store: Store,
  task: T,
  payload: Task.Task.Payload<T>,
  extra: Partial<NewTask> = {}
) =>
  Effect.gen(function*() {
    const encoded = yield* Task.encodePayload(task, payload)
    const [inserted] = yield* store.tasksInsert({
      tasks: [{
        name: task.name,
        queue: task.queue,
        priority: task.priority,
        payload: encoded,
        maxAttempts: task.maxAttempts,
        retry: task.retry ?? null,
        timeoutMs: task.timeout === undefined ? null : Duration.toMillis(task.timeout),
        softTimeoutMs: task.softTimeout === undefined ? null : Duration.toMillis(task.softTimeout),
        ...extra
      }]
    })
    return inserted!.task
  })

const get = (store: Store, id: string) =>
  Effect.map(store.taskGet({ id }), (o) => Option.getOrThrowWith(o, () => new Error(`no task ${id}`)))

/** Lets fibers run (no time passes) until `check` holds. */
const eventually = <E>(check: Effect.Effect<boolean, E>, label: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2_000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`never happened: ${label}`)
  })

/** Advances the TestClock by `stepMs` at a time until `check` holds. */
const advanceUntil = <E>(check: Effect.Effect<boolean, E>, label: string, stepMs = 500, maxMs = 120_000) =>
  Effect.gen(function*() {
    for (let elapsed = 0; elapsed <= maxMs; elapsed += stepMs) {
      for (let i = 0; i < 50; i++) {
        if (yield* check) return
        yield* Effect.yieldNow()
      }
      yield* TestClock.adjust(stepMs)
    }
    return yield* Effect.dieMessage(`never happened: ${label}`)
  })

const statusIs = (store: Store, id: string, status: TaskRecord["status"]) =>
  Effect.map(get(store, id), (t) => t.status === status)

const startWorker = (
  store: Store,
  handlers: ReadonlyArray<TaskHandlers.Handler<any, never>>,
  options: TaskWorker.TaskWorker.Options = {}
) =>
  TaskWorker.make({ workerId: "w1", shutdownGrace: 0, ...options }).pipe(
    Effect.provideService(TaskStore, store),
    Effect.provideService(TaskHandlers.TaskHandlers, TaskHandlers.registry(handlers, Context.empty()))
  )

const Gated = Task.make("gated", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })

/** A handler of `Gated` whose runs wait for `open`, counting how many run at once and the peak. */
const makeGated = Effect.map(Deferred.make<void>(), (gate) => {
  let active = 0
  let peak = 0
  return {
    handler: TaskHandlers.handler(Gated, (n) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          active++
          peak = Math.max(peak, active)
        }),
        () => Effect.as(Deferred.await(gate), n),
        () => Effect.sync(() => active--)
      )),
    open: Deferred.succeed(gate, undefined),
    active: () => active,
    peak: () => peak
  }
})

class Boom extends Schema.TaggedError<Boom>()("Boom", { code: Schema.Number }) {}

const Double = Task.make("double", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

describe("TaskWorker", () => {
  it.scoped("runs a handler and stores its encoded result", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Stamp = Task.make("stamp", {
        payload: Schema.Struct({ at: Schema.DateFromNumber }),
        success: Schema.Struct({ at: Schema.DateFromNumber, doubled: Schema.Number }),
        failure: Schema.Void
      })
      const worker = yield* startWorker(store, [
        TaskHandlers.handler(Double, (n) => Effect.succeed(n * 2)),
        TaskHandlers.handler(Stamp, ({ at }) => Effect.succeed({ at, doubled: at.getTime() * 2 }))
      ])
      const a = yield* insert(store, Double, 21)
      const b = yield* insert(store, Stamp, { at: new Date(5) })
      yield* eventually(statusIs(store, a.id, "succeeded"), "a succeeded")
      yield* eventually(statusIs(store, b.id, "succeeded"), "b succeeded")
      assert.strictEqual(yield* Task.decodeSuccess(Double, (yield* get(store, a.id)).result), 42)
      const stamped = yield* Task.decodeSuccess(Stamp, (yield* get(store, b.id)).result)
      assert.strictEqual(stamped.at.getTime(), 5)
      assert.strictEqual(stamped.doubled, 10)
      const completed = yield* Metric.value(
        TaskMetrics.completedTotal.pipe(Metric.tagged("name", "stamp"), Metric.tagged("outcome", "succeeded"))
      )
      assert.strictEqual(completed.count, 1)
      const stats = yield* worker.stats
      assert.strictEqual(stats.succeeded, 2)
      assert.strictEqual(stats.claimed, 2)
      assert.strictEqual(stats.running, 0)
    }))

  it.scoped("counts running workers in spindle_tasks_active_workers until their shutdown ends", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const gauge = TaskMetrics.activeWorkers.pipe(Metric.tagged("test", "active-workers"))
      const running = Effect.map(Metric.value(gauge), (state) => state.value)
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* startWorker(store, [TaskHandlers.handler(Double, (n) => Effect.succeed(n * 2))])
          yield* startWorker(store, [TaskHandlers.handler(Double, (n) => Effect.succeed(n * 2))])
          assert.strictEqual(yield* running, 2)
        }).pipe(Effect.tagMetrics("test", "active-workers"))
      )
      assert.strictEqual(yield* running, 0)
    }))

  it.scoped("handler requirements are dependencies of the handlers' layer", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      class Greeter extends Context.Tag("test/Greeter")<Greeter, { readonly greet: (name: string) => string }>() {}
      const Greet = Task.make("greet", { payload: Schema.String, success: Schema.String, failure: Schema.Void })
      const handlers = TaskHandlers.layer(
        TaskHandlers.handler(Greet, (name) => Effect.map(Greeter, (greeter) => greeter.greet(name)))
      )
      // The handler's requirement is the layer's requirement.
      const typed: Layer.Layer<TaskHandlers.TaskHandlers, never, Greeter> = handlers
      // @ts-expect-error Greeter is required
      const untyped: Layer.Layer<TaskHandlers.TaskHandlers> = handlers
      assert.strictEqual(untyped, typed)
      const WorkerLive = TaskWorker.layer({ workerId: "layered", shutdownGrace: 0 }).pipe(
        Layer.provide(typed),
        Layer.provide(Layer.succeed(Greeter, { greet: (name) => `hello ${name}` })),
        Layer.provide(Layer.succeed(TaskStore, store))
      )
      const context = yield* Layer.build(WorkerLive)
      assert.strictEqual(Context.get(context, TaskWorker.TaskWorker).workerId, "layered")
      const { id } = yield* insert(store, Greet, "ada")
      yield* eventually(statusIs(store, id, "succeeded"), "greeted")
      assert.strictEqual((yield* get(store, id)).result, "hello ada")
    }))

  it("two handlers for one task name are refused", () => {
    const h = TaskHandlers.handler(Double, (n) => Effect.succeed(n))
    assert.throws(() => TaskHandlers.registry([h, h], Context.empty()))
  })

  it.scoped("a payload that does not decode fails the task without retrying", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      let ran = 0
      yield* startWorker(store, [TaskHandlers.handler(Double, (n) => Effect.sync(() => (ran++, n)))])
      const [inserted] = yield* store.tasksInsert({
        tasks: [{ name: "double", payload: "not a number", maxAttempts: 3 }]
      })
      const id = inserted!.task.id
      yield* eventually(statusIs(store, id, "failed"), "failed")
      const task = yield* get(store, id)
      assert.strictEqual(task.attempt, 1)
      assert.strictEqual(task.error?.tag, "ParseError")
      assert.strictEqual(ran, 0)
    }))

  it.scoped("retries a typed failure with the policy's backoff, then dead", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Flaky = Task.make("flaky", {
        payload: Schema.Void,
        success: Schema.Void,
        failure: Boom,
        retry: RetryPolicy.exponential({ initial: "1 second", factor: 2, maxAttempts: 3, retryOn: ["Boom"] })
      })
      let runs = 0
      yield* startWorker(store, [
        TaskHandlers.handler(Flaky, () => Effect.suspend(() => Effect.fail(new Boom({ code: ++runs }))))
      ])
      const { id } = yield* insert(store, Flaky, undefined)

      yield* eventually(Effect.map(get(store, id), (t) => t.status === "scheduled" && t.attempt === 1), "retry 1")
      let task = yield* get(store, id)
      assert.strictEqual(task.runAt.getTime() - task.updatedAt.getTime(), 1_000)
      assert.strictEqual(task.error?.tag, "Boom")

      yield* advanceUntil(Effect.map(get(store, id), (t) => t.status === "scheduled" && t.attempt === 2), "retry 2")
      task = yield* get(store, id)
      assert.strictEqual(task.runAt.getTime() - task.updatedAt.getTime(), 2_000)

      yield* advanceUntil(statusIs(store, id, "dead"), "dead")
      task = yield* get(store, id)
      assert.strictEqual(task.attempt, 3)
      assert.strictEqual(runs, 3)
      assert.strictEqual(task.error?.tag, "Boom")
      const failure = yield* Task.decodeFailure(Flaky, task.error?.value)
      assert.strictEqual(failure.code, 3)
    }))

  it.scoped("a failure whose tag the policy does not retry fails at once", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Picky = Task.make("picky", {
        payload: Schema.Void,
        success: Schema.Void,
        failure: Boom,
        retry: RetryPolicy.fixed({ delay: "1 second", maxAttempts: 5, retryOn: ["Unavailable"] })
      })
      const worker = yield* startWorker(store, [TaskHandlers.handler(Picky, () => Effect.fail(new Boom({ code: 1 })))])
      const { id } = yield* insert(store, Picky, undefined)
      yield* eventually(statusIs(store, id, "failed"), "failed")
      const task = yield* get(store, id)
      assert.strictEqual(task.attempt, 1)
      assert.strictEqual(task.error?.tag, "Boom")
      assert.strictEqual((yield* worker.stats).failed, 1)
    }))

  it.scoped("a hard timeout interrupts the attempt: retried, then timed-out", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Slow = Task.make("slow", {
        payload: Schema.Void,
        success: Schema.Void,
        failure: Schema.Void,
        timeout: "1 second",
        retry: RetryPolicy.fixed({ delay: "500 millis", maxAttempts: 2 })
      })
      let interrupted = 0
      yield* startWorker(store, [
        TaskHandlers.handler(Slow, () => Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++)))
      ])
      const { id } = yield* insert(store, Slow, undefined)
      yield* advanceUntil(Effect.map(get(store, id), (t) => t.status === "scheduled" && t.attempt === 1), "retry")
      let task = yield* get(store, id)
      assert.strictEqual(task.error?.tag, "Timeout")
      assert.strictEqual(task.runAt.getTime() - task.updatedAt.getTime(), 500)
      yield* advanceUntil(statusIs(store, id, "timed-out"), "timed-out")
      task = yield* get(store, id)
      assert.strictEqual(task.attempt, 2)
      assert.strictEqual(interrupted, 2)
    }))

  it.scoped("a soft timeout warns once in the task's log without interrupting", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Lazy = Task.make("lazy", {
        payload: Schema.Void,
        success: Schema.String,
        failure: Schema.Void,
        softTimeout: "1 second"
      })
      yield* startWorker(store, [TaskHandlers.handler(Lazy, () => Effect.as(Effect.sleep("5 seconds"), "done"))])
      const { id } = yield* insert(store, Lazy, undefined)
      yield* advanceUntil(statusIs(store, id, "succeeded"), "succeeded")
      const logs = yield* store.taskLogs({ id })
      const warnings = logs.filter((line) => line.level === "warn")
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0]!.message, "soft timeout")
      assert.strictEqual(yield* Task.decodeSuccess(Lazy, (yield* get(store, id)).result), "done")
    }))

  it.scoped("never runs more tasks at once than the global concurrency", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const gated = yield* makeGated
      yield* startWorker(store, [gated.handler], { concurrency: 2 })
      const ids = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) => Effect.map(insert(store, Gated, n), (t) => t.id))
      yield* eventually(Effect.sync(() => gated.active() === 2), "two running")
      for (let i = 0; i < 200; i++) yield* Effect.yieldNow()
      assert.strictEqual(gated.active(), 2)
      const page = yield* store.tasksList({ filter: { status: ["running"] } })
      assert.strictEqual(page.items.length, 2)
      yield* gated.open
      for (const id of ids) yield* eventually(statusIs(store, id, "succeeded"), id)
      assert.strictEqual(gated.peak(), 2)
    }))

  it.scoped("per-queue concurrency, per-name concurrency and per-key concurrency hold", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const gate = yield* Deferred.make<void>()
      const active = new Map<string, number>()
      const peak = new Map<string, number>()
      const enter = (key: string) =>
        Effect.sync(() => {
          const n = (active.get(key) ?? 0) + 1
          active.set(key, n)
          peak.set(key, Math.max(peak.get(key) ?? 0, n))
        })
      const leave = (key: string) => Effect.sync(() => active.set(key, active.get(key)! - 1))
      const track = (keys: ReadonlyArray<string>) =>
        Effect.acquireUseRelease(
          Effect.forEach(keys, enter, { discard: true }),
          () => Deferred.await(gate),
          () => Effect.forEach(keys, leave, { discard: true })
        )
      const A = Task.make("in-a", { payload: Schema.Void, success: Schema.Void, failure: Schema.Void, queue: "a" })
      const B = Task.make("in-b", { payload: Schema.Void, success: Schema.Void, failure: Schema.Void, queue: "b" })
      const Keyed = Task.make("keyed", {
        payload: Schema.Struct({ user: Schema.String }),
        success: Schema.Void,
        failure: Schema.Void,
        queue: "c"
      })
      yield* startWorker(store, [
        TaskHandlers.handler(A, () => track(["a"])),
        TaskHandlers.handler(B, () => track(["b"])),
        TaskHandlers.handler(Keyed, ({ user }) => track(["c", `user:${user}`]))
      ], {
        concurrency: 20,
        queues: { a: { concurrency: 1 }, b: { concurrency: 3 }, c: {} },
        limits: { keyed: { keyConcurrency: { key: (p: { user: string }) => p.user, limit: 1 } } }
      })
      const ids: Array<string> = []
      for (let i = 0; i < 4; i++) ids.push((yield* insert(store, A, undefined)).id)
      for (let i = 0; i < 6; i++) ids.push((yield* insert(store, B, undefined)).id)
      for (const user of ["x", "x", "x", "y", "y", "z"]) ids.push((yield* insert(store, Keyed, { user })).id)
      yield* eventually(
        Effect.sync(() => active.get("a") === 1 && active.get("b") === 3 && active.get("c") === 3),
        "saturated"
      )
      for (let i = 0; i < 200; i++) yield* Effect.yieldNow()
      assert.strictEqual(active.get("a"), 1)
      assert.strictEqual(active.get("b"), 3)
      assert.strictEqual(active.get("c"), 3)
      yield* Deferred.succeed(gate, undefined)
      for (const id of ids) yield* eventually(statusIs(store, id, "succeeded"), id)
      assert.strictEqual(peak.get("a"), 1)
      assert.strictEqual(peak.get("b"), 3)
      assert.strictEqual(peak.get("user:x"), 1)
      assert.strictEqual(peak.get("user:y"), 1)
      assert.strictEqual(peak.get("user:z"), 1)
    }))

  it.scoped("respects a task's rate limit", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const starts: Array<number> = []
      const Ping = Task.make("ping", { payload: Schema.Number, success: Schema.Void, failure: Schema.Void })
      yield* startWorker(store, [
        TaskHandlers.handler(Ping, () =>
          Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void starts.push(t))))
      ], { concurrency: 10, limits: { ping: { rateLimit: { limit: 2, interval: "1 second" } } } })
      const ids = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) =>
        Effect.map(insert(store, Ping, n), (t) => t.id))
      yield* advanceUntil(
        Effect.map(Effect.forEach(ids, (id) => statusIs(store, id, "succeeded")), (all) => all.every(Boolean)),
        "all done"
      )
      assert.strictEqual(starts.length, 6)
      starts.sort((a, b) => a - b)
      // At most 2 starts in any one-second window.
      for (let i = 2; i < starts.length; i++) assert.isAtLeast(starts[i]! - starts[i - 2]!, 1_000)
    }))

  it.scoped("cancelling a running task interrupts its handler and ends it cancelled", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const Forever = Task.make("forever", { payload: Schema.Void, success: Schema.Void, failure: Schema.Void })
      const worker = yield* startWorker(store, [
        TaskHandlers.handler(Forever, () =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          ))
      ], { lease: "3 seconds" })
      const { id } = yield* insert(store, Forever, undefined, { maxAttempts: 3 })
      yield* Deferred.await(started)
      yield* store.taskCancel({ id })
      // The cancel-requested event interrupts it at once, without waiting for a heartbeat.
      yield* eventually(statusIs(store, id, "cancelled"), "cancelled")
      assert.isTrue(yield* Deferred.isDone(interrupted))
      const task = yield* get(store, id)
      assert.strictEqual(task.error?.tag, "Cancelled")
      assert.strictEqual((yield* worker.stats).cancelled, 1)
    }))

  it.scoped("a completion refused with LeaseLost is dropped", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const store: Store = {
        ...memory,
        taskComplete: ({ id, workerId }) => Effect.fail(new LeaseLost({ taskId: id, workerId })),
        tasksComplete: ({ items }) => Effect.succeed(items.map(() => "lease-lost" as const))
      }
      const worker = yield* startWorker(store, [TaskHandlers.handler(Double, (n) => Effect.succeed(n))])
      yield* insert(store, Double, 1)
      yield* eventually(Effect.map(worker.stats, (s) => s.lost === 1 && s.running === 0), "dropped")
      assert.strictEqual((yield* worker.stats).succeeded, 0)
    }))

  it.scoped("a lease reported lost by the heartbeat interrupts the handler without recording anything", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const store: Store = {
        ...memory,
        tasksHeartbeat: ({ ids }) => Effect.succeed({ renewed: [], lost: ids, cancelRequested: [] })
      }
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const Forever = Task.make("forever", { payload: Schema.Void, success: Schema.Void, failure: Schema.Void })
      const worker = yield* startWorker(store, [
        TaskHandlers.handler(Forever, () =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          ))
      ], { lease: "3 seconds" })
      const { id } = yield* insert(store, Forever, undefined)
      yield* Deferred.await(started)
      yield* TestClock.adjust("1 second")
      yield* Deferred.await(interrupted)
      yield* eventually(Effect.map(worker.stats, (s) => s.lost === 1 && s.running === 0), "dropped")
      const task = yield* get(store, id)
      assert.strictEqual(task.status, "running")
      assert.isNull(task.error)
    }))

  it.scoped("the heartbeat also reports cancellation requests", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      // A store whose events never arrive: only the heartbeat tells the worker.
      const store: Store = { ...memory, events: Stream.never, eventsOf: () => Stream.never }
      const started = yield* Deferred.make<void>()
      const Forever = Task.make("forever", { payload: Schema.Void, success: Schema.Void, failure: Schema.Void })
      yield* startWorker(store, [
        TaskHandlers.handler(Forever, () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
      ], { lease: "3 seconds" })
      const { id } = yield* insert(store, Forever, undefined)
      yield* Deferred.await(started)
      yield* store.taskCancel({ id })
      for (let i = 0; i < 100; i++) yield* Effect.yieldNow()
      assert.strictEqual((yield* get(store, id)).status, "running")
      yield* TestClock.adjust("1 second")
      yield* eventually(statusIs(store, id, "cancelled"), "cancelled")
    }))

  it.scoped("a crashed worker's tasks are rescued after the lease and run exactly once by a live worker", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const runs = new Map<string, number>()
      const Job = Task.make("job", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) ids.push((yield* insert(store, Job, i, { maxAttempts: 3 })).id)
      // The "crashed" worker claims them and never heartbeats nor completes.
      const claimed = yield* store.tasksClaim({ workerId: "crashed", limit: 10, leaseMs: 3_000 })
      assert.strictEqual(claimed.length, 5)
      const worker = yield* startWorker(store, [
        TaskHandlers.handler(Job, (n, ctx) => Effect.sync(() => (runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1), n)))
      ], { lease: "3 seconds", rescueInterval: "1 second" })
      yield* advanceUntil(
        Effect.map(Effect.forEach(ids, (id) => statusIs(store, id, "succeeded")), (all) => all.every(Boolean)),
        "all rescued and done"
      )
      const now = yield* Clock.currentTimeMillis
      assert.isBelow(now, 3_000 + 2_000)
      for (const id of ids) {
        assert.strictEqual(runs.get(id), 1)
        assert.strictEqual((yield* get(store, id)).attempt, 2)
      }
      const stats = yield* worker.stats
      assert.strictEqual(stats.rescued, 5)
      assert.strictEqual(stats.succeeded, 5)
    }))

  it.effect("graceful shutdown: quick tasks finish within the grace, the rest are released", () =>
    Effect.gen(function*() {
      const storeScope = yield* Scope.make()
      const store = yield* Scope.extend(MemoryStore.make, storeScope)
      const scope = yield* Scope.make()
      const Sleepy = Task.make("sleepy", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })
      const started = new Set<number>()
      const worker = yield* Scope.extend(
        startWorker(store, [
          TaskHandlers.handler(Sleepy, (seconds) =>
            Effect.zipRight(
              Effect.sync(() => started.add(seconds)),
              Effect.as(Effect.sleep(Duration.seconds(seconds)), seconds)
            ))
        ], { shutdownGrace: "5 seconds" }),
        scope
      )
      const quick = yield* insert(store, Sleepy, 2)
      const slow = yield* insert(store, Sleepy, 60)
      yield* eventually(Effect.sync(() => started.size === 2), "both started")
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("2 seconds")
      yield* eventually(statusIs(store, quick.id, "succeeded"), "quick done")
      yield* TestClock.adjust("4 seconds")
      yield* eventually(statusIs(store, slow.id, "pending"), "slow released")
      yield* closing.await
      const released = yield* get(store, slow.id)
      assert.strictEqual(released.attempt, 0)
      assert.isNull(released.leaseOwner)
      const stats = yield* worker.stats
      assert.strictEqual(stats.released, 1)
      assert.strictEqual(stats.succeeded, 1)
      // No claims after shutdown: a new task stays pending.
      const late = yield* insert(store, Sleepy, 1)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* get(store, late.id)).status, "pending")
      yield* Scope.close(storeScope, Exit.void)
    }))

  it.scoped("does not claim from a paused queue until it is resumed", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Q = Task.make("in-q", { payload: Schema.Void, success: Schema.Void, failure: Schema.Void, queue: "q" })
      const worker = yield* startWorker(store, [
        TaskHandlers.handler(Q, () => Effect.void),
        TaskHandlers.handler(Double, (n) => Effect.succeed(n))
      ])
      yield* worker.pause("q")
      const paused = yield* insert(store, Q, undefined)
      const other = yield* insert(store, Double, 1)
      yield* eventually(statusIs(store, other.id, "succeeded"), "other done")
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* get(store, paused.id)).status, "pending")
      yield* worker.resume("q")
      yield* eventually(statusIs(store, paused.id, "succeeded"), "resumed and done")
    }))

  it.scoped("two workers on one store drain many tasks, each exactly once", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const runs = new Map<number, number>()
      const Count = Task.make("count", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })
      const handler = TaskHandlers.handler(Count, (n) =>
        Effect.sync(() => {
          runs.set(n, (runs.get(n) ?? 0) + 1)
          return n
        }))
      const a = yield* startWorker(store, [handler], { workerId: "a", concurrency: 8 })
      const b = yield* startWorker(store, [handler], { workerId: "b", concurrency: 5 })
      const payloads = Array.from({ length: 300 }, (_, i) => i)
      const encoded = yield* Effect.forEach(payloads, (n) => Task.encodePayload(Count, n))
      yield* store.tasksInsert({ tasks: encoded.map((payload) => ({ name: "count", payload })) })
      yield* eventually(
        Effect.map(store.tasksStats({}), (stats) => stats.byStatus.succeeded === payloads.length),
        "all succeeded"
      )
      for (const n of payloads) assert.strictEqual(runs.get(n), 1)
      const [sa, sb] = [yield* a.stats, yield* b.stats]
      assert.strictEqual(sa.succeeded + sb.succeeded, payloads.length)
      assert.isAbove(sa.succeeded, 0)
      assert.isAbove(sb.succeeded, 0)
    }))

  it.scoped("claims by priority, then run-at", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const order: Array<number> = []
      const Ordered = Task.make("ordered", { payload: Schema.Number, success: Schema.Void, failure: Schema.Void })
      const ids: Array<string> = []
      ids.push((yield* insert(store, Ordered, 1, { priority: "low" })).id)
      ids.push((yield* insert(store, Ordered, 2, { priority: "critical" })).id)
      ids.push((yield* insert(store, Ordered, 3, { priority: "normal" })).id)
      yield* startWorker(store, [TaskHandlers.handler(Ordered, (n) => Effect.sync(() => order.push(n)))], {
        concurrency: 1
      })
      for (const id of ids) yield* eventually(statusIs(store, id, "succeeded"), id)
      assert.deepStrictEqual(order, [2, 3, 1])
    }))

  it.scoped("retention deletes finished tasks older than the threshold", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* startWorker(store, [TaskHandlers.handler(Double, (n) => Effect.succeed(n))], {
        retention: { olderThan: "10 seconds", interval: "5 seconds" }
      })
      const { id } = yield* insert(store, Double, 1)
      yield* eventually(statusIs(store, id, "succeeded"), "done")
      yield* TestClock.adjust("8 seconds")
      assert.isTrue(Option.isSome(yield* store.taskGet({ id })))
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Option.isNone(yield* store.taskGet({ id })))
    }))
  it.scoped("outcomes are recorded in batches: those that arrive while one is written go in the next", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const firstWrite = yield* Deferred.make<void>()
      const unblock = yield* Deferred.make<void>()
      const batches: Array<ReadonlyArray<string>> = []
      const store: Store = {
        ...memory,
        tasksComplete: (params) =>
          Effect.gen(function*() {
            batches.push(params.items.map((item) => item.id))
            if (batches.length === 1) {
              yield* Deferred.succeed(firstWrite, undefined)
              yield* Deferred.await(unblock)
            }
            return yield* memory.tasksComplete(params)
          })
      }
      const first = yield* insert(store, Double, 0)
      const worker = yield* startWorker(store, [TaskHandlers.handler(Double, (n) => Effect.succeed(n * 2))], {
        concurrency: 4
      })
      yield* Deferred.await(firstWrite)
      // While the first batch is being written, the freed slot runs the next tasks.
      const rest = yield* Effect.forEach([1, 2, 3, 4, 5], (n) => insert(store, Double, n))
      yield* eventually(
        Effect.map(worker.stats, (stats) => stats.claimed === 6 && stats.running === 6),
        "all handled, outcomes waiting"
      )
      for (let i = 0; i < 100; i++) yield* Effect.yieldNow()
      // Not recorded yet: no task is reported succeeded before its outcome is durable.
      assert.strictEqual((yield* worker.stats).succeeded, 0)
      assert.strictEqual((yield* get(store, first.id)).status, "running")
      yield* Deferred.succeed(unblock, undefined)
      for (const task of [first, ...rest]) yield* eventually(statusIs(store, task.id, "succeeded"), task.id)
      assert.deepStrictEqual(batches, [[first.id], rest.map((task) => task.id)])
      const stats = yield* worker.stats
      assert.strictEqual(stats.succeeded, 6)
      assert.strictEqual(stats.running, 0)
      assert.strictEqual(yield* Task.decodeSuccess(Double, (yield* get(store, rest[4]!.id)).result), 10)
    }))

  it.scoped("failures are recorded in batches with their outcome", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const Flaky = Task.make("flaky", {
        payload: Schema.Number,
        success: Schema.Number,
        failure: Boom,
        maxAttempts: 2,
        retry: RetryPolicy.fixed({ delay: "1 second", maxAttempts: 2 })
      })
      const worker = yield* startWorker(store, [
        TaskHandlers.handler(Flaky, (code) => Effect.fail(new Boom({ code })))
      ], { concurrency: 3 })
      const tasks = yield* Effect.forEach([1, 2, 3], (n) => insert(store, Flaky, n))
      for (const task of tasks) yield* eventually(statusIs(store, task.id, "scheduled"), task.id)
      assert.strictEqual((yield* worker.stats).retried, 3)
      yield* TestClock.adjust("1 second")
      for (const task of tasks) yield* eventually(statusIs(store, task.id, "dead"), task.id)
      const stats = yield* worker.stats
      assert.strictEqual(stats.dead, 3)
      assert.strictEqual(stats.running, 0)
      assert.strictEqual((yield* get(store, tasks[0]!.id)).error?.tag, "Boom")
    }))

  it.scoped("prefetch: claims ahead of free slots, runs at most concurrency at once", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const gated = yield* makeGated
      const ids = yield* Effect.forEach(
        [1, 2, 3, 4, 5, 6, 7, 8],
        (n) => Effect.map(insert(store, Gated, n), (t) => t.id)
      )
      const worker = yield* startWorker(store, [gated.handler], { concurrency: 2, prefetch: 3 })
      yield* eventually(Effect.sync(() => gated.active() === 2), "two running")
      yield* eventually(Effect.map(worker.stats, (stats) => stats.claimed === 5), "three prefetched")
      for (let i = 0; i < 200; i++) yield* Effect.yieldNow()
      assert.strictEqual(gated.active(), 2)
      // held: two running and three waiting, all leased to this worker
      const running = yield* store.tasksList({ filter: { status: ["running"] } })
      assert.strictEqual(running.items.length, 5)
      assert.isTrue(running.items.every((task) => task.leaseOwner === "w1"))
      assert.strictEqual((yield* worker.stats).running, 5)
      // the leases of prefetched tasks are renewed by the heartbeat too
      yield* TestClock.adjust("20 seconds")
      yield* TestClock.adjust("20 seconds")
      assert.deepStrictEqual(yield* store.tasksRescue({}), [])
      yield* gated.open
      for (const id of ids) yield* eventually(statusIs(store, id, "succeeded"), id)
      assert.strictEqual(gated.peak(), 2)
      assert.strictEqual((yield* worker.stats).succeeded, 8)
    }))

  it.scoped("prefetch: the buffer is topped up in batches once half of it has gone, not task by task", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const claims: Array<number> = []
      const counting: TaskStore["Type"] = {
        ...store,
        tasksClaim: (params) =>
          Effect.tap(store.tasksClaim(params), (records) => Effect.sync(() => claims.push(records.length)))
      }
      const Step = Task.make("step", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })
      const ids = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, n) => n),
        (n) => Effect.map(insert(store, Step, n), (t) => t.id)
      )
      // handlers that end one at a time: each frees a slot on its own
      yield* startWorker(
        counting,
        [TaskHandlers.handler(Step, (n) => Effect.as(Effect.sleep(`${10 + n} millis`), n))],
        {
          concurrency: 2,
          prefetch: 10
        }
      )
      const succeeded = Effect.map(store.tasksStats({}), (stats) => stats.byStatus.succeeded)
      for (let i = 0; i < 2_000 && (yield* succeeded) < ids.length; i++) {
        yield* TestClock.adjust("5 millis")
        for (let j = 0; j < 20; j++) yield* Effect.yieldNow()
      }
      assert.strictEqual(yield* succeeded, ids.length)
      const nonEmpty = claims.filter((n) => n > 0)
      // 12 at first (2 slots + 10 ahead), then 5 each time the buffer falls to half (refilling
      // it task by task would make about 48 claims of 1)
      assert.strictEqual(nonEmpty[0], 12)
      assert.isTrue(nonEmpty.slice(1, -1).every((n) => n >= 5), `claim sizes ${nonEmpty.join(",")}`)
      assert.isAtMost(nonEmpty.length, 11, `claim sizes ${nonEmpty.join(",")}`)
    }))

  /** The store, counting the rows its claims return, and keeping the handoffs of its waits. */
  const watchedStore = (store: Store) => {
    const claimed: Array<number> = []
    const handoffs: Array<TaskStore.Handoff> = []
    const watched: Store = {
      ...store,
      tasksClaim: (params) =>
        Effect.tap(store.tasksClaim(params), (records) => Effect.sync(() => claimed.push(records.length))),
      awaitWork: (params) =>
        Effect.suspend(() => {
          if (params.handoff !== undefined) handoffs.push(params.handoff)
          return store.awaitWork(params)
        })
    }
    return { watched, claimed, handoffs }
  }

  it.scoped("an idle worker takes a task submitted in its process as it is inserted, without a claim", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const { claimed, handoffs, watched } = watchedStore(store)
      const worker = yield* startWorker(watched, [TaskHandlers.handler(Double, (n) => Effect.succeed(n * 2))])
      yield* eventually(Effect.sync(() => handoffs.length > 0), "the worker waits for work")
      const task = yield* insert(store, Double, 21)
      assert.strictEqual(task.status, "running")
      assert.strictEqual(task.leaseOwner, "w1")
      yield* eventually(statusIs(store, task.id, "succeeded"), "the task ran")
      assert.strictEqual((yield* get(store, task.id)).result, 42)
      assert.isTrue(claimed.every((n) => n === 0), `claims returned ${claimed.join(",")}`)
      assert.strictEqual((yield* worker.stats).claimed, 1)
      // the wait that took it ended, and the next one offers again
      yield* eventually(Effect.sync(() => handoffs.length > 1), "a new wait")
      const next = yield* insert(store, Double, 1)
      assert.strictEqual(next.status, "running")
      yield* eventually(statusIs(store, next.id, "succeeded"), "the second task ran")
    }))

  it.effect("a task handed over as the worker stops is given back, not stranded", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const { handoffs, watched } = watchedStore(store)
      const scope = yield* Scope.make()
      yield* Scope.extend(startWorker(watched, [TaskHandlers.handler(Double, (n) => Effect.succeed(n))]), scope)
      yield* eventually(Effect.sync(() => handoffs.length > 0), "the worker waits for work")
      const handoff = handoffs[handoffs.length - 1]!
      // the store took the offer; the worker stops before the task arrives
      assert.isTrue(handoff.accepts({ name: Double.name, queue: Double.queue }))
      const task = yield* insert(store, Double, 1)
      const held = yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 30_000 })
      assert.strictEqual(held[0]!.id, task.id)
      yield* Scope.close(scope, Exit.void)
      // a stopped worker declines new offers, and gives back what still arrives
      assert.isFalse(handoff.accepts({ name: Double.name, queue: Double.queue }))
      handoff.receive(held[0]!)
      yield* eventually(statusIs(store, task.id, "pending"), "given back")
      assert.strictEqual((yield* get(store, task.id)).attempt, 0)
    }).pipe(Effect.scoped))

  it.effect("shutdown releases prefetched tasks at once, before the grace period", () =>
    Effect.gen(function*() {
      const storeScope = yield* Scope.make()
      const store = yield* Scope.extend(MemoryStore.make, storeScope)
      const scope = yield* Scope.make()
      const Sleepy = Task.make("sleepy", { payload: Schema.Number, success: Schema.Number, failure: Schema.Void })
      const started = new Set<number>()
      const tasks = yield* Effect.forEach([1, 2, 3], (n) => insert(store, Sleepy, n))
      const worker = yield* Scope.extend(
        startWorker(store, [
          TaskHandlers.handler(Sleepy, (n) =>
            Effect.zipRight(Effect.sync(() => started.add(n)), Effect.as(Effect.sleep(Duration.seconds(60)), n)))
        ], { concurrency: 1, prefetch: 2, shutdownGrace: "10 seconds" }),
        scope
      )
      yield* eventually(
        Effect.sync(() =>
          started.size === 1
        ),
        "one started"
      )
      yield* eventually(Effect.map(worker.stats, (stats) => stats.claimed === 3), "two prefetched")
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      // the two prefetched tasks are back at once (their attempt undone); the running one waits
      yield* eventually(
        Effect.map(store.tasksList({ filter: { status: ["pending"] } }), (page) => page.items.length === 2),
        "prefetched released"
      )
      for (const task of tasks.slice(1)) assert.strictEqual((yield* get(store, task.id)).attempt, 0)
      assert.strictEqual((yield* get(store, tasks[0]!.id)).status, "running")
      assert.strictEqual(started.size, 1)
      yield* TestClock.adjust("11 seconds")
      yield* eventually(statusIs(store, tasks[0]!.id, "pending"), "the running one released after the grace")
      yield* closing.await
      assert.strictEqual((yield* worker.stats).released, 3)
      yield* Scope.close(storeScope, Exit.void)
    }))

  it.scoped("invalid prefetch dies with IllegalArgumentException", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const exit = yield* Effect.exit(startWorker(store, [], { prefetch: -1 }))
      assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die")
    }))
})
