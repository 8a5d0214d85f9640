import { assert, describe, it } from "@effect/vitest"
import * as Cron from "@spindle/tasks/Cron"
import * as MemoryStore from "@spindle/tasks/MemoryStore"
import * as Task from "@spindle/tasks/Task"
import * as TaskHandlers from "@spindle/tasks/TaskHandlers"
import { TaskStore } from "@spindle/tasks/TaskStore"
import * as TaskWorker from "@spindle/tasks/TaskWorker"
import { Context, Cron as EffectCron, Effect, Schema, TestClock } from "effect"

const Report = Task.make("report", {
  payload: Schema.Struct({ kind: Schema.String }),
  success: Schema.Void,
  failure: Schema.Void
})

const everyFiveMinutes = Cron.schedule(Report, { cron: "*/5 * * * *", payload: { kind: "daily" }, tz: "UTC" })

const listReports = (store: TaskStore["Type"]) =>
  Effect.map(
    store.tasksList({ filter: { name: ["report"] }, sortBy: "createdAt", order: "asc", limit: 100 }),
    (page) => page.items
  )

describe("Cron", () => {
  it("rejects an invalid expression", () => {
    assert.throws(() => Cron.schedule(Report, { cron: "not a cron", payload: { kind: "x" } }))
  })

  it("names each tick's key after the task and the tick", () => {
    assert.strictEqual(Cron.idempotencyKey(everyFiveMinutes, new Date(300_000)), "cron:report:1970-01-01T00:05:00.000Z")
  })

  it.scoped("two schedulers on one store submit each tick exactly once", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* Effect.forkScoped(Cron.run([everyFiveMinutes]).pipe(Effect.provideService(TaskStore, store)))
      yield* Effect.forkScoped(Cron.run([everyFiveMinutes]).pipe(Effect.provideService(TaskStore, store)))
      yield* TestClock.adjust("4 minutes")
      assert.strictEqual((yield* listReports(store)).length, 0)
      yield* TestClock.adjust("1 minute")
      let tasks = yield* listReports(store)
      assert.strictEqual(tasks.length, 1)
      assert.strictEqual(tasks[0]!.idempotencyKey, "cron:report:1970-01-01T00:05:00.000Z")
      assert.deepStrictEqual(yield* Task.decodePayload(Report, tasks[0]!.payload), { kind: "daily" })
      yield* TestClock.adjust("10 minutes")
      tasks = yield* listReports(store)
      assert.deepStrictEqual(tasks.map((t) => t.idempotencyKey), [
        "cron:report:1970-01-01T00:05:00.000Z",
        "cron:report:1970-01-01T00:10:00.000Z",
        "cron:report:1970-01-01T00:15:00.000Z"
      ])
    }))

  it.scoped("a tick whose task already finished is not submitted again", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const tick = new Date(300_000)
      const first = yield* Cron.fire(everyFiveMinutes, tick).pipe(Effect.provideService(TaskStore, store))
      assert.isTrue(first.created)
      const [claimed] = yield* store.tasksClaim({ workerId: "w", limit: 1, leaseMs: 1_000 })
      yield* store.taskComplete({ id: claimed!.id, workerId: "w", result: null })
      const second = yield* Cron.fire(everyFiveMinutes, tick).pipe(Effect.provideService(TaskStore, store))
      assert.isFalse(second.created)
      assert.strictEqual(second.task.id, first.task.id)
      assert.strictEqual((yield* listReports(store)).length, 1)
    }))

  it.scoped("two workers running the schedule run each tick's task exactly once", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const runs = new Map<string, number>()
      const handlers = TaskHandlers.registry([
        TaskHandlers.handler(Report, (_, ctx) => Effect.sync(() => runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1)))
      ], Context.empty())
      const everyMinute = Cron.schedule(Report, {
        cron: EffectCron.unsafeParse("* * * * *", "UTC"),
        payload: { kind: "minutely" }
      })
      for (const workerId of ["a", "b"]) {
        yield* TaskWorker.make({
          workerId,
          cron: [everyMinute],
          shutdownGrace: 0,
          // Few timers: claims wake on the store's push signal.
          pollInterval: "1 minute",
          progressInterval: "1 minute",
          rescueInterval: "1 minute",
          lease: "5 minutes"
        }).pipe(
          Effect.provideService(TaskStore, store),
          Effect.provideService(TaskHandlers.TaskHandlers, handlers)
        )
      }
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("1 minute")
        for (let j = 0; j < 100; j++) yield* Effect.yieldNow()
      }
      yield* TestClock.adjust("1 second")
      const tasks = yield* listReports(store)
      assert.strictEqual(tasks.length, 3)
      for (const task of tasks) {
        assert.strictEqual(task.status, "succeeded")
        assert.strictEqual(runs.get(task.id), 1)
      }
    }))

  it.scoped("Cron.layer runs schedules for the lifetime of the layer", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* Effect.forkScoped(
        Effect.provide(Effect.never, Cron.layer(everyFiveMinutes)).pipe(Effect.provideService(TaskStore, store))
      )
      yield* Effect.yieldNow()
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual((yield* listReports(store)).length, 1)
    }))
})
