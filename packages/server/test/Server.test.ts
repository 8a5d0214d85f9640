import { HttpApi, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Api } from "@spindle/server"
import { TaskStore } from "@spindle/tasks"
import { Effect, Fiber, HashMap, Logger, Redacted, Ref, Stream } from "effect"
import { allTasks, layer, makeClient, makeClientWithToken, postText, send, SendEmail } from "./serverTestUtils.js"

const email = (to = "ada@example.com") => ({ name: "send-email", payload: { to, subject: "hello" } })

const json = (value: unknown) => JSON.stringify(value)

/** Runs the test against a fresh server and store. */
const served = <A, E, R>(effect: Effect.Effect<A, E, R>, options: Parameters<typeof layer>[0] = {}) =>
  Effect.provide(effect, layer(options))

/** Asserts a JSON error answer with this status and tag, and returns its body. */
const assertError = (
  answer: { readonly status: number; readonly json: unknown; readonly text: string },
  status: number,
  tag: string
): Record<string, any> => {
  assert.strictEqual(answer.status, status, answer.text)
  const body = answer.json as Record<string, any>
  assert.isObject(body, answer.text)
  assert.strictEqual(body._tag, tag, answer.text)
  return body
}

const assertNothingStored = Effect.map(allTasks, (tasks) => assert.deepStrictEqual(tasks, []))

/** Stores a task and takes it through a worker's claim, so that it can be completed or failed. */
const claimed = (name = "send-email") =>
  Effect.gen(function*() {
    const store = yield* TaskStore.TaskStore
    const [inserted] = yield* store.tasksInsert({
      tasks: [{ name, queue: "email", payload: { to: "a@b", subject: "s" } }]
    })
    const [task] = yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 60_000, names: [name] })
    assert.strictEqual(task?.id, inserted!.task.id)
    return task!
  })

describe("Server", () => {
  describe("POST /v1/tasks", () => {
    it.live("stores a task and answers 201 with it", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const answer = yield* client.tasks.submit({
          payload: { name: "send-email", payload: { to: "ada@example.com", subject: "hi" }, tags: ["vip"] }
        })
        assert.isTrue(answer.created)
        assert.strictEqual(answer.task.name, "send-email")
        assert.strictEqual(answer.task.queue, "email")
        assert.strictEqual(answer.task.maxAttempts, 3)
        assert.strictEqual(answer.task.timeoutMs, 30_000)
        assert.deepStrictEqual(answer.task.tags, ["mail", "vip"])
        assert.instanceOf(answer.task.createdAt, Date)
        const tasks = yield* allTasks
        assert.deepStrictEqual(tasks.map((task) => task.id), [answer.id])
        assert.deepStrictEqual(tasks[0]!.payload, { to: "ada@example.com", subject: "hi" })
      })))

    it.live("encodes the payload with the definition's Schema and applies the options", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const runAt = new Date(Date.now() + 3_600_000)
        const answer = yield* client.tasks.submit({
          payload: {
            name: "report",
            payload: { day: "2026-01-02T00:00:00.000Z", format: "pdf" },
            runAt,
            priority: "critical",
            queue: "reports",
            maxAttempts: 5,
            parentId: "parent-1"
          }
        })
        assert.strictEqual(answer.task.status, "scheduled")
        assert.strictEqual(answer.task.runAt.getTime(), runAt.getTime())
        assert.strictEqual(answer.task.priority, "critical")
        assert.strictEqual(answer.task.queue, "reports")
        assert.strictEqual(answer.task.maxAttempts, 5)
        assert.strictEqual(answer.task.parentId, "parent-1")
        assert.deepStrictEqual(answer.task.payload, { day: "2026-01-02T00:00:00.000Z", format: "pdf" })

        const delayed = yield* client.tasks.submit({ payload: { ...email(), delayMs: 60_000 } })
        assert.strictEqual(delayed.task.status, "scheduled")
        assert.isAtLeast(delayed.task.runAt.getTime() - delayed.task.createdAt.getTime(), 59_000)
      })))

    it.live("answers an unfinished task of the same idempotency key with created: false", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const body = { name: "notify", payload: { userId: "u1", text: "a" } }
        const first = yield* client.tasks.submit({ payload: body })
        const second = yield* client.tasks.submit({ payload: { ...body, payload: { userId: "u1", text: "b" } } })
        assert.isTrue(first.created)
        assert.isFalse(second.created)
        assert.strictEqual(second.id, first.id)
        const keyed = yield* client.tasks.submit({ payload: { ...body, idempotencyKey: "other" } })
        assert.isTrue(keyed.created)
        assert.strictEqual((yield* allTasks).length, 2)
      })))

    it.live("an invalid payload: 400 InvalidPayload naming the path in the body, nothing stored", () =>
      served(Effect.gen(function*() {
        const answer = yield* postText("/v1/tasks", json({ name: "send-email", payload: { to: 1, subject: "s" } }))
        const body = assertError(answer, 400, "InvalidPayload")
        assert.strictEqual(body.taskName, "send-email")
        assert.deepStrictEqual(body.issues[0].path, ["body", "payload", "to"])
        assert.include(body.message, "body.payload.to")

        const missing = assertError(yield* postText("/v1/tasks", json({ name: "send-email" })), 400, "InvalidPayload")
        assert.deepStrictEqual(missing.issues[0].path, ["body", "payload"])

        const refined = assertError(
          yield* postText("/v1/tasks", json({ name: "send-email", payload: { to: "no-at-sign", subject: "s" } })),
          400,
          "InvalidPayload"
        )
        assert.deepStrictEqual(refined.issues[0].path, ["body", "payload", "to"])
        yield* assertNothingStored
      })))

    it.live("the typed client sees InvalidPayload as a typed error", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const error = yield* Effect.flip(client.tasks.submit({ payload: { name: "send-email", payload: { to: 1 } } }))
        assert.strictEqual(error._tag, "InvalidPayload")
        if (error._tag === "InvalidPayload") assert.deepStrictEqual(error.issues[0]!.path, ["body", "payload", "to"])
      })))

    it.live("an unknown task name: 404 UnknownTask at body.name, nothing stored", () =>
      served(Effect.gen(function*() {
        const body = assertError(
          yield* postText("/v1/tasks", json({ name: "send-emial", payload: {} })),
          404,
          "UnknownTask"
        )
        assert.strictEqual(body.name, "send-emial")
        assert.deepStrictEqual(body.issues[0].path, ["body", "name"])
        yield* assertNothingStored
      })))

    it.live("runAt with delayMs: 400 InvalidParams at body.runAt", () =>
      served(Effect.gen(function*() {
        const body = assertError(
          yield* postText("/v1/tasks", json({ ...email(), runAt: new Date().toISOString(), delayMs: 10 })),
          400,
          "InvalidParams"
        )
        assert.strictEqual(body.parameter, "body.runAt")
        yield* assertNothingStored
      })))

    it.live("unreadable bodies: 400 BadRequest naming where, nothing stored", () =>
      served(Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [string, string, ReadonlyArray<string | number>]> = [
          ["{\"name\": \"send-email\", ", "application/json", ["body"]],
          ["", "application/json", ["body"]],
          ["   ", "application/json", ["body"]],
          [json(email()), "text/plain", ["headers", "content-type"]],
          [json(email()), "application/x-www-form-urlencoded", ["headers", "content-type"]],
          [json([email()]), "application/json", ["body"]],
          ["42", "application/json", ["body"]],
          [json({ name: 42, payload: {} }), "application/json", ["body", "name"]],
          [json({ ...email(), paylod: {} }), "application/json", ["body", "paylod"]],
          [json({ ...email(), priority: "urgent" }), "application/json", ["body", "priority"]],
          [json({ ...email(), delayMs: -1 }), "application/json", ["body", "delayMs"]],
          [json({ ...email(), runAt: "not a date" }), "application/json", ["body", "runAt"]],
          [json({ ...email(), maxAttempts: 0 }), "application/json", ["body", "maxAttempts"]],
          [json({ ...email(), tags: "vip" }), "application/json", ["body", "tags"]],
          ["[".repeat(5_000) + "]".repeat(5_000), "application/json", ["body"]],
          [
            `{"name":"send-email","payload":{"to":"a@b","subject":"s","cc":${"[".repeat(100)}${"]".repeat(100)}}}`,
            "application/json",
            [
              "body"
            ]
          ]
        ]
        for (const [text, contentType, path] of cases) {
          const body = assertError(yield* postText("/v1/tasks", text, contentType), 400, "BadRequest")
          assert.isString(body.message)
          assert.deepStrictEqual(body.issues[0].path, path, `${text.slice(0, 80)} (${contentType})`)
        }
        yield* assertNothingStored
      })))

    it.live("a body over the limit by content-length: 413 PayloadTooLarge, connection kept", () =>
      served(
        Effect.gen(function*() {
          const big = json({ ...email(), payload: { to: "a@b", subject: "x".repeat(5_000) } })
          const body = assertError(yield* postText("/v1/tasks", big), 413, "PayloadTooLarge")
          assert.strictEqual(body.limitBytes, 4096)
          // The server still answers, and the same body under the limit is accepted.
          const ok = yield* postText("/v1/tasks", json(email()))
          assert.strictEqual(ok.status, 201)
          assert.strictEqual((yield* allTasks).length, 1)
        }),
        { bodyLimitBytes: 4096 }
      ))

    it.live("a chunked body over the limit: 413 PayloadTooLarge, not a reset connection", () =>
      served(
        Effect.gen(function*() {
          const chunk = new TextEncoder().encode("x".repeat(1_000))
          const head = new TextEncoder().encode("{\"name\":\"send-email\",\"payload\":{\"to\":\"a@b\",\"subject\":\"")
          const tail = new TextEncoder().encode("\"}}")
          const body = Stream.concat(
            Stream.make(head),
            Stream.concat(Stream.make(...Array(20).fill(chunk)), Stream.make(tail))
          )
          const answer = yield* send(
            HttpClientRequest.post("/v1/tasks").pipe(
              HttpClientRequest.bodyStream(body, { contentType: "application/json" })
            )
          )
          const error = assertError(answer, 413, "PayloadTooLarge")
          assert.strictEqual(error.limitBytes, 4096)
          // A chunked body within the limit is read.
          const small = Stream.make(new TextEncoder().encode(json(email())))
          const ok = yield* send(
            HttpClientRequest.post("/v1/tasks").pipe(
              HttpClientRequest.bodyStream(small, { contentType: "application/json" })
            )
          )
          assert.strictEqual(ok.status, 201, ok.text)
          assert.strictEqual((yield* allTasks).length, 1)
        }),
        { bodyLimitBytes: 4096 }
      ))
  })

  describe("single submissions stored together", () => {
    it.live("concurrent submissions within the window go to the store in one round trip", () => {
      let inserts = 0
      return Effect.provide(
        Effect.gen(function*() {
          const client = yield* makeClient
          const answers = yield* Effect.forEach(
            Array.from({ length: 8 }, (_, i) => email(`u${i}@x`)),
            (body) => client.tasks.submit({ payload: body }),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(inserts, 1)
          assert.strictEqual(new Set(answers.map((answer) => answer.id)).size, 8)
          assert.deepStrictEqual(
            answers.map((answer) => (answer.task.payload as { to: string }).to),
            Array.from({ length: 8 }, (_, i) => `u${i}@x`)
          )
          assert.strictEqual((yield* allTasks).length, 8)
        }),
        layer({ coalesceWindow: "1 second" }, (store) => ({
          ...store,
          tasksInsert: (params) => {
            inserts++
            return store.tasksInsert(params)
          }
        }))
      )
    })

    it.live("an idempotency key repeated among coalesced submissions creates one task", () =>
      served(
        Effect.gen(function*() {
          const client = yield* makeClient
          const answers = yield* Effect.forEach(
            ["a", "b", "c"],
            (text) => client.tasks.submit({ payload: { name: "notify", payload: { userId: "u1", text } } }),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(new Set(answers.map((answer) => answer.id)).size, 1)
          assert.strictEqual(answers.filter((answer) => answer.created).length, 1)
          assert.strictEqual((yield* allTasks).length, 1)
        }),
        { coalesceWindow: "200 millis" }
      ))

    it.live("a store failure fails each submission with TaskStoreError (503)", () =>
      Effect.provide(
        Effect.gen(function*() {
          const answer = yield* postText("/v1/tasks", json(email()))
          const body = assertError(answer, 503, "TaskStoreError")
          assert.strictEqual(body.operation, "tasksInsert")
          assert.strictEqual(body.message, "disk full")
        }),
        layer({}, (store) => ({
          ...store,
          tasksInsert: () =>
            Effect.fail(new TaskStore.TaskStoreError({ operation: "tasksInsert", message: "disk full" }))
        }))
      ))

    it.live("the answers of submit and retry encode tasks as GET does", () =>
      served(Effect.gen(function*() {
        const store = yield* TaskStore.TaskStore
        const submitted = yield* postText("/v1/tasks", json({ ...email(), delayMs: 60_000 }))
        const id = (submitted.json as { id: string }).id
        const got = yield* send(HttpClientRequest.get(`/v1/tasks/${id}`))
        assert.deepStrictEqual((submitted.json as { task: unknown }).task, got.json)
        assert.isNotNull((got.json as { retry: unknown }).retry)
        // A task that ran and failed: every date and the error set.
        const task = yield* claimed()
        yield* store.taskFail({
          id: task.id,
          workerId: "w1",
          error: { tag: "Bounced", message: "bounced", cause: "Bounced", value: { address: "a@b" } },
          outcome: { _tag: "failed" }
        })
        const failed = yield* send(HttpClientRequest.get(`/v1/tasks/${task.id}`))
        assert.isString((failed.json as { finishedAt: unknown }).finishedAt)
        const retried = yield* send(HttpClientRequest.post(`/v1/tasks/${task.id}/retry`))
        const after = yield* send(HttpClientRequest.get(`/v1/tasks/${task.id}`))
        assert.deepStrictEqual(retried.json, after.json)
        assert.deepStrictEqual((after.json as { error: unknown }).error, {
          tag: "Bounced",
          message: "bounced",
          cause: "Bounced",
          value: { address: "a@b" }
        })
      })))
  })

  describe("POST /v1/tasks/batch", () => {
    it.live("stores tasks of several definitions in one round trip, in order", () => {
      let inserts = 0
      return Effect.provide(
        Effect.gen(function*() {
          const client = yield* makeClient
          const answer = yield* client.tasks.submitBatch({
            payload: {
              tasks: [
                email("a@x"),
                { name: "report", payload: { day: "2026-01-02T00:00:00.000Z" }, delayMs: 1_000 },
                { name: "notify", payload: { userId: "u1", text: "t" } },
                email("b@x")
              ]
            }
          })
          assert.strictEqual(inserts, 1)
          assert.deepStrictEqual(answer.items.map((item) => item.task.name), [
            "send-email",
            "report",
            "notify",
            "send-email"
          ])
          assert.deepStrictEqual(answer.items.map((item) => item.created), [true, true, true, true])
          assert.strictEqual(answer.items[1]!.task.status, "scheduled")
          assert.strictEqual(answer.items[2]!.task.idempotencyKey, "u1")
          assert.strictEqual(answer.items[2]!.task.priority, "high")
          assert.deepStrictEqual(answer.items[0]!.task.tags, ["mail"])
          assert.strictEqual(answer.items[0]!.task.timeoutMs, 30_000)
          assert.strictEqual((yield* allTasks).length, 4)
        }),
        layer({}, (store) => ({
          ...store,
          tasksInsert: (params) => {
            inserts++
            return store.tasksInsert(params)
          }
        }))
      )
    })

    it.live("one bad item rejects the whole batch with its index in the path, nothing stored", () =>
      served(Effect.gen(function*() {
        const badPayload = assertError(
          yield* postText(
            "/v1/tasks/batch",
            json({ tasks: [email(), email(), { name: "send-email", payload: { to: 7 } }] })
          ),
          400,
          "InvalidPayload"
        )
        assert.strictEqual(badPayload.index, 2)
        assert.deepStrictEqual(badPayload.issues[0].path, ["body", "tasks", 2, "payload", "to"])

        const unknown = assertError(
          yield* postText("/v1/tasks/batch", json({ tasks: [email(), { name: "nope", payload: {} }] })),
          404,
          "UnknownTask"
        )
        assert.deepStrictEqual(unknown.issues[0].path, ["body", "tasks", 1, "name"])

        const params = assertError(
          yield* postText(
            "/v1/tasks/batch",
            json({ tasks: [email(), { ...email(), runAt: new Date().toISOString(), delayMs: 1 }] })
          ),
          400,
          "InvalidParams"
        )
        assert.strictEqual(params.parameter, "body.tasks.1.runAt")

        const shape = assertError(
          yield* postText("/v1/tasks/batch", json({ tasks: [email(), { name: 3 }] })),
          400,
          "BadRequest"
        )
        assert.deepStrictEqual(shape.issues[0].path, ["body", "tasks", 1, "name"])

        assertError(yield* postText("/v1/tasks/batch", json({ tasks: [] })), 400, "BadRequest")
        assertError(yield* postText("/v1/tasks/batch", json({ tasks: Array(1001).fill(email()) })), 400, "BadRequest")
        assertError(yield* postText("/v1/tasks/batch", "{"), 400, "BadRequest")
        yield* assertNothingStored
      })))
  })

  describe("reading tasks", () => {
    it.live("GET /v1/tasks filters, sorts and pages", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        yield* client.tasks.submitBatch({
          payload: {
            tasks: [
              ...Array.from({ length: 5 }, (_, i) => email(`u${i}@x`)),
              { name: "report", payload: { day: "2026-01-02T00:00:00.000Z" }, tags: ["monthly", "finance"] },
              { name: "report", payload: { day: "2026-01-03T00:00:00.000Z" }, tags: ["monthly"] }
            ]
          }
        })
        const byName = yield* client.tasks.list({ urlParams: { name: ["report"] } })
        assert.strictEqual(byName.items.length, 2)
        const byQueue = yield* client.tasks.list({ urlParams: { queue: ["email"] } })
        assert.strictEqual(byQueue.items.length, 5)
        const byTags = yield* client.tasks.list({ urlParams: { tag: ["monthly", "finance"] } })
        assert.strictEqual(byTags.items.length, 1)
        assert.deepStrictEqual(byTags.items[0]!.tags, ["monthly", "finance"])
        // every tag is the store's filter: a page of one is full, not a filtered-down page
        const firstPage = yield* client.tasks.list({ urlParams: { tag: ["monthly", "finance"], limit: 1 } })
        assert.strictEqual(firstPage.items.length, 1)
        const byStatus = yield* client.tasks.list({ urlParams: { status: ["pending", "scheduled"] } })
        assert.strictEqual(byStatus.items.length, 7)
        const none = yield* client.tasks.list({ urlParams: { status: ["succeeded"] } })
        assert.deepStrictEqual(none.items, [])

        const seen: Array<string> = []
        let cursor: string | undefined = undefined
        let pages = 0
        do {
          const page: Api.TaskPage = yield* client.tasks.list({
            urlParams: { limit: 3, sort: "createdAt", order: "asc", ...(cursor === undefined ? {} : { cursor }) }
          })
          seen.push(...page.items.map((item) => item.id))
          cursor = page.nextCursor
          pages++
        } while (cursor !== undefined)
        assert.strictEqual(pages, 3)
        assert.strictEqual(new Set(seen).size, 7)
        assert.deepStrictEqual(seen, [...seen].sort())
      })))

    it.live("GET /v1/tasks: bad query parameters are 400 naming query.<param>", () =>
      served(Effect.gen(function*() {
        const limit = assertError(yield* send(HttpClientRequest.get("/v1/tasks?limit=0")), 400, "BadRequest")
        assert.deepStrictEqual(limit.issues[0].path, ["query", "limit"])
        const status = assertError(
          yield* send(HttpClientRequest.get("/v1/tasks?status=pending,nope")),
          400,
          "BadRequest"
        )
        assert.deepStrictEqual(status.issues[0].path, ["query", "status", 1])
        const sort = assertError(yield* send(HttpClientRequest.get("/v1/tasks?sort=finishedAt")), 400, "BadRequest")
        assert.deepStrictEqual(sort.issues[0].path, ["query", "sort"])
        const cursor = assertError(
          yield* send(HttpClientRequest.get(`/v1/tasks?cursor=${"c".repeat(2000)}`)),
          400,
          "InvalidParams"
        )
        assert.strictEqual(cursor.parameter, "query.cursor")
      })))

    it.live("GET /v1/tasks/:id answers the task or 404 TaskNotFound", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const { id } = yield* client.tasks.submit({ payload: email() })
        const task = yield* client.tasks.get({ path: { id } })
        assert.strictEqual(task.id, id)
        const missing = assertError(yield* send(HttpClientRequest.get("/v1/tasks/nope")), 404, "TaskNotFound")
        assert.strictEqual(missing.taskId, "nope")
      })))

    it.live("GET /v1/tasks/:id/result waits for the task to finish", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const store = yield* TaskStore.TaskStore
        const task = yield* claimed()
        const waiting = yield* Effect.fork(
          client.tasks.result({ path: { id: task.id }, urlParams: { waitMs: 30_000 } })
        )
        yield* store.taskComplete({ id: task.id, workerId: "w1", result: { messageId: "m1" } })
        const answer = yield* Fiber.join(waiting)
        assert.isTrue(answer.finished)
        assert.strictEqual(answer.status, "succeeded")
        assert.deepStrictEqual(answer.result, { messageId: "m1" })
        assert.isNull(answer.error)
        // A finished task answers at once.
        const again = yield* client.tasks.result({ path: { id: task.id }, urlParams: {} })
        assert.isTrue(again.finished)
      })))

    it.live("GET /v1/tasks/:id/result answers finished: false when the wait runs out", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const { id } = yield* client.tasks.submit({ payload: email() })
        const now = yield* client.tasks.result({ path: { id }, urlParams: { waitMs: 0 } })
        assert.isFalse(now.finished)
        assert.strictEqual(now.status, "pending")
        assert.isNull(now.result)
        const waited = yield* client.tasks.result({ path: { id }, urlParams: { waitMs: 20 } })
        assert.isFalse(waited.finished)
        assert.strictEqual(waited.task.id, id)
        assertError(yield* send(HttpClientRequest.get("/v1/tasks/nope/result?waitMs=10")), 404, "TaskNotFound")
        const bad = assertError(
          yield* send(HttpClientRequest.get(`/v1/tasks/${id}/result?waitMs=-1`)),
          400,
          "BadRequest"
        )
        assert.deepStrictEqual(bad.issues[0].path, ["query", "waitMs"])
      })))

    it.live("GET /v1/tasks/:id/result of a failed task carries its error", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const store = yield* TaskStore.TaskStore
        const task = yield* claimed()
        yield* store.taskFail({
          id: task.id,
          workerId: "w1",
          error: { tag: "Bounced", message: "bounced", cause: "Bounced" },
          outcome: { _tag: "dead" }
        })
        const answer = yield* client.tasks.result({ path: { id: task.id }, urlParams: { waitMs: 0 } })
        assert.isTrue(answer.finished)
        assert.strictEqual(answer.status, "dead")
        assert.strictEqual(answer.error?.tag, "Bounced")
      })))

    it.live("GET /v1/tasks/:id/logs answers the log lines or 404", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const store = yield* TaskStore.TaskStore
        const { id } = yield* client.tasks.submit({ payload: email() })
        assert.deepStrictEqual((yield* client.tasks.logs({ path: { id } })).items, [])
        yield* store.taskLogAppend({
          lines: [
            { taskId: id, attempt: 1, at: new Date(1_000), level: "info", message: "one" },
            { taskId: id, attempt: 1, at: new Date(2_000), level: "warn", message: "two" }
          ]
        })
        const logs = yield* client.tasks.logs({ path: { id } })
        assert.deepStrictEqual(logs.items.map((line) => line.message), ["one", "two"])
        assert.strictEqual(logs.items[1]!.at.getTime(), 2_000)
        assertError(yield* send(HttpClientRequest.get("/v1/tasks/nope/logs")), 404, "TaskNotFound")
      })))

    it.live("GET /v1/definitions lists the catalog with payload JSON Schemas", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const definitions = yield* client.tasks.definitions()
        assert.deepStrictEqual(definitions.map((def) => def.name), ["notify", "report", "send-email"])
        const sendEmail = definitions.find((def) => def.name === SendEmail.name)!
        assert.strictEqual(sendEmail.queue, "email")
        assert.strictEqual(sendEmail.maxAttempts, 3)
        assert.strictEqual(sendEmail.timeoutMs, 30_000)
        assert.deepStrictEqual(sendEmail.tags, ["mail"])
        const schema = sendEmail.payloadSchema as { type: string; required: Array<string> }
        assert.strictEqual(schema.type, "object")
        assert.deepStrictEqual(schema.required, ["to", "subject"])
      })))
  })

  describe("cancel and retry", () => {
    it.live("cancels a pending task; a second cancel is 409 IllegalTransition", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const { id } = yield* client.tasks.submit({ payload: email() })
        const cancelled = yield* client.tasks.cancel({ path: { id } })
        assert.strictEqual(cancelled.status, "cancelled")
        assertError(yield* send(HttpClientRequest.post(`/v1/tasks/${id}/cancel`)), 409, "IllegalTransition")
        assertError(yield* send(HttpClientRequest.post("/v1/tasks/nope/cancel")), 404, "TaskNotFound")
      })))

    it.live("retries a finished task; retrying an unfinished one is 409", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const { id } = yield* client.tasks.submit({ payload: email() })
        assertError(yield* send(HttpClientRequest.post(`/v1/tasks/${id}/retry`)), 409, "IllegalTransition")
        yield* client.tasks.cancel({ path: { id } })
        // No body at all is allowed.
        const retried = yield* send(HttpClientRequest.post(`/v1/tasks/${id}/retry`))
        assert.strictEqual(retried.status, 200, retried.text)
        assert.strictEqual((retried.json as any).status, "pending")
        yield* client.tasks.cancel({ path: { id } })
        const delayed = yield* client.tasks.retry({ path: { id }, payload: { delayMs: 60_000, extraAttempts: 2 } })
        assert.strictEqual(delayed.status, "scheduled")
        assertError(yield* send(HttpClientRequest.post("/v1/tasks/nope/retry")), 404, "TaskNotFound")
      })))

    it.live("retry with a bad body: 400 naming the field", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        const { id } = yield* client.tasks.submit({ payload: email() })
        yield* client.tasks.cancel({ path: { id } })
        const both = assertError(
          yield* postText(`/v1/tasks/${id}/retry`, json({ runAt: new Date().toISOString(), delayMs: 1 })),
          400,
          "InvalidParams"
        )
        assert.strictEqual(both.parameter, "body.runAt")
        const attempts = assertError(
          yield* postText(`/v1/tasks/${id}/retry`, json({ extraAttempts: 0 })),
          400,
          "BadRequest"
        )
        assert.deepStrictEqual(attempts.issues[0].path, ["body", "extraAttempts"])
        assertError(yield* postText(`/v1/tasks/${id}/retry`, "{nope"), 400, "BadRequest")
        assert.strictEqual((yield* client.tasks.get({ path: { id } })).status, "cancelled")
      })))
  })

  describe("queues", () => {
    it.live("stats, list, pause and resume", () =>
      served(Effect.gen(function*() {
        const client = yield* makeClient
        yield* client.tasks.submitBatch({
          payload: { tasks: [email(), email("b@x"), { name: "notify", payload: { userId: "u", text: "t" } }] }
        })
        const stats = yield* client.queues.stats({ urlParams: { minutes: 5 } })
        assert.strictEqual(stats.total, 3)
        assert.strictEqual(stats.byStatus.pending, 3)
        assert.strictEqual(stats.throughput.length, 5)
        const badMinutes = assertError(yield* send(HttpClientRequest.get("/v1/stats?minutes=0")), 400, "BadRequest")
        assert.deepStrictEqual(badMinutes.issues[0].path, ["query", "minutes"])

        const paused = yield* client.queues.pause({ path: { name: "email" } })
        assert.deepStrictEqual(paused, {
          queue: "email",
          paused: true,
          counts: { ...stats.byStatus, pending: 2 }
        })
        const empty = yield* client.queues.pause({ path: { name: "idle" } })
        assert.isTrue(empty.paused)
        assert.strictEqual(empty.counts.pending, 0)
        const queues = yield* client.queues.list()
        assert.deepStrictEqual(queues.map((q) => [q.queue, q.paused, q.counts.pending]), [
          ["default", false, 1],
          ["email", true, 2],
          ["idle", true, 0]
        ])
        const resumed = yield* client.queues.resume({ path: { name: "email" } })
        assert.isFalse(resumed.paused)
        const blank = assertError(yield* send(HttpClientRequest.post("/v1/queues/%20/pause")), 400, "BadRequest")
        assert.deepStrictEqual(blank.issues[0].path, ["path", "name"])
      })))
  })

  describe("system", () => {
    it.live("/healthz, /readyz and /metrics", () =>
      served(
        Effect.gen(function*() {
          const client = yield* makeClient
          assert.deepStrictEqual(yield* client.system.health(), { status: "ok" })
          assert.deepStrictEqual(yield* client.system.ready(), {
            ready: true,
            store: "memory",
            checks: [{ name: "store", ok: true }]
          })
          yield* client.tasks.submit({ payload: email() })
          yield* client.tasks.submitBatch({ payload: { tasks: [email(), email()] } })
          const metrics = yield* send(HttpClientRequest.get("/metrics"))
          assert.strictEqual(metrics.status, 200)
          assert.include(metrics.headers["content-type"], "text/plain")
          assert.match(metrics.text, /spindle_tasks_submitted_total\{name="send-email",queue="email"\} \d+/)
          assert.include(metrics.text, "spindle_tasks_completed_total")
          assert.include(metrics.text, "spindle_tasks_duration_seconds")
          // the store's counts, refreshed by the scrape: three pending tasks, no worker here
          assert.match(
            metrics.text,
            /spindle_tasks_queue_depth\{(queue="email",status="pending"|status="pending",queue="email")\} 3\b/
          )
        }),
        { storeName: "memory" }
      ))

    it.live("/readyz answers 503 NotReady when the store fails", () =>
      Effect.provide(
        Effect.gen(function*() {
          const answer = yield* send(HttpClientRequest.get("/readyz"))
          const body = assertError(answer, 503, "NotReady")
          assert.isFalse(body.ready)
          assert.deepStrictEqual(body.checks, [{ name: "store", ok: false, message: "connection refused" }])
          assert.strictEqual((yield* send(HttpClientRequest.get("/healthz"))).status, 200)
        }),
        layer({}, (store) => ({
          ...store,
          queuesList: () =>
            Effect.fail(new TaskStore.TaskStoreError({ operation: "queuesList", message: "connection refused" }))
        }))
      ))
  })

  describe("authorization", () => {
    const v1Routes: ReadonlyArray<HttpClientRequest.HttpClientRequest> = [
      HttpClientRequest.post("/v1/tasks").pipe(HttpClientRequest.bodyUnsafeJson(email())),
      HttpClientRequest.post("/v1/tasks/batch").pipe(HttpClientRequest.bodyUnsafeJson({ tasks: [email()] })),
      HttpClientRequest.get("/v1/tasks"),
      HttpClientRequest.get("/v1/tasks/t1"),
      HttpClientRequest.get("/v1/tasks/t1/result?waitMs=0"),
      HttpClientRequest.get("/v1/tasks/t1/logs"),
      HttpClientRequest.post("/v1/tasks/t1/cancel"),
      HttpClientRequest.post("/v1/tasks/t1/retry"),
      HttpClientRequest.get("/v1/definitions"),
      HttpClientRequest.get("/v1/stats"),
      HttpClientRequest.get("/v1/queues"),
      HttpClientRequest.post("/v1/queues/email/pause"),
      HttpClientRequest.post("/v1/queues/email/resume"),
      HttpClientRequest.get("/v1/events")
    ]
    const systemRoutes = ["/healthz", "/readyz", "/metrics"].map((path) => HttpClientRequest.get(path))

    it.live("every /v1 route answers 401 without the token or with a wrong one; system routes stay open", () =>
      served(
        Effect.gen(function*() {
          for (const request of v1Routes) {
            for (
              const auth of [
                undefined,
                "Bearer wrong",
                "Bearer s3cret-but-longer",
                "Basic czNjcmV0",
                "s3cret",
                "Bearer "
              ]
            ) {
              const withAuth = auth === undefined
                ? request
                : HttpClientRequest.setHeader(request, "authorization", auth)
              const answer = yield* send(withAuth)
              const body = assertError(answer, 401, "Unauthorized")
              assert.isString(body.message)
              assert.strictEqual(answer.headers["www-authenticate"], "Bearer realm=\"spindle\"")
            }
          }
          for (const request of systemRoutes) assert.strictEqual((yield* send(request)).status, 200)
          yield* assertNothingStored

          const client = yield* makeClientWithToken("s3cret")
          const submitted = yield* client.tasks.submit({ payload: email() })
          assert.isTrue(submitted.created)
          const lower = yield* send(
            HttpClientRequest.get("/v1/tasks").pipe(HttpClientRequest.setHeader("authorization", "bearer s3cret"))
          )
          assert.strictEqual(lower.status, 200)
          const denied = yield* Effect.flip((yield* makeClient).queues.list())
          assert.strictEqual(denied._tag, "Unauthorized")
        }),
        { token: "s3cret" }
      ))

    it.live("protectSystemRoutes guards /healthz, /readyz and /metrics too", () =>
      served(
        Effect.gen(function*() {
          for (const request of systemRoutes) {
            assertError(yield* send(request), 401, "Unauthorized")
            const ok = yield* send(HttpClientRequest.bearerToken(request, "s3cret"))
            assert.strictEqual(ok.status, 200)
          }
        }),
        { token: Redacted.make("s3cret"), protectSystemRoutes: true }
      ))

    it.live("without a token configured every request passes", () =>
      served(Effect.gen(function*() {
        const answer = yield* send(HttpClientRequest.get("/v1/queues").pipe(HttpClientRequest.bearerToken("anything")))
        assert.strictEqual(answer.status, 200)
      })))
  })

  describe("the rest of HTTP", () => {
    it.live("an unknown route: 404 NotFound JSON", () =>
      served(Effect.gen(function*() {
        const body = assertError(yield* send(HttpClientRequest.get("/v1/taks")), 404, "NotFound")
        assert.deepStrictEqual(body.issues[0].path, ["path"])
        assertError(yield* send(HttpClientRequest.del("/v1/tasks")), 404, "NotFound")
        assertError(yield* send(HttpClientRequest.get("/nothing-here")), 404, "NotFound")
      })))

    it.live("serves the dashboard at / unless turned off", () =>
      Effect.gen(function*() {
        const page = yield* served(send(HttpClientRequest.get("/")))
        assert.strictEqual(page.status, 200)
        assert.include(page.text, "<title>Spindle</title>")
        const off = yield* served(send(HttpClientRequest.get("/")), { dashboard: false })
        assertError(off, 404, "NotFound")
      }))

    it.live("echoes x-request-id, or generates one", () =>
      served(Effect.gen(function*() {
        const given = yield* send(
          HttpClientRequest.get("/healthz").pipe(HttpClientRequest.setHeader("x-request-id", "req-42"))
        )
        assert.strictEqual(given.headers["x-request-id"], "req-42")
        const generated = yield* send(HttpClientRequest.get("/healthz"))
        assert.match(generated.headers["x-request-id"]!, /^[0-9a-f-]{36}$/)
        const error = yield* send(
          HttpClientRequest.get("/v1/tasks/nope").pipe(HttpClientRequest.setHeader("x-request-id", "req-43"))
        )
        assert.strictEqual(error.headers["x-request-id"], "req-43")
        const insane = yield* send(
          HttpClientRequest.get("/healthz").pipe(HttpClientRequest.setHeader("x-request-id", "a b"))
        )
        assert.notStrictEqual(insane.headers["x-request-id"], "a b")
      })))

    it.live("logs one line per request with method, path, status, duration and request id", () =>
      Effect.gen(function*() {
        const lines = yield* Ref.make<Array<{ message: unknown; annotations: Record<string, unknown> }>>([])
        const logger = Logger.make(({ annotations, message }) => {
          const record: Record<string, unknown> = {}
          for (const [key, value] of HashMap.toEntries(annotations)) record[key] = value
          Ref.update(lines, (all) => [...all, { message, annotations: record }]).pipe(Effect.runSync)
        })
        yield* Effect.gen(function*() {
          yield* send(HttpClientRequest.get("/healthz").pipe(HttpClientRequest.setHeader("x-request-id", "r1")))
          yield* send(HttpClientRequest.get("/v1/tasks/nope").pipe(HttpClientRequest.setHeader("x-request-id", "r2")))
        }).pipe(
          Effect.provide(layer({ requestLog: true })),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        const logged = (yield* Ref.get(lines)).filter((line) => line.annotations.requestId !== undefined)
        assert.strictEqual(logged.length, 2)
        assert.deepInclude(logged[0]!.annotations, { requestId: "r1", method: "GET", path: "/healthz", status: 200 })
        assert.deepInclude(logged[1]!.annotations, {
          requestId: "r2",
          method: "GET",
          path: "/v1/tasks/nope",
          status: 404
        })
        assert.isNumber(logged[0]!.annotations.durationMs)
      }))

    it.live("CORS headers for the configured origins, preflight answered", () =>
      served(
        Effect.gen(function*() {
          const simple = yield* send(
            HttpClientRequest.get("/healthz").pipe(HttpClientRequest.setHeader("origin", "https://app.example"))
          )
          assert.strictEqual(simple.headers["access-control-allow-origin"], "https://app.example")
          const preflight = yield* send(
            HttpClientRequest.make("OPTIONS")("/v1/tasks").pipe(
              HttpClientRequest.setHeaders({
                origin: "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type"
              })
            )
          )
          assert.strictEqual(preflight.status, 204)
          assert.include(preflight.headers["access-control-allow-headers"], "authorization")
        }),
        { corsOrigins: ["https://app.example"] }
      ))

    it.live("no CORS headers without configured origins", () =>
      served(Effect.gen(function*() {
        const answer = yield* send(
          HttpClientRequest.get("/healthz").pipe(HttpClientRequest.setHeader("origin", "https://app.example"))
        )
        assert.isUndefined(answer.headers["access-control-allow-origin"])
      })))

    it.live("/openapi.json lists every route; /docs serves Swagger UI with no external resource", () =>
      served(
        Effect.gen(function*() {
          const openapi = yield* send(HttpClientRequest.get("/openapi.json"))
          assert.strictEqual(openapi.status, 200)
          const spec = openapi.json as { paths: Record<string, Record<string, unknown>> }
          const expected: Array<string> = []
          HttpApi.reflect(Api.SpindleApi, {
            onGroup: () => {},
            onEndpoint: ({ endpoint }) => {
              expected.push(`${endpoint.method.toLowerCase()} ${endpoint.path.replace(/:(\w+)/g, "{$1}")}`)
            }
          })
          const listed = Object.entries(spec.paths).flatMap(([path, methods]) =>
            Object.keys(methods).map((m) => `${m} ${path}`)
          )
          assert.strictEqual(expected.length, 17)
          for (const route of expected) assert.include(listed, route)

          const docs = yield* send(HttpClientRequest.get("/api-docs"))
          assert.strictEqual(docs.status, 200)
          assert.include(docs.headers["content-type"], "text/html")
          assert.include(docs.text, "SwaggerUIBundle")
          assert.notMatch(docs.text, /<(script|link|img)[^>]+(src|href)=["']?(https?:)?\/\//i)
        }),
        { swaggerPath: "/api-docs" }
      ))

    it.live("the default Swagger path is /docs", () =>
      served(Effect.gen(function*() {
        const docs = yield* send(HttpClientRequest.get("/docs"))
        assert.strictEqual(docs.status, 200)
        assert.include(docs.text, "<html")
      })))
  })
})
