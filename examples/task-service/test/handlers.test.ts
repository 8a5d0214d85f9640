import { assert, describe, it } from "@effect/vitest"
import type { TaskEvent } from "@spindle/tasks"
import { MemoryStore, TaskClient, TaskStore, TaskWorker } from "@spindle/tasks"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { beforeAll } from "vitest"
import * as Handlers from "../src/handlers.js"
import { Imports } from "../src/imports.js"
import * as Maintenance from "../src/maintenance.js"
import { layerServices, limits, type ModuleOptions, nightlyCleanup } from "../src/module.js"
import { FakeProvider } from "../src/notifications.js"
import { mergeSummaries, planChunks, summarizeChunk } from "../src/report.js"
import { ReportFiles } from "../src/reports.js"
import {
  Cleanup,
  GenerateReport,
  ImportData,
  type ImportRecord,
  RecipientRejected,
  SendNotification
} from "../src/tasks.js"
import { buildExample, workerUrl } from "./build.js"

beforeAll(buildExample, 180_000)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-task-service-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A memory store and a client of it. */
const storeLayer = TaskClient.layer.pipe(Layer.provideMerge(MemoryStore.layer))

/**
 * The service's handlers on a worker over the store of the context, with the module's limits,
 * the example's own data in `dir`, and the clean-up deleting from the same store.
 */
const workerLayer = (dir: string, options: ModuleOptions = {}, worker: TaskWorker.TaskWorker.Options = {}) =>
  TaskWorker.layer({ limits, progressInterval: "5 millis", pollInterval: "100 millis", ...worker }).pipe(
    Layer.provideMerge(Handlers.layer),
    Layer.provideMerge(
      Layer.merge(
        layerServices({ db: path.join(dir, "spindle.db"), reportWorkers: 2, workerUrl, ...options }),
        Maintenance.layerStore
      )
    )
  )

/** The whole service on a memory store. */
const service = (dir: string, options: ModuleOptions = {}, worker: TaskWorker.TaskWorker.Options = {}) =>
  workerLayer(dir, options, worker).pipe(Layer.provideMerge(storeLayer))

/** Worker loops that wake rarely, for tests that move the TestClock by hours and days. */
const slowLoops: TaskWorker.TaskWorker.Options = {
  pollInterval: "1 hour",
  rescueInterval: "1 hour",
  lease: "3 hours",
  progressInterval: "1 hour"
}

const getRecord = (id: string) =>
  Effect.flatMap(TaskClient.TaskClient, (client) => client.get(id)).pipe(
    Effect.map(Option.getOrThrowWith(() => new Error(`no task ${id}`)))
  )

const logsOf = (id: string) =>
  Effect.flatMap(TaskStore.TaskStore, (store) => store.taskLogs({ id })).pipe(
    Effect.map((lines) => lines.map((line) => `${line.level} ${line.message}`))
  )

const makeRecords = (from: number, count: number): Array<ImportRecord> =>
  Array.from({ length: count }, (_, i) => ({
    externalId: `customer-${from + i}`,
    name: `Customer ${from + i}`,
    email: `customer${from + i}@example.com`,
    amountCents: (from + i) * 7 % 10_000
  }))

/** Collects the events of the store in the background, from now on. */
const recordEvents = Effect.gen(function*() {
  const store = yield* TaskStore.TaskStore
  const events: Array<TaskEvent.TaskEvent> = []
  yield* store.events.pipe(Stream.runForEach((event) => Effect.sync(() => events.push(event))), Effect.forkScoped)
  yield* Effect.yieldNow()
  return events
})

describe("report.generate", () => {
  it.scopedLive(
    "summarizes the chunks on the worker threads, reporting progress, and writes the report",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        yield* Effect.gen(function*() {
          const client = yield* TaskClient.TaskClient
          const events = yield* recordEvents
          const handle = yield* client.submit(GenerateReport, {
            title: "Quarterly sales",
            rows: 200_000,
            seed: 7,
            chunkSize: 20_000
          })
          const result = yield* client.await(handle, { timeout: "60 seconds" })

          // the same numbers as on the main thread, whatever the order the threads finished in
          const expected = mergeSummaries(planChunks(7, 200_000, 20_000).map(summarizeChunk))
          assert.deepStrictEqual(result.statistics, expected)
          assert.strictEqual(result.chunks, 10)
          assert.strictEqual(result.statistics.rows, 200_000)
          assert.strictEqual(result.statistics.regions.reduce((orders, region) => orders + region.orders, 0), 200_000)
          assert.isTrue(result.statistics.p50 < result.statistics.p95 && result.statistics.p95 < result.statistics.p99)
          const written = JSON.parse(fs.readFileSync(result.file, "utf8"))
          assert.deepStrictEqual(written.statistics, expected)
          assert.strictEqual(path.dirname(result.file), path.join(dir, "spindle.reports"))

          const record = yield* getRecord(handle.id)
          assert.strictEqual(record.status, "succeeded")
          assert.strictEqual(record.attempt, 1)
          assert.strictEqual(record.progress, 1)
          assert.strictEqual(record.progressMessage, "chunk 10/10")
          const progress = events.filter((event) => event.taskId === handle.id && event.type === "progress")
          assert.isAtLeast(progress.length, 2)
          assert.strictEqual(progress.at(-1)?.progress, 1)
          for (let i = 1; i < progress.length; i++) {
            assert.isAbove(progress[i].progress ?? 0, progress[i - 1].progress ?? 0)
          }
          const logs = yield* logsOf(handle.id)
          assert.include(logs[0], "200,000 orders in 10 chunks on 2 worker threads")
          assert.isTrue(logs.some((line) => line.includes(`written to ${result.file}`)))
        }).pipe(Effect.provide(service(dir)))
      }),
    { timeout: 90_000 }
  )
})

describe("notification.send", () => {
  it.scopedLive("retries past the provider's 500 and 429 with backoff, then succeeds", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // seed 56 draws: 500, 429, then a delivery
      yield* Effect.gen(function*() {
        const client = yield* TaskClient.TaskClient
        const provider = yield* FakeProvider
        const handle = yield* client.submit(SendNotification, {
          to: "ada@example.com",
          subject: "Your report is ready",
          body: "Quarterly sales: see the attachment."
        })
        const result = yield* client.await(handle, { timeout: "30 seconds" })
        assert.deepStrictEqual(result, { messageId: "msg-000001", attempt: 3 })

        const record = yield* getRecord(handle.id)
        assert.strictEqual(record.status, "succeeded")
        assert.strictEqual(record.attempt, 3)
        assert.deepStrictEqual(yield* provider.stats, {
          requests: 3,
          delivered: 1,
          failed: 1,
          throttled: 1,
          rejected: 0,
          slow: 0
        })
        const logs = yield* logsOf(handle.id)
        assert.isTrue(logs.includes("warn ProviderUnavailable: the provider answered 500"))
        assert.isTrue(logs.includes("warn ProviderThrottled: the provider answered 429 Too Many Requests"))
        assert.isTrue(logs.includes("info delivered to ada@example.com as msg-000001"))
      }).pipe(Effect.provide(service(dir, { provider: { seed: 56, failureRate: 0.5, slowRate: 0 } })))
    }), { timeout: 60_000 })

  it.scopedLive("fails a rejected recipient with its typed failure, without a retry", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* Effect.gen(function*() {
        const client = yield* TaskClient.TaskClient
        const provider = yield* FakeProvider
        const handle = yield* client.submit(SendNotification, {
          to: "mallory@blocked.example",
          subject: "Hello",
          body: "..."
        })
        const exit = yield* Effect.exit(client.await(handle, { timeout: "30 seconds" }))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error) && error.value._tag === "TaskFailed")
        if (Option.isSome(error) && error.value._tag === "TaskFailed") {
          assert.strictEqual(error.value.status, "failed")
          assert.strictEqual(error.value.attempt, 1)
          assert.instanceOf(error.value.value, RecipientRejected)
          assert.deepStrictEqual(
            error.value.value,
            new RecipientRejected({ recipient: "mallory@blocked.example", reason: "blocked.example is blocked" })
          )
        }
        const record = yield* getRecord(handle.id)
        assert.strictEqual(record.status, "failed")
        assert.strictEqual(record.attempt, 1)
        assert.strictEqual(record.error?.tag, "RecipientRejected")
        const stats = yield* provider.stats
        assert.strictEqual(stats.requests, 1)
        assert.strictEqual(stats.rejected, 1)
      }).pipe(Effect.provide(service(dir, { provider: { failureRate: 0, slowRate: 0 } })))
    }), { timeout: 60_000 })

  it.scopedLive("logs a warning past the soft timeout and still succeeds", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* Effect.gen(function*() {
        const client = yield* TaskClient.TaskClient
        const handle = yield* client.submit(SendNotification, { to: "grace@example.com", subject: "Hi", body: "" })
        const result = yield* client.await(handle, { timeout: "30 seconds" })
        assert.strictEqual(result.attempt, 1)
        const logs = yield* logsOf(handle.id)
        assert.isTrue(logs.some((line) => line.startsWith("warn ") && line.includes("soft timeout")))
      }).pipe(
        Effect.provide(service(dir, { provider: { failureRate: 0, slowRate: 1, slowDelay: "1200 millis" } }))
      )
    }), { timeout: 60_000 })
})

describe("data.import", () => {
  it.scopedLive(
    "stores every record exactly once, across chunks, concurrent imports and re-imports",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        yield* Effect.gen(function*() {
          const client = yield* TaskClient.TaskClient
          const imports = yield* Imports

          const first = yield* client.submit(ImportData, { batchId: "customers-1", records: makeRecords(0, 1_000) })
          const result = yield* client.await(first, { timeout: "30 seconds" })
          assert.deepStrictEqual(result, {
            batchId: "customers-1",
            records: 1_000,
            inserted: 1_000,
            duplicates: 0,
            chunks: 10
          })
          const record = yield* getRecord(first.id)
          assert.strictEqual(record.progress, 1)
          assert.strictEqual(record.progressMessage, "chunk 10/10: 1000 new, 0 known")
          assert.deepStrictEqual(yield* imports.count, { rows: 1_000, distinct: 1_000 })

          // two imports at once, overlapping each other and the first one
          const [second, third] = yield* Effect.all([
            client.submit(ImportData, { batchId: "customers-2", records: makeRecords(500, 1_000), chunkSize: 250 }),
            client.submit(ImportData, { batchId: "customers-3", records: makeRecords(1_000, 1_000), chunkSize: 50 })
          ])
          const [r2, r3] = yield* Effect.all([
            client.await(second, { timeout: "30 seconds" }),
            client.await(third, { timeout: "30 seconds" })
          ], { concurrency: 2 })
          assert.strictEqual(r2.duplicates + r2.inserted, 1_000)
          assert.strictEqual(r3.duplicates + r3.inserted, 1_000)
          // ids 1000..1999 were new: each was stored by exactly one of the two imports
          assert.strictEqual(r2.inserted + r3.inserted, 1_000)
          assert.deepStrictEqual(yield* imports.count, { rows: 2_000, distinct: 2_000 })

          const stats = yield* imports.stats
          assert.strictEqual(stats.submitted, 3_000)
          assert.strictEqual(stats.failed, 0)
          assert.isBelow(stats.batches, 3_000)
        }).pipe(Effect.provide(service(dir)))
      }),
    { timeout: 60_000 }
  )
})

describe("maintenance.cleanup", () => {
  const finish = (store: TaskStore.TaskStore["Type"], name: string, outcome: "succeeded" | "failed") =>
    Effect.gen(function*() {
      const [inserted] = yield* store.tasksInsert({ tasks: [{ name, queue: "legacy", payload: null }] })
      const [claimed] = yield* store.tasksClaim({ workerId: "old-worker", limit: 1, leaseMs: 60_000, names: [name] })
      assert.strictEqual(claimed.id, inserted.task.id)
      if (outcome === "succeeded") {
        yield* store.taskComplete({ id: claimed.id, workerId: "old-worker", result: null })
      } else {
        yield* store.taskFail({
          id: claimed.id,
          workerId: "old-worker",
          error: { tag: "Failure", message: "boom", cause: "" },
          outcome: { _tag: "failed" }
        })
      }
      return claimed.id
    })

  /** Advances the TestClock until `check` holds. */
  const advanceUntil = <E, R>(check: Effect.Effect<boolean, E, R>, step: Duration.DurationInput) =>
    Effect.gen(function*() {
      for (let i = 0; i < 20_000; i++) {
        if (yield* check) return
        yield* Effect.yieldNow()
        if (i % 50 === 49) yield* TestClock.adjust(step)
      }
      return yield* Effect.dieMessage("never happened")
    })

  it.scoped("deletes only the tasks that finished before the cutoff, and the old reports", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* Effect.gen(function*() {
        const store = yield* TaskStore.TaskStore
        const client = yield* TaskClient.TaskClient
        const day = Duration.toMillis("1 day")

        // day 0: two tasks finish, one is left pending (no worker handles it)
        const oldSucceeded = yield* finish(store, "legacy.sync", "succeeded")
        const oldFailed = yield* finish(store, "legacy.sync", "failed")
        const [pending] = yield* store.tasksInsert({ tasks: [{ name: "legacy.export", payload: null }] })
        // day 8: another finishes
        yield* TestClock.adjust(Duration.millis(8 * day))
        const recent = yield* finish(store, "legacy.sync", "succeeded")

        // the worker starts now (its loops would make moving the clock by days slow)
        const files = Context.get(yield* Layer.build(workerLayer(dir, {}, slowLoops)), ReportFiles)

        // reports last written at 12:00 on day 0 (old) and on day 7 (recent), on the TestClock's calendar
        const oldReport = yield* files.write("report-old", {})
        const recentReport = yield* files.write("report-recent", {})
        fs.utimesSync(oldReport, new Date(day / 2), new Date(day / 2))
        fs.utimesSync(recentReport, new Date(7 * day), new Date(7 * day))

        const handle = yield* client.submit(Cleanup, { olderThanHours: 7 * 24 })
        yield* advanceUntil(Effect.map(getRecord(handle.id), (record) => record.status === "succeeded"), "1 second")
        const result = yield* client.await(handle)
        assert.strictEqual(result.tasksDeleted, 2)
        assert.strictEqual(result.reportsDeleted, 1)
        // a week before the run: day 1, give or take the clock's steps while the worker picked the task up
        assert.isTrue(result.cutoff.getTime() >= day && result.cutoff.getTime() < day + 60_000)

        for (const id of [oldSucceeded, oldFailed]) {
          assert.isTrue(Option.isNone(yield* client.get(id)))
        }
        for (const id of [recent, pending.task.id, handle.id]) {
          assert.isTrue(Option.isSome(yield* client.get(id)))
        }
        assert.isFalse(fs.existsSync(oldReport))
        assert.isTrue(fs.existsSync(recentReport))
      }).pipe(Effect.provide(storeLayer))
    }))

  it.scoped("runs every night at 03:00 through the worker's cron", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* Effect.gen(function*() {
        const store = yield* TaskStore.TaskStore
        const cleanups = store.tasksList({ filter: { name: [Cleanup.name] } }).pipe(Effect.map((page) => page.items))
        assert.strictEqual((yield* cleanups).length, 0)
        yield* advanceUntil(
          Effect.map(cleanups, (items) => items.some((task) => task.status === "succeeded")),
          "10 minutes"
        )
        const [task] = yield* cleanups
        assert.match(task.id, /^cron:maintenance\.cleanup:/)
        const fired = new Date(task.id.slice("cron:maintenance.cleanup:".length))
        // 03:00 in the machine's time zone
        assert.strictEqual(fired.getHours(), 3)
        assert.strictEqual(fired.getMinutes(), 0)
        assert.deepStrictEqual(task.payload, { olderThanHours: 168 })
      }).pipe(Effect.provide(service(dir, {}, { ...slowLoops, cron: [nightlyCleanup] })))
    }), { timeout: 30_000 })
})
