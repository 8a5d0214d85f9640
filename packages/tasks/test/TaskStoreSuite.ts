/**
 * The conformance suite of `TaskStore`: every store (memory, SQLite, Postgres) runs it with
 *
 * ```ts
 * import { taskStoreSuite } from "../../tasks/test/TaskStoreSuite.js"
 * taskStoreSuite("SqliteStore", () => SqliteStore.layer({ filename: ":memory:" }))
 * ```
 *
 * Each test builds a fresh store from `makeLayer()` inside its own scope, under `TestClock`
 * (which starts at the epoch; each test first moves it to a base time with `TestClock.adjust`).
 * Stores read `Clock.currentTimeMillis`; tests move time only with `TestClock.adjust`.
 *
 * Where the interface left a detail open, the suite decides it (every store must agree):
 * - `runAt <= now` is due (claimable); a lease is expired (rescuable) when
 *   `leaseExpiresAt < now`.
 * - The records a claim returns come in no particular order (SQL `UPDATE … RETURNING` does not
 *   keep one): the claim order is checked one task at a time.
 * - A batch insert that breaks a constraint (an explicit `id` that already exists, or appears
 *   twice in the batch) fails with `TaskStoreError` and stores nothing.
 * - `created: false` also within one batch: the second task with the same (name, key) gets the
 *   first one's record.
 * - A heartbeat renews a lease the worker still holds even when it already expired, as long as
 *   the task has not been rescued; `cancelRequested` ids are also in `renewed`. Unknown ids are
 *   `lost`. Complete, fail and progress likewise only check the task is `running` under that
 *   worker (LeaseLost otherwise, also for an unknown id).
 * - Leaving `running` clears `leaseOwner`, `leaseExpiresAt` and `cancelRequested`; a finished
 *   status sets `finishedAt`; the `retry` outcome keeps `finishedAt` null and sets `runAt`.
 * - `tasksRelease` of a task whose cancellation was requested ends it `cancelled` (event
 *   `cancelled`) rather than giving it back to run again; likewise `tasksRescue` of one.
 * - `tasksRescue` sets `error` to `{ tag: "LeaseExpired", … }`, keeps the crashed attempt
 *   counted, and ends `dead` when `attempt >= maxAttempts`.
 * - `taskCancel` of a running task already cancel-requested returns it unchanged.
 * - `taskRetry` sets `maxAttempts` to `max(maxAttempts, attempt + extraAttempts)`, clears
 *   `result` and `finishedAt`; from a status that is not retryable it fails with
 *   IllegalTransition (`to` is `pending`, or `scheduled` with a future `runAt`); when an
 *   unfinished task with the same name and idempotency key exists it fails with
 *   TaskStoreError.
 * - Listing by `priority` sorts by importance: `desc` gives `critical` first, `asc` `low`
 *   first. Ties are broken by id in the same direction.
 * - Stats: minute buckets are aligned to whole minutes, the last one being the current
 *   minute; the window of `successRate`, `meanDurationMs` and `p95DurationMs` is the same as
 *   the throughput buckets. Throughput `failed` counts `failed`, `dead` and `timed-out`
 *   (not `cancelled`). Durations are `finishedAt - startedAt` of tasks that finished in the
 *   window with one of those four statuses; p95 is the nearest-rank percentile (the
 *   `ceil(0.95 n)`-th smallest, as Postgres' `percentile_disc(0.95)`). Hours likewise, the
 *   last one being the current hour. `byName` and `byQueue` are sorted by name; a paused queue
 *   without tasks is in `byQueue` with zero counts.
 * - `tasksDelete` only deletes finished tasks, whatever `statuses` says.
 * - `queuesList` is sorted by queue name.
 * - `tasksList` clamps `limit` into 1..1000; a cursor is only valid with the `sortBy` and
 *   `order` of the page that produced it.
 * - Event `at` is the time of the change; `submitted`, `started`, `progress`, `retrying` and the
 *   finishing events carry the task's `attempt` after the change.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy } from "@spindle/core"
import type { NewTask, TaskRecord } from "@spindle/tasks/TaskRecord"
import type { TaskStatus } from "@spindle/tasks/TaskStatus"
import * as TaskStore from "@spindle/tasks/TaskStore"
import { Array as Arr, Chunk, Context, Duration, Effect, Fiber, Layer, Option, Schema, Stream, TestClock } from "effect"

type Store = Context.Tag.Service<typeof TaskStore.TaskStore>

/** 2026-01-01T12:00:00Z: a whole hour, so that minute and hour buckets are easy to predict. */
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)

/** Lets forked fibers run until they suspend, without moving time. */
const settle = Effect.zipRight(TestClock.adjust(Duration.zero), Effect.repeatN(Effect.yieldNow(), 20))

const encodeRetry = Schema.encodeSync(RetryPolicy.Schema)

/**
 * Runs the conformance suite of `TaskStore` against the stores that `makeLayer` builds (one
 * fresh store per test).
 *
 * @since 0.1.0
 */
export const taskStoreSuite = (
  name: string,
  makeLayer: () => Layer.Layer<TaskStore.TaskStore, unknown>,
  options?: { readonly concurrentClaimers?: number }
): void => {
  /** A fresh store, with the clock moved to `T0` (or `start`). */
  const makeStore = (start: number = T0) =>
    Effect.gen(function*() {
      yield* TestClock.adjust(Duration.millis(start))
      const context = yield* Layer.build(makeLayer()).pipe(Effect.orDie)
      return Context.get(context, TaskStore.TaskStore)
    })

  const insert = (store: Store, task: NewTask) =>
    Effect.map(store.tasksInsert({ tasks: [task] }), (results) => results[0]!.task)

  const insertMany = (store: Store, tasks: ReadonlyArray<NewTask>) =>
    Effect.map(store.tasksInsert({ tasks }), (results) => results.map((r) => r.task))

  const get = (store: Store, id: string) =>
    Effect.flatMap(store.taskGet({ id }), (option) =>
      Option.match(option, {
        onNone: () => Effect.dieMessage(`task ${id} not found`),
        onSome: Effect.succeed
      }))

  /** Claims exactly one task (dies when there is none). */
  const claimOne = (store: Store, workerId = "w1", leaseMs = 30_000, extra?: {
    readonly queues?: ReadonlyArray<string>
    readonly names?: ReadonlyArray<string>
  }) =>
    Effect.flatMap(store.tasksClaim({ workerId, limit: 1, leaseMs, ...extra }), (claimed) =>
      claimed.length === 1
        ? Effect.succeed(claimed[0]!)
        : Effect.dieMessage(`expected one claimed task, got ${claimed.length}`))

  /** Claims the task with `id` (the only claimable one of its name). */
  const claimTask = (store: Store, task: TaskRecord, workerId = "w1", leaseMs = 30_000) =>
    Effect.tap(
      claimOne(store, workerId, leaseMs, { names: [task.name] }),
      (claimed) =>
        claimed.id === task.id ? Effect.void : Effect.dieMessage(`claimed ${claimed.id}, expected ${task.id}`)
    )

  const allIds = (store: Store, filter?: TaskStore.TaskStore.Filter) =>
    Effect.map(
      store.tasksList({ filter, limit: 1000, sortBy: "createdAt", order: "asc" }),
      (page) => page.items.map((t) => t.id)
    )

  const error = (tag: string) => ({ tag, message: `${tag} happened`, cause: `Error: ${tag}` })

  /** Collects the first `count` events of task `taskId` (subscribed before it returns). */
  const collectEvents = (store: Store, taskId: string | undefined, count: number) =>
    Effect.gen(function*() {
      const fiber = yield* store.events.pipe(
        Stream.filter((event) => taskId === undefined || event.taskId === taskId),
        Stream.take(count),
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray),
        Effect.forkScoped
      )
      yield* settle
      return fiber
    })

  const isDone = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isSome)

  describe(name, () => {
    describe("tasksInsert and taskGet", () => {
      it.scoped("round-trips every field", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const retry = RetryPolicy.exponential({ initial: "100 millis", maxAttempts: 5, retryOn: ["Unavailable"] })
          const payload = { a: 1, b: [1, "x", null, { c: true }], d: { e: "ü 😀" }, f: 1.5 }
          const [inserted] = yield* store.tasksInsert({
            tasks: [{
              name: "send-email",
              queue: "email",
              priority: "high",
              payload,
              maxAttempts: 5,
              retry,
              timeoutMs: 10_000,
              softTimeoutMs: 5_000,
              runAt: new Date(T0),
              idempotencyKey: "key-1",
              parentId: "parent-1",
              tags: ["a", "b"]
            }]
          })
          assert.isTrue(inserted!.created)
          const task = yield* get(store, inserted!.task.id)
          assert.deepStrictEqual(task, inserted!.task)
          assert.strictEqual(task.name, "send-email")
          assert.strictEqual(task.queue, "email")
          assert.strictEqual(task.status, "pending")
          assert.strictEqual(task.priority, "high")
          assert.deepStrictEqual(task.payload, payload)
          assert.isNull(task.result)
          assert.isNull(task.error)
          assert.strictEqual(task.attempt, 0)
          assert.strictEqual(task.maxAttempts, 5)
          assert.isNotNull(task.retry)
          assert.deepStrictEqual(encodeRetry(task.retry!), encodeRetry(retry))
          assert.strictEqual(task.timeoutMs, 10_000)
          assert.strictEqual(task.softTimeoutMs, 5_000)
          assert.strictEqual(task.runAt.getTime(), T0)
          assert.strictEqual(task.createdAt.getTime(), T0)
          assert.strictEqual(task.updatedAt.getTime(), T0)
          assert.isNull(task.startedAt)
          assert.isNull(task.finishedAt)
          assert.isNull(task.leaseOwner)
          assert.isNull(task.leaseExpiresAt)
          assert.isFalse(task.cancelRequested)
          assert.strictEqual(task.progress, 0)
          assert.isNull(task.progressMessage)
          assert.strictEqual(task.idempotencyKey, "key-1")
          assert.strictEqual(task.parentId, "parent-1")
          assert.deepStrictEqual(task.tags, ["a", "b"])
        }))

      it.scoped("fills in defaults", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b] = yield* insertMany(store, [{ name: "x", payload: null }, { name: "x", payload: "hi" }])
          for (const task of [a!, b!]) {
            assert.isString(task.id)
            assert.isAbove(task.id.length, 0)
            assert.strictEqual(task.queue, "default")
            assert.strictEqual(task.priority, "normal")
            assert.strictEqual(task.status, "pending")
            assert.strictEqual(task.maxAttempts, 1)
            assert.isNull(task.retry)
            assert.isNull(task.timeoutMs)
            assert.isNull(task.softTimeoutMs)
            assert.strictEqual(task.runAt.getTime(), T0)
            assert.isNull(task.idempotencyKey)
            assert.isNull(task.parentId)
            assert.deepStrictEqual(task.tags, [])
          }
          assert.notStrictEqual(a!.id, b!.id)
          assert.isNull(a!.payload)
          assert.strictEqual((yield* get(store, b!.id)).payload, "hi")
          assert.isTrue(Option.isNone(yield* store.taskGet({ id: "no-such-task" })))
        }))

      it.scoped("inserts a batch in input order", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const inputs = Arr.makeBy(10, (i) => ({ name: `task-${i % 3}`, payload: { i } }))
          const results = yield* store.tasksInsert({ tasks: inputs })
          assert.strictEqual(results.length, 10)
          assert.strictEqual(new Set(results.map((r) => r.task.id)).size, 10)
          for (let i = 0; i < 10; i++) {
            assert.isTrue(results[i]!.created)
            assert.strictEqual(results[i]!.task.name, `task-${i % 3}`)
            assert.deepStrictEqual(results[i]!.task.payload, { i })
            assert.deepStrictEqual((yield* get(store, results[i]!.task.id)).payload, { i })
          }
          assert.deepStrictEqual(yield* store.tasksInsert({ tasks: [] }), [])
        }))

      it.scoped("inserts all of a batch or none", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          yield* insert(store, { id: "taken", name: "x", payload: 0 })
          const clash = yield* Effect.flip(store.tasksInsert({
            tasks: [{ name: "y", payload: 1 }, { id: "taken", name: "y", payload: 2 }]
          }))
          assert.strictEqual(clash._tag, "TaskStoreError")
          const twice = yield* Effect.flip(store.tasksInsert({
            tasks: [{ id: "twice", name: "z", payload: 1 }, { id: "twice", name: "z", payload: 2 }]
          }))
          assert.strictEqual(twice._tag, "TaskStoreError")
          assert.deepStrictEqual(yield* allIds(store), ["taken"])
          assert.strictEqual((yield* get(store, "taken")).name, "x")
        }))

      it.scoped("a future runAt makes the task scheduled", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [later, past] = yield* insertMany(store, [
            { name: "x", payload: 1, runAt: new Date(T0 + 60_000) },
            { name: "x", payload: 2, runAt: new Date(T0 - 60_000) }
          ])
          assert.strictEqual(later!.status, "scheduled")
          assert.strictEqual(later!.runAt.getTime(), T0 + 60_000)
          assert.strictEqual(past!.status, "pending")
          assert.strictEqual(past!.runAt.getTime(), T0 - 60_000)
        }))

      it.scoped("an idempotency key is unique among unfinished tasks of a name", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [first] = yield* store.tasksInsert({ tasks: [{ name: "x", payload: 1, idempotencyKey: "k" }] })
          assert.isTrue(first!.created)
          const [again, otherName, otherKey] = yield* store.tasksInsert({
            tasks: [
              { name: "x", payload: 2, idempotencyKey: "k" },
              { name: "y", payload: 3, idempotencyKey: "k" },
              { name: "x", payload: 4, idempotencyKey: "k2" }
            ]
          })
          assert.isFalse(again!.created)
          assert.strictEqual(again!.task.id, first!.task.id)
          assert.deepStrictEqual(again!.task.payload, 1)
          assert.isTrue(otherName!.created)
          assert.isTrue(otherKey!.created)

          // still unfinished while running
          yield* claimTask(store, first!.task)
          const [whileRunning] = yield* store.tasksInsert({ tasks: [{ name: "x", payload: 5, idempotencyKey: "k" }] })
          assert.isFalse(whileRunning!.created)
          assert.strictEqual(whileRunning!.task.id, first!.task.id)

          // once finished, the key is free again
          yield* store.taskComplete({ id: first!.task.id, workerId: "w1", result: null })
          const [afterFinish] = yield* store.tasksInsert({ tasks: [{ name: "x", payload: 6, idempotencyKey: "k" }] })
          assert.isTrue(afterFinish!.created)
          assert.notStrictEqual(afterFinish!.task.id, first!.task.id)

          // cancelled counts as finished too
          yield* store.taskCancel({ id: afterFinish!.task.id })
          const [afterCancel] = yield* store.tasksInsert({ tasks: [{ name: "x", payload: 7, idempotencyKey: "k" }] })
          assert.isTrue(afterCancel!.created)
        }))

      it.scoped("an idempotency key repeated within one batch creates one task", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const results = yield* store.tasksInsert({
            tasks: [
              { name: "x", payload: 1, idempotencyKey: "k" },
              { name: "x", payload: 2 },
              { name: "x", payload: 3, idempotencyKey: "k" }
            ]
          })
          assert.deepStrictEqual(results.map((r) => r.created), [true, true, false])
          assert.strictEqual(results[2]!.task.id, results[0]!.task.id)
          assert.deepStrictEqual(results[2]!.task.payload, 1)
          assert.strictEqual((yield* allIds(store)).length, 2)
        }))

      it.scoped("unique keys hold under concurrent inserts", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const results = yield* Effect.all(
            Arr.makeBy(16, (i) =>
              store.tasksInsert({
                tasks: [{ name: "x", payload: i, idempotencyKey: "same" }, { name: "y", payload: i }]
              })),
            { concurrency: "unbounded" }
          )
          const first = results.map((r) => r[0]!)
          assert.strictEqual(first.filter((r) => r.created).length, 1)
          assert.strictEqual(new Set(first.map((r) => r.task.id)).size, 1)
          assert.strictEqual((yield* allIds(store, { name: ["x"] })).length, 1)
          assert.strictEqual((yield* allIds(store, { name: ["y"] })).length, 16)
        }))
    })

    describe("tasksClaim", () => {
      it.scoped("claims by priority, then runAt, then id", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const at = (s: number) => new Date(T0 - s * 1000)
          yield* insertMany(store, [
            { id: "a", name: "x", payload: 0, priority: "low", runAt: at(50) },
            { id: "b", name: "x", payload: 0, priority: "normal", runAt: at(1) },
            { id: "c", name: "x", payload: 0, priority: "critical", runAt: at(1) },
            { id: "d", name: "x", payload: 0, priority: "normal", runAt: at(2) },
            { id: "f", name: "x", payload: 0, priority: "high", runAt: at(3) },
            { id: "e", name: "x", payload: 0, priority: "high", runAt: at(3) },
            { id: "g", name: "x", payload: 0, priority: "critical", runAt: at(5) }
          ])
          const order: Array<string> = []
          for (let i = 0; i < 7; i++) order.push((yield* claimOne(store)).id)
          assert.deepStrictEqual(order, ["g", "c", "e", "f", "d", "b", "a"])
          assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 }), [])
        }))

      it.scoped("does not claim a task before its runAt", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0, runAt: new Date(T0 + 10_000) })
          const claim = store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 })
          assert.strictEqual((yield* claim).length, 0)
          yield* TestClock.adjust("9999 millis")
          assert.strictEqual((yield* claim).length, 0)
          yield* TestClock.adjust("1 millis")
          const claimed = yield* claim
          assert.deepStrictEqual(claimed.map((t) => t.id), [task.id])
        }))

      it.scoped("claims at most limit tasks", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          yield* insertMany(store, Arr.makeBy(5, (i) => ({ name: "x", payload: i })))
          const claim = store.tasksClaim({ workerId: "w1", limit: 3, leaseMs: 1000 })
          assert.strictEqual((yield* claim).length, 3)
          assert.strictEqual((yield* claim).length, 2)
          assert.strictEqual((yield* claim).length, 0)
        }))

      it.scoped("filters by queues and by names", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [q1x, q2x, q1y, dx] = yield* insertMany(store, [
            { name: "x", queue: "q1", payload: 0 },
            { name: "x", queue: "q2", payload: 0 },
            { name: "y", queue: "q1", payload: 0 },
            { name: "x", payload: 0 }
          ])
          const ids = (claimed: ReadonlyArray<TaskRecord>) => claimed.map((t) => t.id).sort()
          assert.deepStrictEqual(
            ids(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000, queues: ["q1"], names: ["y"] })),
            [q1y!.id]
          )
          assert.deepStrictEqual(
            ids(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000, queues: ["q1", "q2"] })),
            [q1x!.id, q2x!.id].sort()
          )
          assert.deepStrictEqual(
            ids(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000, names: ["y"] })),
            []
          )
          assert.deepStrictEqual(
            ids(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000, names: ["x"] })),
            [dx!.id]
          )
        }))

      it.scoped("skips paused queues until resumed", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          yield* store.queuePause({ queue: "q1" })
          const [inPaused, other] = yield* insertMany(store, [
            { name: "x", queue: "q1", payload: 0, priority: "critical" },
            { name: "x", queue: "q2", payload: 0, priority: "low" }
          ])
          const claim = store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 })
          assert.deepStrictEqual((yield* claim).map((t) => t.id), [other!.id])
          assert.deepStrictEqual(
            yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000, queues: ["q1"] }),
            []
          )
          yield* store.queueResume({ queue: "q1" })
          assert.deepStrictEqual((yield* claim).map((t) => t.id), [inPaused!.id])
        }))

      it.scoped("starts an attempt under a lease", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0, maxAttempts: 3 })
          yield* TestClock.adjust("5 seconds")
          const claimed = yield* claimOne(store, "worker-a", 30_000)
          assert.strictEqual(claimed.id, task.id)
          assert.strictEqual(claimed.status, "running")
          assert.strictEqual(claimed.attempt, 1)
          assert.strictEqual(claimed.leaseOwner, "worker-a")
          assert.strictEqual(claimed.leaseExpiresAt?.getTime(), T0 + 35_000)
          assert.strictEqual(claimed.startedAt?.getTime(), T0 + 5_000)
          assert.strictEqual(claimed.updatedAt.getTime(), T0 + 5_000)
          assert.strictEqual(claimed.createdAt.getTime(), T0)
          assert.deepStrictEqual(yield* get(store, task.id), claimed)
        }))

      it.scoped("many claimers never claim one task twice", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const n = 200
          const claimers = options?.concurrentClaimers ?? 8
          yield* store.tasksInsert({
            tasks: Arr.makeBy(
              n,
              (i) => ({ name: "x", payload: i, priority: (["low", "normal", "high"] as const)[i % 3] })
            )
          })
          const claimer = (workerId: string) =>
            Effect.gen(function*() {
              const mine: Array<string> = []
              while (true) {
                const claimed = yield* store.tasksClaim({ workerId, limit: 7, leaseMs: 60_000 })
                if (claimed.length === 0) return mine
                for (const task of claimed) {
                  assert.strictEqual(task.leaseOwner, workerId)
                  mine.push(task.id)
                }
              }
            })
          const results = yield* Effect.all(Arr.makeBy(claimers, (i) => claimer(`w${i}`)), { concurrency: "unbounded" })
          const all = results.flat()
          assert.strictEqual(all.length, n)
          assert.strictEqual(new Set(all).size, n)
          const running = yield* store.tasksList({ filter: { status: ["running"] }, limit: 1000 })
          assert.strictEqual(running.items.length, n)
          assert.isTrue(running.items.every((task) => task.attempt === 1))
        }))
    })

    describe("tasksHeartbeat", () => {
      it.scoped("renews the leases a worker holds", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store, "w1", 1000)
          yield* TestClock.adjust("600 millis")
          const beat = yield* store.tasksHeartbeat({ workerId: "w1", ids: [task.id], leaseMs: 1000 })
          assert.deepStrictEqual(beat, { renewed: [task.id], lost: [], cancelRequested: [] })
          assert.strictEqual((yield* get(store, task.id)).leaseExpiresAt?.getTime(), T0 + 1600)
          yield* TestClock.adjust("600 millis") // past the first lease, within the renewed one
          assert.deepStrictEqual(yield* store.tasksRescue({}), [])
          assert.strictEqual((yield* get(store, task.id)).status, "running")
        }))

      it.scoped("reports leases held by another worker, rescued or unknown as lost", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b] = yield* insertMany(store, [{ name: "a", payload: 0 }, { name: "b", payload: 0 }])
          yield* claimTask(store, a!, "w1", 1000)
          yield* claimTask(store, b!, "w2", 60_000)
          yield* TestClock.adjust("1001 millis")
          const rescued = yield* store.tasksRescue({})
          assert.deepStrictEqual(rescued.map((t) => t.id), [a!.id])
          const beat = yield* store.tasksHeartbeat({ workerId: "w1", ids: [a!.id, b!.id, "unknown"], leaseMs: 1000 })
          assert.deepStrictEqual(beat.renewed, [])
          assert.deepStrictEqual([...beat.lost].sort(), [a!.id, b!.id, "unknown"].sort())
          assert.deepStrictEqual(beat.cancelRequested, [])
          // w2's lease is untouched
          assert.strictEqual((yield* get(store, b!.id)).leaseExpiresAt?.getTime(), T0 + 60_000)
        }))

      it.scoped("reports running tasks whose cancellation was requested", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b] = yield* insertMany(store, [{ name: "a", payload: 0 }, { name: "b", payload: 0 }])
          yield* claimTask(store, a!)
          yield* claimTask(store, b!)
          yield* store.taskCancel({ id: a!.id })
          const beat = yield* store.tasksHeartbeat({ workerId: "w1", ids: [a!.id, b!.id], leaseMs: 1000 })
          assert.deepStrictEqual([...beat.renewed].sort(), [a!.id, b!.id].sort())
          assert.deepStrictEqual(beat.lost, [])
          assert.deepStrictEqual(beat.cancelRequested, [a!.id])
        }))
    })

    describe("taskComplete, taskFail and taskProgress", () => {
      it.scoped("completes a task with its result", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store)
          yield* TestClock.adjust("2 seconds")
          const result = { rows: [1, 2, 3], ok: true, note: null }
          const done = yield* store.taskComplete({ id: task.id, workerId: "w1", result })
          assert.strictEqual(done.status, "succeeded")
          assert.deepStrictEqual(done.result, result)
          assert.strictEqual(done.finishedAt?.getTime(), T0 + 2000)
          assert.strictEqual(done.startedAt?.getTime(), T0)
          assert.strictEqual(done.updatedAt.getTime(), T0 + 2000)
          assert.isNull(done.leaseOwner)
          assert.isNull(done.leaseExpiresAt)
          assert.strictEqual(done.attempt, 1)
          assert.deepStrictEqual(yield* get(store, task.id), done)
        }))

      it.scoped("refuses a worker that does not hold the lease", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [pending, running] = yield* insertMany(store, [{ name: "p", payload: 0 }, { name: "r", payload: 0 }])
          yield* claimTask(store, running!, "w1")
          const attempts = (id: string, workerId: string) => [
            store.taskComplete({ id, workerId, result: 1 }),
            store.taskFail({ id, workerId, error: error("Boom"), outcome: { _tag: "failed" } }),
            store.taskProgress({ id, workerId, progress: 0.5 })
          ]
          for (
            const effect of [
              ...attempts(running!.id, "w2"),
              ...attempts(pending!.id, "w1"),
              ...attempts("unknown", "w1")
            ]
          ) {
            const failure = yield* Effect.flip(
              effect as Effect.Effect<unknown, TaskStore.LeaseLost | TaskStore.TaskStoreError>
            )
            assert.strictEqual(failure._tag, "LeaseLost")
          }
          const lost = yield* Effect.flip(store.taskComplete({ id: running!.id, workerId: "w2", result: 1 }))
          assert.deepStrictEqual(lost, new TaskStore.LeaseLost({ taskId: running!.id, workerId: "w2" }))
          assert.strictEqual((yield* get(store, running!.id)).status, "running")
          assert.strictEqual((yield* get(store, pending!.id)).status, "pending")
        }))

      it.scoped("refuses after a release", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store, "w1")
          assert.strictEqual(yield* store.tasksRelease({ workerId: "w1", ids: [task.id] }), 1)
          const failure = yield* Effect.flip(store.taskComplete({ id: task.id, workerId: "w1", result: 1 }))
          assert.strictEqual(failure._tag, "LeaseLost")
          const progress = yield* Effect.flip(store.taskProgress({ id: task.id, workerId: "w1", progress: 1 }))
          assert.strictEqual(progress._tag, "LeaseLost")
        }))

      it.scoped("refuses to complete a task whose lease was lost, even while another worker holds it", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0, maxAttempts: 3 })
          yield* claimOne(store, "w1", 1000)
          yield* TestClock.adjust("1001 millis")
          assert.strictEqual((yield* store.tasksRescue({})).length, 1)
          const stale = yield* Effect.flip(store.taskComplete({ id: task.id, workerId: "w1", result: "stale" }))
          assert.strictEqual(stale._tag, "LeaseLost")
          const again = yield* claimOne(store, "w2", 1000)
          assert.strictEqual(again.attempt, 2)
          const staleWhileHeld = yield* Effect.flip(
            store.taskComplete({ id: task.id, workerId: "w1", result: "stale" })
          )
          assert.strictEqual(staleWhileHeld._tag, "LeaseLost")
          const staleFail = yield* Effect.flip(
            store.taskFail({ id: task.id, workerId: "w1", error: error("Boom"), outcome: { _tag: "dead" } })
          )
          assert.strictEqual(staleFail._tag, "LeaseLost")
          const done = yield* store.taskComplete({ id: task.id, workerId: "w2", result: "fresh" })
          assert.strictEqual(done.status, "succeeded")
          assert.strictEqual(done.result, "fresh")
          const twice = yield* Effect.flip(store.taskComplete({ id: task.id, workerId: "w2", result: "again" }))
          assert.strictEqual(twice._tag, "LeaseLost")
          assert.strictEqual((yield* get(store, task.id)).result, "fresh")
        }))

      it.scoped("a worker whose lease expired may still finish the task until it is rescued", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b] = yield* insertMany(store, [{ name: "a", payload: 0 }, { name: "b", payload: 0 }])
          yield* claimTask(store, a!, "w1", 1000)
          yield* claimTask(store, b!, "w1", 1000)
          yield* TestClock.adjust("5 seconds")
          yield* store.taskProgress({ id: a!.id, workerId: "w1", progress: 0.9 })
          const beat = yield* store.tasksHeartbeat({ workerId: "w1", ids: [b!.id], leaseMs: 1000 })
          assert.deepStrictEqual(beat, { renewed: [b!.id], lost: [], cancelRequested: [] })
          assert.strictEqual((yield* get(store, b!.id)).leaseExpiresAt?.getTime(), T0 + 6000)
          assert.strictEqual((yield* store.taskComplete({ id: a!.id, workerId: "w1", result: 1 })).status, "succeeded")
          const failed = yield* store.taskFail({
            id: b!.id,
            workerId: "w1",
            error: error("E"),
            outcome: { _tag: "failed" }
          })
          assert.strictEqual(failed.status, "failed")
          assert.deepStrictEqual(yield* store.tasksRescue({}), [])
        }))

      it.scoped("a retry outcome schedules the next attempt at runAt", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0, maxAttempts: 3 })
          yield* claimOne(store)
          const failure = error("Unavailable")
          const failed = yield* store.taskFail({
            id: task.id,
            workerId: "w1",
            error: failure,
            outcome: { _tag: "retry", runAt: new Date(T0 + 5000) }
          })
          assert.strictEqual(failed.status, "scheduled")
          assert.strictEqual(failed.runAt.getTime(), T0 + 5000)
          assert.deepStrictEqual(failed.error, failure)
          assert.strictEqual(failed.attempt, 1)
          assert.isNull(failed.finishedAt)
          assert.isNull(failed.leaseOwner)
          assert.isNull(failed.leaseExpiresAt)
          assert.deepStrictEqual(yield* get(store, task.id), failed)
          const claim = store.tasksClaim({ workerId: "w2", limit: 1, leaseMs: 1000 })
          assert.strictEqual((yield* claim).length, 0)
          yield* TestClock.adjust("5 seconds")
          const [again] = yield* claim
          assert.strictEqual(again?.id, task.id)
          assert.strictEqual(again?.attempt, 2)
          assert.strictEqual(again?.leaseOwner, "w2")
        }))

      it.scoped("finishing outcomes store the error", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const outcomes = ["failed", "dead", "timed-out", "cancelled"] as const
          const tasks = yield* insertMany(store, outcomes.map((outcome) => ({ name: outcome, payload: 0 })))
          for (const task of tasks) yield* claimTask(store, task)
          yield* TestClock.adjust("1 second")
          for (const [i, outcome] of outcomes.entries()) {
            const failure = error(`E-${outcome}`)
            const failed = yield* store.taskFail({
              id: tasks[i]!.id,
              workerId: "w1",
              error: failure,
              outcome: { _tag: outcome }
            })
            assert.strictEqual(failed.status, outcome)
            assert.deepStrictEqual(failed.error, failure)
            assert.strictEqual(failed.finishedAt?.getTime(), T0 + 1000)
            assert.isNull(failed.leaseOwner)
            assert.isNull(failed.result)
            assert.deepStrictEqual(yield* get(store, failed.id), failed)
          }
          assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 }), [])
        }))

      it.scoped("stores an error's encoded value", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store)
          const failure = { ...error("NotFound"), value: { _tag: "NotFound", id: 42 } }
          const failed = yield* store.taskFail({
            id: task.id,
            workerId: "w1",
            error: failure,
            outcome: { _tag: "failed" }
          })
          assert.deepStrictEqual(failed.error, failure)
          assert.deepStrictEqual((yield* get(store, task.id)).error, failure)
        }))

      it.scoped("records progress", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store)
          yield* store.taskProgress({ id: task.id, workerId: "w1", progress: 0.25, message: "a quarter" })
          let current = yield* get(store, task.id)
          assert.strictEqual(current.progress, 0.25)
          assert.strictEqual(current.progressMessage, "a quarter")
          yield* store.taskProgress({ id: task.id, workerId: "w1", progress: 0.5 })
          current = yield* get(store, task.id)
          assert.strictEqual(current.progress, 0.5)
          assert.strictEqual(current.status, "running")
        }))
    })

    describe("tasksComplete and tasksFail (batches)", () => {
      it.scoped("completes the items still held, in input order, and refuses the rest", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, c, d, pending] = yield* insertMany(store, [
            { name: "a", queue: "qa", payload: 0 },
            { name: "b", payload: 0 },
            { name: "c", payload: 0, maxAttempts: 3 },
            { name: "d", payload: 0 },
            { name: "p", payload: 0 }
          ])
          yield* claimTask(store, a!, "w1")
          yield* claimTask(store, b!, "w1")
          yield* claimTask(store, c!, "w2")
          yield* claimTask(store, d!, "w1")
          yield* TestClock.adjust("2 seconds")
          const events = yield* collectEvents(store, undefined, 3)
          const outcomes = yield* store.tasksComplete({
            items: [
              { id: a!.id, workerId: "w1", result: { rows: [1, 2], note: null } },
              { id: c!.id, workerId: "w1", result: 1 }, // held by w2
              { id: pending!.id, workerId: "w1", result: 1 }, // not running
              { id: "unknown", workerId: "w1", result: 1 },
              { id: b!.id, workerId: "w1", result: "text" },
              { id: a!.id, workerId: "w1", result: "twice" }, // a repeated id: only the first applies
              { id: d!.id, workerId: "w1", result: undefined }
            ]
          })
          assert.deepStrictEqual(outcomes, [
            "settled",
            "lease-lost",
            "lease-lost",
            "lease-lost",
            "settled",
            "lease-lost",
            "settled"
          ])
          const done = yield* get(store, a!.id)
          assert.strictEqual(done.status, "succeeded")
          assert.deepStrictEqual(done.result, { rows: [1, 2], note: null })
          assert.strictEqual(done.finishedAt?.getTime(), T0 + 2000)
          assert.strictEqual(done.updatedAt.getTime(), T0 + 2000)
          assert.strictEqual(done.startedAt?.getTime(), T0)
          assert.isNull(done.leaseOwner)
          assert.isNull(done.leaseExpiresAt)
          assert.isFalse(done.cancelRequested)
          assert.strictEqual(done.attempt, 1)
          assert.strictEqual((yield* get(store, b!.id)).result, "text")
          assert.isNull((yield* get(store, d!.id)).result)
          const held = yield* get(store, c!.id)
          assert.strictEqual(held.status, "running")
          assert.strictEqual(held.leaseOwner, "w2")
          assert.strictEqual((yield* get(store, pending!.id)).status, "pending")
          const published = yield* Fiber.join(events)
          assert.deepStrictEqual(
            published.map((e) => [e.type, e.taskId, e.status, e.attempt, e.at.getTime()]),
            [
              ["succeeded", a!.id, "succeeded", 1, T0 + 2000],
              ["succeeded", b!.id, "succeeded", 1, T0 + 2000],
              ["succeeded", d!.id, "succeeded", 1, T0 + 2000]
            ]
          )
          assert.strictEqual(published[0]!.name, "a")
          assert.strictEqual(published[0]!.queue, "qa")
          assert.deepStrictEqual(published[0]!.result, { rows: [1, 2], note: null })
          assert.strictEqual(published[1]!.result, "text")
          // settled once: a second batch finds nothing running
          assert.deepStrictEqual(
            yield* store.tasksComplete({ items: [{ id: a!.id, workerId: "w1", result: 2 }] }),
            ["lease-lost"]
          )
          assert.deepStrictEqual(yield* store.tasksComplete({ items: [] }), [])
        }))

      it.scoped("fails a batch with each item's outcome: retry, failed, dead, timed-out, cancelled", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const names = ["retry", "failed", "dead", "timed-out", "cancelled", "other"] as const
          const tasks = yield* insertMany(store, names.map((name) => ({ name, payload: 0, maxAttempts: 3 })))
          for (const task of tasks) yield* claimTask(store, task, task.name === "other" ? "w2" : "w1")
          yield* TestClock.adjust("1 second")
          const events = yield* collectEvents(store, undefined, 5)
          const failure = (tag: string) => ({ ...error(tag), value: { _tag: tag, n: 1 } })
          const outcomes = yield* store.tasksFail({
            items: [
              {
                id: tasks[0]!.id,
                workerId: "w1",
                error: failure("A"),
                outcome: { _tag: "retry", runAt: new Date(T0 + 5000) }
              },
              { id: tasks[1]!.id, workerId: "w1", error: failure("B"), outcome: { _tag: "failed" } },
              { id: tasks[2]!.id, workerId: "w1", error: failure("C"), outcome: { _tag: "dead" } },
              { id: tasks[3]!.id, workerId: "w1", error: failure("D"), outcome: { _tag: "timed-out" } },
              { id: tasks[4]!.id, workerId: "w1", error: failure("E"), outcome: { _tag: "cancelled" } },
              { id: tasks[5]!.id, workerId: "w1", error: failure("F"), outcome: { _tag: "failed" } }
            ]
          })
          assert.deepStrictEqual(outcomes, ["settled", "settled", "settled", "settled", "settled", "lease-lost"])
          const retried = yield* get(store, tasks[0]!.id)
          assert.strictEqual(retried.status, "scheduled")
          assert.strictEqual(retried.runAt.getTime(), T0 + 5000)
          assert.isNull(retried.finishedAt)
          assert.isNull(retried.leaseOwner)
          assert.strictEqual(retried.attempt, 1)
          assert.deepStrictEqual(retried.error, failure("A"))
          for (const [i, status] of (["failed", "dead", "timed-out", "cancelled"] as const).entries()) {
            const task = yield* get(store, tasks[i + 1]!.id)
            assert.strictEqual(task.status, status)
            assert.strictEqual(task.finishedAt?.getTime(), T0 + 1000)
            assert.strictEqual(task.runAt.getTime(), T0)
            assert.deepStrictEqual(task.error, failure("BCDE"[i]!))
            assert.isNull(task.leaseOwner)
            assert.isNull(task.leaseExpiresAt)
          }
          assert.strictEqual((yield* get(store, tasks[5]!.id)).status, "running")
          const published = yield* Fiber.join(events)
          assert.deepStrictEqual(
            published.map((e) => [e.type, e.status, e.attempt, e.error?.tag, e.at.getTime()]),
            [
              ["retrying", "scheduled", 1, "A", T0 + 1000],
              ["failed", "failed", 1, "B", T0 + 1000],
              ["dead", "dead", 1, "C", T0 + 1000],
              ["timed-out", "timed-out", 1, "D", T0 + 1000],
              ["cancelled", "cancelled", 1, "E", T0 + 1000]
            ]
          )
          // the retried task comes back at its runAt
          assert.strictEqual((yield* store.tasksClaim({ workerId: "w3", limit: 10, leaseMs: 1000 })).length, 0)
          yield* TestClock.adjust("4 seconds")
          const [again] = yield* store.tasksClaim({ workerId: "w3", limit: 10, leaseMs: 1000 })
          assert.strictEqual(again?.id, tasks[0]!.id)
          assert.strictEqual(again?.attempt, 2)
          assert.deepStrictEqual(yield* store.tasksFail({ items: [] }), [])
        }))

      it.scoped("a retry in a batch wakes awaitWork", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0, maxAttempts: 2 })
          yield* claimOne(store)
          const waiter = yield* Effect.fork(store.awaitWork({ timeoutMs: 60_000 }))
          yield* settle
          assert.isFalse(yield* isDone(waiter))
          yield* store.tasksFail({
            items: [{ id: task.id, workerId: "w1", error: error("E"), outcome: { _tag: "retry", runAt: new Date(T0) } }]
          })
          yield* Fiber.join(waiter)
        }))

      it.scoped("a batch of one worker and one result refuses what that worker does not hold", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, other, pending] = yield* insertMany(store, [
            { name: "a", payload: 0 },
            { name: "b", payload: 0 },
            { name: "other", payload: 0 },
            { name: "p", payload: 0 }
          ])
          yield* claimTask(store, a!, "w1")
          yield* claimTask(store, b!, "w1")
          yield* claimTask(store, other!, "w2")
          const outcomes = yield* store.tasksComplete({
            items: [a!, other!, pending!, { id: "unknown" }, b!, a!].map(({ id }) => ({
              id,
              workerId: "w1",
              result: undefined
            }))
          })
          assert.deepStrictEqual(outcomes, [
            "settled",
            "lease-lost",
            "lease-lost",
            "lease-lost",
            "settled",
            "lease-lost"
          ])
          for (const task of [a!, b!]) {
            const done = yield* get(store, task.id)
            assert.strictEqual(done.status, "succeeded")
            assert.isNull(done.result)
            assert.isNull(done.leaseOwner)
          }
          assert.strictEqual((yield* get(store, other!.id)).leaseOwner, "w2")
          assert.strictEqual((yield* get(store, pending!.id)).status, "pending")
        }))

      it.scoped("a batch of many completions", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const n = 1500
          const tasks = yield* insertMany(store, Arr.makeBy(n, (i) => ({ name: "bulk", payload: i })))
          const claimed = yield* store.tasksClaim({ workerId: "w1", limit: n, leaseMs: 60_000 })
          assert.strictEqual(claimed.length, n)
          const outcomes = yield* store.tasksComplete({
            items: tasks.map((task) => ({ id: task.id, workerId: "w1", result: { i: task.payload } }))
          })
          assert.isTrue(outcomes.every((outcome) => outcome === "settled"))
          const stats = yield* store.tasksStats({})
          assert.strictEqual(stats.byStatus.succeeded, n)
          assert.deepStrictEqual((yield* get(store, tasks[n - 1]!.id)).result, { i: n - 1 })
        }))
    })

    describe("tasksRelease and tasksRescue", () => {
      it.scoped("release gives held tasks back to pending and undoes the attempt", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, c] = yield* insertMany(store, [
            { name: "a", payload: 0, maxAttempts: 2 },
            { name: "b", payload: 0 },
            { name: "c", payload: 0 }
          ])
          yield* claimTask(store, a!, "w1")
          yield* claimTask(store, b!, "w2")
          assert.strictEqual(yield* store.tasksRelease({ workerId: "w1", ids: [a!.id, b!.id, c!.id, "unknown"] }), 1)
          const released = yield* get(store, a!.id)
          assert.strictEqual(released.status, "pending")
          assert.strictEqual(released.attempt, 0)
          assert.isNull(released.leaseOwner)
          assert.isNull(released.leaseExpiresAt)
          assert.isNull(released.finishedAt)
          assert.strictEqual((yield* get(store, b!.id)).status, "running")
          assert.strictEqual((yield* get(store, c!.id)).status, "pending")
          const again = yield* claimTask(store, a!, "w3")
          assert.strictEqual(again.attempt, 1)
          assert.strictEqual(yield* store.tasksRelease({ workerId: "w1", ids: [] }), 0)
        }))

      it.scoped("release ends a task whose cancellation was requested as cancelled", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store)
          yield* store.taskCancel({ id: task.id })
          assert.strictEqual(yield* store.tasksRelease({ workerId: "w1", ids: [task.id] }), 1)
          const cancelled = yield* get(store, task.id)
          assert.strictEqual(cancelled.status, "cancelled")
          assert.isNotNull(cancelled.finishedAt)
          assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 }), [])
        }))

      it.scoped("rescue returns expired leases to pending and leaves the others alone", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [short, long, lastAttempt] = yield* insertMany(store, [
            { name: "short", payload: 0, maxAttempts: 3 },
            { name: "long", payload: 0, maxAttempts: 3 },
            { name: "last", payload: 0, maxAttempts: 1 }
          ])
          yield* claimTask(store, short!, "w1", 1000)
          yield* claimTask(store, long!, "w2", 5000)
          yield* claimTask(store, lastAttempt!, "w1", 1000)
          const events = yield* collectEvents(store, undefined, 2)
          yield* TestClock.adjust("1000 millis")
          assert.deepStrictEqual(yield* store.tasksRescue({}), [], "a lease expiring now is not expired yet")
          yield* TestClock.adjust("1 millis")
          const rescued = yield* store.tasksRescue({})
          assert.deepStrictEqual(rescued.map((t) => t.id).sort(), [short!.id, lastAttempt!.id].sort())

          const back = yield* get(store, short!.id)
          assert.strictEqual(back.status, "pending")
          assert.strictEqual(back.attempt, 1, "the crashed attempt counts")
          assert.isNull(back.leaseOwner)
          assert.isNull(back.leaseExpiresAt)
          assert.strictEqual(back.error?.tag, "LeaseExpired")
          assert.deepStrictEqual(rescued.find((t) => t.id === short!.id), back)

          const dead = yield* get(store, lastAttempt!.id)
          assert.strictEqual(dead.status, "dead")
          assert.strictEqual(dead.finishedAt?.getTime(), T0 + 1001)
          assert.strictEqual(dead.error?.tag, "LeaseExpired")

          const untouched = yield* get(store, long!.id)
          assert.strictEqual(untouched.status, "running")
          assert.strictEqual(untouched.leaseOwner, "w2")

          const published = yield* Fiber.join(events)
          assert.deepStrictEqual(
            published.map((e) => [e.taskId, e.type, e.status]).sort(),
            [[short!.id, "rescued", "pending"], [lastAttempt!.id, "dead", "dead"]].sort()
          )
          assert.deepStrictEqual(yield* store.tasksRescue({}), [])
          const reclaimed = yield* claimOne(store, "w3")
          assert.strictEqual(reclaimed.id, short!.id)
          assert.strictEqual(reclaimed.attempt, 2)
        }))

      it.scoped("rescue takes at most limit tasks", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          yield* insertMany(store, Arr.makeBy(5, (i) => ({ name: "x", payload: i, maxAttempts: 2 })))
          yield* store.tasksClaim({ workerId: "w1", limit: 5, leaseMs: 1000 })
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual((yield* store.tasksRescue({ limit: 2 })).length, 2)
          assert.strictEqual((yield* store.tasksRescue({})).length, 3)
          assert.strictEqual((yield* allIds(store, { status: ["pending"] })).length, 5)
        }))
    })

    describe("taskCancel", () => {
      it.scoped("cancels pending and scheduled tasks at once", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [pending, scheduled] = yield* insertMany(store, [
            { name: "x", payload: 0 },
            { name: "x", payload: 0, runAt: new Date(T0 + 60_000) }
          ])
          yield* TestClock.adjust("1 second")
          for (const task of [pending!, scheduled!]) {
            const cancelled = yield* store.taskCancel({ id: task.id })
            assert.strictEqual(cancelled.status, "cancelled")
            assert.strictEqual(cancelled.finishedAt?.getTime(), T0 + 1000)
            assert.deepStrictEqual(yield* get(store, task.id), cancelled)
          }
          yield* TestClock.adjust("1 minute")
          assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 }), [])
        }))

      it.scoped("requests cancellation of a running task; its worker ends it cancelled", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* claimOne(store)
          const requested = yield* store.taskCancel({ id: task.id })
          assert.strictEqual(requested.status, "running")
          assert.isTrue(requested.cancelRequested)
          assert.strictEqual(requested.leaseOwner, "w1")
          const twice = yield* store.taskCancel({ id: task.id })
          assert.strictEqual(twice.status, "running")
          assert.isTrue(twice.cancelRequested)
          const beat = yield* store.tasksHeartbeat({ workerId: "w1", ids: [task.id], leaseMs: 1000 })
          assert.deepStrictEqual(beat.cancelRequested, [task.id])
          const cancelled = yield* store.taskFail({
            id: task.id,
            workerId: "w1",
            error: error("Interrupted"),
            outcome: { _tag: "cancelled" }
          })
          assert.strictEqual(cancelled.status, "cancelled")
          assert.isFalse(cancelled.cancelRequested)
          assert.isNotNull(cancelled.finishedAt)
        }))

      it.scoped("refuses finished tasks and unknown ids", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [done, cancelled] = yield* insertMany(store, [{ name: "done", payload: 0 }, { name: "c", payload: 0 }])
          yield* claimTask(store, done!)
          yield* store.taskComplete({ id: done!.id, workerId: "w1", result: 1 })
          yield* store.taskCancel({ id: cancelled!.id })
          const illegal = yield* Effect.flip(store.taskCancel({ id: done!.id }))
          assert.strictEqual(illegal._tag, "IllegalTransition")
          if (illegal._tag === "IllegalTransition") {
            assert.strictEqual(illegal.taskId, done!.id)
            assert.strictEqual(illegal.from, "succeeded")
            assert.strictEqual(illegal.to, "cancelled")
          }
          const again = yield* Effect.flip(store.taskCancel({ id: cancelled!.id }))
          assert.strictEqual(again._tag, "IllegalTransition")
          const missing = yield* Effect.flip(store.taskCancel({ id: "unknown" }))
          assert.strictEqual(missing._tag, "TaskNotFound")
          assert.strictEqual((yield* get(store, done!.id)).status, "succeeded")
        }))
    })

    describe("taskRetry", () => {
      /** Inserts a task and ends it with `outcome` on its first attempt. */
      const finish = (store: Store, outcome: "succeeded" | "failed" | "dead" | "timed-out" | "cancelled") =>
        Effect.gen(function*() {
          const task = yield* insert(store, { name: `finish-${outcome}`, payload: 0, maxAttempts: 1 })
          yield* claimTask(store, task)
          return outcome === "succeeded"
            ? yield* store.taskComplete({ id: task.id, workerId: "w1", result: "ok" })
            : yield* store.taskFail({ id: task.id, workerId: "w1", error: error("Boom"), outcome: { _tag: outcome } })
        })

      it.scoped("retries dead, failed, cancelled and timed-out tasks", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          for (const outcome of ["failed", "dead", "timed-out", "cancelled"] as const) {
            const task = yield* finish(store, outcome)
            yield* TestClock.adjust("1 second")
            const retried = yield* store.taskRetry({ id: task.id })
            assert.strictEqual(retried.status, "pending")
            assert.strictEqual(retried.attempt, 1)
            assert.strictEqual(retried.maxAttempts, 2)
            assert.isNull(retried.finishedAt)
            assert.isNull(retried.result)
            assert.deepStrictEqual(yield* get(store, task.id), retried)
            const claimed = yield* claimTask(store, task)
            assert.strictEqual(claimed.attempt, 2)
            yield* store.taskComplete({ id: task.id, workerId: "w1", result: outcome })
          }
        }))

      it.scoped("extraAttempts and runAt", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const task = yield* finish(store, "dead")
          const retried = yield* store.taskRetry({ id: task.id, extraAttempts: 3, runAt: new Date(T0 + 10_000) })
          assert.strictEqual(retried.status, "scheduled")
          assert.strictEqual(retried.maxAttempts, 4)
          assert.strictEqual(retried.runAt.getTime(), T0 + 10_000)
          assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 1000 }), [])
          yield* TestClock.adjust("10 seconds")
          assert.strictEqual((yield* claimOne(store)).id, task.id)

          // never lowers maxAttempts
          const failedEarly = yield* insert(store, { name: "early", payload: 0, maxAttempts: 5 })
          yield* claimTask(store, failedEarly)
          yield* store.taskFail({
            id: failedEarly.id,
            workerId: "w1",
            error: error("Bad"),
            outcome: { _tag: "failed" }
          })
          assert.strictEqual((yield* store.taskRetry({ id: failedEarly.id })).maxAttempts, 5)
        }))

      it.scoped("refuses succeeded and unfinished tasks and unknown ids", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const done = yield* finish(store, "succeeded")
          const refused = yield* Effect.flip(store.taskRetry({ id: done.id }))
          assert.strictEqual(refused._tag, "IllegalTransition")
          if (refused._tag === "IllegalTransition") assert.strictEqual(refused.from, "succeeded")
          const pending = yield* insert(store, { name: "p", payload: 0 })
          assert.strictEqual((yield* Effect.flip(store.taskRetry({ id: pending.id })))._tag, "IllegalTransition")
          const running = yield* insert(store, { name: "r", payload: 0 })
          yield* claimTask(store, running)
          assert.strictEqual((yield* Effect.flip(store.taskRetry({ id: running.id })))._tag, "IllegalTransition")
          assert.strictEqual((yield* Effect.flip(store.taskRetry({ id: "unknown" })))._tag, "TaskNotFound")
          assert.strictEqual((yield* get(store, done.id)).status, "succeeded")
          assert.strictEqual((yield* get(store, running.id)).status, "running")
        }))

      it.scoped("refuses to make a second unfinished task with the same idempotency key", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const first = yield* insert(store, { name: "x", payload: 1, idempotencyKey: "k" })
          yield* store.taskCancel({ id: first.id })
          const second = yield* insert(store, { name: "x", payload: 2, idempotencyKey: "k" })
          const refused = yield* Effect.flip(store.taskRetry({ id: first.id }))
          assert.strictEqual(refused._tag, "TaskStoreError")
          assert.strictEqual((yield* get(store, first.id)).status, "cancelled")
          yield* store.taskCancel({ id: second.id })
          assert.strictEqual((yield* store.taskRetry({ id: first.id })).status, "pending")
          const [dup] = yield* store.tasksInsert({ tasks: [{ name: "x", payload: 3, idempotencyKey: "k" }] })
          assert.isFalse(dup!.created)
          assert.strictEqual(dup!.task.id, first.id)
        }))
    })

    describe("logs", () => {
      it.scoped("appends and reads log lines in order", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b] = yield* insertMany(store, [{ name: "a", payload: 0 }, { name: "b", payload: 0 }])
          const line = (taskId: string, i: number, level: "debug" | "info" | "warn" | "error" = "info") => ({
            taskId,
            attempt: 1,
            at: new Date(T0 + Math.floor(i / 2)),
            level,
            message: `line ${i}`
          })
          assert.deepStrictEqual(yield* store.taskLogs({ id: a!.id }), [])
          yield* store.taskLogAppend({ lines: [line(a!.id, 0), line(b!.id, 0, "warn"), line(a!.id, 1, "debug")] })
          yield* store.taskLogAppend({ lines: [line(a!.id, 2, "error"), line(a!.id, 3)] })
          yield* store.taskLogAppend({ lines: [] })
          assert.deepStrictEqual(yield* store.taskLogs({ id: a!.id }), [
            line(a!.id, 0),
            line(a!.id, 1, "debug"),
            line(a!.id, 2, "error"),
            line(a!.id, 3)
          ])
          assert.deepStrictEqual(yield* store.taskLogs({ id: b!.id }), [line(b!.id, 0, "warn")])
        }))
    })

    describe("tasksList", () => {
      it.scoped("filters by status, name, queue, tag and parent", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, c, d] = yield* insertMany(store, [
            { id: "a", name: "x", queue: "q1", payload: 0, tags: ["red", "blue"], parentId: "p1" },
            { id: "b", name: "y", queue: "q1", payload: 0, tags: ["blue"] },
            { id: "c", name: "x", queue: "q2", payload: 0, parentId: "p1" },
            { id: "d", name: "z", queue: "q2", payload: 0, runAt: new Date(T0 + 1000) }
          ])
          yield* claimTask(store, b!)
          const ids = (filter: TaskStore.TaskStore.Filter) =>
            Effect.map(allIds(store, filter), (ids) => [...ids].sort())
          assert.deepStrictEqual(yield* ids({}), ["a", "b", "c", "d"])
          assert.deepStrictEqual(yield* ids({ status: ["pending"] }), ["a", "c"])
          assert.deepStrictEqual(yield* ids({ status: ["running", "scheduled"] }), ["b", "d"])
          assert.deepStrictEqual(yield* ids({ name: ["x"] }), ["a", "c"])
          assert.deepStrictEqual(yield* ids({ name: ["y", "z"] }), ["b", "d"])
          assert.deepStrictEqual(yield* ids({ queue: ["q2"] }), ["c", "d"])
          assert.deepStrictEqual(yield* ids({ tag: "blue" }), ["a", "b"])
          assert.deepStrictEqual(yield* ids({ tag: "red" }), ["a"])
          assert.deepStrictEqual(yield* ids({ tag: "green" }), [])
          assert.deepStrictEqual(yield* ids({ tag: ["blue", "red"] }), ["a"])
          assert.deepStrictEqual(yield* ids({ tag: ["blue"] }), ["a", "b"])
          assert.deepStrictEqual(yield* ids({ tag: ["blue", "green"] }), [])
          assert.deepStrictEqual(yield* ids({ parentId: "p1" }), ["a", "c"])
          assert.deepStrictEqual(yield* ids({ name: ["x"], queue: ["q1"], status: ["pending"], tag: "red" }), ["a"])
          assert.deepStrictEqual(yield* ids({ name: ["x"], queue: ["q1"], status: ["running"] }), [])
          void [a, c, d]
        }))

      it.scoped("sorts by every key in both directions, ties by id", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const priorities = ["low", "critical", "normal", "high"] as const
          // createdAt repeats (two tasks per millisecond), runAt and updatedAt vary independently
          for (let i = 0; i < 12; i++) {
            yield* insert(store, {
              id: `t${String((i * 7) % 12).padStart(2, "0")}`,
              name: "x",
              payload: i,
              priority: priorities[i % 4]!,
              runAt: new Date(T0 - ((i * 5) % 3) * 1000)
            })
            if (i % 2 === 1) yield* TestClock.adjust("1 millis")
          }
          yield* TestClock.adjust("1 second")
          // touch some tasks to move their updatedAt
          yield* claimOne(store, "w1")
          yield* TestClock.adjust("1 second")
          yield* store.taskCancel({ id: "t03" })
          const records = (yield* store.tasksList({ limit: 100 })).items
          assert.strictEqual(records.length, 12)
          const importance = { critical: 3, high: 2, normal: 1, low: 0 }
          const keyOf = (task: TaskRecord, key: TaskStore.TaskStore.SortKey): number =>
            key === "priority" ? importance[task.priority] : task[key].getTime()
          for (const sortBy of ["createdAt", "runAt", "updatedAt", "priority"] as const) {
            for (const order of ["asc", "desc"] as const) {
              const expected = [...records].sort((a, b) => {
                const d = keyOf(a, sortBy) - keyOf(b, sortBy) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
                return order === "asc" ? d : -d
              }).map((t) => t.id)
              const page = yield* store.tasksList({ sortBy, order, limit: 100 })
              assert.deepStrictEqual(page.items.map((t) => t.id), expected, `${sortBy} ${order}`)
              assert.isUndefined(page.nextCursor)
              // and the same through pages of 5
              const paged: Array<string> = []
              let cursor: string | undefined
              do {
                const next = yield* store.tasksList({ sortBy, order, limit: 5, cursor })
                paged.push(...next.items.map((t) => t.id))
                cursor = next.nextCursor
              } while (cursor !== undefined)
              assert.deepStrictEqual(paged, expected, `${sortBy} ${order} paged`)
            }
          }
          const byDefault = yield* store.tasksList({})
          assert.deepStrictEqual(
            byDefault.items.map((t) => t.id),
            [...records].sort((a, b) =>
              b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
            ).map((t) => t.id),
            "createdAt desc by default"
          )
        }))

      it.scoped("pages of 50 by default; limit is clamped to 1..1000", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          yield* store.tasksInsert({ tasks: Arr.makeBy(60, (i) => ({ name: "x", payload: i })) })
          const first = yield* store.tasksList({})
          assert.strictEqual(first.items.length, 50)
          assert.isString(first.nextCursor)
          const second = yield* store.tasksList({ cursor: first.nextCursor })
          assert.strictEqual(second.items.length, 10)
          assert.isUndefined(second.nextCursor)
          assert.strictEqual((yield* store.tasksList({ limit: 0 })).items.length, 1)
          assert.strictEqual((yield* store.tasksList({ limit: 5000 })).items.length, 60)
          const exact = yield* store.tasksList({ limit: 60 })
          assert.strictEqual(exact.items.length, 60)
          assert.isUndefined(exact.nextCursor)
        }))

      it.scoped("cursor pages neither repeat nor skip while tasks are inserted and change", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          for (let i = 0; i < 30; i++) {
            yield* insert(store, { name: "x", payload: i })
            if (i % 3 === 0) yield* TestClock.adjust("1 millis")
          }
          const original = (yield* store.tasksList({ limit: 1000, order: "asc" })).items.map((t) => t.id)
          for (const order of ["asc", "desc"] as const) {
            const seen: Array<string> = []
            let cursor: string | undefined
            let round = 0
            do {
              const page = yield* store.tasksList({ order, limit: 7, cursor })
              seen.push(...page.items.map((t) => t.id))
              cursor = page.nextCursor
              // between pages: new tasks arrive (newer than every listed one) and others change status
              yield* TestClock.adjust("1 millis")
              yield* insert(store, { name: "x", payload: `new-${order}-${round++}` })
              yield* store.tasksClaim({ workerId: "w1", limit: 2, leaseMs: 60_000 })
            } while (cursor !== undefined)
            assert.strictEqual(new Set(seen).size, seen.length, `${order}: no repeats`)
            const seenOriginal = seen.filter((id) => original.includes(id))
            assert.deepStrictEqual(
              seenOriginal,
              order === "asc" ? original : [...original].reverse(),
              `${order}: no skips`
            )
          }
        }))
    })

    describe("tasksStats", () => {
      it.scoped("an empty store", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const stats = yield* store.tasksStats({})
          assert.strictEqual(stats.total, 0)
          assert.deepStrictEqual(stats.byStatus, {
            pending: 0,
            scheduled: 0,
            running: 0,
            succeeded: 0,
            failed: 0,
            dead: 0,
            cancelled: 0,
            "timed-out": 0
          })
          assert.deepStrictEqual(stats.byName, [])
          assert.deepStrictEqual(stats.byQueue, [])
          assert.deepStrictEqual(yield* store.tasksCount(), {
            total: 0,
            byStatus: stats.byStatus,
            byName: [],
            byQueue: []
          })
          assert.strictEqual(stats.throughput.length, 60)
          assert.strictEqual(stats.throughput[59]!.minute.getTime(), T0)
          assert.strictEqual(stats.throughput[0]!.minute.getTime(), T0 - 59 * 60_000)
          assert.strictEqual(stats.successRate, 1)
          assert.strictEqual(stats.meanDurationMs, 0)
          assert.strictEqual(stats.p95DurationMs, 0)
          assert.strictEqual(stats.hourly.length, 24)
          assert.strictEqual(stats.hourly[23]!.hour.getTime(), T0)
          assert.isTrue(stats.hourly.every((h) => h.succeeded === 0 && h.failed === 0))
        }))

      it.scoped("exact values from a scripted history", () =>
        Effect.gen(function*() {
          // starts two hours before T0
          const store = yield* makeStore(T0 - 2 * 3_600_000)
          const run = (
            task: TaskRecord,
            durationMs: number,
            outcome: "succeeded" | "failed" | "dead" | "timed-out"
          ) =>
            Effect.gen(function*() {
              yield* claimTask(store, task)
              yield* TestClock.adjust(Duration.millis(durationMs))
              if (outcome === "succeeded") yield* store.taskComplete({ id: task.id, workerId: "w1", result: null })
              else yield* store.taskFail({ id: task.id, workerId: "w1", error: error("E"), outcome: { _tag: outcome } })
            })
          const [old] = yield* insertMany(store, [{ name: "alpha", queue: "q1", payload: 0 }])
          yield* run(old!, 500, "succeeded") // finished at T0 - 2h + 0.5s: in the hourly trend only
          yield* TestClock.adjust(Duration.millis(2 * 3_600_000 - 500)) // now T0
          yield* store.queuePause({ queue: "idle" })
          const [a, b, c, d, e, f, g, h] = yield* insertMany(store, [
            { name: "alpha", queue: "q1", payload: 0 },
            { name: "beta", queue: "q1", payload: 0 },
            { name: "alpha", queue: "q2", payload: 0 },
            { name: "beta", queue: "q2", payload: 0 },
            { name: "alpha", queue: "q1", payload: 0 },
            { name: "beta", queue: "q2", payload: 0 },
            { name: "gamma", queue: "q1", payload: 0 },
            { name: "gamma", queue: "q2", payload: 0, runAt: new Date(T0 + 3_600_000) }
          ])
          // minute T0
          yield* run(a!, 1000, "succeeded") // T0 + 1s
          yield* run(b!, 2000, "dead") // T0 + 3s
          yield* TestClock.adjust("57 seconds") // T0 + 60s: minute T0 + 1m
          yield* run(c!, 3000, "succeeded") // T0 + 63s
          yield* run(d!, 4000, "failed") // T0 + 67s
          yield* run(e!, 10_000, "timed-out") // T0 + 77s
          yield* store.taskCancel({ id: f!.id }) // cancelled: not in throughput nor success rate
          yield* claimTask(store, g!) // running
          void h

          const stats = yield* store.tasksStats({ minutes: 5 })
          assert.strictEqual(stats.total, 9)
          assert.deepStrictEqual(stats.byStatus, {
            pending: 0,
            scheduled: 1,
            running: 1,
            succeeded: 3,
            failed: 1,
            dead: 1,
            cancelled: 1,
            "timed-out": 1
          })
          const counts = (partial: Partial<Record<TaskStatus, number>>) => ({
            pending: 0,
            scheduled: 0,
            running: 0,
            succeeded: 0,
            failed: 0,
            dead: 0,
            cancelled: 0,
            "timed-out": 0,
            ...partial
          })
          assert.deepStrictEqual(stats.byName, [
            { name: "alpha", counts: counts({ succeeded: 3, "timed-out": 1 }) },
            { name: "beta", counts: counts({ dead: 1, failed: 1, cancelled: 1 }) },
            { name: "gamma", counts: counts({ running: 1, scheduled: 1 }) }
          ])
          assert.deepStrictEqual(stats.byQueue, [
            { queue: "idle", paused: true, counts: counts({}) },
            { queue: "q1", paused: false, counts: counts({ succeeded: 2, dead: 1, "timed-out": 1, running: 1 }) },
            { queue: "q2", paused: false, counts: counts({ succeeded: 1, failed: 1, cancelled: 1, scheduled: 1 }) }
          ])
          // the counts alone: the same, without the windows
          assert.deepStrictEqual(yield* store.tasksCount(), {
            total: stats.total,
            byStatus: stats.byStatus,
            byName: stats.byName,
            byQueue: stats.byQueue
          })
          assert.deepStrictEqual(
            stats.throughput.map((m) => [m.minute.getTime() - T0, m.succeeded, m.failed]),
            [
              [-180_000, 0, 0],
              [-120_000, 0, 0],
              [-60_000, 0, 0],
              [0, 1, 1],
              [60_000, 1, 2]
            ]
          )
          assert.strictEqual(stats.successRate, 2 / 5)
          assert.strictEqual(stats.meanDurationMs, 4000) // (1000 + 2000 + 3000 + 4000 + 10000) / 5
          assert.strictEqual(stats.p95DurationMs, 10_000)
          assert.strictEqual(stats.hourly.length, 24)
          assert.deepStrictEqual(
            stats.hourly.map((x) => [(x.hour.getTime() - T0) / 3_600_000, x.succeeded, x.failed]).filter(([, s, f]) =>
              s !== 0 || f !== 0
            ),
            [[-2, 1, 0], [0, 2, 3]]
          )
          assert.strictEqual(stats.hourly[0]!.hour.getTime(), T0 - 23 * 3_600_000)

          // a wider window takes in the old task too
          const wide = yield* store.tasksStats({ minutes: 180 })
          assert.strictEqual(wide.throughput.length, 180)
          assert.strictEqual(wide.successRate, 3 / 6)
          assert.strictEqual(wide.meanDurationMs, 20_500 / 6)
          assert.strictEqual(wide.p95DurationMs, 10_000)
          // p95 by nearest rank: of twenty durations (1, 2, 3, 4, 10 and 6..20 s), the 19th smallest
          const more = yield* insertMany(store, Arr.makeBy(15, (i) => ({ name: "delta", payload: i })))
          for (const [i, task] of more.entries()) yield* run(task, (i + 6) * 1000, "succeeded")
          const twenty = yield* store.tasksStats({ minutes: 5 })
          assert.strictEqual(twenty.p95DurationMs, 19_000)
          assert.strictEqual(twenty.meanDurationMs, 10_750)
        }))
    })

    describe("tasksDelete", () => {
      it.scoped("deletes finished tasks older than a date, with their logs", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, c, d, e] = yield* insertMany(store, [
            { name: "a", payload: 0 },
            { name: "b", payload: 0 },
            { name: "c", payload: 0 },
            { name: "d", payload: 0 },
            { name: "e", payload: 0 }
          ])
          yield* claimTask(store, a!)
          yield* store.taskComplete({ id: a!.id, workerId: "w1", result: 1 }) // T0
          yield* store.taskLogAppend({
            lines: [{ taskId: a!.id, attempt: 1, at: new Date(T0), level: "info", message: "hi" }]
          })
          yield* TestClock.adjust("1 minute")
          yield* claimTask(store, b!)
          yield* store.taskFail({ id: b!.id, workerId: "w1", error: error("E"), outcome: { _tag: "dead" } }) // T0 + 1m
          yield* store.taskCancel({ id: c!.id }) // T0 + 1m
          yield* TestClock.adjust("1 minute")
          yield* claimTask(store, d!)
          yield* store.taskComplete({ id: d!.id, workerId: "w1", result: 1 }) // T0 + 2m, too recent
          // e stays pending
          assert.strictEqual(
            yield* store.tasksDelete({ finishedBefore: new Date(T0 + 60_001), statuses: ["dead", "pending"] }),
            1
          )
          assert.deepStrictEqual([...(yield* allIds(store))].sort(), [a!.id, c!.id, d!.id, e!.id].sort())
          assert.strictEqual(yield* store.tasksDelete({ finishedBefore: new Date(T0 + 60_001) }), 2)
          assert.deepStrictEqual([...(yield* allIds(store))].sort(), [d!.id, e!.id].sort())
          assert.deepStrictEqual(yield* store.taskLogs({ id: a!.id }), [])
          assert.isTrue(Option.isNone(yield* store.taskGet({ id: a!.id })))
          assert.strictEqual(yield* store.tasksDelete({ finishedBefore: new Date(T0 + 3_600_000) }), 1)
          assert.deepStrictEqual(yield* allIds(store), [e!.id])
        }))
    })

    describe("queues", () => {
      it.scoped("lists, pauses and resumes queues", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          assert.deepStrictEqual(yield* store.queuesList(), [])
          yield* insertMany(store, [{ name: "x", queue: "b", payload: 0 }, { name: "x", payload: 0 }])
          yield* store.queuePause({ queue: "a" })
          yield* store.queuePause({ queue: "b" })
          yield* store.queuePause({ queue: "b" })
          assert.deepStrictEqual(yield* store.queuesList(), [
            { queue: "a", paused: true },
            { queue: "b", paused: true },
            { queue: "default", paused: false }
          ])
          yield* store.queueResume({ queue: "a" })
          yield* store.queueResume({ queue: "b" })
          yield* store.queueResume({ queue: "never-paused" })
          assert.deepStrictEqual(yield* store.queuesList(), [
            { queue: "b", paused: false },
            { queue: "default", paused: false }
          ])
        }))
    })

    describe("events and awaitWork", () => {
      it.scoped("publishes a whole lifecycle in order", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const events = yield* collectEvents(store, undefined, 6)
          const task = yield* insert(store, { name: "x", queue: "q", payload: 0, maxAttempts: 2 })
          yield* claimOne(store)
          yield* TestClock.adjust("1 second")
          yield* store.taskProgress({ id: task.id, workerId: "w1", progress: 0.5, message: "half" })
          yield* store.taskFail({
            id: task.id,
            workerId: "w1",
            error: error("Unavailable"),
            outcome: { _tag: "retry", runAt: new Date(T0 + 1000) }
          })
          yield* claimOne(store, "w2")
          yield* TestClock.adjust("1 second")
          yield* store.taskComplete({ id: task.id, workerId: "w2", result: { ok: 1 } })
          const published = yield* Fiber.join(events)
          assert.deepStrictEqual(
            published.map((e) => [e.type, e.status, e.attempt]),
            [
              ["submitted", "pending", 0],
              ["started", "running", 1],
              ["progress", "running", 1],
              ["retrying", "scheduled", 1],
              ["started", "running", 2],
              ["succeeded", "succeeded", 2]
            ]
          )
          for (let i = 1; i < published.length; i++) {
            assert.isAbove(published[i]!.sequence, published[i - 1]!.sequence)
          }
          for (const event of published) {
            assert.strictEqual(event.taskId, task.id)
            assert.strictEqual(event.name, "x")
            assert.strictEqual(event.queue, "q")
          }
          assert.strictEqual(published[0]!.at.getTime(), T0)
          assert.strictEqual(published[2]!.progress, 0.5)
          assert.strictEqual(published[2]!.message, "half")
          assert.strictEqual(published[3]!.error?.tag, "Unavailable")
          assert.deepStrictEqual(published[5]!.result, { ok: 1 })
          assert.strictEqual(published[5]!.at.getTime(), T0 + 2000)
        }))

      it.scoped("publishes an event for every other change", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, c, d] = yield* insertMany(store, [
            { name: "a", payload: 0 },
            { name: "b", payload: 0, maxAttempts: 2 },
            { name: "c", payload: 0 },
            { name: "d", payload: 0 }
          ])
          const events = yield* collectEvents(store, undefined, 11)
          yield* store.taskCancel({ id: a!.id }) // cancelled
          yield* store.taskRetry({ id: a!.id }) // retried
          yield* claimTask(store, b!, "w1", 1000) // started
          yield* store.tasksRelease({ workerId: "w1", ids: [b!.id] }) // released
          yield* claimTask(store, b!, "w1", 1000) // started
          yield* TestClock.adjust("2 seconds")
          yield* store.tasksRescue({}) // rescued
          yield* claimTask(store, c!) // started
          yield* store.taskCancel({ id: c!.id }) // cancel-requested
          yield* store.taskFail({
            id: c!.id,
            workerId: "w1",
            error: error("Interrupted"),
            outcome: { _tag: "cancelled" }
          })
          yield* claimTask(store, d!) // started
          yield* store.taskFail({ id: d!.id, workerId: "w1", error: error("Boom"), outcome: { _tag: "timed-out" } })
          const published = yield* Fiber.join(events)
          assert.deepStrictEqual(published.map((e) => [e.taskId, e.type, e.status]), [
            [a!.id, "cancelled", "cancelled"],
            [a!.id, "retried", "pending"],
            [b!.id, "started", "running"],
            [b!.id, "released", "pending"],
            [b!.id, "started", "running"],
            [b!.id, "rescued", "pending"],
            [c!.id, "started", "running"],
            [c!.id, "cancel-requested", "running"],
            [c!.id, "cancelled", "cancelled"],
            [d!.id, "started", "running"],
            [d!.id, "timed-out", "timed-out"]
          ])
        }))

      it.scoped("eventsOf delivers the events of its types alone, beside a subscriber to every event", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b] = yield* insertMany(store, [{ name: "a", payload: 0 }, { name: "b", payload: 0 }])
          const only = yield* store.eventsOf(["cancel-requested", "succeeded"]).pipe(
            Stream.take(2),
            Stream.runCollect,
            Effect.map(Chunk.toReadonlyArray),
            Effect.forkScoped
          )
          yield* settle
          // alone with the typed subscriber: a claim and a batch completion publish what it asked for
          yield* claimTask(store, a!)
          yield* claimTask(store, b!)
          yield* store.taskCancel({ id: b!.id }) // cancel-requested
          const everything = yield* collectEvents(store, undefined, 2)
          yield* store.tasksComplete({ items: [{ id: a!.id, workerId: "w1", result: 1 }] }) // succeeded
          yield* store.taskFail({
            id: b!.id,
            workerId: "w1",
            error: error("Interrupted"),
            outcome: { _tag: "cancelled" }
          })
          assert.deepStrictEqual((yield* Fiber.join(only)).map((e) => [e.taskId, e.type]), [
            [b!.id, "cancel-requested"],
            [a!.id, "succeeded"]
          ])
          assert.deepStrictEqual((yield* Fiber.join(everything)).map((e) => [e.taskId, e.type]), [
            [a!.id, "succeeded"],
            [b!.id, "cancelled"]
          ])
        }))

      it.scoped("awaitWork wakes up on an insert", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 60_000 }))
          yield* settle
          assert.isFalse(yield* isDone(waiting))
          yield* insert(store, { name: "x", payload: 0 })
          yield* Fiber.join(waiting)
        }))

      it.scoped("awaitWork wakes up on a release, a rescue, a retry and a resumed queue", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const [a, b, c] = yield* insertMany(store, [
            { name: "a", payload: 0 },
            { name: "b", payload: 0, maxAttempts: 2 },
            { name: "c", payload: 0 }
          ])
          yield* claimTask(store, a!, "w1", 60_000)
          yield* claimTask(store, b!, "w1", 1000)
          yield* store.taskCancel({ id: c!.id })
          yield* store.queuePause({ queue: "default" })
          const wakes = [
            store.tasksRelease({ workerId: "w1", ids: [a!.id] }),
            TestClock.adjust("2 seconds").pipe(Effect.zipRight(store.tasksRescue({}))),
            store.taskRetry({ id: c!.id }),
            store.queueResume({ queue: "default" })
          ] as const
          for (const wake of wakes) {
            const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 3_600_000 }))
            yield* settle
            assert.isFalse(yield* isDone(waiting))
            yield* (wake as Effect.Effect<unknown, unknown>)
            yield* Fiber.join(waiting)
          }
        }))

      /** A handoff that accepts tasks named `name`, recording what it was asked and given. */
      const recordingHandoff = (name: string, workerId = "w1") => {
        const asked: Array<string> = []
        const received: Array<TaskRecord | undefined> = []
        const handoff: TaskStore.TaskStore.Handoff = {
          workerId,
          leaseMs: 30_000,
          accepts: (task) => {
            asked.push(`${task.name}@${task.queue}`)
            return task.name === name
          },
          receive: (task) => {
            received.push(task)
          }
        }
        return { handoff, asked, received }
      }

      it.scoped("awaitWork with a handoff: a lone task submitted while it waits starts claimed by it", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const { asked, handoff, received } = recordingHandoff("x")
          const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 60_000, handoff }))
          yield* settle
          const events = yield* collectEvents(store, undefined, 2)
          const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "x", queue: "q", payload: 1 }] })
          // a task handed off wakes nobody: the worker that took it ends its own wait
          yield* settle
          assert.isFalse(yield* isDone(waiting))
          yield* Fiber.interrupt(waiting)
          assert.deepStrictEqual(asked, ["x@q"])
          assert.strictEqual(received.length, 1)
          const task = received[0]!
          assert.strictEqual(task.id, inserted!.task.id)
          assert.isTrue(inserted!.created)
          assert.strictEqual(inserted!.task.status, "running")
          for (const record of [task, yield* get(store, task.id)]) {
            assert.strictEqual(record.status, "running")
            assert.strictEqual(record.attempt, 1)
            assert.strictEqual(record.leaseOwner, "w1")
            assert.strictEqual(record.leaseExpiresAt?.getTime(), T0 + 30_000)
            assert.strictEqual(record.startedAt?.getTime(), T0)
            assert.strictEqual(record.payload, 1)
          }
          // nobody claims it again
          assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w2", limit: 10, leaseMs: 1000 }), [])
          const published = yield* Fiber.join(events)
          assert.deepStrictEqual(published.map((e) => [e.type, e.taskId, e.status, e.attempt]), [
            ["submitted", task.id, "pending", 0],
            ["started", task.id, "running", 1]
          ])
          // the lease is the worker's as after a claim: it completes the task
          yield* store.taskComplete({ id: task.id, workerId: "w1", result: 2 })
          assert.strictEqual((yield* get(store, task.id)).status, "succeeded")
        }))

      it.scoped("a handoff takes one lone due task it accepts, and only while the wait lasts", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const { asked, handoff, received } = recordingHandoff("x")
          // not offered: several at once, an idempotency key, a task not due yet; refused: another
          // name. Each is inserted as usual, and wakes the wait.
          const batches: ReadonlyArray<ReadonlyArray<NewTask>> = [
            [{ name: "x", payload: 0 }, { name: "x", payload: 0 }],
            [{ name: "x", payload: 0, idempotencyKey: "k" }],
            [{ name: "x", payload: 0, runAt: new Date(T0 + 5000) }],
            [{ name: "y", payload: 0 }]
          ]
          for (const batch of batches) {
            const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 60_000, handoff }))
            yield* settle
            for (const task of yield* insertMany(store, batch)) {
              assert.include(["pending", "scheduled"], (yield* get(store, task.id)).status)
            }
            yield* Fiber.join(waiting)
          }
          assert.deepStrictEqual(asked, ["y@default"])
          assert.deepStrictEqual(received, [])
          // the wait is over: the handoff is no longer asked
          const later = yield* insert(store, { name: "x", payload: 0 })
          assert.deepStrictEqual(asked, ["y@default"])
          assert.strictEqual((yield* get(store, later.id)).status, "pending")
          // a new wait takes one task, not two
          const again = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 60_000, handoff }))
          yield* settle
          const first = yield* insert(store, { name: "x", payload: 0 })
          const second = yield* insert(store, { name: "x", payload: 0 })
          yield* Fiber.interrupt(again)
          assert.deepStrictEqual(received.map((task) => task?.id), [first.id])
          assert.strictEqual((yield* get(store, second.id)).status, "pending")
        }))

      it.scoped("a handoff takes no task of a paused queue", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          yield* store.queuePause({ queue: "default" })
          const { handoff, received } = recordingHandoff("x")
          const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 60_000, handoff }))
          yield* settle
          const task = yield* insert(store, { name: "x", payload: 0 })
          yield* Fiber.interrupt(waiting)
          // not handed over (a store may still have asked, and then says so with `undefined`)
          assert.isTrue(received.every((received) => received === undefined))
          assert.strictEqual((yield* get(store, task.id)).status, "pending")
          assert.strictEqual(task.status, "pending")
        }))

      it.scoped("awaitWork times out", () =>
        Effect.gen(function*() {
          const store = yield* makeStore()
          const waiting = yield* Effect.forkScoped(store.awaitWork({ timeoutMs: 1000 }))
          yield* settle
          yield* TestClock.adjust("999 millis")
          assert.isFalse(yield* isDone(waiting))
          yield* TestClock.adjust("1 millis")
          yield* Fiber.join(waiting)
        }))
    })
  })
}
