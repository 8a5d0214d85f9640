import { assert, describe, it } from "@effect/vitest"
import * as MemoryStore from "@spindle/tasks/MemoryStore"
import * as Task from "@spindle/tasks/Task"
import * as TaskContext from "@spindle/tasks/TaskContext"
import * as TaskHandlers from "@spindle/tasks/TaskHandlers"
import { TaskStore } from "@spindle/tasks/TaskStore"
import * as TaskWorker from "@spindle/tasks/TaskWorker"
import { Context, Deferred, Effect, HashMap, Logger, Option, Schema, TestClock, Tracer } from "effect"

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

  it.scoped("a handler's logs carry the task id, name, attempt and worker id, and the worker's own annotations", () => {
    const logged: Array<Record<string, unknown>> = []
    const logger = Logger.make(({ annotations, message }) => {
      if (String(message).includes("from the handler")) logged.push(Object.fromEntries(HashMap.toEntries(annotations)))
    })
    return Effect.gen(function*() {
      const { store } = yield* countingStore
      yield* startWorker(store, [TaskHandlers.handler(Work, () => Effect.log("from the handler"))]).pipe(
        Effect.annotateLogs("service", "reports")
      )
      const first = yield* insert(store, Work, 1)
      const second = yield* insert(store, Work, 2)
      yield* eventually(succeeded(store, first.id), "first done")
      yield* eventually(succeeded(store, second.id), "second done")
      assert.deepStrictEqual(
        logged.sort((a, b) => String(a.taskId).localeCompare(String(b.taskId))),
        [
          { service: "reports", workerId: "ctx-worker", taskId: first.id, taskName: "work", attempt: 1 },
          { service: "reports", workerId: "ctx-worker", taskId: second.id, taskName: "work", attempt: 1 }
        ].sort((a, b) => a.taskId.localeCompare(b.taskId))
      )
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.scoped("with Effect's own tracer, the attempt's span is a root span, parent of the handler's spans, ended with the exit", () =>
    Effect.gen(function*() {
      const { store } = yield* countingStore
      const seen: Array<{ readonly task: Tracer.Span; readonly child: Tracer.Span }> = []
      yield* startWorker(store, [
        TaskHandlers.handler(Work, () =>
          Effect.gen(function*() {
            const task = yield* Effect.orDie(Effect.currentSpan)
            task.attribute("custom", "yes")
            task.event("halfway", BigInt(1))
            const child = yield* Effect.orDie(Effect.currentSpan).pipe(Effect.withSpan("inner"))
            seen.push({ task, child })
          }))
      ])
      const { id } = yield* insert(store, Work, 1)
      yield* eventually(succeeded(store, id), "done")
      const [{ child, task }] = seen as [typeof seen[number]]
      assert.strictEqual(task.name, "spindle.task work")
      assert.strictEqual(task.kind, "consumer")
      assert.isTrue(Option.isNone(task.parent))
      assert.strictEqual(task.attributes.get("task.queue"), "jobs")
      assert.strictEqual(task.attributes.get("custom"), "yes")
      assert.strictEqual(task.status._tag, "Ended")
      assert.isTrue(task.status._tag === "Ended" && task.status.exit._tag === "Success")
      assert.strictEqual(Option.getOrThrow(child.parent), task)
      assert.strictEqual(child.traceId, task.traceId)
      // ids are unique per span
      const other = yield* insert(store, Work, 2)
      yield* eventually(succeeded(store, other.id), "done")
      assert.notStrictEqual(seen[1]!.task.spanId, task.spanId)
    }))

  it.scoped("with a tracer of the user's, the attempt's span is that tracer's, with the task's attributes", () =>
    Effect.gen(function*() {
      const { store } = yield* countingStore
      const made: Array<{ readonly name: string; readonly attributes: Map<string, unknown>; ended: boolean }> = []
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          const attributes = new Map<string, unknown>()
          const record = { name, attributes, ended: false }
          made.push(record)
          return {
            _tag: "Span",
            name,
            spanId: `s${made.length}`,
            traceId: "t",
            parent,
            context,
            status: { _tag: "Started", startTime },
            attributes,
            links,
            sampled: true,
            kind,
            end: () => {
              record.ended = true
            },
            attribute: (key, value) => {
              attributes.set(key, value)
            },
            event: () => {},
            addLinks: () => {}
          }
        },
        context: (f) => f()
      })
      yield* startWorker(store, [TaskHandlers.handler(Work, () => Effect.void)]).pipe(Effect.withTracer(tracer))
      const { id } = yield* insert(store, Work, 1)
      yield* eventually(succeeded(store, id), "done")
      const span = made.find((span) => span.name === "spindle.task work")!
      assert.deepStrictEqual(Object.fromEntries(span.attributes), {
        "task.id": id,
        "task.name": "work",
        "task.queue": "jobs",
        "task.attempt": 1
      })
      assert.isTrue(span.ended)
    }))
})
