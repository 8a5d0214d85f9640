import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Schedule } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { mainScript } from "./build.js"

const moduleScript = fileURLToPath(new URL("../dist/module.js", import.meta.url))
const spindleBin = fileURLToPath(new URL("../../../packages/cli/dist/bin.js", import.meta.url))

// The smoke test runs the compiled main job, as `npm start` does. `npm test` builds every dist
// first (`tsc -b`); a bare `vitest run` in a fresh checkout may not have, and then skips it, saying
// so (never on CI).
const missing = !fs.existsSync(mainScript)
if (missing) {
  if (process.env.CI === "true") throw new Error(`${mainScript} is missing: build first (npx tsc -b)`)
  console.warn(`skipping the main job's smoke test: ${mainScript} is missing (build with npx tsc -b)`)
}

interface Stats {
  readonly total: number
  readonly byStatus: Record<string, number>
  readonly byName: ReadonlyArray<{ readonly name: string; readonly counts: Record<string, number> }>
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-task-service-main-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Starts the main job; its stdout and stderr are collected, and it is killed if still running at the end. */
const start = (cwd: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const url = yield* Deferred.make<string>()
      const exited = yield* Deferred.make<{ readonly code: number | null; readonly signal: string | null }>()
      const output = { stdout: "", stderr: "" }
      const child: ChildProcess = spawn(process.execPath, [mainScript], {
        cwd,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      child.stdout!.on("data", (chunk: Buffer) => {
        output.stdout += chunk.toString()
        const match = /spindle listening on (http:\/\/\S+)/.exec(output.stdout)
        if (match !== null) Deferred.unsafeDone(url, Effect.succeed(match[1]))
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        output.stderr += chunk.toString()
      })
      child.on("exit", (code, signal) => {
        Deferred.unsafeDone(exited, Effect.succeed({ code, signal }))
        Deferred.unsafeDone(url, Effect.die(new Error(`main exited early (${code ?? signal}):\n${output.stderr}`)))
      })
      return { child, url, exited, output }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

const getStats = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${url}/v1/stats`)
    if (!response.ok) throw new Error(`GET /v1/stats: ${response.status}`)
    return (await response.json()) as Stats
  })

describe.skipIf(missing)("main job", () => {
  it.scopedLive("serves, runs the demo tasks to the end, and exits cleanly on SIGTERM", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const main = yield* start(dir, {
        SPINDLE_DB: path.join(dir, "spindle.db"),
        SPINDLE_PORT: "0",
        SPINDLE_DEMO: "1"
      })
      const url = yield* Deferred.await(main.url).pipe(Effect.timeout("30 seconds"))
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)

      // the demo: a report, four notifications (one to a blocked recipient), an import, a clean-up
      const finished = (stats: Stats) =>
        stats.total === 7 && stats.byStatus.pending + stats.byStatus.scheduled + stats.byStatus.running === 0
      const stats = yield* getStats(url).pipe(
        Effect.filterOrFail(finished, (stats) => new Error(`not finished yet: ${JSON.stringify(stats.byStatus)}`)),
        Effect.retry(Schedule.spaced("250 millis")),
        Effect.timeout("90 seconds")
      )
      assert.strictEqual(stats.byStatus.succeeded, 6)
      assert.strictEqual(stats.byStatus.failed, 1)
      const counts = Object.fromEntries(stats.byName.map((entry) => [entry.name, entry.counts]))
      assert.strictEqual(counts["report.generate"].succeeded, 1)
      assert.strictEqual(counts["notification.send"].succeeded, 3)
      assert.strictEqual(counts["notification.send"].failed, 1)
      assert.strictEqual(counts["data.import"].succeeded, 1)
      assert.strictEqual(counts["maintenance.cleanup"].succeeded, 1)

      assert.include(main.output.stdout, `curl -s ${url}/v1/stats`)
      assert.include(main.output.stdout, "submitted 7 demo tasks")
      assert.isTrue(fs.existsSync(path.join(dir, "spindle.imports.db")))
      assert.strictEqual(fs.readdirSync(path.join(dir, "spindle.reports")).length, 1)

      main.child.kill("SIGTERM")
      const exit = yield* Deferred.await(main.exited).pipe(Effect.timeout("30 seconds"))
      assert.deepStrictEqual(exit, { code: 0, signal: null }, main.output.stderr)
    }), { timeout: 150_000 })

  it("is a module `spindle serve --tasks` loads", () => {
    // --dry-run builds the module's handlers (the import database and reports directory appear
    // next to SPINDLE_DB) and prints what it would serve
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spindle-task-service-dry-run-"))
    try {
      const output = execFileSync(process.execPath, [
        spindleBin,
        "serve",
        "--tasks",
        moduleScript,
        "--dry-run",
        "--json"
      ], {
        encoding: "utf8",
        env: { ...process.env, SPINDLE_DB: path.join(dir, "spindle.db") }
      })
      const config = JSON.parse(output)
      const names = ["data.import", "maintenance.cleanup", "notification.send", "report.generate"]
      assert.deepStrictEqual(config.handlers, names)
      assert.deepStrictEqual(config.definitions, names)
      assert.strictEqual(config.worker, true)
      assert.isTrue(fs.existsSync(path.join(dir, "spindle.imports.db")))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
