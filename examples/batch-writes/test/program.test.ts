import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { insertRows, makeRows, program, ROWS_PER_STATEMENT } from "../src/program.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-batch-writes-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Reads a finished database back: row count, distinct ids and their range, per table. */
const inspect = (file: string, table: "events_row_at_a_time" | "events_batched") =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly n: number; readonly ids: number; readonly lo: number; readonly hi: number }>`
      SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids, MIN(id) AS lo, MAX(id) AS hi FROM ${sql(table)}
    `
  ).pipe(
    Effect.map((rows) => rows[0]),
    Effect.provide(SqliteClient.layer({ filename: file }))
  )

describe("batch-writes program", () => {
  it.scopedLive("writes every row in both tables and reports both durations and the speedup", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "nested", "batch-writes.db")
      const report = yield* program({ rows: 2_000, file, batchSize: 300, submitters: 200 })

      assert.strictEqual(report.rows, 2_000)
      assert.strictEqual(report.file, file)
      assert.strictEqual(report.synchronous, "NORMAL")
      assert.strictEqual(report.rowAtATime.rowsInTable, 2_000)
      assert.strictEqual(report.batched.rowsInTable, 2_000)
      for (const variant of [report.rowAtATime, report.batched]) {
        assert.isTrue(variant.durationMillis > 0)
        assert.isTrue(Number.isFinite(variant.rowsPerSecond) && variant.rowsPerSecond > 0)
      }
      assert.strictEqual(report.speedup, report.rowAtATime.durationMillis / report.batched.durationMillis)

      // 200 submitters with one row in flight each: no batch can exceed 200 rows.
      const { stats } = report.batched
      assert.strictEqual(stats.submitted, 2_000)
      assert.strictEqual(stats.failed, 0)
      assert.strictEqual(stats.pending, 0)
      assert.isTrue(stats.batches >= 10 && stats.batches < 2_000)
      assert.strictEqual(stats.flushedBySize + stats.flushedByTime + stats.flushedByClose, stats.batches)

      for (const table of ["events_row_at_a_time", "events_batched"] as const) {
        assert.deepStrictEqual(yield* inspect(file, table), { n: 2_000, ids: 2_000, lo: 1, hi: 2_000 })
      }
    }))

  it.scopedLive("starts from a fresh file and honours synchronous=FULL", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "batch-writes.db")
      yield* program({ rows: 50, file, submitters: 10 })
      // A second run on the same path starts afresh instead of failing on the existing tables.
      const report = yield* program({ rows: 30, file, submitters: 10, synchronous: "FULL" })
      assert.strictEqual(report.synchronous, "FULL")
      assert.deepStrictEqual(yield* inspect(file, "events_batched"), { n: 30, ids: 30, lo: 1, hi: 30 })
      assert.deepStrictEqual(yield* inspect(file, "events_row_at_a_time"), { n: 30, ids: 30, lo: 1, hi: 30 })
    }))

  it.scopedLive("splits a flush larger than the bound-variable limit into several statements of one transaction", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "split.db")
      const rows = makeRows(ROWS_PER_STATEMENT * 3 + 7)
      const ids = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE events_batched (
          id INTEGER PRIMARY KEY, source TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL
        )`
        return yield* insertRows("events_batched", rows)
      }).pipe(Effect.provide(SqliteClient.layer({ filename: file })))
      assert.deepStrictEqual(ids, rows.map((row) => row.id))
      assert.deepStrictEqual(yield* inspect(file, "events_batched"), {
        n: rows.length,
        ids: rows.length,
        lo: 1,
        hi: rows.length
      })
    }))
})
