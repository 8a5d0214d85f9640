/**
 * The browser app's DOM-free modules, in Node: the SSE parser, the router, the formats and the
 * API client's reading of errors.
 */
import { assert, describe, it } from "@effect/vitest"
import { queryString, toApiError } from "../src/app/api.js"
import * as format from "../src/app/format.js"
import { href, parse } from "../src/app/router.js"
import type { Message } from "../src/app/sse.js"
import { makeParser } from "../src/app/sse.js"

const parseAll = (chunks: ReadonlyArray<string>) => {
  const messages: Array<Message> = []
  const ids: Array<string> = []
  const retries: Array<number> = []
  const feed = makeParser({
    onMessage: (message) => messages.push(message),
    onId: (id) => ids.push(id),
    onRetry: (ms) => retries.push(ms)
  })
  for (const chunk of chunks) feed(chunk)
  return { messages, ids, retries }
}

describe("sse", () => {
  const stream = "retry: 2000\n\nid: 41\n\n: keep-alive\n\nid: 42\nevent: started\ndata: {\"taskId\":\"a\"}\n\n" +
    "id: 43\nevent: reset\ndata: {\"reason\":\"lagged\"}\n\n"

  it("parses the service's stream: retry, an id-only block, comments, events", () => {
    const { ids, messages, retries } = parseAll([stream])
    assert.deepStrictEqual(retries, [2000])
    assert.deepStrictEqual(ids, ["41", "42", "43"])
    assert.deepStrictEqual(messages, [
      { id: "42", event: "started", data: "{\"taskId\":\"a\"}" },
      { id: "43", event: "reset", data: "{\"reason\":\"lagged\"}" }
    ])
  })

  it("gives the same messages however the stream is split", () => {
    const whole = parseAll([stream])
    for (let size = 1; size <= 7; size++) {
      const chunks: Array<string> = []
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size))
      assert.deepStrictEqual(parseAll(chunks), whole, `chunks of ${size}`)
    }
  })

  it("accepts CRLF and CR line ends, even split between chunks", () => {
    const crlf = parseAll(["id: 1\r", "\nevent: progress\r\ndata: a\r\ndata: b\r", "\n\r\n"])
    assert.deepStrictEqual(crlf.messages, [{ id: "1", event: "progress", data: "a\nb" }])
    const cr = parseAll(["data:x\r\rdata: y\r\r"])
    assert.deepStrictEqual(cr.messages.map((message) => [message.event, message.data]), [["message", "x"], [
      "message",
      "y"
    ]])
  })

  it("waits for the blank line before dispatching, and ignores unknown fields", () => {
    const partial = parseAll(["event: started\ndata: 1\nfoo: bar\n"])
    assert.deepStrictEqual(partial.messages, [])
    assert.deepStrictEqual(parseAll(["retry: soon\n\n"]).retries, [])
  })
})

describe("router", () => {
  it("parses the pages", () => {
    assert.deepStrictEqual(parse(""), { _tag: "overview" })
    assert.deepStrictEqual(parse("#/"), { _tag: "overview" })
    assert.deepStrictEqual(parse("#/tasks/0abc%2F1"), { _tag: "task", id: "0abc/1" })
    assert.deepStrictEqual(parse("#/nope/1/2"), { _tag: "notFound", path: "/nope/1/2" })
    assert.deepStrictEqual(parse("#/tasks/%E0%A4%A"), { _tag: "notFound", path: "/tasks/%E0%A4%A" })
  })

  it("keeps the table's filters in the address, dropping what the API would refuse", () => {
    const route = parse(
      "#/tasks?status=failed,bogus,dead&name=%20charge%20&queue=&sort=priority&order=up&limit=0&cursor=c1"
    )
    assert.deepStrictEqual(route, {
      _tag: "tasks",
      query: {
        status: ["failed", "dead"],
        name: "charge",
        queue: undefined,
        tag: undefined,
        sort: "priority",
        order: undefined,
        limit: undefined,
        cursor: "c1"
      }
    })
  })

  it("round-trips a query through href", () => {
    const query = {
      status: ["running", "timed-out"] as const,
      queue: "e mails",
      tag: "a&b",
      order: "asc" as const,
      limit: 50
    }
    const link = href.tasks({ ...query, status: [...query.status] })
    assert.strictEqual(link, "#/tasks?status=running,timed-out&queue=e+mails&tag=a%26b&order=asc&limit=50")
    const route = parse(link)
    assert.strictEqual(route._tag, "tasks")
    if (route._tag === "tasks") {
      assert.deepStrictEqual(route.query.status, ["running", "timed-out"])
      assert.strictEqual(route.query.queue, "e mails")
      assert.strictEqual(route.query.tag, "a&b")
      assert.strictEqual(route.query.order, "asc")
      assert.strictEqual(route.query.limit, 50)
    }
    assert.strictEqual(href.tasks(), "#/tasks")
    assert.strictEqual(href.task("a/b"), "#/tasks/a%2Fb")
  })
})

describe("format", () => {
  it("formats percentages, durations and counts", () => {
    assert.strictEqual(format.percent(0.42), "42%")
    assert.strictEqual(format.percent(0.995), "99.5%")
    assert.strictEqual(format.percent(0.99996), "100%")
    assert.strictEqual(format.percent(0), "0%")
    assert.strictEqual(format.percent(Number.NaN), "–")
    assert.strictEqual(format.duration(850), "850 ms")
    assert.strictEqual(format.duration(1234), "1.2 s")
    assert.strictEqual(format.duration(184_000), "3 min 4 s")
    assert.strictEqual(format.duration(7_500_000), "2 h 5 min")
    assert.strictEqual(format.duration(null), "–")
    assert.strictEqual(format.count(12345), "12,345")
  })

  it("tells times relative to now", () => {
    const now = Date.parse("2026-11-22T10:00:00Z")
    assert.strictEqual(format.relative("2026-11-22T09:59:48Z", now), "12 s ago")
    assert.strictEqual(format.relative("2026-11-22T10:03:00Z", now), "in 3 min")
    assert.strictEqual(format.relative("2026-11-22T10:00:00.400Z", now), "now")
    assert.strictEqual(format.relative(null, now), "–")
  })
})

describe("api", () => {
  it("reads the service's errors: tag, message and issues", () => {
    const error = toApiError(
      400,
      "Bad Request",
      JSON.stringify({
        _tag: "InvalidPayload",
        taskName: "send-email",
        message: "payload does not match",
        issues: [{ path: ["body", "payload", "to"], message: "Expected string" }, { bogus: true }]
      })
    )
    assert.strictEqual(error.status, 400)
    assert.strictEqual(error.tag, "InvalidPayload")
    assert.strictEqual(error.message, "payload does not match")
    assert.deepStrictEqual(error.issues, [{ path: ["body", "payload", "to"], message: "Expected string" }])
  })

  it("describes an error without a message by its fields", () => {
    const notFound = toApiError(404, "Not Found", JSON.stringify({ _tag: "TaskNotFound", taskId: "t1" }))
    assert.strictEqual(notFound.message, "taskId: t1")
    const illegal = toApiError(
      409,
      "Conflict",
      JSON.stringify({ _tag: "IllegalTransition", taskId: "t1", from: "succeeded", to: "pending" })
    )
    assert.strictEqual(illegal.tag, "IllegalTransition")
    assert.strictEqual(illegal.message, "taskId: t1, from: succeeded, to: pending")
  })

  it("keeps an answer that is not the service's JSON as text", () => {
    const proxy = toApiError(502, "Bad Gateway", "<html>upstream down</html>")
    assert.strictEqual(proxy.tag, "HTTP 502")
    assert.strictEqual(proxy.message, "<html>upstream down</html>")
    assert.strictEqual(toApiError(500, "Internal Server Error", "").message, "Internal Server Error")
  })

  it("writes query strings with comma lists, leaving out empty values", () => {
    assert.strictEqual(
      queryString({ status: ["failed", "dead"], name: undefined, queue: "", limit: 25 }),
      "?status=failed%2Cdead&limit=25"
    )
    assert.strictEqual(queryString({ name: undefined }), "")
  })
})
