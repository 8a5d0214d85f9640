import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as path from "node:path"
import * as CliTest from "./cliTestUtils.js"

const submitted = /^submitted (\S+) \((\S+), queue (\S+), priority (\S+), (\S+)\)$/

const submitId = (url: string, name: string, payload: string, ...flags: Array<string>) =>
  Effect.gen(function*() {
    const result = yield* CliTest.run(["submit", "--url", url, ...flags, name, payload])
    assert.strictEqual(result.exitCode, 0, result.stderr)
    const match = submitted.exec(result.stdout)
    assert.isNotNull(match, result.stdout)
    return match![1]!
  })

describe("client commands", () => {
  it.scopedLive("submit, wait for the result, get", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const first = yield* CliTest.run(["submit", "--url", url, "greet", "{\"name\":\"ada\"}"])
      assert.strictEqual(first.exitCode, 0, first.stderr)
      const match = submitted.exec(first.stdout)
      assert.isNotNull(match, first.stdout)
      assert.deepStrictEqual(match!.slice(2, 5), ["greet", "default", "normal"])

      const waited = yield* CliTest.run(["submit", "--url", url, "--wait", "greet", "{\"name\":\"grace\"}"])
      assert.strictEqual(waited.exitCode, 0, waited.stderr)
      const lines = waited.stdout.split("\n")
      assert.match(lines[0]!, /^id: {5}\S+$/)
      assert.strictEqual(lines[1], "status: succeeded")
      assert.strictEqual(lines[2], "result: \"hello grace\"")

      const json = yield* CliTest.run(["submit", "--url", url, "--wait", "--json", "greet", "{\"name\":\"alan\"}"])
      const answer = JSON.parse(json.stdout)
      assert.strictEqual(answer.status, "succeeded")
      assert.strictEqual(answer.finished, true)
      assert.strictEqual(answer.result, "hello alan")
      assert.strictEqual(answer.task.name, "greet")
      assert.isString(answer.task.createdAt)

      const id = answer.id as string
      const shown = yield* CliTest.run(["get", "--url", url, id])
      assert.strictEqual(shown.exitCode, 0, shown.stderr)
      assert.include(shown.stdout.split("\n"), `id:       ${id}`)
      assert.include(shown.stdout.split("\n"), "status:   succeeded")
      assert.include(shown.stdout.split("\n"), "payload:  {\"name\":\"alan\"}")

      const raw = yield* CliTest.run(["get", "--url", url, "--json", id])
      const task = JSON.parse(raw.stdout)
      assert.strictEqual(task.id, id)
      assert.strictEqual(task.result, "hello alan")
      assert.strictEqual(new Date(task.createdAt).toISOString(), task.createdAt)
    }))

  it.scopedLive("submit options reach the task", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const result = yield* CliTest.run([
        "submit",
        "--url",
        url,
        "--json",
        "--priority",
        "high",
        "--queue",
        "later",
        "--delay",
        "1h",
        "--tag",
        "a,b",
        "--max-attempts",
        "4",
        "elsewhere",
        "{\"n\":1}"
      ])
      assert.strictEqual(result.exitCode, 0, result.stderr)
      const answer = JSON.parse(result.stdout)
      assert.strictEqual(answer.created, true)
      assert.strictEqual(answer.task.priority, "high")
      assert.strictEqual(answer.task.queue, "later")
      assert.strictEqual(answer.task.status, "scheduled")
      assert.deepStrictEqual(answer.task.tags, ["a", "b"])
      assert.strictEqual(answer.task.maxAttempts, 4)
      assert.isAbove(new Date(answer.task.runAt).getTime() - new Date(answer.task.createdAt).getTime(), 3_500_000)
    }))

  it.scopedLive("list: table, filters, pages, --all", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const ids = [
        yield* submitId(url, "elsewhere", "{\"n\":1}"),
        yield* submitId(url, "elsewhere", "{\"n\":2}"),
        yield* submitId(url, "elsewhere", "{\"n\":3}")
      ]
      const table = yield* CliTest.run(["list", "--url", url, "--name", "elsewhere"])
      assert.strictEqual(table.exitCode, 0, table.stderr)
      const lines = table.stdout.split("\n")
      assert.match(lines[0]!, /^ID\s+NAME\s+QUEUE\s+STATUS\s+PRIORITY\s+ATTEMPT\s+CREATED\s+PAYLOAD$/)
      assert.strictEqual(lines.length, 4)
      for (const id of ids) assert.isTrue(lines.some((line) => line.startsWith(id)), id)
      // aligned: every row has its status where the header has STATUS
      const statusColumn = lines[0]!.indexOf("STATUS")
      for (const line of lines.slice(1)) assert.strictEqual(line.slice(statusColumn, statusColumn + 7), "pending")

      const page = yield* CliTest.run(["list", "--url", url, "--name", "elsewhere", "--limit", "2"])
      const pageLines = page.stdout.split("\n")
      assert.strictEqual(pageLines.filter((line) => ids.some((id) => line.startsWith(id))).length, 2)
      const more = /^more: --cursor (\S+) \(or --all\)$/.exec(pageLines.at(-1)!)
      assert.isNotNull(more, page.stdout)

      const next = yield* CliTest.run([
        "list",
        "--url",
        url,
        "--name",
        "elsewhere",
        "--limit",
        "2",
        "--cursor",
        more![1]!,
        "--json"
      ])
      const nextPage = JSON.parse(next.stdout)
      assert.strictEqual(nextPage.items.length, 1)
      assert.isUndefined(nextPage.nextCursor)

      const all = yield* CliTest.run(["list", "--url", url, "--name", "elsewhere", "--limit", "2", "--all", "--json"])
      const allItems = JSON.parse(all.stdout).items as ReadonlyArray<{ id: string }>
      assert.sameMembers(allItems.map((item) => item.id), ids)

      const filtered = yield* CliTest.run(["list", "--url", url, "--status", "succeeded,dead", "--name", "elsewhere"])
      assert.strictEqual(filtered.stdout, "no tasks")
    }))

  it.scopedLive("stats, queues, pause, resume", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      yield* submitId(url, "elsewhere", "{\"n\":1}")

      const paused = yield* CliTest.run(["pause", "--url", url, "elsewhere"])
      assert.strictEqual(paused.stdout, "paused queue elsewhere")
      const queues = yield* CliTest.run(["queues", "--url", url])
      const row = queues.stdout.split("\n").find((line) => line.startsWith("elsewhere"))
      assert.match(row!, /^elsewhere\s+yes\s+1\s+0/)
      const resumed = yield* CliTest.run(["resume", "--url", url, "--json", "elsewhere"])
      assert.deepInclude(JSON.parse(resumed.stdout), { queue: "elsewhere", paused: false })

      const queuesJson = yield* CliTest.run(["queues", "--url", url, "--json"])
      const views = JSON.parse(queuesJson.stdout) as ReadonlyArray<{ queue: string; counts: { pending: number } }>
      assert.strictEqual(views.find((view) => view.queue === "elsewhere")?.counts.pending, 1)

      const stats = yield* CliTest.run(["stats", "--url", url])
      assert.strictEqual(stats.exitCode, 0, stats.stderr)
      assert.match(stats.stdout, /^total:\s+1$/m)
      assert.match(stats.stdout, /^pending\s+1$/m)
      const statsJson = yield* CliTest.run(["stats", "--url", url, "--json", "--minutes", "5"])
      const view = JSON.parse(statsJson.stdout)
      assert.strictEqual(view.total, 1)
      assert.strictEqual(view.byStatus.pending, 1)
    }))

  it.scopedLive("cancel and retry", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const pending = yield* submitId(url, "elsewhere", "{\"n\":1}")
      const cancelled = yield* CliTest.run(["cancel", "--url", url, pending])
      assert.strictEqual(cancelled.stdout, `cancelled ${pending} (cancelled)`)

      const again = yield* CliTest.run(["cancel", "--url", url, pending])
      assert.strictEqual(again.exitCode, 1)
      assert.strictEqual(again.error?.reason, "Api")
      assert.strictEqual(
        again.stderr,
        `error: IllegalTransition: task ${pending} cannot go from cancelled to cancelled`
      )

      const failed = yield* CliTest.run(["submit", "--url", url, "--wait", "boom", "{}"])
      assert.strictEqual(failed.exitCode, 1)
      assert.strictEqual(failed.error?.reason, "TaskFailed")
      const id = /^id:\s+(\S+)$/m.exec(failed.stdout)![1]!
      assert.match(failed.stderr, new RegExp(`^error: task ${id} (failed|dead): `))

      const retried = yield* CliTest.run(["retry", "--url", url, "--json", "--extra-attempts", "2", id])
      assert.strictEqual(retried.exitCode, 0, retried.stderr)
      const task = JSON.parse(retried.stdout)
      assert.strictEqual(task.id, id)
      assert.oneOf(task.status, ["pending", "running", "failed", "dead"])

      const retryCancelled = yield* CliTest.run(["retry", "--url", url, pending])
      assert.strictEqual(retryCancelled.exitCode, 0, retryCancelled.stderr)
      assert.match(retryCancelled.stdout, new RegExp(`^retrying ${pending} \\(pending, attempt 0/1\\)$`))
    }))

  it.scopedLive("API errors: tag, message, issues; exit code 1", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const unknown = yield* CliTest.run(["submit", "--url", url, "greeet", "{}"])
      assert.strictEqual(unknown.exitCode, 1)
      assert.match(unknown.stderr, /^error: UnknownTask: .*greeet/)
      assert.strictEqual(unknown.stdout, "")

      const invalid = yield* CliTest.run(["submit", "--url", url, "greet", "{\"name\":1}"])
      assert.strictEqual(invalid.exitCode, 1)
      const lines = invalid.stderr.split("\n")
      assert.match(lines[0]!, /^error: InvalidPayload: /)
      assert.isAbove(lines.length, 1)
      assert.match(lines[1]!, /^ {2}at \S*name: /)

      const notFound = yield* CliTest.run(["get", "--url", url, "nope"])
      assert.strictEqual(notFound.exitCode, 1)
      assert.strictEqual(notFound.stderr, "error: TaskNotFound: no task with id nope")

      const malformed = yield* CliTest.run(["submit", "--url", url, "greet", "{name: 1}"])
      assert.strictEqual(malformed.exitCode, 1)
      assert.strictEqual(malformed.error?.reason, "Input")
      assert.match(malformed.stderr, /^error: the payload is not valid JSON: /)
    }))

  it.scopedLive("a token: 401 says so; --token or SPINDLE_TOKEN passes", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service({ token: "s3cret" })
      const missing = yield* CliTest.run(["stats", "--url", url])
      assert.strictEqual(missing.exitCode, 1)
      assert.strictEqual(missing.stderr, "error: Unauthorized: missing or wrong token (SPINDLE_TOKEN)")
      const wrong = yield* CliTest.run(["stats", "--url", url, "--token", "guess"])
      assert.strictEqual(wrong.stderr, "error: Unauthorized: missing or wrong token (SPINDLE_TOKEN)")

      const flag = yield* CliTest.run(["stats", "--url", url, "--token", "s3cret"])
      assert.strictEqual(flag.exitCode, 0, flag.stderr)
      const env = yield* CliTest.run(["stats", "--url", url]).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SPINDLE_TOKEN", "s3cret"]])))
      )
      assert.strictEqual(env.exitCode, 0, env.stderr)
    }))

  it.scopedLive("submit --file: batches of 1,000 with progress; --wait on many", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const array = path.join(dir, "greet.json")
      yield* fs.writeFileString(array, JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ name: `n${i}` }))))
      const waited = yield* CliTest.run(["submit", "--url", url, "--file", array, "--wait", "--json", "greet"])
      assert.strictEqual(waited.exitCode, 0, waited.stderr)
      const results = JSON.parse(waited.stdout).items as ReadonlyArray<{ status: string; result: string }>
      assert.strictEqual(results.length, 20)
      assert.sameMembers(results.map((r) => r.result), Array.from({ length: 20 }, (_, i) => `hello n${i}`))
      assert.match(waited.stderr.split("\n").at(-1)!, /^waiting \[#+\] 100% 20\/20 /)

      const human = yield* CliTest.run(["submit", "--url", url, "--file", array, "--wait", "greet"])
      assert.strictEqual(human.stdout, "20 greet tasks finished: 20 succeeded")

      // three batches: 1,000 + 1,000 + 1
      const lines = path.join(dir, "elsewhere.jsonl")
      yield* fs.writeFileString(lines, Array.from({ length: 2001 }, (_, n) => JSON.stringify({ n })).join("\n") + "\n")
      const many = yield* CliTest.run(["submit", "--url", url, "--file", lines, "elsewhere"])
      assert.strictEqual(many.exitCode, 0, many.stderr)
      assert.strictEqual(many.stdout, "submitted 2001 elsewhere tasks (2001 new, 0 existing)")
      assert.match(many.stderr.split("\n").at(-1)!, /^submitting \[#+\] 100% 2001\/2001 /)
      const stats = yield* CliTest.run(["stats", "--url", url, "--json"])
      assert.strictEqual(JSON.parse(stats.stdout).byStatus.pending, 2001)

      const bad = path.join(dir, "bad.jsonl")
      yield* fs.writeFileString(bad, "{}\n{oops\n")
      const broken = yield* CliTest.run(["submit", "--url", url, "--file", bad, "noop"])
      assert.strictEqual(broken.exitCode, 1)
      assert.match(broken.stderr, new RegExp(`^error: --file ${bad} line 2 is not valid JSON: `))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("bench: accepted/s, then drained/s", () =>
    Effect.gen(function*() {
      const url = yield* CliTest.service()
      const human = yield* CliTest.run(["bench", "--url", url, "--count", "600", "--wait"])
      assert.strictEqual(human.exitCode, 0, human.stderr)
      const [accepted, drained] = human.stdout.split("\n")
      assert.match(accepted!, /^accepted 600 noop tasks in \S+ \(\S+\/s\)$/)
      assert.match(drained!, /^drained 600 noop tasks in \S+ \(\S+\/s\)$/)
      assert.match(human.stderr, /^draining \[#+\] 100% 600\/600 /m)

      const json = yield* CliTest.run(["bench", "--url", url, "--count", "200", "--json"])
      const report = JSON.parse(json.stdout)
      assert.strictEqual(report.count, 200)
      assert.isAbove(report.acceptedPerSecond, 0)
      assert.isUndefined(report.drainedPerSecond)
    }))
})
