/**
 * Two real worker processes (`fixtures/task-worker.mjs`: a TaskWorker on a SqliteTaskStore)
 * share one SQLite file; one is killed with SIGKILL while it holds running tasks. Nothing is
 * lost: once its leases expire the other process's rescuer returns its tasks and the other
 * process finishes them (attempt 2), and every task runs to the end exactly once.
 */
import { assert, describe, it } from "@effect/vitest"
import { SqliteTaskStore } from "@spindle/sql"
import type { TaskRecord } from "@spindle/tasks"
import { TaskStore } from "@spindle/tasks"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { spawnWorker, waitUntil } from "./fixtures/workerProcess.js"

const TASKS = 200

describe("SqliteTaskStore across processes, with a crash", () => {
  it.live(
    "a process killed with SIGKILL while holding tasks loses nothing: another finishes them",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-durable-crash-"))),
          (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
        )
        const filename = path.join(dir, "tasks.db")
        const context = yield* Layer.build(SqliteTaskStore.layer({ filename, busyTimeout: "20 seconds" }))
        const store = Context.get(context, TaskStore.TaskStore)
        const inserted = yield* store.tasksInsert({
          tasks: Array.from({ length: TASKS }, (_, n) => ({ name: "durable-work", payload: { n }, maxAttempts: 3 }))
        })
        const ids = inserted.map((result) => result.task.id)

        // The victim claims 5 tasks (its concurrency) and its handlers block.
        const victim = yield* spawnWorker(
          { store: "sqlite", filename, workerId: "victim", leaseMs: 2_000, concurrency: 5, block: true },
          5
        )
        const held = yield* victim.holding
        const heldIds = new Set(held.map((run) => run.id))
        assert.strictEqual(heldIds.size, 5)
        const running = yield* store.tasksList({ filter: { status: ["running"] }, limit: 100 })
        assert.deepStrictEqual(running.items.map((task) => task.id).sort(), [...heldIds].sort())
        assert.isTrue(running.items.every((task) => task.leaseOwner === "victim" && task.attempt === 1))

        const survivor = yield* spawnWorker({
          store: "sqlite",
          filename,
          workerId: "survivor",
          leaseMs: 2_000,
          concurrency: 5
        })
        yield* survivor.ready
        yield* victim.kill
        assert.strictEqual(victim.held.length, 5, "the victim never held more than its concurrency")

        yield* waitUntil(
          `${TASKS} succeeded tasks`,
          Effect.map(store.tasksStats({}), (stats) => stats.byStatus.succeeded === TASKS),
          { timeout: "30 seconds" }
        )

        const stats = yield* store.tasksStats({})
        assert.strictEqual(stats.total, TASKS)
        assert.strictEqual(stats.byStatus.succeeded, TASKS)
        const tasks: Array<TaskRecord.TaskRecord> = []
        let cursor: string | undefined
        do {
          const page = yield* store.tasksList({ limit: 1000, cursor })
          tasks.push(...page.items)
          cursor = page.nextCursor
        } while (cursor !== undefined)
        assert.deepStrictEqual(tasks.map((task) => task.id).sort(), [...ids].sort())
        for (const task of tasks) {
          assert.strictEqual(task.status, "succeeded")
          assert.strictEqual(task.attempt, heldIds.has(task.id) ? 2 : 1, `attempt of ${task.id}`)
          assert.deepStrictEqual(task.result, { by: "survivor" })
          assert.isNull(task.leaseOwner)
        }
        // Each task ran to the end exactly once, in the survivor; the victim's tasks on attempt 2.
        assert.strictEqual(survivor.ran.length, TASKS)
        assert.strictEqual(new Set(survivor.ran.map((run) => run.id)).size, TASKS)
        for (const run of survivor.ran) assert.strictEqual(run.attempt, heldIds.has(run.id) ? 2 : 1)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
