/**
 * Two real Node processes share one SQLite file: both migrate it at once, then drain tasks the
 * parent inserts while they run. Every task must succeed exactly once and none be lost.
 *
 * The workers run `fixtures/sqlite-drain-worker.mjs` on the build output (`packages/sql/dist`,
 * `packages/tasks/dist`), which `tsc -b` produces before vitest runs.
 */
import { assert, describe, it } from "@effect/vitest"
import * as SqliteTaskStore from "@spindle/sql/SqliteTaskStore"
import type { TaskRecord } from "@spindle/tasks/TaskRecord"
import * as TaskStore from "@spindle/tasks/TaskStore"
import { Context, Deferred, Effect, Layer } from "effect"
import { fork } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const worker = fileURLToPath(new URL("./fixtures/sqlite-drain-worker.mjs", import.meta.url))

const TASKS = 2000

type Message =
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly completed: ReadonlyArray<string> }
  | { readonly type: "error"; readonly message: string }

/** Forks a worker process (killed when the scope closes); resolves `ready` and `done` from its messages. */
const spawnWorker = (filename: string, workerId: string) =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<void>()
    const done = yield* Deferred.make<ReadonlyArray<string>, Error>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        fork(worker, [filename, workerId, String(TASKS)], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
    )
    child.on("message", (message: Message) => {
      if (message.type === "ready") Deferred.unsafeDone(ready, Effect.void)
      else if (message.type === "done") Deferred.unsafeDone(done, Effect.succeed(message.completed))
      else Deferred.unsafeDone(done, Effect.fail(new Error(`${workerId}: ${message.message}`)))
    })
    child.on("exit", (code) => {
      Deferred.unsafeDone(done, Effect.fail(new Error(`${workerId} exited with ${code} before reporting`)))
    })
    return { ready: Deferred.await(ready), done: Deferred.await(done) }
  })

describe("SqliteTaskStore across processes", () => {
  it.live("two processes drain one file: every task succeeds exactly once", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-sqlite-mp-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const filename = path.join(dir, "tasks.db")
      // Both workers open and migrate the fresh file at the same time.
      const a = yield* spawnWorker(filename, "worker-a")
      const b = yield* spawnWorker(filename, "worker-b")
      yield* Effect.all([a.ready, b.ready], { concurrency: 2 })

      const context = yield* Layer.build(SqliteTaskStore.layer({ filename, busyTimeout: "20 seconds" }))
      const store = Context.get(context, TaskStore.TaskStore)
      // Insert while the workers drain, in batches.
      const inserted: Array<TaskRecord> = []
      for (let batch = 0; batch < TASKS / 200; batch++) {
        const results = yield* store.tasksInsert({
          tasks: Array.from({ length: 200 }, (_, i) => ({ name: "drain", payload: { n: batch * 200 + i } }))
        })
        for (const result of results) inserted.push(result.task)
      }

      const [fromA, fromB] = yield* Effect.all([a.done, b.done], { concurrency: 2 })
      assert.isAbove(fromA.length, 0)
      assert.isAbove(fromB.length, 0)
      const all = [...fromA, ...fromB]
      assert.strictEqual(all.length, TASKS)
      assert.strictEqual(new Set(all).size, TASKS)
      assert.deepStrictEqual([...all].sort(), inserted.map((task) => task.id).sort())

      const stats = yield* store.tasksStats({})
      assert.strictEqual(stats.total, TASKS)
      assert.strictEqual(stats.byStatus.succeeded, TASKS)
      // Each task was claimed once (attempt 1) and completed by the worker that reported it.
      const byWorker = new Map([
        ...fromA.map((id) => [id, "worker-a"] as const),
        ...fromB.map((id) => [id, "worker-b"] as const)
      ])
      let cursor: string | undefined
      let seen = 0
      do {
        const page = yield* store.tasksList({ limit: 1000, cursor })
        for (const task of page.items) {
          seen++
          assert.strictEqual(task.attempt, 1)
          assert.deepStrictEqual(task.result, { by: byWorker.get(task.id) })
        }
        cursor = page.nextCursor
      } while (cursor !== undefined)
      assert.strictEqual(seen, TASKS)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
