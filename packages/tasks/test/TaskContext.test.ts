import { assert, describe, it } from "@effect/vitest"
import * as MemoryStore from "@spindle/tasks/MemoryStore"
import * as Task from "@spindle/tasks/Task"
import * as TaskContext from "@spindle/tasks/TaskContext"
import * as TaskHandlers from "@spindle/tasks/TaskHandlers"
import { TaskStore } from "@spindle/tasks/TaskStore"
import * as TaskWorker from "@spindle/tasks/TaskWorker"
import { Context, Deferred, Effect, Option, Schema, TestClock } from "effect"

type Store = TaskStore["Type"]

const insert = <T extends Task.Task.Any>(store: Store, task: T, payload: Task.Task.Payload<T>, maxAttempts = 1) =>
  Effect.gen(function*() {
    const encoded = yield* Task.encodePayload(task, payload)
    const [inserted] = yield* store.tasksInsert({
      tasks: [{ name: task.name, queue: task.queue, payload: encoded, maxAttempts }]
    })
    return inserted!.task
  })

const get = (store: Store, id: string) =>
  Effect.map(store.taskGet({ id }), (o) => Option.getOrThrowWith(o, () => new Error(`no task ${id}`)))

const eventually = <E>(check: Effect.Effect<boolean, E>, label: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2_000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`never happened: ${label}`)
  })

const succeeded = (store: Store, id: string) => Effect.map(get(store, id), (t) => t.status === "succeeded")

/** A memory store that counts its progress and log writes. */
const countingStore = Effect.gen(function*() {
  const store = yield* MemoryStore.make
  const calls = { progress: 0, logAppend: 0 }
  const counted: Store = {
    ...store,
    taskProgress: (params) => Effect.zipRight(Effect.sync(() => calls.progress++), store.taskProgress(params)),
    taskLogAppend: (params) => Effect.zipRight(Effect.sync(() => calls.logAppend++), store.taskLogAppend(params))
  }
  return { store: counted, calls }
})

const startWorker = (store: Store, handlers: ReadonlyArray<TaskHandlers.Handler<any, never>>) =>
  TaskWorker.make({ workerId: "ctx-worker", shutdownGrace: 0 }).pipe(
    Effect.provideService(TaskStore, store),
    Effect.provideService(TaskHandlers.TaskHandlers, TaskHandlers.registry(handlers, Context.empty()))
  )

const Work = Task.make("work", {
  payload: Schema.Number,
  success: Schema.Void,
  failure: Schema.Void,
  queue: "jobs"
})

describe("TaskContext", () => {
  it.scoped("describes the running attempt, as an argument and as a service", () =>
    Effect.gen(function*() {
      const { store } = yield* countingStore
      const seen: Array<TaskContext.TaskContext.Service> = []
      yield* startWorker(store, [
        TaskHandlers.handler(Work, (_, ctx) =>
          Effect.gen(function*() {
            const service = yield* TaskContext.TaskContext
            seen.push(ctx, service)
          }))
      ])
      const { id } = yield* insert(store, Work, 1, 4)
      yield* eventually(succeeded(store, id), "done")
      assert.strictEqual(seen.length, 2)
      for (const ctx of seen) {
        assert.strictEqual(ctx.id, id)
        assert.strictEqual(ctx.name, "work")
        assert.strictEqual(ctx.queue, "jobs")
        assert.strictEqual(ctx.attempt, 1)
        assert.strictEqual(ctx.maxAttempts, 4)
        assert.strictEqual(ctx.workerId, "ctx-worker")
      }
    }))

  it.scoped("progress is throttled; the latest value is written before the task ends", () =>
    Effect.gen(function*() {
      const { calls, store } = yield* countingStore
      yield* startWorker(store, [
        TaskHandlers.handler(Work, (n) =>
          Effect.forEach(
            Array.from({ length: n }, (_, i) => i + 1),
            (i) => TaskContext.progress(i / n, `step ${i}`),
            { discard: true }
          ))
      ])
      const { id } = yield* insert(store, Work, 100)
      yield* eventually(succeeded(store, id), "done")
      const task = yield* get(store, id)
      assert.strictEqual(task.progress, 1)
      assert.strictEqual(task.progressMessage, "step 100")
      assert.strictEqual(calls.progress, 2)
    }))

  it.scoped("throttled progress reaches the store within the progress interval", () =>
    Effect.gen(function*() {
      const { store } = yield* countingStore
      const gate = yield* Deferred.make<void>()
      const reported = yield* Deferred.make<void>()
      yield* startWorker(store, [
        TaskHandlers.handler(Work, (_, ctx) =>
          Effect.gen(function*() {
            yield* ctx.progress(0.1)
            yield* ctx.progress(0.5, "halfway")
            yield* Deferred.succeed(reported, undefined)
            yield* Deferred.await(gate)
          }))
      ])
      const { id } = yield* insert(store, Work, 1)
      yield* Deferred.await(reported)
      assert.strictEqual((yield* get(store, id)).progress, 0.1)
      yield* TestClock.adjust("1 second")
      yield* eventually(Effect.map(get(store, id), (t) => t.progress === 0.5), "flushed")
      assert.strictEqual((yield* get(store, id)).progressMessage, "halfway")
      yield* Deferred.succeed(gate, undefined)
      yield* eventually(succeeded(store, id), "done")
    }))

  it.scoped("log lines are kept with the task, written in one batch", () =>
    Effect.gen(function*() {
      const { calls, store } = yield* countingStore
      yield* startWorker(store, [
        TaskHandlers.handler(Work, (_, ctx) =>
          Effect.gen(function*() {
            yield* ctx.log("one")
            yield* TaskContext.log("two", "debug")
            yield* ctx.log("three", "error")
          }))
      ])
      const { id } = yield* insert(store, Work, 1)
      yield* eventually(succeeded(store, id), "done")
      const lines = yield* store.taskLogs({ id })
      assert.deepStrictEqual(lines.map((l) => [l.message, l.level, l.attempt]), [
        ["one", "info", 1],
        ["two", "debug", 1],
        ["three", "error", 1]
      ])
      assert.strictEqual(calls.logAppend, 1)
    }))

  it.scoped("the handler's span carries the task id, name and attempt", () =>
    Effect.gen(function*() {
      const { store } = yield* countingStore
      const attributes: Array<ReadonlyMap<string, unknown>> = []
      yield* startWorker(store, [
        TaskHandlers.handler(Work, () =>
          Effect.flatMap(Effect.orDie(Effect.currentSpan), (span) =>
            Effect.sync(() =>
              attributes.push(span.attributes)
            )))
      ])
      const { id } = yield* insert(store, Work, 1)
      yield* eventually(succeeded(store, id), "done")
      assert.strictEqual(attributes.length, 1)
      assert.strictEqual(attributes[0]!.get("task.id"), id)
      assert.strictEqual(attributes[0]!.get("task.name"), "work")
      assert.strictEqual(attributes[0]!.get("task.attempt"), 1)
    }))
})
