import { assert, describe, it } from "@effect/vitest"
import * as MemoryStore from "@spindle/tasks/MemoryStore"
import * as Task from "@spindle/tasks/Task"
import * as TaskClient from "@spindle/tasks/TaskClient"
import type * as TaskEvent from "@spindle/tasks/TaskEvent"
import type * as TaskRecord from "@spindle/tasks/TaskRecord"
import { TaskStore } from "@spindle/tasks/TaskStore"
import {
  Chunk,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  MetricState,
  Option,
  Schema,
  Stream,
  TestClock
} from "effect"

// -----------------------------------------------------------------------------
// Definitions
// -----------------------------------------------------------------------------

class Bounced extends Schema.TaggedError<Bounced>()("Bounced", { address: Schema.String }) {}

const SendEmail = Task.make("send-email", {
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  success: Schema.Struct({ messageId: Schema.String, sentAt: Schema.DateFromNumber }),
  failure: Bounced,
  queue: "email",
  maxAttempts: 3,
  tags: ["mail"]
})

const Report = Task.make("report", {
  payload: Schema.Struct({ day: Schema.Date }),
  success: Schema.Number,
  failure: Schema.String
})

const Notify = Task.make("notify", {
  payload: Schema.Struct({ userId: Schema.String, text: Schema.String }),
  success: Schema.Void,
  failure: Schema.String,
  unique: (payload) => payload.userId
})

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** A fresh memory store and a client over it. */
const provideClient = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, TaskClient.layer.pipe(Layer.provideMerge(MemoryStore.layer)))

/** A memory store wrapped by `wrap`, and a client over the wrapper. */
const provideWrapped =
  (wrap: (store: Context.Tag.Service<TaskStore>) => Context.Tag.Service<TaskStore>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provide(
      effect,
      TaskClient.layer.pipe(
        Layer.provideMerge(Layer.effect(TaskStore, Effect.map(TaskStore, wrap))),
        Layer.provide(MemoryStore.layer)
      )
    )

/** Lets every forked fiber run until it is done or suspended. */
const settle = TestClock.adjust(Duration.zero)

const client = TaskClient.TaskClient

const count = Effect.flatMap(TaskStore, (store) => store.tasksList({ limit: 1000 })).pipe(
  Effect.map((page) => page.items.length)
)

/** A simulated worker: claims the task, then completes it with an encoded success. */
const workerSucceeds = <T extends Task.Task.Any>(task: T, id: string, value: Task.Task.Success<T>) =>
  Effect.gen(function*() {
    const store = yield* TaskStore
    const claimed = yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 30_000, names: [task.name] })
    assert.strictEqual(claimed[0]?.id, id)
    const result = yield* Task.encodeSuccess(task, value)
    return yield* store.taskComplete({ id, workerId: "w1", result })
  })

/** A simulated worker: claims the task, then ends the attempt with `outcome`. */
const workerFails = (
  task: Task.Task.Any,
  id: string,
  outcome: TaskStore.FailOutcome,
  error: TaskRecord.TaskError
) =>
  Effect.gen(function*() {
    const store = yield* TaskStore
    const claimed = yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 30_000, names: [task.name] })
    assert.strictEqual(claimed[0]?.id, id)
    return yield* store.taskFail({ id, workerId: "w1", outcome, error })
  })

const bouncedError = (address: string) =>
  Effect.map(Task.encodeFailure(SendEmail, new Bounced({ address })), (value): TaskRecord.TaskError => ({
    tag: "Bounced",
    message: "mailbox full",
    cause: "Bounced: mailbox full",
    value
  }))

const submittedTotal = (name: string) =>
  Effect.map(Metric.snapshot, (pairs) => {
    const pair = pairs.find((p) =>
      p.metricKey.name === "spindle_tasks_submitted_total" &&
      p.metricKey.tags.some((t) => t.key === "name" && t.value === name)
    )
    if (pair === undefined) return 0
    assert.isTrue(MetricState.isCounterState(pair.metricState))
    return Number((pair.metricState as MetricState.MetricState.Counter<number>).count)
  })

const email = { to: "ada@example.com", subject: "hello" }

// -----------------------------------------------------------------------------
// submit
// -----------------------------------------------------------------------------

describe("TaskClient.submit", () => {
  it.effect("stores the encoded payload with the definition's defaults and returns a handle", () =>
    Effect.gen(function*() {
      const handle = yield* (yield* client).submit(Report, { day: new Date("2026-11-22T00:00:00.000Z") })
      assert.isTrue(handle.created)
      assert.strictEqual(handle.task, Report)
      assert.deepStrictEqual(handle.record.payload, { day: "2026-11-22T00:00:00.000Z" })
      const stored = yield* Effect.flatMap(TaskStore, (store) => store.taskGet({ id: handle.id }))
      assert.isTrue(Option.isSome(stored))
      const record = Option.getOrThrow(stored)
      assert.strictEqual(record.name, "report")
      assert.strictEqual(record.queue, "default")
      assert.strictEqual(record.priority, "normal")
      assert.strictEqual(record.status, "pending")
      assert.strictEqual(record.maxAttempts, 1)
      assert.deepStrictEqual(record.payload, { day: "2026-11-22T00:00:00.000Z" })

      const mail = yield* (yield* client).submit(SendEmail, email)
      assert.strictEqual(mail.record.queue, "email")
      assert.strictEqual(mail.record.maxAttempts, 3)
      assert.deepStrictEqual(mail.record.tags, ["mail"])
    }).pipe(provideClient))

  it.effect("applies the options: delay, priority, queue, parent, tags, maxAttempts", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000_000)
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email, {
        delay: "5 minutes",
        priority: "critical",
        queue: "bulk",
        parentId: "parent-1",
        tags: ["campaign", "mail"],
        maxAttempts: 7
      })
      const record = handle.record
      assert.strictEqual(record.status, "scheduled")
      assert.strictEqual(record.runAt.getTime(), 1_000_000 + 5 * 60_000)
      assert.strictEqual(record.priority, "critical")
      assert.strictEqual(record.queue, "bulk")
      assert.strictEqual(record.parentId, "parent-1")
      assert.deepStrictEqual(record.tags, ["mail", "campaign"])
      assert.strictEqual(record.maxAttempts, 7)

      const at = yield* c.submit(SendEmail, email, { runAt: new Date(2_000_000) })
      assert.strictEqual(at.record.runAt.getTime(), 2_000_000)

      const both = yield* Effect.flip(c.submit(SendEmail, email, { runAt: new Date(2_000_000), delay: "1 second" }))
      assert.strictEqual(both._tag, "InvalidParams")
      const attempts = yield* Effect.flip(c.submit(SendEmail, email, { maxAttempts: 0 }))
      assert.deepStrictEqual(attempts._tag === "InvalidParams" && attempts.parameter, "maxAttempts")
      assert.strictEqual(yield* count, 2)
    }).pipe(provideClient))

  it.effect("an invalid payload fails with InvalidPayload naming the path, and stores nothing", () =>
    Effect.gen(function*() {
      const c = yield* client
      const error = yield* Effect.flip(c.submit(SendEmail, { to: 42, subject: "hello" } as never))
      assert.strictEqual(error._tag, "InvalidPayload")
      if (error._tag !== "InvalidPayload") return
      assert.strictEqual(error.taskName, "send-email")
      assert.isUndefined(error.index)
      assert.deepStrictEqual(error.issues.map((issue) => issue.path), [["to"]])
      assert.include(error.message, "[\"to\"]")
      assert.strictEqual(yield* count, 0)
      // The error is sendable over HTTP as is.
      const encoded = Schema.encodeSync(TaskClient.InvalidPayload)(error)
      assert.deepStrictEqual(encoded.issues, [{ path: ["to"], message: error.issues[0]!.message }])
    }).pipe(provideClient))

  it.effect("submitUnknown decodes a JSON value, then encodes it", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submitUnknown(Report, JSON.parse("{\"day\":\"2026-01-02T00:00:00.000Z\"}"))
      assert.deepStrictEqual(handle.record.payload, { day: "2026-01-02T00:00:00.000Z" })
      const error = yield* Effect.flip(c.submitUnknown(Report, { day: "not a date" }))
      assert.strictEqual(error._tag, "InvalidPayload")
      if (error._tag !== "InvalidPayload") return
      assert.deepStrictEqual(error.issues.map((issue) => issue.path), [["day"]])
      const missing = yield* Effect.flip(c.submitUnknown(SendEmail, { subject: "hi" }))
      assert.deepStrictEqual(missing._tag === "InvalidPayload" && missing.issues.map((issue) => issue.path), [["to"]])
      assert.strictEqual(yield* count, 1)
    }).pipe(provideClient))

  it.effect("an idempotency key from task.unique returns the unfinished task instead of a duplicate", () =>
    Effect.gen(function*() {
      const c = yield* client
      const before = yield* submittedTotal("notify")
      const first = yield* c.submit(Notify, { userId: "u1", text: "a" })
      const second = yield* c.submit(Notify, { userId: "u1", text: "b" })
      const other = yield* c.submit(Notify, { userId: "u2", text: "a" })
      const optedOut = yield* c.submit(Notify, { userId: "u1", text: "c" }, { idempotencyKey: null })
      const explicit = yield* c.submit(Notify, { userId: "u3", text: "c" }, { idempotencyKey: "u1" })
      assert.isTrue(first.created)
      assert.strictEqual(first.record.idempotencyKey, "u1")
      assert.isFalse(second.created)
      assert.strictEqual(second.id, first.id)
      assert.isTrue(other.created)
      assert.isTrue(optedOut.created)
      assert.isFalse(explicit.created)
      assert.strictEqual(explicit.id, first.id)
      assert.strictEqual(yield* count, 3)
      // Only created tasks are counted.
      assert.strictEqual((yield* submittedTotal("notify")) - before, 3)

      // Once the first is finished, the key is free again.
      yield* c.cancel(first.id)
      const again = yield* c.submit(Notify, { userId: "u1", text: "d" })
      assert.isTrue(again.created)
    }).pipe(provideClient))
})

// -----------------------------------------------------------------------------
// submitMany
// -----------------------------------------------------------------------------

describe("TaskClient.submitMany", () => {
  let inserts = 0
  const counting = provideWrapped((store) => ({
    ...store,
    tasksInsert: (params) => Effect.suspend(() => (inserts++, store.tasksInsert(params)))
  }))

  it.effect("validates every payload, then inserts all in one store call", () =>
    Effect.gen(function*() {
      inserts = 0
      const before = yield* submittedTotal("send-email")
      const c = yield* client
      const payloads = [1, 2, 3].map((i) => ({ to: `user${i}@example.com`, subject: `#${i}` }))
      const handles = yield* c.submitMany(SendEmail, payloads, { priority: "high" })
      assert.strictEqual(inserts, 1)
      assert.strictEqual(handles.length, 3)
      assert.deepStrictEqual(handles.map((h) => h.record.payload), payloads)
      assert.isTrue(handles.every((h) => h.created && h.record.priority === "high"))
      assert.strictEqual(yield* count, 3)
      assert.strictEqual((yield* submittedTotal("send-email")) - before, 3)

      const none = yield* c.submitMany(SendEmail, [])
      assert.deepStrictEqual(none, [])
      assert.strictEqual(inserts, 1)
    }).pipe(counting))

  it.effect("one bad payload fails the whole call with its index, and nothing is stored", () =>
    Effect.gen(function*() {
      inserts = 0
      const c = yield* client
      const payloads = [email, { to: "b@example.com" }, email] as Array<typeof email>
      const error = yield* Effect.flip(c.submitMany(SendEmail, payloads))
      assert.strictEqual(error._tag, "InvalidPayload")
      if (error._tag !== "InvalidPayload") return
      assert.strictEqual(error.index, 1)
      assert.deepStrictEqual(error.issues.map((issue) => issue.path), [["subject"]])
      assert.include(error.message, "at index 1")
      assert.strictEqual(inserts, 0)
      assert.strictEqual(yield* count, 0)

      const unknown = yield* Effect.flip(c.submitManyUnknown(Report, [{ day: "2026-01-01" }, { day: 3 }]))
      assert.deepStrictEqual(unknown._tag === "InvalidPayload" && unknown.index, 1)
      assert.strictEqual(inserts, 0)
    }).pipe(counting))

  it.effect("a batch of payloads whose Schema is asynchronous is encoded too", () =>
    Effect.gen(function*() {
      const c = yield* client
      const later = (n: number) =>
        Effect.async<number>((resume) => {
          const timer = setTimeout(() => resume(Effect.succeed(n)), 0)
          return Effect.sync(() => clearTimeout(timer))
        })
      const Async = Task.make("async", {
        payload: Schema.Struct({
          n: Schema.transformOrFail(Schema.Number, Schema.Number, { strict: true, decode: later, encode: later })
        }),
        success: Schema.Void,
        failure: Schema.Never
      })
      const handles = yield* c.submitMany(Async, [{ n: 1 }, { n: 2 }])
      assert.deepStrictEqual(handles.map((h) => h.record.payload), [{ n: 1 }, { n: 2 }])
      const unknown = yield* c.submitManyUnknown(Async, [{ n: 3 }])
      assert.deepStrictEqual(unknown.map((h) => h.record.payload), [{ n: 3 }])
    }).pipe(provideClient))

  it.effect("deduplicates by task.unique within and across calls", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handles = yield* c.submitMany(Notify, [
        { userId: "u1", text: "a" },
        { userId: "u2", text: "a" },
        { userId: "u1", text: "b" }
      ])
      assert.deepStrictEqual(handles.map((h) => h.created), [true, true, false])
      assert.strictEqual(handles[2]!.id, handles[0]!.id)
      const again = yield* c.submitMany(Notify, [{ userId: "u2", text: "c" }])
      assert.isFalse(again[0]!.created)
      assert.strictEqual(yield* count, 2)
    }).pipe(provideClient))
})

// -----------------------------------------------------------------------------
// await
// -----------------------------------------------------------------------------

describe("TaskClient.await", () => {
  it.effect("resolves with the decoded success when a worker completes the task later", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email)
      const fiber = yield* Effect.fork(c.await(handle))
      yield* settle
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      const sentAt = new Date(1_234)
      yield* workerSucceeds(SendEmail, handle.id, { messageId: "m1", sentAt })
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result, { messageId: "m1", sentAt })
      assert.instanceOf(result.sentAt, Date)
    }).pipe(provideClient))

  it.effect("accepts (task, id) as well as a handle", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) })
      const fiber = yield* Effect.fork(c.await(Report, handle.id))
      yield* settle
      yield* workerSucceeds(Report, handle.id, 42)
      assert.strictEqual(yield* Fiber.join(fiber), 42)
    }).pipe(provideClient))

  it.effect("routes each completion to the awaits of its own task", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handles = yield* c.submitMany(Report, Array.from({ length: 20 }, (_, i) => ({ day: new Date(i) })))
      const fibers = yield* Effect.forEach(handles, (handle) => Effect.fork(c.await(handle)))
      const twice = yield* Effect.fork(c.await(handles[0]!))
      yield* settle
      const store = yield* TaskStore
      yield* store.tasksClaim({ workerId: "w1", limit: 20, leaseMs: 30_000 })
      for (let i = handles.length - 1; i >= 0; i--) {
        yield* store.taskComplete({ id: handles[i]!.id, workerId: "w1", result: i * 10 })
      }
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(results, handles.map((_, i) => i * 10))
      assert.strictEqual(yield* Fiber.join(twice), 0)
    }).pipe(provideClient))

  it.effect("fails with TaskFailed carrying the decoded typed failure", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email)
      const fiber = yield* Effect.fork(c.await(handle))
      yield* settle
      yield* workerFails(SendEmail, handle.id, { _tag: "failed" }, yield* bouncedError("ada@example.com"))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TaskFailed")
      if (error._tag !== "TaskFailed") return
      assert.strictEqual(error.status, "failed")
      assert.strictEqual(error.attempt, 1)
      assert.strictEqual(error.error.tag, "Bounced")
      assert.instanceOf(error.value, Bounced)
      assert.strictEqual(error.value.address, "ada@example.com")
    }).pipe(provideClient))

  it.effect("a dead task fails with TaskFailed when it has a typed failure, TaskDefect otherwise", () =>
    Effect.gen(function*() {
      const c = yield* client
      const typed = yield* c.submit(SendEmail, email, { maxAttempts: 1 })
      const typedFiber = yield* Effect.fork(c.await(typed))
      yield* settle
      yield* workerFails(SendEmail, typed.id, { _tag: "dead" }, yield* bouncedError("x@example.com"))
      const typedError = yield* Effect.flip(Fiber.join(typedFiber))
      assert.deepStrictEqual(typedError._tag === "TaskFailed" && typedError.status, "dead")

      const defect = yield* c.submit(SendEmail, email)
      const defectFiber = yield* Effect.fork(c.await(defect))
      yield* settle
      yield* workerFails(SendEmail, defect.id, { _tag: "dead" }, {
        tag: "Defect",
        message: "boom",
        cause: "Error: boom"
      })
      const defectError = yield* Effect.flip(Fiber.join(defectFiber))
      assert.strictEqual(defectError._tag, "TaskDefect")
      if (defectError._tag !== "TaskDefect") return
      assert.strictEqual(defectError.status, "dead")
      assert.strictEqual(defectError.error?.tag, "Defect")
    }).pipe(provideClient))

  it.effect("fails with TaskTimedOut when the last attempt timed out", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email)
      const fiber = yield* Effect.fork(c.await(handle))
      yield* settle
      yield* workerFails(SendEmail, handle.id, { _tag: "timed-out" }, {
        tag: "Timeout",
        message: "exceeded 30 seconds",
        cause: ""
      })
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TaskTimedOut")
    }).pipe(provideClient))

  it.effect("fails with TaskCancelled when the task is cancelled", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email)
      const fiber = yield* Effect.fork(c.await(handle))
      yield* settle
      yield* c.cancel(handle.id)
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TaskCancelled")
    }).pipe(provideClient))

  it.effect("keeps waiting through retries until the task finishes", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) }, { maxAttempts: 2 })
      const fiber = yield* Effect.fork(c.await(handle))
      yield* settle
      const store = yield* TaskStore
      yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 30_000 })
      yield* store.taskFail({
        id: handle.id,
        workerId: "w1",
        outcome: { _tag: "retry", runAt: new Date(0) },
        error: { tag: "Unavailable", message: "503", cause: "" }
      })
      yield* settle
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* workerSucceeds(Report, handle.id, 7)
      assert.strictEqual(yield* Fiber.join(fiber), 7)
    }).pipe(provideClient))

  it.effect("answers at once for a task that has already finished", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) })
      yield* workerSucceeds(Report, handle.id, 3)
      assert.strictEqual(yield* c.await(handle), 3)
      const cancelled = yield* c.submit(Report, { day: new Date(0) })
      yield* c.cancel(cancelled.id)
      const error = yield* Effect.flip(c.await(cancelled))
      assert.strictEqual(error._tag, "TaskCancelled")
    }).pipe(provideClient))

  it.effect("subscribes before reading: a task finishing between the two is not missed", () => {
    // The wrapper's first read returns the record as it was, then the task completes and its
    // events are delivered before the read returns: only a waiter registered before the read
    // sees the completion.
    let reads = 0
    const racing = provideWrapped((store) => ({
      ...store,
      taskGet: (params) =>
        Effect.gen(function*() {
          reads++
          const before = yield* store.taskGet(params)
          if (reads === 1) {
            yield* workerSucceeds(Report, params.id, 99).pipe(Effect.provideService(TaskStore, store), Effect.orDie)
            // Let the client's event subscription handle the completion before the read returns.
            yield* settle
          }
          return before
        })
    }))
    return Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) })
      const fiber = yield* Effect.fork(c.await(handle, { recheckInterval: "1 hour" }))
      yield* settle
      yield* settle
      assert.deepStrictEqual(yield* Fiber.poll(fiber), Option.some(Exit.succeed(99)))
      assert.strictEqual(reads, 2)
    }).pipe(racing)
  })

  it.effect("holds the store's events only while something is awaited, once for all awaits", () => {
    let subscribed = 0
    const counted = provideWrapped((store) => ({
      ...store,
      // the awaits' subscription takes the events that end a task
      eventsOf: (types) =>
        Stream.acquireRelease(
          Effect.sync(() => subscribed++),
          () => Effect.sync(() => subscribed--)
        ).pipe(Stream.flatMap(() => store.eventsOf(types)))
    }))
    return Effect.gen(function*() {
      const c = yield* client
      const first = yield* c.submit(Report, { day: new Date(0) })
      const second = yield* c.submit(Report, { day: new Date(1) })
      yield* settle
      assert.strictEqual(subscribed, 0)
      const awaits = yield* Effect.fork(Effect.all([c.await(first), c.await(second)], { concurrency: 2 }))
      yield* settle
      assert.strictEqual(subscribed, 1)
      yield* workerSucceeds(Report, first.id, 1)
      yield* settle
      assert.strictEqual(subscribed, 1)
      yield* workerSucceeds(Report, second.id, 2)
      assert.deepStrictEqual(yield* Fiber.join(awaits), [1, 2])
      yield* settle
      assert.strictEqual(subscribed, 0)
      // and again for the next await
      const third = yield* c.submit(Report, { day: new Date(2) })
      const awaiting = yield* Effect.fork(c.await(third))
      yield* settle
      assert.strictEqual(subscribed, 1)
      yield* workerSucceeds(Report, third.id, 3)
      assert.strictEqual(yield* Fiber.join(awaiting), 3)
    }).pipe(counted)
  })

  it.effect("re-reads the task as a backstop when its events are lost", () => {
    const deaf = provideWrapped((store) => ({ ...store, events: Stream.never, eventsOf: () => Stream.never }))
    return Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) })
      const fiber = yield* Effect.fork(c.await(handle, { recheckInterval: "5 seconds" }))
      yield* settle
      yield* workerSucceeds(Report, handle.id, 5)
      yield* TestClock.adjust("4 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(fiber), 5)
    }).pipe(deaf)
  })

  it.effect("fails with TaskStoreError when the event stream ends", () => {
    const ended = provideWrapped((store) => ({ ...store, events: Stream.empty, eventsOf: () => Stream.empty }))
    return Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) })
      const error = yield* Effect.flip(c.await(handle))
      assert.deepStrictEqual(error._tag === "TaskStoreError" && error.operation, "events")
    }).pipe(ended)
  })

  it.effect("gives up with AwaitTimeout after the timeout (TestClock)", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email)
      const fiber = yield* Effect.fork(c.await(handle, { timeout: "10 seconds" }))
      yield* TestClock.adjust("9 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "AwaitTimeout")
      if (error._tag !== "AwaitTimeout") return
      assert.strictEqual(error.taskId, handle.id)
      assert.strictEqual(error.timeoutMs, 10_000)
      // The task goes on.
      const record = yield* c.get(handle.id)
      assert.deepStrictEqual(Option.map(record, (r) => r.status), Option.some("pending" as const))
    }).pipe(provideClient))

  it.effect("fails with TaskNotFound for an unknown id and TaskNameMismatch for another task's id", () =>
    Effect.gen(function*() {
      const c = yield* client
      const missing = yield* Effect.flip(c.await(Report, "nope"))
      assert.strictEqual(missing._tag, "TaskNotFound")
      // Answered at once, not once the other task finishes.
      const handle = yield* c.submit(Report, { day: new Date(0) })
      const mismatch = yield* Effect.flip(c.await(SendEmail, handle.id))
      assert.strictEqual(mismatch._tag, "TaskNameMismatch")
    }).pipe(provideClient))

  it.effect("awaitRecord returns the final record whatever the status", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(SendEmail, email)
      const fiber = yield* Effect.fork(c.awaitRecord(handle.id))
      yield* settle
      yield* c.cancel(handle.id)
      const record = yield* Fiber.join(fiber)
      assert.strictEqual(record.status, "cancelled")
    }).pipe(provideClient))
})

// -----------------------------------------------------------------------------
// get, list, cancel, retry, stats
// -----------------------------------------------------------------------------

describe("TaskClient passthroughs", () => {
  it.effect("get and getTyped", () =>
    Effect.gen(function*() {
      const c = yield* client
      assert.isTrue(Option.isNone(yield* c.get("nope")))
      assert.isTrue(Option.isNone(yield* c.getTyped(Report, "nope")))
      const handle = yield* c.submit(SendEmail, email)
      assert.deepStrictEqual(Option.map(yield* c.get(handle.id), (r) => r.id), Option.some(handle.id))
      yield* workerSucceeds(SendEmail, handle.id, { messageId: "m2", sentAt: new Date(5) })
      const typed = Option.getOrThrow(yield* c.getTyped(SendEmail, handle.id))
      assert.deepStrictEqual(typed.payload, email)
      assert.deepStrictEqual(typed.result, Option.some({ messageId: "m2", sentAt: new Date(5) }))
      assert.isTrue(Option.isNone(typed.failure))

      const failed = yield* c.submit(SendEmail, email)
      yield* workerFails(SendEmail, failed.id, { _tag: "failed" }, yield* bouncedError("z@example.com"))
      const typedFailure = Option.getOrThrow(yield* c.getTyped(SendEmail, failed.id))
      assert.isTrue(Option.isNone(typedFailure.result))
      assert.deepStrictEqual(typedFailure.failure, Option.some(new Bounced({ address: "z@example.com" })))

      const mismatch = yield* Effect.flip(c.getTyped(Report, handle.id))
      assert.strictEqual(mismatch._tag, "TaskNameMismatch")
    }).pipe(provideClient))

  it.effect("list pages through the store and validates limit and cursor", () =>
    Effect.gen(function*() {
      const c = yield* client
      yield* c.submitMany(Report, [1, 2, 3].map((d) => ({ day: new Date(d) })))
      yield* c.submit(SendEmail, email)
      const first = yield* c.list({ limit: 2, filter: { name: ["report"] } })
      assert.strictEqual(first.items.length, 2)
      assert.isDefined(first.nextCursor)
      const second = yield* c.list({ limit: 2, filter: { name: ["report"] }, cursor: first.nextCursor! })
      assert.strictEqual(second.items.length, 1)
      assert.isUndefined(second.nextCursor)
      assert.strictEqual((yield* c.list()).items.length, 4)

      for (const limit of [0, 1001, 1.5]) {
        const error = yield* Effect.flip(c.list({ limit }))
        assert.deepStrictEqual(error._tag === "InvalidParams" && error.parameter, "limit")
      }
      const cursor = yield* Effect.flip(c.list({ cursor: "" }))
      assert.deepStrictEqual(cursor._tag === "InvalidParams" && cursor.parameter, "cursor")
    }).pipe(provideClient))

  it.effect("cancel and retry follow the state machine", () =>
    Effect.gen(function*() {
      const c = yield* client
      const handle = yield* c.submit(Report, { day: new Date(0) })
      const cancelled = yield* c.cancel(handle.id)
      assert.strictEqual(cancelled.status, "cancelled")
      const again = yield* Effect.flip(c.cancel(handle.id))
      assert.strictEqual(again._tag, "IllegalTransition")

      const retried = yield* c.retry(handle.id)
      assert.strictEqual(retried.status, "pending")
      const notFinished = yield* Effect.flip(c.retry(handle.id))
      assert.strictEqual(notFinished._tag, "IllegalTransition")

      assert.strictEqual((yield* Effect.flip(c.cancel("nope")))._tag, "TaskNotFound")
      assert.strictEqual((yield* Effect.flip(c.retry("nope")))._tag, "TaskNotFound")
      const extra = yield* Effect.flip(c.retry(handle.id, { extraAttempts: 0 }))
      assert.deepStrictEqual(extra._tag === "InvalidParams" && extra.parameter, "extraAttempts")

      yield* TestClock.setTime(10_000)
      yield* c.cancel(handle.id)
      const delayed = yield* c.retry(handle.id, { delay: "1 minute" })
      assert.strictEqual(delayed.status, "scheduled")
      assert.strictEqual(delayed.runAt.getTime(), 70_000)
    }).pipe(provideClient))

  it.effect("stats passes the store's statistics through and validates the window", () =>
    Effect.gen(function*() {
      const c = yield* client
      const a = yield* c.submit(Report, { day: new Date(0) })
      yield* c.submit(Report, { day: new Date(1) })
      yield* c.submit(SendEmail, email)
      yield* workerSucceeds(Report, a.id, 1)
      const stats = yield* c.stats()
      assert.strictEqual(stats.total, 3)
      assert.strictEqual(stats.byStatus.pending, 2)
      assert.strictEqual(stats.byStatus.succeeded, 1)
      const report = stats.byName.find((n) => n.name === "report")
      assert.strictEqual(report?.counts.succeeded, 1)
      assert.strictEqual(report?.counts.pending, 1)
      assert.deepStrictEqual(stats.byQueue.map((q) => q.queue).sort(), ["default", "email"])
      assert.strictEqual(stats.successRate, 1)
      assert.strictEqual((yield* c.stats({ minutes: 5 })).total, 3)
      const error = yield* Effect.flip(c.stats({ minutes: 0 }))
      assert.deepStrictEqual(error._tag === "InvalidParams" && error.parameter, "minutes")
    }).pipe(provideClient))
})

// -----------------------------------------------------------------------------
// events
// -----------------------------------------------------------------------------

describe("TaskClient.events", () => {
  const collect = (stream: Stream.Stream<TaskEvent.TaskEvent>, n: number) =>
    Effect.fork(Stream.runCollect(Stream.take(stream, n)))

  it.effect("filters by name, queue, type and id", () =>
    Effect.gen(function*() {
      const c = yield* client
      const byName = yield* collect(c.events({ names: ["report"] }), 2)
      const byType = yield* collect(c.events({ types: ["cancelled"] }), 1)
      const byQueue = yield* collect(c.events({ queues: ["email"], types: ["submitted"] }), 1)
      const all = yield* collect(c.events(), 4)
      yield* settle

      const mail = yield* c.submit(SendEmail, email)
      const report = yield* c.submit(Report, { day: new Date(0) })
      const byId = yield* collect(c.events({ ids: [report.id] }), 1)
      yield* settle
      yield* c.cancel(report.id)
      yield* c.cancel(mail.id)

      const names = Chunk.toReadonlyArray(yield* Fiber.join(byName))
      assert.deepStrictEqual(names.map((e) => [e.type, e.taskId]), [["submitted", report.id], ["cancelled", report.id]])
      const types = Chunk.toReadonlyArray(yield* Fiber.join(byType))
      assert.deepStrictEqual(types.map((e) => e.taskId), [report.id])
      const queues = Chunk.toReadonlyArray(yield* Fiber.join(byQueue))
      assert.deepStrictEqual(queues.map((e) => [e.type, e.taskId]), [["submitted", mail.id]])
      const ids = Chunk.toReadonlyArray(yield* Fiber.join(byId))
      assert.deepStrictEqual(ids.map((e) => [e.type, e.status]), [["cancelled", "cancelled"]])
      const every = Chunk.toReadonlyArray(yield* Fiber.join(all))
      assert.deepStrictEqual(every.map((e) => e.type), ["submitted", "submitted", "cancelled", "cancelled"])
    }).pipe(provideClient))
})
