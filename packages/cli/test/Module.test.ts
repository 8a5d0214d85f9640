import { assert, describe, it } from "@effect/vitest"
import { Cli } from "@spindle/cli"
import { Effect, Layer } from "effect"
import * as path from "node:path"
import * as CliTest from "./cliTestUtils.js"

const loadError = (file: string) => Effect.flip(Cli.loadModule(CliTest.fixture(file)))

describe("task modules", () => {
  it.live("loads a module's default export", () =>
    Effect.gen(function*() {
      const module = yield* Cli.loadModule(CliTest.fixture("tasks.mjs"))
      assert.isTrue(Layer.isLayer(module.handlers))
      assert.deepStrictEqual(module.definitions?.map((definition) => definition.name), ["elsewhere"])
    }))

  it.live("loads a module's `tasks` export when it has no default one", () =>
    Effect.gen(function*() {
      const module = yield* Cli.loadModule(CliTest.fixture("named-export.mjs"))
      assert.deepStrictEqual(module.definitions?.map((definition) => definition.name), ["ping"])
      assert.isUndefined(module.handlers)
    }))

  it.live("resolves a relative path against the given directory", () =>
    Effect.gen(function*() {
      const module = yield* Cli.loadModule(path.join("fixtures", "named-export.mjs"), path.dirname(CliTest.fixtures))
      assert.strictEqual(module.definitions?.length, 1)
    }))

  it.live("a module of the wrong shape: every problem, clearly", () =>
    Effect.gen(function*() {
      const error = yield* loadError("bad-shape.mjs")
      assert.strictEqual(error.reason, "Module")
      assert.deepStrictEqual(error.lines, [
        `error: task module ${CliTest.fixture("bad-shape.mjs")}: its default export is not a task module`,
        "  unknown key `handler` (a task module has `definitions`, `handlers`, `cron`, `worker`)",
        "  `definitions[0]` is not a task (Task.make)"
      ])
    }))

  it.live("a module without the export", () =>
    Effect.gen(function*() {
      const error = yield* loadError("no-export.mjs")
      assert.strictEqual(error.reason, "Module")
      assert.include(error.lines[0], "it has no default export and no `tasks` export")
    }))

  it.live("a missing file, a module that throws", () =>
    Effect.gen(function*() {
      const missing = yield* loadError("missing.mjs")
      assert.deepStrictEqual(missing.lines, [`error: task module ${CliTest.fixture("missing.mjs")}: file not found`])
      const throws = yield* loadError("throws.mjs")
      assert.include(throws.lines[0], "cannot import: configuration missing")
    }))

  it.live("`serve --tasks` reports a bad module and exits 1", () =>
    Effect.gen(function*() {
      const result = yield* CliTest.run(["serve", "--tasks", CliTest.fixture("bad-shape.mjs")])
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.stderr, "its default export is not a task module")
      assert.include(result.stderr, "unknown key `handler`")
    }))

  it.live("`serve --dry-run` lists what the module registers", () =>
    Effect.gen(function*() {
      const result = yield* CliTest.run(["serve", "--tasks", CliTest.fixture("tasks.mjs"), "--dry-run"])
      assert.strictEqual(result.exitCode, 0, result.stderr)
      assert.include(result.stdout, "handlers:    boom, greet, noop")
      assert.include(result.stdout, "definitions: elsewhere")
      assert.include(result.stdout, "worker:      true")
    }))

  it.live("an embedded module is used unless --tasks names another", () =>
    Effect.gen(function*() {
      const module = yield* Cli.loadModule(CliTest.fixture("named-export.mjs"))
      const embedded = yield* CliTest.run(["worker", "--dry-run"], { module })
      assert.strictEqual(embedded.exitCode, 1)
      assert.include(embedded.stderr, "the task module (embedded) has no handlers to run")

      const served = yield* CliTest.run(["serve", "--dry-run", "--json"], { module })
      assert.deepStrictEqual(JSON.parse(served.stdout).definitions, ["ping"])

      const flag = yield* CliTest.run(["serve", "--dry-run", "--json", "--tasks", CliTest.fixture("tasks.mjs")], {
        module
      })
      assert.deepStrictEqual(JSON.parse(flag.stdout).handlers, ["boom", "greet", "noop"])
    }))

  it.live("`worker` without a module says what it needs", () =>
    Effect.gen(function*() {
      const result = yield* CliTest.run(["worker"])
      assert.strictEqual(result.exitCode, 1)
      assert.strictEqual(
        result.stderr,
        "error: spindle worker needs a task module: --tasks <module> (or SPINDLE_TASKS)"
      )
    }))
})
