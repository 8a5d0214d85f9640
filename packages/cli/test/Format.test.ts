import { assert, describe, it } from "@effect/vitest"
import type { Api } from "@spindle/server"
import { Effect, Option, TestClock } from "effect"
import * as Format from "../src/internal/format.js"
import { parseDurationMs } from "../src/internal/options.js"
import * as Progress from "../src/internal/progress.js"
import * as CliTest from "./cliTestUtils.js"

const task = (overrides: Partial<Api.TaskView> = {}): Api.TaskView => ({
  id: "0mh1c2d3e00000abcdefghijkl",
  name: "greet",
  queue: "default",
  status: "succeeded",
  priority: "normal",
  payload: { name: "ada" },
  result: "hello ada",
  error: null,
  attempt: 1,
  maxAttempts: 3,
  retry: null,
  timeoutMs: null,
  softTimeoutMs: null,
  runAt: new Date("2026-01-02T03:04:05.000Z"),
  createdAt: new Date("2026-01-02T03:04:05.000Z"),
  updatedAt: new Date("2026-01-02T03:04:06.000Z"),
  startedAt: new Date("2026-01-02T03:04:05.250Z"),
  finishedAt: new Date("2026-01-02T03:04:05.500Z"),
  leaseOwner: null,
  leaseExpiresAt: null,
  cancelRequested: false,
  progress: 1,
  progressMessage: null,
  idempotencyKey: null,
  parentId: null,
  tags: [],
  ...overrides
})

describe("output formatting", () => {
  it("aligns table columns and leaves the last one unpadded", () => {
    assert.strictEqual(
      Format.table(["ID", "NAME", "NOTE"], [["1", "greet", "x"], ["22", "resize-image", ""]]),
      ["ID  NAME          NOTE", "1   greet         x", "22  resize-image"].join("\n")
    )
  })

  it("truncates long payloads on one line", () => {
    assert.strictEqual(Format.truncate("abcdef", 6), "abcdef")
    assert.strictEqual(Format.truncate("abcdefg", 6), "abcde…")
    assert.strictEqual(Format.truncate("a\n  b", 10), "a b")
  })

  it("lists tasks in a table with truncated payloads", () => {
    const long = task({ id: "t2", name: "resize", payload: { url: "https://example.com/".padEnd(80, "x") } })
    const lines = Format.taskTable([task({ id: "t1" }), long], 20).split("\n")
    assert.strictEqual(lines.length, 3)
    assert.strictEqual(lines[0], "ID  NAME    QUEUE    STATUS     PRIORITY  ATTEMPT  CREATED                   PAYLOAD")
    assert.strictEqual(
      lines[1],
      "t1  greet   default  succeeded  normal    1/3      2026-01-02T03:04:05.000Z  {\"name\":\"ada\"}"
    )
    assert.isTrue(lines[2]!.endsWith("{\"url\":\"https://exa…"))
  })

  it("shows one task as aligned key: value lines", () => {
    const text = Format.taskDetails(task({ tags: ["a", "b"], error: null }))
    const lines = text.split("\n")
    assert.include(lines, "id:       0mh1c2d3e00000abcdefghijkl")
    assert.include(lines, "status:   succeeded")
    assert.include(lines, "attempt:  1/3")
    assert.include(lines, "duration: 250ms")
    assert.include(lines, "tags:     a, b")
    assert.include(lines, "payload:  {\"name\":\"ada\"}")
    assert.include(lines, "result:   \"hello ada\"")

    const failed = Format.taskDetails(task({
      status: "dead",
      result: null,
      error: { tag: "Unavailable", message: "503 from billing", cause: "" }
    }))
    assert.include(failed, "error:    Unavailable: 503 from billing")
    assert.notInclude(failed, "result:")
  })

  it("prints errors with their issues", () => {
    assert.deepStrictEqual(
      Format.errorLines("InvalidPayload", "invalid payload for task \"greet\"", [
        { path: ["body", "payload", "name"], message: "Expected string, actual 1" },
        { path: ["body", "tasks", 3, "payload"], message: "is missing" },
        { path: [], message: "malformed" }
      ]),
      [
        "error: InvalidPayload: invalid payload for task \"greet\"",
        "  at body.payload.name: Expected string, actual 1",
        "  at body.tasks.3.payload: is missing",
        "  malformed"
      ]
    )
  })

  it("durations and rates for people", () => {
    assert.strictEqual(Format.duration(850), "850ms")
    assert.strictEqual(Format.duration(12_340), "12.3s")
    assert.strictEqual(Format.duration(245_000), "4m 05s")
    assert.strictEqual(Format.duration(7_380_000), "2h 03m")
    assert.strictEqual(Format.rate(5000, 2000), "2500/s")
    assert.strictEqual(Format.rate(5, 2000), "2.5/s")
    assert.strictEqual(Format.rate(5, 0), "-")
  })

  it("parses durations of flags", () => {
    assert.deepStrictEqual(parseDurationMs("500"), Option.some(500))
    assert.deepStrictEqual(parseDurationMs("500ms"), Option.some(500))
    assert.deepStrictEqual(parseDurationMs("30s"), Option.some(30_000))
    assert.deepStrictEqual(parseDurationMs("1.5 minutes"), Option.some(90_000))
    assert.deepStrictEqual(parseDurationMs("2h"), Option.some(7_200_000))
    assert.deepStrictEqual(parseDurationMs("soon"), Option.none())
    assert.deepStrictEqual(parseDurationMs("5 fortnights"), Option.none())
    assert.deepStrictEqual(parseDurationMs("-1s"), Option.none())
  })

  it("draws a progress bar", () => {
    const narrow = Progress.render("submitting", 250, 1000, 500, 60)
    assert.strictEqual(narrow, "submitting [#######-------------------]  25% 250/1000 500/s")
    assert.isAtMost(narrow.length, 60)
    assert.strictEqual(
      Progress.render("waiting", 3, 3, 1000, 80),
      "waiting [########################################] 100% 3/3 3.0/s"
    )
  })

  it.scoped("redraws the bar in place on a TTY, at most every 100ms, and ends the line", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      const sink: Progress.Sink = {
        isTTY: true,
        write: (text) => Effect.sync(() => void written.push(text)),
        columns: 80,
        intervalMs: 1000
      }
      yield* Effect.scoped(Effect.gen(function*() {
        const progress = yield* Progress.make("submitting", 3)
        yield* progress.advance(1)
        assert.deepStrictEqual(written, [])
        yield* TestClock.adjust("100 millis")
        yield* progress.advance(1)
        yield* progress.advance(1)
      })).pipe(Effect.provideService(Progress.ProgressSink, sink))
      assert.strictEqual(written.length, 2)
      assert.isTrue(written[0]!.startsWith("\r\x1b[2Ksubmitting ["))
      assert.include(written[0]!, " 66% 2/3 ")
      assert.isTrue(written[1]!.endsWith(" 100% 3/3 30.0/s\n"))
    }))

  it.scoped("writes plain lines when stderr is no TTY", () =>
    Effect.gen(function*() {
      const stdout: Array<string> = []
      const stderr: Array<string> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const progress = yield* Progress.make("waiting", 4)
        yield* progress.advance(1)
        yield* TestClock.adjust("1 second")
        yield* progress.advance(1)
        yield* progress.advance(2)
      })).pipe(
        Effect.provideService(Progress.ProgressSink, {
          isTTY: false,
          write: () => Effect.die("no raw writes without a TTY"),
          columns: 80,
          intervalMs: 1000
        }),
        Effect.withConsole(CliTest.makeConsole(stdout, stderr))
      )
      assert.deepStrictEqual(stdout, [])
      assert.deepStrictEqual(stderr.map((line) => line.replace(/\[[#-]+\]/, "[]")), [
        "waiting []  50% 2/4 2.0/s",
        "waiting [] 100% 4/4 4.0/s"
      ])
    }))
})
