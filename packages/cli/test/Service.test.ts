import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cli } from "@spindle/cli"
import { TaskService } from "@spindle/server"
import { ConfigProvider, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import * as path from "node:path"
import * as CliTest from "./cliTestUtils.js"

/** Runs `spindle <args>` in a fiber; `url` completes with the URL it prints. */
const start = (args: ReadonlyArray<string>, options?: Cli.RunOptions) =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const listening = yield* Deferred.make<string>()
    const ready = yield* Deferred.make<string>()
    const console = CliTest.makeConsole(stdout, stderr, (line) => {
      const url = /^spindle listening on (\S+)$/.exec(line)
      if (url !== null) Deferred.unsafeDone(listening, Exit.succeed(url[1]!))
      if (line.startsWith("spindle worker ")) Deferred.unsafeDone(ready, Exit.succeed(line))
    })
    const fiber = yield* Cli.run(args, options).pipe(
      Effect.withConsole(console),
      Effect.provide(NodeContext.layer),
      Effect.forkScoped
    )
    return { fiber, stdout, stderr, listening: Deferred.await(listening), ready: Deferred.await(ready) }
  })

const tempDb = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "spindle-cli-" })
  return path.join(dir, "tasks.db")
})

describe("service commands", () => {
  it.scopedLive("migrate applies the migrations and exits", () =>
    Effect.gen(function*() {
      const db = yield* tempDb
      const result = yield* CliTest.run(["migrate", "--db", db])
      assert.strictEqual(result.exitCode, 0, result.stderr)
      assert.strictEqual(result.stdout, `migrations applied to ${db}`)
      const fs = yield* FileSystem.FileSystem
      assert.isTrue(yield* fs.exists(db))

      const again = yield* CliTest.run(["migrate", "--db", db])
      assert.strictEqual(again.exitCode, 0, again.stderr)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("migrate on something that is no database fails with the store's reason", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const result = yield* CliTest.run(["migrate", "--db", dir])
      assert.strictEqual(result.exitCode, 1)
      assert.strictEqual(result.error?.reason, "Service")
      assert.match(result.stderr, /^error: TaskServiceError: Store: .*is a directory/)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("serve with an embedded module: prints its URL, serves until interrupted", () =>
    Effect.gen(function*() {
      const db = yield* tempDb
      const module = yield* Cli.loadModule(CliTest.fixture("tasks.mjs"))
      const serve = yield* start(["serve", "--db", db, "--port", "0", "--quiet"], { module })
      const url = yield* serve.listening
      assert.match(yield* serve.ready, /^spindle worker \S+ running \(concurrency 10, store sqlite\)$/)

      const result = yield* CliTest.run(["submit", "--url", url, "--wait", "greet", "{\"name\":\"embedded\"}"])
      assert.strictEqual(result.exitCode, 0, result.stderr)
      assert.include(result.stdout, "result: \"hello embedded\"")

      const exit = yield* Fiber.interrupt(serve.fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.deepStrictEqual(serve.stderr, [])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("serve hands an embedding program its URL, store and token, and makes its module for the store", () =>
    Effect.gen(function*() {
      const db = yield* tempDb
      const loaded = yield* Cli.loadModule(CliTest.fixture("tasks.mjs"))
      const madeFor: Array<string> = []
      const info = yield* Deferred.make<{ readonly url: string; readonly db: string; readonly token: string | null }>()
      const serve = yield* start(["serve", "--db", db, "--port", "0", "--quiet", "--token", "s3cret"], {
        module: (service) => {
          madeFor.push(service.db)
          return loaded
        },
        onListening: (listening) =>
          Deferred.succeed(info, {
            url: listening.url,
            db: listening.db,
            token: Option.match(listening.token, { onNone: () => null, onSome: Redacted.value })
          })
      })
      const url = yield* serve.listening
      assert.deepStrictEqual(yield* Deferred.await(info), { url, db, token: "s3cret" })
      assert.deepStrictEqual(madeFor, [db])
      yield* Fiber.interrupt(serve.fiber)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("serve with an empty SPINDLE_TOKEN hands no token to onListening", () =>
    Effect.gen(function*() {
      const db = yield* tempDb
      const module = yield* Cli.loadModule(CliTest.fixture("tasks.mjs"))
      const token = yield* Deferred.make<Option.Option<Redacted.Redacted>>()
      const serve = yield* start(["serve", "--db", db, "--port", "0", "--quiet", "--no-worker"], {
        module,
        onListening: (listening) => Deferred.succeed(token, listening.token)
      }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SPINDLE_TOKEN", ""]]))))
      yield* serve.listening
      assert.isTrue(Option.isNone(yield* Deferred.await(token)))
      yield* Fiber.interrupt(serve.fiber)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("serve --api-only runs no worker; `worker` runs the tasks", () =>
    Effect.gen(function*() {
      const db = yield* tempDb
      const api = yield* start([
        "serve",
        "--db",
        db,
        "--port",
        "0",
        "--api-only",
        "--quiet",
        "--tasks",
        CliTest.fixture("tasks.mjs")
      ])
      const url = yield* api.listening

      const submitted = yield* CliTest.run(["submit", "--url", url, "--json", "greet", "{\"name\":\"later\"}"])
      const id = JSON.parse(submitted.stdout).id as string
      const before = yield* CliTest.run(["get", "--url", url, "--json", id])
      assert.strictEqual(JSON.parse(before.stdout).status, "pending")
      assert.isFalse(api.stdout.some((line) => line.startsWith("spindle worker")))

      const worker = yield* start(["worker", "--db", db, "--concurrency", "2", "--tasks", CliTest.fixture("tasks.mjs")])
      assert.match(yield* worker.ready, /^spindle worker \S+ running \(concurrency 2, store sqlite\)$/)
      const waited = yield* CliTest.run(["submit", "--url", url, "--wait", "--json", "greet", "{\"name\":\"now\"}"])
      assert.strictEqual(JSON.parse(waited.stdout).result, "hello now")
      const after = yield* CliTest.run(["get", "--url", url, "--json", id])
      assert.oneOf(JSON.parse(after.stdout).status, ["running", "succeeded"])

      yield* Fiber.interrupt(worker.fiber)
      yield* Fiber.interrupt(api.fiber)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("serve on a port in use fails with the service's reason", () =>
    Effect.gen(function*() {
      const db = yield* tempDb
      const context = yield* Layer.build(TaskService.layer({ db, port: 0, server: { requestLog: false } }))
      const port = new URL(Option.getOrThrow(Context.get(context, TaskService.TaskService).url)).port
      const result = yield* CliTest.run(["serve", "--db", db, "--port", port])
      assert.strictEqual(result.exitCode, 1)
      assert.strictEqual(result.error?.reason, "Service")
      assert.match(result.stderr, /^warning: no task module/)
      assert.match(result.stderr, /error: TaskServiceError: Listen: /)
    }).pipe(Effect.provide(NodeContext.layer)))
})
