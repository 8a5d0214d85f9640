import { assert, describe, it } from "@effect/vitest"
import { TaskCatalog, TaskService } from "@spindle/server"
import { MemoryStore, Task, TaskHandlers, TaskStore } from "@spindle/tasks"
import { Context, Effect, FiberSet, Layer, Option, Schema } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { resolve } from "../src/internal/config.js"
import * as FastLane from "../src/internal/fastLane.js"

const Greet = Task.make("greet", {
  payload: Schema.Struct({ name: Schema.String, times: Schema.optional(Schema.Int) }),
  success: Schema.String,
  failure: Schema.Never
})

interface Answer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: any
}

/** Sends a raw request: with a content-length, or chunked (which the fast lane leaves alone). */
const send = (
  port: number,
  body: string,
  options: { readonly chunked?: boolean; readonly headers?: Record<string, string>; readonly path?: string } = {}
) =>
  Effect.async<Answer>((resume) => {
    const request = Http.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: options.path ?? "/v1/tasks",
      headers: {
        "content-type": "application/json",
        ...(options.chunked ? { "transfer-encoding": "chunked" } : { "content-length": Buffer.byteLength(body) }),
        ...options.headers
      }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        let json: unknown = text
        try {
          json = JSON.parse(text)
        } catch {
          // not JSON: kept as text
        }
        resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body: json }))
      })
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end(body)
  })

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "spindle-fastlane-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const service = (token?: string) =>
  Effect.gen(function*() {
    const db = Path.join(yield* tempDir, "tasks.db")
    const context = yield* Layer.build(TaskService.layer({
      db,
      port: 0,
      module: TaskService.module({
        handlers: TaskHandlers.layer(TaskHandlers.handler(Greet, ({ name }) => Effect.succeed(`hi ${name}`)))
      }),
      worker: false,
      server: { requestLog: false, ...(token === undefined ? {} : { token }) }
    }))
    return Number(new URL(Option.getOrThrow(Context.get(context, TaskService.TaskService).url)).port)
  })

/** What must match between the two paths: the status and the body but for ids and times. */
const comparable = (answer: Answer) => ({
  status: answer.status,
  body: answer.status === 201 ? { created: answer.body.created, name: answer.body.task?.name } : answer.body
})

const bodies: ReadonlyArray<readonly [string, string]> = [
  ["valid", JSON.stringify({ name: "greet", payload: { name: "ada" }, priority: "high", tags: ["x"] })],
  ["invalid payload", JSON.stringify({ name: "greet", payload: { name: 1, times: 1.5 } })],
  ["unknown task", JSON.stringify({ name: "gret", payload: {} })],
  ["malformed JSON", "{\"name\": \"greet\", "],
  ["empty body", ""],
  ["a JSON array", "[1, 2]"],
  ["an unknown field", JSON.stringify({ name: "greet", payload: { name: "a" }, colour: "red" })],
  [
    "runAt and delayMs",
    JSON.stringify({ name: "greet", payload: { name: "a" }, runAt: "2030-01-01T00:00:00Z", delayMs: 5 })
  ],
  ["too deep", "[".repeat(100) + "]".repeat(100)]
]

describe("the fast lane of POST /v1/tasks", () => {
  it.scopedLive("answers every body exactly as the platform path does", () =>
    Effect.gen(function*() {
      const port = yield* service()
      for (const [label, body] of bodies) {
        const fast = yield* send(port, body)
        const platform = yield* send(port, body, { chunked: true })
        assert.deepStrictEqual(comparable(fast), comparable(platform), label)
        assert.strictEqual(fast.headers["content-type"], "application/json", label)
        assert.match(String(fast.headers["x-request-id"]), /^[0-9a-f-]{36}$/, label)
      }
      const echoed = yield* send(port, bodies[0]![1], { headers: { "x-request-id": "req-7" } })
      assert.strictEqual(echoed.headers["x-request-id"], "req-7")
    }))

  it.scopedLive("stores what it accepts: the answer is the task GET returns", () =>
    Effect.gen(function*() {
      const port = yield* service()
      const answer = yield* send(port, JSON.stringify({ name: "greet", payload: { name: "ada" }, delayMs: 60_000 }))
      assert.strictEqual(answer.status, 201)
      const stored = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/v1/tasks/${answer.body.id}`).then((r) => r.json() as Promise<any>)
      )
      assert.deepStrictEqual(answer.body.task, stored)
      assert.strictEqual(stored.status, "scheduled")
    }))

  it.scopedLive("with a token: a request without it or with a wrong one is refused with 401", () =>
    Effect.gen(function*() {
      const port = yield* service("s3cret")
      const body = JSON.stringify({ name: "greet", payload: { name: "ada" } })
      assert.strictEqual((yield* send(port, body)).status, 401)
      assert.strictEqual((yield* send(port, body, { headers: { authorization: "Bearer nope" } })).status, 401)
      const accepted = yield* send(port, body, { headers: { authorization: "Bearer s3cret" } })
      assert.strictEqual(accepted.status, 201)
    }))

  it.scopedLive("takes only what it answers exactly: other requests pass through untouched", () =>
    Effect.gen(function*() {
      const store = Context.get(yield* Layer.build(MemoryStore.layer), TaskStore.TaskStore)
      const run = yield* FiberSet.makeRuntime<never>()
      const catalog = TaskCatalog.make([Greet])
      const lane = (token?: string, corsOrigins?: ReadonlyArray<string>) =>
        FastLane.handler({
          config: resolve({ requestLog: false, bodyLimitBytes: 1000, token, corsOrigins }),
          store,
          catalog,
          run
        }).handle
      const serve = (handle: ReturnType<typeof lane>) =>
        Effect.acquireRelease(
          Effect.async<Http.Server>((resume) => {
            const server = Http.createServer((request, response) => {
              if (!handle(request, response)) {
                request.resume()
                request.on("end", () => response.writeHead(299).end())
              }
            })
            server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
        ).pipe(Effect.map((server) => (server.address() as AddressInfo).port))
      const body = JSON.stringify({ name: "greet", payload: { name: "ada" } })

      const open = yield* serve(lane())
      assert.strictEqual((yield* send(open, body)).status, 201)
      assert.strictEqual((yield* send(open, body, { chunked: true })).status, 299)
      assert.strictEqual((yield* send(open, body, { path: "/v1/tasks?x=1" })).status, 299)
      assert.strictEqual((yield* send(open, body, { path: "/v1/tasks/batch" })).status, 299)
      assert.strictEqual((yield* send(open, body, { headers: { "content-type": "text/plain" } })).status, 299)
      assert.strictEqual((yield* send(open, "x".repeat(1001))).status, 299)

      const guarded = yield* serve(lane("s3cret"))
      assert.strictEqual((yield* send(guarded, body)).status, 299)
      assert.strictEqual((yield* send(guarded, body, { headers: { authorization: "Bearer nope" } })).status, 299)
      assert.strictEqual((yield* send(guarded, body, { headers: { authorization: "Bearer s3cret" } })).status, 201)

      const cors = yield* serve(lane(undefined, ["*"]))
      assert.strictEqual((yield* send(cors, body)).status, 299)

      const page = yield* store.tasksList({})
      assert.strictEqual(page.items.length, 2)
    }))
})
