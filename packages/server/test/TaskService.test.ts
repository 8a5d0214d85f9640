import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { TaskService } from "@spindle/server"
import { Task, TaskContext, TaskHandlers, TaskStore } from "@spindle/tasks"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Ref, Schedule, Schema, Scope } from "effect"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Sse from "./sse.js"

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** A fresh temporary directory, removed when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "spindle-service-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const buildError = <A>(layer: Layer.Layer<A, TaskService.TaskServiceError>) =>
  Effect.flip(Effect.scoped(Layer.build(layer)))

const pgUrl = process.env.SPINDLE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Whether the test database accepts TCP connections (the Postgres tests are skipped if not, except on CI). */
const pgReachable: boolean = await new Promise((resolve) => {
  const url = new URL(pgUrl)
  const socket = Net.connect({ host: url.hostname, port: Number(url.port || 5432) })
  socket.setTimeout(2000)
  socket.once("connect", () => {
    socket.destroy()
    resolve(true)
  })
  socket.once("timeout", () => {
    socket.destroy()
    resolve(false)
  })
  socket.once("error", () => resolve(false))
})
const skipPg = !pgReachable && process.env.CI !== "true"
if (skipPg) console.warn(`skipping the Postgres tests of TaskService: ${pgUrl} is unreachable`)

/** A port some other server listens on, until the scope closes. */
const busyPort = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly server: ReturnType<typeof createServer> }>((resume) => {
    const server = createServer()
    server.listen({ port: 0, host: "127.0.0.1" }, () => {
      const address = server.address()
      resume(Effect.succeed({ port: typeof address === "object" && address !== null ? address.port : 0, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** Whether a new TCP connection to the URL's port is refused. */
const refused = (url: string) =>
  Effect.async<boolean>((resume) => {
    const { hostname, port } = new URL(url)
    const socket = Net.connect({ host: hostname, port: Number(port) })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code === "ECONNREFUSED")))
  })

const fetchJson = (url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, body: await response.json() as any }
  })

const Double = Task.make("double", { payload: Schema.Number, success: Schema.Number, failure: Schema.Never })

const doubleModule = TaskService.module({
  handlers: TaskHandlers.layer(
    TaskHandlers.handler(Double, (n) => Effect.zipRight(TaskContext.progress(0.5), Effect.succeed(n * 2)))
  )
})

// -----------------------------------------------------------------------------
// layerStore
// -----------------------------------------------------------------------------

describe("layerStore", () => {
  it.scopedLive("opens a SQLite file, creating its directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = Path.join(dir, "nested", "deeper", "tasks.db")
      const id = yield* Effect.scoped(Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(TaskService.layerStore(file)), TaskStore.TaskStore)
        const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "t", payload: { a: 1 } }] })
        return inserted!.task.id
      }))
      assert.isTrue(Fs.statSync(file).isFile())
      // Durable: a second opening reads the task back.
      const task = yield* Effect.scoped(Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(TaskService.layerStore(file)), TaskStore.TaskStore)
        return Option.getOrThrow(yield* store.taskGet({ id }))
      }))
      assert.deepStrictEqual(task.payload, { a: 1 })
    }))

  it.scopedLive("a directory, a path under a file, or a file that is not a database is a Store error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const asDirectory = yield* buildError(TaskService.layerStore(dir))
      assert.strictEqual(asDirectory.reason, "Store")
      assert.include(asDirectory.message, "is a directory")

      const plain = Path.join(dir, "plain.txt")
      Fs.writeFileSync(plain, "not a directory")
      const underFile = yield* buildError(TaskService.layerStore(Path.join(plain, "tasks.db")))
      assert.strictEqual(underFile.reason, "Store")
      assert.include(underFile.message, "ENOTDIR")

      const garbage = Path.join(dir, "garbage.db")
      Fs.writeFileSync(garbage, "x".repeat(4096))
      const notDatabase = yield* buildError(TaskService.layerStore(garbage))
      assert.strictEqual(notDatabase.reason, "Store")
      assert.include(notDatabase.message, garbage)
    }))

  it.effect("an empty address or a malformed Postgres URL is a BadOption", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* buildError(TaskService.layerStore(" "))).reason, "BadOption")
      assert.strictEqual((yield* buildError(TaskService.layerStore("postgres://[bad"))).reason, "BadOption")
      const schema = yield* buildError(TaskService.layerStore("postgres://u@127.0.0.1/db?schema=a-b"))
      assert.strictEqual(schema.reason, "BadOption")
    }))

  it.live("an unreachable Postgres is a Store error without the password", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.map(busyPort, ({ port }) => port)) // free again: refused
      const error = yield* buildError(TaskService.layerStore(`postgresql://u:s3cret@127.0.0.1:${port}/db`))
      assert.strictEqual(error.reason, "Store")
      assert.include(error.message, "postgresql://u:***@127.0.0.1")
      assert.notInclude(error.message, "s3cret")
    }))

  it.live.skipIf(skipPg)("opens a Postgres store in the schema the URL names", () =>
    Effect.gen(function*() {
      const schema = `spindle_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`
      const sql = PgClient.layer({ url: Redacted.make(pgUrl), maxConnections: 1 })
      const dropSchema = Effect.flatMap(PgClient.PgClient, (client) =>
        client.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).withoutTransform).pipe(
          Effect.provide(sql),
          Effect.orDie
        )
      const separator = pgUrl.includes("?") ? "&" : "?"
      yield* Effect.gen(function*() {
        const store = Context.get(
          yield* Layer.build(TaskService.layerStore(`${pgUrl}${separator}schema=${schema}`)),
          TaskStore.TaskStore
        )
        const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "t", payload: null }] })
        const tables = yield* Effect.flatMap(
          PgClient.PgClient,
          (client) =>
            client<{ n: number }>`SELECT count(*)::int AS n FROM ${client(schema)}.tasks`
        ).pipe(Effect.provide(sql))
        assert.deepStrictEqual(tables, [{ n: 1 }])
        const task = Option.getOrThrow(yield* store.taskGet({ id: inserted!.task.id }))
        assert.strictEqual(task.name, "t")
      }).pipe(Effect.scoped, Effect.ensuring(dropSchema))
    }))
})

// -----------------------------------------------------------------------------
// layer
// -----------------------------------------------------------------------------

describe("layer", () => {
  it.scopedLive("rejects bad options with BadOption", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const bad: ReadonlyArray<[TaskService.Options, string]> = [
        [{ port: -1 }, "port"],
        [{ port: 65536 }, "port"],
        [{ port: 80.5 }, "port"],
        [{ concurrency: 0 }, "concurrency"],
        [{ concurrency: 1.5 }, "concurrency"],
        [{ host: "" }, "host"],
        [{ host: "  " }, "host"],
        [{ worker: true }, "no handlers"],
        [{ server: { eventsBuffer: -1 } }, "eventsBuffer"],
        [{ server: { bodyLimitBytes: 0 } }, "bodyLimitBytes"]
      ]
      for (const [options, mentions] of bad) {
        const error = yield* buildError(TaskService.layer({ db, ...options }))
        assert.strictEqual(error.reason, "BadOption", mentions)
        assert.include(error.message, mentions)
      }
      assert.isFalse(Fs.existsSync(db), "no store is opened for bad options")
      // The worker's own options are checked by the worker, once the store is open.
      const worker = yield* buildError(TaskService.layer({ db, module: { ...doubleModule, worker: { lease: 0 } } }))
      assert.strictEqual(worker.reason, "BadOption")
      assert.include(worker.message, "lease must be positive")
    }))

  it.scopedLive("a port in use is a Listen error", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const { port } = yield* busyPort
      const error = yield* buildError(TaskService.layer({ db, port }))
      assert.strictEqual(error.reason, "Listen")
      assert.include(error.message, `127.0.0.1:${port}`)
      assert.include(error.message, "EADDRINUSE")
    }))

  it.scopedLive("a module whose handlers fail to build is a Module error", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const error = yield* buildError(TaskService.layer({
        db,
        port: 0,
        module: { handlers: Layer.fail("no SMTP configured") }
      }))
      assert.strictEqual(error.reason, "Module")
      assert.include(error.message, "no SMTP configured")
    }))

  it.scopedLive("two definitions with one name are a Module error", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const Other = Task.make("double", { payload: Schema.String, success: Schema.String, failure: Schema.Never })
      const error = yield* buildError(TaskService.layer({
        db,
        port: 0,
        module: { ...doubleModule, definitions: [Other] }
      }))
      assert.strictEqual(error.reason, "Module")
      assert.include(error.message, "double")
    }))

  it.scopedLive("without API nor worker, provides the store kind only", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const service = Context.get(yield* Layer.build(TaskService.layer({ db, api: false })), TaskService.TaskService)
      assert.deepStrictEqual(service, { url: Option.none(), store: "sqlite", workerId: Option.none() })
    }))

  it.scopedLive("serves the API on port 0 and runs a submitted task to success", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const announced = yield* Ref.make<Array<string>>([])
      const service = Context.get(
        yield* Layer.build(TaskService.layer({
          db,
          port: 0,
          module: doubleModule,
          concurrency: 2,
          onListening: (url) => Ref.update(announced, (urls) => [...urls, url])
        })),
        TaskService.TaskService
      )
      const url = Option.getOrThrow(service.url)
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.notStrictEqual(url, "http://127.0.0.1:0")
      assert.deepStrictEqual(yield* Ref.get(announced), [url])
      assert.strictEqual(service.store, "sqlite")
      assert.isTrue(Option.isSome(service.workerId))

      assert.deepStrictEqual(yield* fetchJson(`${url}/healthz`), { status: 200, body: { status: "ok" } })
      const submitted = yield* fetchJson(`${url}/v1/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "double", payload: 21 })
      })
      assert.strictEqual(submitted.status, 201, JSON.stringify(submitted.body))
      const result = yield* fetchJson(`${url}/v1/tasks/${submitted.body.id}/result?waitMs=20000`)
      assert.strictEqual(result.status, 200)
      assert.include(result.body, { status: "succeeded", finished: true, result: 42 })
    }))

  it.scopedLive("shuts down in order: HTTP (SSE streams end), then the worker lets its task finish, then the store", () =>
    Effect.gen(function*() {
      const db = Path.join(yield* tempDir, "tasks.db")
      const Slow = Task.make("slow", { payload: Schema.Void, success: Schema.String, failure: Schema.Never })
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const module = TaskService.module({
        handlers: TaskHandlers.layer(
          TaskHandlers.handler(
            Slow,
            () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Deferred.await(release), "done"))
          )
        ),
        worker: { shutdownGrace: "20 seconds" }
      })
      const scope = yield* Scope.make()
      const service = Context.get(
        yield* Layer.buildWithScope(TaskService.layer({ db, port: 0, module }), scope),
        TaskService.TaskService
      )
      const url = Option.getOrThrow(service.url)
      const events = yield* Sse.connect(`${url}/v1/events`)
      assert.strictEqual(events.status, 200)
      const submitted = yield* fetchJson(`${url}/v1/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "slow", payload: null })
      })
      yield* Deferred.await(started)

      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      // The SSE stream ends while the task still runs, and the server no longer accepts.
      const seen = yield* Sse.untilEnd(events)
      assert.deepStrictEqual(seen.map((block) => block.event), ["submitted", "started"])
      // The server stops accepting (polled: its close follows the streams' end by a few turns).
      yield* refused(url).pipe(
        Effect.repeat({ until: (isRefused) => isRefused, schedule: Schedule.spaced("10 millis") }),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the server still accepts") })
      )
      assert.isNull(yield* Fiber.poll(closing).pipe(Effect.map(Option.getOrNull)))

      // The worker waits for the running task, which can still write its success to the store.
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(closing)
      const task = yield* Effect.scoped(Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(TaskService.layerStore(db)), TaskStore.TaskStore)
        return Option.getOrThrow(yield* store.taskGet({ id: submitted.body.id }))
      }))
      assert.strictEqual(task.status, "succeeded")
      assert.strictEqual(task.result, "done")
    }))
})
