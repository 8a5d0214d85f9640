/**
 * The handlers of the service's tasks. Each one states what it needs as services (`ReportPool`,
 * `ReportFiles`, `Notifier`, `Imports`, `TaskRetention`); `module.ts` provides them.
 *
 * @since 0.1.0
 */
import { TaskHandlers } from "@spindle/tasks"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { Imports } from "./imports.js"
import { TaskRetention } from "./maintenance.js"
import { Notifier } from "./notifications.js"
import { mergeSummaries, planChunks, SummarizeChunk } from "./report.js"
import { ReportFiles, ReportPool } from "./reports.js"
import { Cleanup, CleanupFailed, GenerateReport, ImportData, SendNotification } from "./tasks.js"

/**
 * `report.generate`: chunks summarized on the worker-thread pool (as many at once as the pool
 * has threads), progress after each chunk, the merged report written to the reports directory.
 * A crashed or timed-out worker thread is a defect: the task's retry policy runs it again.
 *
 * @since 0.1.0
 * @category handlers
 */
export const generateReport = TaskHandlers.handler(GenerateReport, (payload, ctx) =>
  Effect.gen(function*() {
    const pool = yield* ReportPool
    const files = yield* ReportFiles
    const chunks = planChunks(payload.seed, payload.rows, payload.chunkSize ?? 250_000)
    yield* ctx.log(
      `"${payload.title}": ${payload.rows.toLocaleString("en-US")} orders in ${chunks.length} chunks ` +
        `on ${pool.size} worker threads`
    )
    let done = 0
    const summaries = yield* Effect.forEach(
      chunks,
      (chunk) =>
        pool.execute(new SummarizeChunk(chunk)).pipe(
          Effect.tap(() => {
            done++
            return ctx.progress(done / chunks.length, `chunk ${done}/${chunks.length}`)
          })
        ),
      { concurrency: pool.size }
    ).pipe(Effect.orDie)
    const statistics = mergeSummaries(summaries)
    const file = yield* files.write(`report-${ctx.id}`, { title: payload.title, seed: payload.seed, statistics }).pipe(
      Effect.orDie
    )
    yield* ctx.log(
      `revenue ${statistics.revenue.toFixed(2)} over ${statistics.rows} orders, p95 order ${statistics.p95}`
    )
    yield* ctx.log(`written to ${file}`)
    return { title: payload.title, chunks: chunks.length, statistics, file }
  }))

/**
 * `notification.send`: one request to the provider per attempt. The worker applies the rest: the
 * rate limit and per-recipient concurrency (`limits` in `module.ts`), the soft timeout (a warning
 * in the task's log) and the hard timeout, and the retry policy of the definition.
 *
 * @since 0.1.0
 * @category handlers
 */
export const sendNotification = TaskHandlers.handler(SendNotification, (payload, ctx) =>
  Effect.gen(function*() {
    const notifier = yield* Notifier
    if (ctx.attempt > 1) yield* ctx.log(`attempt ${ctx.attempt} of ${ctx.maxAttempts}`)
    const { messageId } = yield* notifier.send(payload).pipe(
      Effect.tapError((error) => ctx.log(`${error._tag}: ${error.message}`, "warn"))
    )
    yield* ctx.log(`delivered to ${payload.to} as ${messageId}`)
    return { messageId, attempt: ctx.attempt }
  }))

/**
 * `data.import`: the records go through the import database's Batcher a chunk at a time (a
 * chunk's records concurrently, so that they share transactions, with each other and with other
 * imports running at the same time); progress after each chunk.
 *
 * @since 0.1.0
 * @category handlers
 */
export const importData = TaskHandlers.handler(ImportData, (payload, ctx) =>
  Effect.gen(function*() {
    const imports = yield* Imports
    const chunkSize = payload.chunkSize ?? 100
    const chunks = Math.ceil(payload.records.length / chunkSize)
    let inserted = 0
    let duplicates = 0
    for (let chunk = 0; chunk < chunks; chunk++) {
      const records = payload.records.slice(chunk * chunkSize, (chunk + 1) * chunkSize)
      const outcomes = yield* Effect.forEach(
        records,
        (record) => imports.submit({ ...record, batchId: payload.batchId }),
        { concurrency: "unbounded" }
      )
      for (const outcome of outcomes) {
        if (outcome === "inserted") inserted++
        else duplicates++
      }
      yield* ctx.progress((chunk + 1) / chunks, `chunk ${chunk + 1}/${chunks}: ${inserted} new, ${duplicates} known`)
    }
    yield* ctx.log(`batch ${payload.batchId}: ${inserted} records stored, ${duplicates} already known`)
    return { batchId: payload.batchId, records: payload.records.length, inserted, duplicates, chunks }
  }))

/**
 * `maintenance.cleanup`: deletes the tasks that finished before the cutoff, then the reports
 * written before it.
 *
 * @since 0.1.0
 * @category handlers
 */
export const cleanup = TaskHandlers.handler(Cleanup, (payload, ctx) =>
  Effect.gen(function*() {
    const retention = yield* TaskRetention
    const files = yield* ReportFiles
    const now = yield* Clock.currentTimeMillis
    const cutoff = new Date(now - Math.round(payload.olderThanHours * 3_600_000))
    const tasksDeleted = yield* retention.deleteFinishedBefore(cutoff)
    const reportsDeleted = yield* files.deleteBefore(cutoff).pipe(
      Effect.mapError((error) => new CleanupFailed({ message: error.message }))
    )
    yield* ctx.log(
      `deleted ${tasksDeleted} tasks finished and ${reportsDeleted} reports written before ${cutoff.toISOString()}`
    )
    return { cutoff, tasksDeleted, reportsDeleted }
  }))

/**
 * Every handler of the service, as a layer requiring their services.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = TaskHandlers.layer(generateReport, sendNotification, importData, cleanup)
