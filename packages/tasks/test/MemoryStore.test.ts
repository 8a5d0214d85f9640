import { assert, describe, it } from "@effect/vitest"
import * as MemoryStore from "@spindle/tasks/MemoryStore"
import * as TaskStore from "@spindle/tasks/TaskStore"
import { Duration, Effect, Fiber, Option, TestClock } from "effect"
import { taskStoreSuite } from "./TaskStoreSuite.js"

taskStoreSuite("MemoryStore", () => MemoryStore.layer)

const settle = Effect.zipRight(TestClock.adjust(Duration.zero), Effect.repeatN(Effect.yieldNow(), 20))

describe("MemoryStore (memory only)", () => {
  it.scoped("awaitWork also wakes up when the next scheduled task falls due", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* store.tasksInsert({ tasks: [{ name: "x", payload: 0, runAt: new Date(5000) }] })
      const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 60_000 }))
      yield* settle
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiting)
      // a due task that cannot be claimed (paused queue) does not make awaitWork spin
      yield* store.queuePause({ queue: "default" })
      const idle = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 1000 }))
      yield* settle
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(idle)))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(idle)
    }))

  it.scoped("stores copies of payloads and results", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const payload = { list: [1, 2] }
      const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "x", payload }] })
      payload.list.push(3)
      const id = inserted!.task.id
      const stored = yield* store.taskGet({ id })
      assert.deepStrictEqual(Option.getOrThrow(stored).payload, { list: [1, 2] })
      yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 1000 })
      const result = { n: 1, skipped: undefined }
      const done = yield* store.taskComplete({ id, workerId: "w1", result })
      assert.deepStrictEqual(done.result, { n: 1 })
    }))

  it.effect("each build of the layer is a fresh store", () =>
    Effect.gen(function*() {
      const count = Effect.flatMap(TaskStore.TaskStore, (store) =>
        Effect.zipRight(
          store.tasksInsert({ tasks: [{ name: "x", payload: 0 }] }),
          Effect.map(store.tasksList({}), (page) => page.items.length)
        ))
      assert.strictEqual(yield* Effect.provide(count, MemoryStore.layer), 1)
      assert.strictEqual(yield* Effect.provide(count, MemoryStore.layer), 1)
    }))
})

describe("MemoryStore claims and listing", () => {
  it.scoped("a claim returns its tasks in claim order, over many tasks", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* TestClock.adjust("1 hour")
      let seed = 7
      const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647
      const priorities = ["critical", "high", "normal", "low"] as const
      yield* store.tasksInsert({
        tasks: Array.from({ length: 300 }, (_, i) => ({
          id: `t${String(i).padStart(3, "0")}`,
          name: "x",
          payload: i,
          priority: priorities[Math.floor(random() * 4)]!,
          runAt: new Date(Math.floor(random() * 20) * 1000)
        }))
      })
      const all = (yield* store.tasksList({ limit: 1000 })).items
      const expected = [...all].sort((a, b) =>
        TaskStore.comparePriority(a.priority, b.priority) || a.runAt.getTime() - b.runAt.getTime() ||
        (a.id < b.id ? -1 : 1)
      ).map((t) => t.id)
      const claimed: Array<string> = []
      while (true) {
        const batch = yield* store.tasksClaim({ workerId: "w1", limit: 13, leaseMs: 1000 })
        if (batch.length === 0) break
        claimed.push(...batch.map((t) => t.id))
      }
      assert.deepStrictEqual(claimed, expected)
    }))

  it.scoped("refuses a cursor of another sort or order", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* store.tasksInsert({ tasks: Array.from({ length: 3 }, (_, i) => ({ name: "x", payload: i })) })
      const page = yield* store.tasksList({ limit: 1, sortBy: "runAt", order: "asc" })
      const cursor = page.nextCursor!
      assert.strictEqual((yield* store.tasksList({ limit: 1, sortBy: "runAt", order: "asc", cursor })).items.length, 1)
      for (
        const params of [{ sortBy: "runAt", order: "desc", cursor }, { sortBy: "createdAt", order: "asc", cursor }, {
          cursor: "garbage"
        }] as const
      ) {
        const error = yield* Effect.flip(store.tasksList(params))
        assert.strictEqual(error._tag, "TaskStoreError")
      }
    }))
})
