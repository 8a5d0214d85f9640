/**
 * Two real worker processes (`fixtures/task-worker.mjs`: a TaskWorker on a SqliteTaskStore)
 * share one SQLite file; one is killed with SIGKILL while it holds running tasks. Nothing is
 * lost: once its leases expire the other process's rescuer returns its tasks and the other
 * process finishes them (attempt 2), and every task runs to the end exactly once.
 */
import { describe, it } from "@effect/vitest"
import { SqliteTaskStore } from "@spindle/sql"
import { TaskStore } from "@spindle/tasks"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { killWhileHolding } from "./fixtures/crashScenario.js"

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
        yield* killWhileHolding(store, { store: "sqlite", filename }, TASKS)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
