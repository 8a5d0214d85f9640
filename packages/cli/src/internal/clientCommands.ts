import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import type { HttpClient } from "@effect/platform"
import { Api } from "@spindle/server"
import { TaskStatus } from "@spindle/tasks"
import type { Redacted } from "effect"
import { Clock, Console, Effect, Option, Schedule, Schema } from "effect"
import * as Client from "./client.js"
import { CliError, fail } from "./error.js"
import * as Format from "./format.js"
import * as Flags from "./options.js"
import * as Progress from "./progress.js"

interface ClientFlags {
  readonly url: string
  readonly token: Option.Option<Redacted.Redacted>
  readonly json: boolean
}

const withClient = <A, E, R>(
  flags: ClientFlags,
  f: (client: Client.Client) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | HttpClient.HttpClient> =>
  Effect.flatMap(Client.make({ url: flags.url, token: flags.token }), f)

const printJson = <A, I>(schema: Schema.Schema<A, I>, value: A) =>
  Effect.flatMap(Effect.orDie(Schema.encode(schema)(value)), (encoded) => Console.log(Format.json(encoded)))

const parseJson = (what: string, text: string): Effect.Effect<unknown, CliError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (cause) =>
      fail("Input", `${what} is not valid JSON: ${cause instanceof Error ? cause.message : cause}`, cause)
  })

/**
 * The payloads of a `--file`: a JSON array, or JSON Lines (one payload a line, blank lines
 * skipped).
 *
 * @internal
 */
export const parsePayloadFile = (file: string, text: string): Effect.Effect<Array<unknown>, CliError> =>
  Effect.gen(function*() {
    const trimmed = text.trim()
    if (trimmed.startsWith("[")) {
      const value = yield* parseJson(`--file ${file}`, trimmed)
      if (!Array.isArray(value)) return yield* fail("Input", `--file ${file} must hold a JSON array or JSON Lines`)
      return value
    }
    const payloads: Array<unknown> = []
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line === "") continue
      payloads.push(yield* parseJson(`--file ${file} line ${i + 1}`, line))
    }
    return payloads
  })

const statusList = Flags.commaList("status", `Only these statuses, comma-separated (${TaskStatus.all.join(", ")})`)
  .pipe(
    Options.mapEffect((value) =>
      Option.match(value, {
        onNone: () => Effect.succeed(Option.none<Array<TaskStatus.TaskStatus>>()),
        onSome: (items) => {
          const unknown = items.filter((item) => !(TaskStatus.all as ReadonlyArray<string>).includes(item))
          return unknown.length === 0
            ? Effect.succeed(Option.some(items as Array<TaskStatus.TaskStatus>))
            : Effect.fail(ValidationError.invalidValue(HelpDoc.p(
              `--status: unknown status ${unknown.map((s) => `"${s}"`).join(", ")} (one of ${
                TaskStatus.all.join(", ")
              })`
            )))
        }
      })
    )
  )

const BATCH_SIZE = 1000
/**
 * How long one `/result` request waits. The service answers as soon as the task finishes when
 * its worker runs in the same process; a task finished by another process is noticed when the
 * service re-reads it, so long waits are cut into requests of this length.
 */
const WAIT_MS = 5_000

const submitOptions = (flags: {
  readonly priority: Option.Option<"critical" | "high" | "normal" | "low">
  readonly queue: Option.Option<string>
  readonly delay: Option.Option<number>
  readonly tag: Option.Option<Array<string>>
  readonly idempotencyKey: Option.Option<string>
  readonly maxAttempts: Option.Option<number>
}): Api.SubmitOptions => ({
  ...Option.match(flags.priority, { onNone: () => ({}), onSome: (priority) => ({ priority }) }),
  ...Option.match(flags.queue, { onNone: () => ({}), onSome: (queue) => ({ queue }) }),
  ...Option.match(flags.delay, { onNone: () => ({}), onSome: (delayMs) => ({ delayMs }) }),
  ...Option.match(flags.tag, { onNone: () => ({}), onSome: (tags) => ({ tags }) }),
  ...Option.match(flags.idempotencyKey, { onNone: () => ({}), onSome: (idempotencyKey) => ({ idempotencyKey }) }),
  ...Option.match(flags.maxAttempts, { onNone: () => ({}), onSome: (maxAttempts) => ({ maxAttempts }) })
})

/**
 * Waits until a task finishes, asking `/result` with long waits; fails when `timeoutMs` runs
 * out first.
 *
 * @internal
 */
export const waitResult = (
  client: Client.Client,
  id: string,
  timeoutMs: Option.Option<number>
): Effect.Effect<Api.TaskResult, CliError> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const left = Option.map(timeoutMs, (ms) => ms - (now - start))
      const waitMs = Option.match(left, { onNone: () => WAIT_MS, onSome: (ms) => Math.max(0, Math.min(WAIT_MS, ms)) })
      const answer = yield* client.call((api) => api.tasks.result({ path: { id }, urlParams: { waitMs } }))
      if (answer.finished) return answer
      if (Option.isSome(left) && left.value <= waitMs) {
        return yield* new CliError({
          reason: "TaskFailed",
          lines: [`error: task ${id} did not finish within ${
            Format.duration(Option.getOrElse(timeoutMs, () => 0))
          } (status ${answer.status})`]
        })
      }
    }
  })

const resultLines = (result: Api.TaskResult): string =>
  Format.keyValues([
    ["id", result.id],
    ["status", result.status],
    ...(result.status === "succeeded" ? [["result", Format.json(result.result)] as const] : []),
    ...(result.error === null ? [] : [["error", `${result.error.tag}: ${result.error.message}`] as const])
  ])

const notSucceeded = (result: Api.TaskResult): CliError =>
  new CliError({
    reason: "TaskFailed",
    lines: [
      result.error === null
        ? `error: task ${result.id} ${result.status}`
        : `error: task ${result.id} ${result.status}: ${result.error.tag}: ${result.error.message}`
    ]
  })

const submitFlags = {
  name: Args.text({ name: "name" }).pipe(Args.withDescription("The registered task's name")),
  payload: Args.text({ name: "payload-json" }).pipe(
    Args.withDescription("The payload as JSON (default {})"),
    Args.optional
  ),
  file: Options.text("file").pipe(
    Options.withDescription("Submit every payload of a JSON array or JSON Lines file, in batches of 1,000"),
    Options.optional
  ),
  wait: Options.boolean("wait").pipe(Options.withDescription("Wait for the result (exit 1 unless succeeded)")),
  timeout: Flags.duration("timeout", "With --wait: give up after this long (e.g. 30s, 5m)"),
  priority: Flags.priority,
  queue: Options.text("queue").pipe(Options.withDescription("The queue (default: the task's)"), Options.optional),
  delay: Flags.duration("delay", "Run no sooner than this from now (e.g. 500ms, 30s, 5m, 1h)"),
  tag: Flags.commaList("tag", "Tags, comma-separated or repeated"),
  idempotencyKey: Options.text("idempotency-key").pipe(
    Options.withDescription("While an unfinished task of this name has this key, it is returned instead"),
    Options.optional
  ),
  maxAttempts: Flags.integer("max-attempts", 1).pipe(
    Options.optional,
    Options.withDescription("Attempts before the task is dead (default: the task's)")
  ),
  ...Flags.client
}

const submitMany = (
  client: Client.Client,
  name: string,
  payloads: ReadonlyArray<unknown>,
  options: Api.SubmitOptions,
  label = "submitting"
): Effect.Effect<Array<Api.Submitted>, CliError> =>
  Effect.scoped(Effect.gen(function*() {
    const progress = yield* Progress.make(label, payloads.length)
    const items: Array<Api.Submitted> = []
    for (let offset = 0; offset < payloads.length; offset += BATCH_SIZE) {
      const chunk = payloads.slice(offset, offset + BATCH_SIZE)
      const answer = yield* client.call((api) =>
        api.tasks.submitBatch({ payload: { tasks: chunk.map((payload) => ({ name, payload, ...options })) } })
      )
      items.push(...answer.items)
      yield* progress.advance(chunk.length)
    }
    return items
  }))

const waitMany = (
  client: Client.Client,
  ids: ReadonlyArray<string>,
  timeoutMs: Option.Option<number>
): Effect.Effect<Array<Api.TaskResult>, CliError> =>
  Effect.scoped(Effect.gen(function*() {
    const progress = yield* Progress.make("waiting", ids.length)
    return yield* Effect.forEach(
      ids,
      (id) => Effect.tap(waitResult(client, id, timeoutMs), () => progress.advance(1)),
      { concurrency: 16 }
    )
  }))

const countBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string): string => {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return Array.from(counts, ([k, n]) => `${n} ${k}`).join(", ")
}

/** @internal */
export const submit = Command.make(
  "submit",
  submitFlags,
  (flags) =>
    withClient(flags, (client) =>
      Effect.gen(function*() {
        const options = submitOptions(flags)
        if (Option.isSome(flags.file)) {
          if (Option.isSome(flags.payload)) {
            return yield* new CliError({ reason: "Usage", lines: ["error: give a payload or --file, not both"] })
          }
          const fs = yield* FileSystem.FileSystem
          const file = flags.file.value
          const text = yield* fs.readFileString(file).pipe(
            Effect.mapError((cause) => fail("Input", `cannot read --file ${file}: ${cause.message}`, cause))
          )
          const payloads = yield* parsePayloadFile(file, text)
          if (payloads.length === 0) return yield* fail("Input", `--file ${file} holds no payloads`)
          const items = yield* submitMany(client, flags.name, payloads, options)
          if (!flags.wait) {
            if (flags.json) return yield* printJson(Api.SubmittedBatch, { items })
            const created = items.filter((item) => item.created).length
            return yield* Console.log(
              `submitted ${items.length} ${flags.name} tasks (${created} new, ${items.length - created} existing)`
            )
          }
          const results = yield* waitMany(client, items.map((item) => item.id), flags.timeout)
          if (flags.json) yield* printJson(Schema.Struct({ items: Schema.Array(Api.TaskResult) }), { items: results })
          else {yield* Console.log(`${results.length} ${flags.name} tasks finished: ${
              countBy(results, (r) => r.status)
            }`)}
          const failed = results.filter((result) => result.status !== "succeeded")
          if (failed.length > 0) {
            return yield* new CliError({
              reason: "TaskFailed",
              lines: [`error: ${failed.length} of ${results.length} tasks did not succeed`]
            })
          }
          return
        }
        const payload = Option.isSome(flags.payload) ? yield* parseJson("the payload", flags.payload.value) : {}
        const answer = yield* client.call((api) =>
          api.tasks.submit({ payload: { name: flags.name, payload, ...options } })
        )
        if (!flags.wait) {
          if (flags.json) return yield* printJson(Api.Submitted, answer)
          return yield* Console.log(
            answer.created
              ? `submitted ${answer.id} (${answer.task.name}, queue ${answer.task.queue}, priority ${answer.task.priority}, ${answer.task.status})`
              : `already submitted: ${answer.id} (same idempotency key, ${answer.task.status})`
          )
        }
        const result = yield* waitResult(client, answer.id, flags.timeout)
        if (flags.json) yield* printJson(Api.TaskResult, result)
        else yield* Console.log(resultLines(result))
        if (result.status !== "succeeded") return yield* notSucceeded(result)
      }))
).pipe(Command.withDescription("Submit a task (or a file of payloads) and optionally wait for its result"))

const idArg = Args.text({ name: "id" }).pipe(Args.withDescription("The task's id"))

/** @internal */
export const get = Command.make(
  "get",
  { id: idArg, ...Flags.client },
  (flags) =>
    withClient(flags, (client) =>
      Effect.gen(function*() {
        const task = yield* client.call((api) => api.tasks.get({ path: { id: flags.id } }))
        if (flags.json) return yield* printJson(Api.TaskView, task)
        yield* Console.log(Format.taskDetails(task))
      }))
).pipe(Command.withDescription("Show one task"))

/** @internal */
export const list = Command.make("list", {
  status: statusList,
  name: Flags.commaList("name", "Only tasks of these names, comma-separated"),
  queue: Flags.commaList("queue", "Only tasks of these queues, comma-separated"),
  tag: Flags.commaList("tag", "Only tasks carrying every one of these tags"),
  limit: Flags.positiveInt("limit", 50, 1000).pipe(Options.withDescription("Page size, 1..1000 (default 50)")),
  cursor: Options.text("cursor").pipe(Options.withDescription("Where the previous page ended"), Options.optional),
  all: Options.boolean("all").pipe(Options.withDescription("Follow the cursors to the last page")),
  ...Flags.client
}, (flags) =>
  withClient(flags, (client) =>
    Effect.gen(function*() {
      const query = {
        ...Option.match(flags.status, { onNone: () => ({}), onSome: (status) => ({ status }) }),
        ...Option.match(flags.name, { onNone: () => ({}), onSome: (name) => ({ name }) }),
        ...Option.match(flags.queue, { onNone: () => ({}), onSome: (queue) => ({ queue }) }),
        ...Option.match(flags.tag, { onNone: () => ({}), onSome: (tag) => ({ tag }) }),
        limit: flags.limit
      }
      const page = (cursor: Option.Option<string>) =>
        client.call((api) =>
          api.tasks.list({
            urlParams: Option.match(cursor, { onNone: () => query, onSome: (cursor) => ({ ...query, cursor }) })
          })
        )
      let current = yield* page(flags.cursor)
      if (flags.all) {
        const items: Array<Api.TaskView> = [...current.items]
        while (current.nextCursor !== undefined) {
          current = yield* page(Option.some(current.nextCursor))
          items.push(...current.items)
        }
        current = { items }
      }
      if (flags.json) return yield* printJson(Api.TaskPage, current)
      if (current.items.length === 0) return yield* Console.log("no tasks")
      yield* Console.log(Format.taskTable(current.items))
      if (current.nextCursor !== undefined) {
        yield* Console.log(`\nmore: --cursor ${current.nextCursor} (or --all)`)
      }
    }))).pipe(Command.withDescription("List tasks, newest first"))

/** @internal */
export const stats = Command.make("stats", {
  minutes: Flags.positiveInt("minutes", 60, 1440).pipe(
    Options.withDescription("The throughput window in minutes, 1..1440 (default 60)")
  ),
  ...Flags.client
}, (flags) =>
  withClient(flags, (client) =>
    Effect.gen(function*() {
      const view = yield* client.call((api) => api.queues.stats({ urlParams: { minutes: flags.minutes } }))
      if (flags.json) return yield* printJson(Api.StatsView, view)
      yield* Console.log(Format.stats(view))
    }))).pipe(Command.withDescription("Counts, throughput, success rate and durations"))

/** @internal */
export const cancel = Command.make(
  "cancel",
  { id: idArg, ...Flags.client },
  (flags) =>
    withClient(flags, (client) =>
      Effect.gen(function*() {
        const task = yield* client.call((api) => api.tasks.cancel({ path: { id: flags.id } }))
        if (flags.json) return yield* printJson(Api.TaskView, task)
        yield* Console.log(
          task.status === "running"
            ? `cancellation requested: ${task.id} is running, its worker interrupts it`
            : `cancelled ${task.id} (${task.status})`
        )
      }))
).pipe(Command.withDescription("Cancel a task (a running one is interrupted by its worker)"))

/** @internal */
export const retry = Command.make("retry", {
  id: idArg,
  delay: Flags.duration("delay", "Run again no sooner than this from now"),
  extraAttempts: Flags.integer("extra-attempts", 1).pipe(
    Options.optional,
    Options.withDescription("Attempts to grant on top of those used")
  ),
  ...Flags.client
}, (flags) =>
  withClient(flags, (client) =>
    Effect.gen(function*() {
      const task = yield* client.call((api) =>
        api.tasks.retry({
          path: { id: flags.id },
          payload: {
            ...Option.match(flags.delay, { onNone: () => ({}), onSome: (delayMs) => ({ delayMs }) }),
            ...Option.match(flags.extraAttempts, { onNone: () => ({}), onSome: (extraAttempts) => ({ extraAttempts }) })
          }
        })
      )
      if (flags.json) return yield* printJson(Api.TaskView, task)
      yield* Console.log(`retrying ${task.id} (${task.status}, attempt ${task.attempt}/${task.maxAttempts})`)
    }))).pipe(Command.withDescription("Run a failed, dead, cancelled or timed-out task again"))

/** @internal */
export const queues = Command.make(
  "queues",
  Flags.client,
  (flags) =>
    withClient(flags, (client) =>
      Effect.gen(function*() {
        const views = yield* client.call((api) => api.queues.list())
        if (flags.json) return yield* printJson(Schema.Array(Api.QueueView), views)
        if (views.length === 0) return yield* Console.log("no queues")
        yield* Console.log(Format.queueTable(views))
      }))
).pipe(Command.withDescription("Queues, whether paused, and their counts"))

const queueArg = Args.text({ name: "queue" }).pipe(Args.withDescription("The queue's name"))

const pauseOrResume = (verb: "pause" | "resume") =>
  Command.make(
    verb,
    { queue: queueArg, ...Flags.client },
    (flags) =>
      withClient(flags, (client) =>
        Effect.gen(function*() {
          const view = yield* client.call((api) =>
            verb === "pause"
              ? api.queues.pause({ path: { name: flags.queue } })
              : api.queues.resume({ path: { name: flags.queue } })
          )
          if (flags.json) return yield* printJson(Api.QueueView, view)
          yield* Console.log(`${verb === "pause" ? "paused" : "resumed"} queue ${view.queue}`)
        }))
  ).pipe(
    Command.withDescription(
      verb === "pause" ? "Stop workers claiming the queue's tasks" : "Let workers claim the queue's tasks again"
    )
  )

/** @internal */
export const pause = pauseOrResume("pause")

/** @internal */
export const resume = pauseOrResume("resume")

const unfinishedOf = (view: Api.StatsView, name: string): number => {
  const entry = view.byName.find((e) => e.name === name)
  return entry === undefined ? 0 : entry.counts.pending + entry.counts.scheduled + entry.counts.running
}

/** @internal */
export const bench = Command.make("bench", {
  name: Options.text("name").pipe(
    Options.withDescription("The task to submit (registered on the service; default noop)"),
    Options.withDefault("noop")
  ),
  count: Flags.positiveInt("count", 10_000).pipe(Options.withDescription("Tasks to submit (default 10,000)")),
  payload: Options.text("payload").pipe(Options.withDescription("The payload as JSON (default {})"), Options.optional),
  queue: Options.text("queue").pipe(Options.withDescription("The queue (default: the task's)"), Options.optional),
  wait: Options.boolean("wait").pipe(Options.withDescription("Then wait until they finish and report drained/s")),
  ...Flags.client
}, (flags) =>
  withClient(flags, (client) =>
    Effect.gen(function*() {
      const payload = Option.isSome(flags.payload) ? yield* parseJson("--payload", flags.payload.value) : {}
      const options = Option.match(flags.queue, { onNone: () => ({}), onSome: (queue) => ({ queue }) })
      const baseline = flags.wait
        ? unfinishedOf(yield* client.call((api) => api.queues.stats({ urlParams: {} })), flags.name)
        : 0
      const payloads = Array.from({ length: flags.count }, () => payload)
      const start = yield* Clock.currentTimeMillis
      yield* submitMany(client, flags.name, payloads, options, "submitting")
      const accepted = yield* Clock.currentTimeMillis
      const report: Record<string, number> = {
        count: flags.count,
        acceptedMs: accepted - start,
        acceptedPerSecond: flags.count * 1000 / Math.max(1, accepted - start)
      }
      if (!flags.json) {
        yield* Console.log(
          `accepted ${flags.count} ${flags.name} tasks in ${Format.duration(accepted - start)} (${
            Format.rate(flags.count, accepted - start)
          })`
        )
      }
      if (flags.wait) {
        yield* Effect.scoped(Effect.gen(function*() {
          const progress = yield* Progress.make("draining", flags.count)
          let drained = 0
          yield* client.call((api) => api.queues.stats({ urlParams: {} })).pipe(
            Effect.flatMap((view) => {
              const now = Math.max(0, Math.min(flags.count, flags.count - (unfinishedOf(view, flags.name) - baseline)))
              const step = now - drained
              drained = now
              return Effect.as(progress.advance(step), now)
            }),
            Effect.repeat({ until: (n) => n >= flags.count, schedule: Schedule.spaced("200 millis") })
          )
        }))
        const finished = yield* Clock.currentTimeMillis
        report.drainedMs = finished - start
        report.drainedPerSecond = flags.count * 1000 / Math.max(1, finished - start)
        if (!flags.json) {
          yield* Console.log(
            `drained ${flags.count} ${flags.name} tasks in ${Format.duration(finished - start)} (${
              Format.rate(flags.count, finished - start)
            })`
          )
        }
      }
      if (flags.json) yield* Console.log(Format.json(report))
    }))).pipe(
    Command.withDescription("Submit N tasks through the batch API, report accepted/s and (with --wait) drained/s")
  )
