import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as SqliteTaskStore from "@spindle/sql/SqliteTaskStore"
import * as TaskStore from "@spindle/tasks/TaskStore"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { taskStoreSuite } from "../../tasks/test/TaskStoreSuite.js"
import { migrations, tablesOf } from "../src/internal/sqliteMigrations.js"
import { immediateTransaction } from "../src/internal/sqliteStore.js"

/** A fresh directory for one layer build, removed when the layer's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-sqlite-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const freshLayer = (options: SqliteTaskStore.ClientOptions = {}) =>
  Layer.unwrapScoped(
    Effect.map(tempDir, (dir) => SqliteTaskStore.layer({ ...options, filename: path.join(dir, "tasks.db") }))
  )

taskStoreSuite("SqliteTaskStore", () => freshLayer())

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)

/** A SQLite file in a fresh directory, with a client on it and the store built on that client. */
const withClient = (options: SqliteTaskStore.ClientOptions = {}) =>
  Effect.gen(function*() {
    yield* TestClock.adjust(Duration.millis(T0))
    const dir = yield* tempDir
    const filename = path.join(dir, "tasks.db")
    const clientContext = yield* Layer.build(SqliteClient.layer({ filename })).pipe(Effect.orDie)
    const sql = Context.get(clientContext, SqlClient.SqlClient)
    const store = yield* SqliteTaskStore.make(options).pipe(Effect.provide(clientContext), Effect.orDie)
    return { sql, store, filename, clientContext }
  })

const tableList = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<
      { name: string }
    >`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
    (rows) => rows.map((row) => row.name)
  )

describe("SqliteTaskStore (SQLite specifics)", () => {
  it.scoped("migrates to the latest version once, and again is a no-op", () =>
    Effect.gen(function*() {
      const { clientContext, sql } = yield* withClient()
      const versions = yield* sql<{ migration_id: number }>`SELECT migration_id FROM spindle_migrations`
      assert.deepStrictEqual(versions.map((row) => row.migration_id), [1, 2])
      // A second store on the same file finds the migrations done.
      yield* SqliteTaskStore.make().pipe(Effect.provide(clientContext))
      const again = yield* sql<{ migration_id: number }>`SELECT migration_id FROM spindle_migrations`
      assert.deepStrictEqual(again.map((row) => row.migration_id), [1, 2])
      assert.deepStrictEqual(yield* tableList(sql), [
        "spindle_migrations",
        "spindle_paused_queues",
        "spindle_task_logs",
        "spindle_tasks"
      ])
    }))

  it.scoped("upgrades a file made at version 1, keeping its tasks", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(Duration.millis(T0))
      const dir = yield* tempDir
      const clientContext = yield* Layer.build(SqliteClient.layer({ filename: path.join(dir, "tasks.db") }))
      const sql = Context.get(clientContext, SqlClient.SqlClient)
      const tables = tablesOf("spindle_")
      const { "0001_create_tasks": first } = migrations(tables)
      yield* immediateTransaction(sql)(
        Migrator.make({})({ loader: Migrator.fromRecord({ "0001_create_tasks": first! }), table: tables.migrations })
      ).pipe(Effect.provide(clientContext))
      yield* sql`INSERT INTO spindle_tasks (id, name, queue, status, priority, payload, attempt, max_attempts,
        run_at, created_at, updated_at, started_at, finished_at)
        VALUES ('old', 't', 'default', 'succeeded', 2, '1', 1, 1, ${T0}, ${T0}, ${T0}, ${T0}, ${T0})`
      const store = yield* SqliteTaskStore.make().pipe(Effect.provide(clientContext))
      const versions = yield* sql<{ migration_id: number }>`SELECT migration_id FROM spindle_migrations`
      assert.deepStrictEqual(versions.map((row) => row.migration_id), [1, 2])
      assert.strictEqual((yield* store.tasksStats({})).byStatus.succeeded, 1)
      const plan = yield* sql.unsafe<{ detail: string }>(
        `EXPLAIN QUERY PLAN SELECT count(*), avg(finished_at - started_at) FROM spindle_tasks
         WHERE finished_at IS NOT NULL AND finished_at >= 0 AND started_at IS NOT NULL
         AND status IN ('succeeded', 'failed', 'dead', 'timed-out')`
      )
      assert.isTrue(
        plan.some((row) => row.detail.includes("COVERING INDEX spindle_tasks_finished_status")),
        JSON.stringify(plan)
      )
    }))

  it.scoped("a claim walks the claim index in claim order, however many finished tasks the file holds", () =>
    Effect.gen(function*() {
      const { sql, store } = yield* withClient()
      yield* sql.unsafe(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100000)
        INSERT INTO spindle_tasks (id, name, queue, status, priority, payload, attempt, max_attempts, run_at,
          created_at, updated_at, started_at, finished_at, result)
        SELECT 'done-' || n, 'old', 'default', 'succeeded', 2, '{}', 1, 1, n, n, n, n, n, 'null' FROM g`)
      const inserted = yield* store.tasksInsert({
        tasks: Array.from({ length: 20 }, (_, i) => ({ name: "new", payload: i, priority: i < 10 ? "low" : "high" }))
      })
      const plan = yield* sql.unsafe<{ detail: string }>(
        `EXPLAIN QUERY PLAN SELECT rowid FROM spindle_tasks
         WHERE status IN ('pending', 'scheduled') AND run_at <= ${T0 + 1000}
           AND queue NOT IN (SELECT queue FROM spindle_paused_queues) AND name IN ('new')
         ORDER BY priority, run_at, id LIMIT 10`
      )
      const details = plan.map((row) => row.detail)
      assert.isTrue(details.some((detail) => detail.includes("USING INDEX spindle_tasks_claim")), details.join("; "))
      assert.isFalse(details.some((detail) => detail.includes("TEMP B-TREE")), details.join("; "))
      const claimed = yield* store.tasksClaim({ workerId: "w", limit: 10, leaseMs: 1000, names: ["new"] })
      assert.deepStrictEqual(claimed.map((task) => task.id), inserted.slice(10).map((item) => item.task.id))
    }))

  it.scoped("names tables with the prefix, and two prefixes share one file", () =>
    Effect.gen(function*() {
      const { clientContext, sql, store } = yield* withClient({ tablePrefix: "app_" })
      const other = yield* SqliteTaskStore.make({ tablePrefix: "other_" }).pipe(Effect.provide(clientContext))
      assert.deepStrictEqual(yield* tableList(sql), [
        "app_migrations",
        "app_paused_queues",
        "app_task_logs",
        "app_tasks",
        "other_migrations",
        "other_paused_queues",
        "other_task_logs",
        "other_tasks"
      ])
      yield* store.tasksInsert({ tasks: [{ name: "a", payload: 1 }] })
      assert.strictEqual((yield* other.tasksStats({})).total, 0)
      assert.strictEqual((yield* store.tasksStats({})).total, 1)
      assert.deepStrictEqual(SqliteTaskStore.tableNames("app_").tasks, "app_tasks")
    }))

  it.scoped("refuses an invalid prefix", () =>
    Effect.gen(function*() {
      const { clientContext } = yield* withClient()
      const exit = yield* SqliteTaskStore.make({ tablePrefix: "Bad-Prefix" }).pipe(
        Effect.provide(clientContext),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
    }))

  it.scoped("claims through the partial claim index", () =>
    Effect.gen(function*() {
      const { sql } = yield* withClient()
      const plan = yield* sql.unsafe<{ detail: string }>(
        `EXPLAIN QUERY PLAN SELECT id FROM spindle_tasks WHERE status IN ('pending', 'scheduled')
         AND run_at <= 0 ORDER BY priority, run_at, id LIMIT 10`
      )
      assert.isTrue(plan.some((row) => row.detail.includes("spindle_tasks_claim")), JSON.stringify(plan))
      const rescue = yield* sql.unsafe<{ detail: string }>(
        `EXPLAIN QUERY PLAN SELECT id FROM spindle_tasks WHERE status = 'running' AND lease_expires_at < 0
         ORDER BY lease_expires_at LIMIT 10`
      )
      assert.isTrue(rescue.some((row) => row.detail.includes("spindle_tasks_lease")), JSON.stringify(rescue))
    }))

  it.scoped("claims by priority, then runAt, then id, skipping finished rows", () =>
    Effect.gen(function*() {
      const { store } = yield* withClient()
      const inserted = yield* store.tasksInsert({
        tasks: [
          { id: "a", name: "t", payload: 1, priority: "low" },
          { id: "b", name: "t", payload: 2, priority: "critical", runAt: new Date(T0 - 10) },
          { id: "c", name: "t", payload: 3, priority: "critical", runAt: new Date(T0 - 20) },
          { id: "d", name: "t", payload: 4, priority: "normal" },
          { id: "e", name: "t", payload: 5, priority: "normal" },
          { id: "f", name: "t", payload: 6, priority: "critical", runAt: new Date(T0 + 1000) }
        ]
      })
      assert.strictEqual(inserted.length, 6)
      const order: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const [task] = yield* store.tasksClaim({ workerId: "w", limit: 1, leaseMs: 1000 })
        order.push(task!.id)
        yield* store.taskComplete({ id: task!.id, workerId: "w", result: null })
      }
      assert.deepStrictEqual(order, ["c", "b", "d", "e", "a"])
      assert.deepStrictEqual(yield* store.tasksClaim({ workerId: "w", limit: 10, leaseMs: 1000 }), [])
      yield* TestClock.adjust(Duration.seconds(1))
      const [due] = yield* store.tasksClaim({ workerId: "w", limit: 10, leaseMs: 1000 })
      assert.strictEqual(due!.id, "f")
      assert.strictEqual(due!.attempt, 1)
    }))

  it.scoped("keeps idempotency keys unique among unfinished tasks through the unique index", () =>
    Effect.gen(function*() {
      const { sql, store } = yield* withClient()
      const [first, second] = yield* store.tasksInsert({
        tasks: [
          { name: "mail", payload: 1, idempotencyKey: "k" },
          { name: "mail", payload: 2, idempotencyKey: "k" }
        ]
      })
      assert.isTrue(first!.created)
      assert.isFalse(second!.created)
      assert.strictEqual(second!.task.id, first!.task.id)
      const [third] = yield* store.tasksInsert({ tasks: [{ name: "mail", payload: 3, idempotencyKey: "k" }] })
      assert.isFalse(third!.created)
      // The index itself refuses a duplicate written behind the store's back.
      const raw = yield* sql`INSERT INTO spindle_tasks (id, name, queue, status, priority, payload, attempt,
        max_attempts, run_at, created_at, updated_at, idempotency_key)
        VALUES ('dup', 'mail', 'default', 'pending', 2, '1', 0, 1, 0, 0, 0, 'k')`.pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(raw))
      // Once the first one finished, the key is free again.
      yield* store.taskCancel({ id: first!.task.id })
      const [fourth] = yield* store.tasksInsert({ tasks: [{ name: "mail", payload: 4, idempotencyKey: "k" }] })
      assert.isTrue(fourth!.created)
      assert.notStrictEqual(fourth!.task.id, first!.task.id)
    }))

  it.scoped("inserts a batch larger than one INSERT can bind (1,153 rows) in one call", () =>
    Effect.gen(function*() {
      const { store } = yield* withClient()
      // A clash in the second INSERT rolls back the first one too.
      const clashing = Array.from(
        { length: 1500 },
        (_, i) => ({ id: `t${i === 1499 ? 0 : i}`, name: "bulk", payload: i })
      )
      const failure = yield* Effect.flip(store.tasksInsert({ tasks: clashing }))
      assert.instanceOf(failure, TaskStore.TaskStoreError)
      assert.strictEqual((yield* store.tasksStats({})).total, 0)
      const tasks = Array.from({ length: 1500 }, (_, i) => ({ name: "bulk", payload: { i } }))
      const inserted = yield* store.tasksInsert({ tasks })
      assert.strictEqual(inserted.length, 1500)
      assert.deepStrictEqual(inserted.map((r) => (r.task.payload as { i: number }).i), tasks.map((_, i) => i))
      assert.strictEqual((yield* store.tasksStats({})).byStatus.pending, 1500)
      const claimed = yield* store.tasksClaim({ workerId: "w", limit: 5000, leaseMs: 1000 })
      assert.strictEqual(claimed.length, 1500)
    }))

  it.scoped("refuses completion after the lease was lost to the rescuer and another worker", () =>
    Effect.gen(function*() {
      const { store } = yield* withClient()
      const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "t", payload: null, maxAttempts: 3 }] })
      const id = inserted!.task.id
      yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 1000 })
      const wrong = yield* store.taskComplete({ id, workerId: "w2", result: 1 }).pipe(Effect.flip)
      assert.instanceOf(wrong, TaskStore.LeaseLost)
      yield* TestClock.adjust(Duration.millis(1001))
      const rescued = yield* store.tasksRescue({})
      assert.deepStrictEqual(rescued.map((t) => [t.id, t.status, t.attempt]), [[id, "pending", 1]])
      const [again] = yield* store.tasksClaim({ workerId: "w2", limit: 1, leaseMs: 1000 })
      assert.strictEqual(again!.attempt, 2)
      const late = yield* store.taskComplete({ id, workerId: "w1", result: 1 }).pipe(Effect.flip)
      assert.instanceOf(late, TaskStore.LeaseLost)
      const done = yield* store.taskComplete({ id, workerId: "w2", result: { ok: true } })
      assert.strictEqual(done.status, "succeeded")
      assert.deepStrictEqual(done.result, { ok: true })
    }))

  it.scoped("keeps tasks across a reopen of the file", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(Duration.millis(T0))
      const dir = yield* tempDir
      const filename = path.join(dir, "tasks.db")
      const id = yield* Effect.scoped(
        Effect.flatMap(Layer.build(SqliteTaskStore.layer({ filename })), (context) =>
          Effect.map(
            Context.get(context, TaskStore.TaskStore).tasksInsert({ tasks: [{ name: "t", payload: "kept" }] }),
            ([r]) => r!.task.id
          ))
      )
      const task = yield* Effect.scoped(
        Effect.flatMap(
          Layer.build(SqliteTaskStore.layer({ filename })),
          (context) => Context.get(context, TaskStore.TaskStore).taskGet({ id })
        )
      )
      assert.isTrue(Option.isSome(task))
      assert.strictEqual(Option.getOrThrow(task).payload, "kept")
    }))

  it.scoped("a batch of one worker and one result settles through its own statement, item by item", () =>
    Effect.gen(function*() {
      const { store } = yield* withClient()
      const [a, b, c, d] = yield* store.tasksInsert({
        tasks: ["a", "b", "c", "d"].map((name) => ({ name, payload: null }))
      })
      const claimed = yield* store.tasksClaim({ workerId: "w1", limit: 2, leaseMs: 60_000 })
      assert.deepStrictEqual(claimed.map((task) => task.id), [a!.task.id, b!.task.id])
      yield* store.tasksClaim({ workerId: "w2", limit: 1, leaseMs: 60_000 })
      const outcomes = yield* store.tasksComplete({
        items: [
          { id: b!.task.id, workerId: "w1", result: null },
          { id: c!.task.id, workerId: "w1", result: null }, // held by w2
          { id: d!.task.id, workerId: "w1", result: null }, // pending
          { id: b!.task.id, workerId: "w1", result: null }, // repeated
          { id: a!.task.id, workerId: "w1", result: undefined }
        ]
      })
      assert.deepStrictEqual(outcomes, ["settled", "lease-lost", "lease-lost", "lease-lost", "settled"])
      const status = (id: string) => Effect.map(store.taskGet({ id }), (task) => Option.getOrThrow(task).status)
      assert.deepStrictEqual(
        [yield* status(a!.task.id), yield* status(b!.task.id), yield* status(c!.task.id), yield* status(d!.task.id)],
        ["succeeded", "succeeded", "running", "pending"]
      )
    }))

  it.scoped("awaitWork wakes up when another connection commits to the file", () =>
    Effect.gen(function*() {
      const { filename, store } = yield* withClient({ pollInterval: "100 millis" })
      const otherContext = yield* Layer.build(SqliteTaskStore.layer({ filename }))
      const other = Context.get(otherContext, TaskStore.TaskStore)
      const waiting = yield* Effect.fork(store.awaitWork({ timeoutMs: 60_000 }))
      yield* TestClock.adjust(Duration.millis(100))
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* other.tasksInsert({ tasks: [{ name: "t", payload: null }] })
      yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(waiting)
      const claimed = yield* store.tasksClaim({ workerId: "w", limit: 10, leaseMs: 1000 })
      assert.strictEqual(claimed.length, 1)
    }))

  it.scoped("awaitWork wakes up when a scheduled task falls due", () =>
    Effect.gen(function*() {
      const { store } = yield* withClient()
      yield* store.tasksInsert({ tasks: [{ name: "t", payload: null, runAt: new Date(T0 + 5_000) }] })
      const waiting = yield* Effect.fork(store.awaitWork({ timeoutMs: 60_000 }))
      yield* TestClock.adjust(Duration.millis(4_900))
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(waiting)
    }))

  it.scoped("reports database failures as TaskStoreError", () =>
    Effect.gen(function*() {
      const { sql, store } = yield* withClient()
      yield* sql`DROP TABLE spindle_tasks`
      const failure = yield* Effect.flip(store.tasksClaim({ workerId: "w", limit: 1, leaseMs: 1000 }))
      assert.instanceOf(failure, TaskStore.TaskStoreError)
      assert.strictEqual(failure.operation, "tasksClaim")
      assert.include(failure.message, "no such table")
    }))

  it.scoped("deletes the logs of deleted tasks", () =>
    Effect.gen(function*() {
      const { sql, store } = yield* withClient()
      const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "t", payload: null }] })
      const id = inserted!.task.id
      yield* store.taskLogAppend({
        lines: [{ taskId: id, attempt: 1, at: new Date(T0), level: "info", message: "hello" }]
      })
      yield* store.taskCancel({ id })
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* store.tasksDelete({ finishedBefore: new Date(T0 + 1) }), 1)
      const logs = yield* sql<{ n: number }>`SELECT count(*) AS n FROM spindle_task_logs`
      assert.strictEqual(logs[0]!.n, 0)
    }))
})
