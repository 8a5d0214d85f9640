/**
 * The SQL of the SQLite task store: one function per query, each returning raw rows (decoded by
 * `taskRow.ts`). Nothing here publishes events or checks the state machine: `sqliteStore.ts`
 * does.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import type { TaskStatus, TaskStore } from "@spindle/tasks"
import { Effect } from "effect"
import type { SqliteTables } from "./sqliteMigrations.js"
import type { NewTaskColumns } from "./taskRow.js"
import { claimedRow, claimReturnedColumns, newTaskSetColumns, sortColumn, taskColumns } from "./taskRow.js"

/** The VALUES tuple of one new row: `?` for a bound column, the literal of the others. */
const insertValues = `(${
  taskColumns.map((column) => {
    if ((newTaskSetColumns as ReadonlyArray<string>).includes(column)) return "?"
    switch (column) {
      case "attempt":
      case "cancel_requested":
      case "progress":
        return "0"
      default:
        return "NULL"
    }
  }).join(", ")
})`

/** Rows per multi-row INSERT, under SQLite's bound-variable limit (32766). @internal */
export const insertChunk = Math.floor(30000 / newTaskSetColumns.length)

/** Ids per `IN (...)` list. @internal */
export const idChunk = 10000

type Rows = Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>

/** What a batch settle returns per row changed. @internal */
export interface SettledRow {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly attempt: number | bigint
}

/** The rows of `RETURNING id, name, queue, attempt` read as values. */
const settledRows = (rows: ReadonlyArray<ReadonlyArray<unknown>>): ReadonlyArray<SettledRow> =>
  rows.map((values): SettledRow => ({
    id: values[0] as string,
    name: values[1] as string,
    queue: values[2] as string,
    attempt: values[3] as number
  }))

/** @internal */
export const makeQueries = (client: SqlClient.SqlClient, tables: SqliteTables) => {
  const sql = client.withoutTransforms()
  const tasks = sql(tables.tasks)
  const logs = sql(tables.logs)
  const paused = sql(tables.paused)
  const claimReturning = sql.literal(claimReturnedColumns.join(", "))

  // The text of a multi-row INSERT per row count (a few sizes repeat: chunks, single submits).
  const insertStatements = new Map<string, string>()
  const insertStatement = (count: number, returning: boolean): string => {
    const key = `${count}${returning ? "r" : ""}`
    let text = insertStatements.get(key)
    if (text === undefined) {
      if (insertStatements.size >= 64) insertStatements.clear()
      text = `INSERT INTO "${tables.tasks}" (${taskColumns.join(", ")}) VALUES ${
        Array.from({ length: count }, () => insertValues).join(", ")
      } ON CONFLICT (name, idempotency_key) WHERE idempotency_key IS NOT NULL
        AND status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'timed-out') DO NOTHING${
        returning ? " RETURNING id" : ""
      }`
      insertStatements.set(key, text)
    }
    return text
  }
  // The INSERT of a lone task claimed at once by a waiting worker (a handoff), unless its queue
  // is paused: then it is inserted as usual. Returns the status it was inserted with. Each column
  // gives its SQL and, for a placeholder, where its value comes from, in one pass.
  type Claim = { readonly workerId: string; readonly now: number; readonly leaseMs: number }
  const claimedColumns = taskColumns.map(
    (column): readonly [string, ((row: NewTaskColumns, claim: Claim) => unknown)?] => {
      switch (column) {
        case "status":
          return ["CASE WHEN p.paused THEN ? ELSE 'running' END", (row) => row.status]
        case "attempt":
          return ["CASE WHEN p.paused THEN 0 ELSE 1 END"]
        case "started_at":
          return ["CASE WHEN p.paused THEN NULL ELSE ? END", (_, claim) => claim.now]
        case "lease_owner":
          return ["CASE WHEN p.paused THEN NULL ELSE ? END", (_, claim) => claim.workerId]
        case "lease_expires_at":
          return ["CASE WHEN p.paused THEN NULL ELSE ? END", (_, claim) => claim.now + claim.leaseMs]
        case "cancel_requested":
        case "progress":
          return ["0"]
        default:
          return (newTaskSetColumns as ReadonlyArray<string>).includes(column)
            ? ["?", (row) => row[column as keyof NewTaskColumns]]
            : ["NULL"]
      }
    }
  )
  const claimedInsertStatement = `INSERT INTO "${tables.tasks}" (${taskColumns.join(", ")})
    SELECT ${claimedColumns.map(([text]) => text).join(", ")}
    FROM (SELECT EXISTS (SELECT 1 FROM "${tables.paused}" WHERE queue = ?) AS paused) AS p
    RETURNING status`
  const claimedInsertValues = claimedColumns.flatMap(([, value]) => value === undefined ? [] : [value])
  const unfinished = sql.literal("status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'timed-out')")

  const filterClauses = (filter: TaskStore.TaskStore.Filter | undefined): Array<Fragment> => {
    const clauses: Array<Fragment> = []
    if (filter?.status !== undefined) clauses.push(sql.in("status", filter.status))
    if (filter?.name !== undefined) clauses.push(sql.in("name", filter.name))
    if (filter?.queue !== undefined) clauses.push(sql.in("queue", filter.queue))
    for (const tag of filter?.tag === undefined ? [] : typeof filter.tag === "string" ? [filter.tag] : filter.tag) {
      clauses.push(sql`EXISTS (SELECT 1 FROM json_each(${tasks}.tags) WHERE json_each.value = ${tag})`)
    }
    if (filter?.parentId !== undefined) clauses.push(sql`parent_id = ${filter.parentId}`)
    return clauses
  }

  return {
    /**
     * Inserts rows; rows whose (name, idempotency key) clash with an unfinished task are skipped.
     * With `returning`, gives the ids of the rows inserted; without, nothing (for rows without
     * idempotency keys, which are all inserted or fail the statement).
     */
    insert: (
      rows: ReadonlyArray<NewTaskColumns>,
      returning: boolean
    ): Effect.Effect<ReadonlyArray<{ readonly id: string }>, SqlError> => {
      const params: Array<unknown> = []
      for (const row of rows) for (const column of newTaskSetColumns) params.push(row[column])
      return sql.unsafe<{ readonly id: string }>(insertStatement(rows.length, returning), params)
    },

    /**
     * Inserts a lone task claimed by `workerId` (running, attempt 1, leased), or as usual when
     * its queue is paused. Returns the status inserted.
     */
    insertClaimed: (
      row: NewTaskColumns,
      claim: Claim
    ): Effect.Effect<ReadonlyArray<{ readonly status: string }>, SqlError> => {
      const params = claimedInsertValues.map((value) => value(row, claim))
      params.push(row.queue)
      return sql.unsafe<{ readonly status: string }>(claimedInsertStatement, params)
    },

    /** Unfinished tasks holding one of these (name, key) pairs. */
    byIdempotencyKeys: (pairs: ReadonlyArray<readonly [name: string, key: string]>): Rows =>
      sql`SELECT * FROM ${tasks} WHERE idempotency_key IS NOT NULL AND ${unfinished} AND ${
        sql.or(pairs.map(([name, key]) => sql`(name = ${name} AND idempotency_key = ${key})`))
      }`,

    /**
     * Claims up to `limit` due tasks of unpaused queues, best first. The claim returns, as raw
     * values (no row objects built by the driver: about half the cost of a claim), only the
     * columns it does not set itself; the rows are completed here from what the UPDATE set.
     */
    claim: (params: {
      readonly workerId: string
      readonly now: number
      readonly leaseMs: number
      readonly limit: number
      readonly queues: ReadonlyArray<string> | undefined
      readonly names: ReadonlyArray<string> | undefined
    }): Rows => {
      const clauses: Array<Fragment> = [
        sql.literal("status IN ('pending', 'scheduled')"),
        sql`run_at <= ${params.now}`,
        sql`queue NOT IN (SELECT queue FROM ${paused})`
      ]
      if (params.queues !== undefined) clauses.push(sql.in("queue", params.queues))
      if (params.names !== undefined) clauses.push(sql.in("name", params.names))
      const leaseExpiresAt = params.now + params.leaseMs
      // by rowid: the claim index holds it, so no lookup through the id index per row
      return sql`UPDATE ${tasks}
        SET status = 'running', attempt = attempt + 1, started_at = ${params.now}, updated_at = ${params.now},
          finished_at = NULL, cancel_requested = 0,
          lease_owner = ${params.workerId}, lease_expires_at = ${leaseExpiresAt}
        WHERE rowid IN (
          SELECT rowid FROM ${tasks} WHERE ${sql.and(clauses)}
          ORDER BY priority, run_at, id LIMIT ${params.limit}
        )
        RETURNING ${claimReturning}`.values.pipe(
        Effect.map((rows) => {
          const claim = { workerId: params.workerId, now: params.now, leaseExpiresAt }
          return rows.map((values) => claimedRow(values, claim))
        })
      )
    },

    heartbeat: (params: {
      readonly workerId: string
      readonly ids: ReadonlyArray<string>
      readonly leaseExpiresAt: number
    }): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly cancel_requested: number }>, SqlError> =>
      sql<{ readonly id: string; readonly cancel_requested: number }>`UPDATE ${tasks}
        SET lease_expires_at = ${params.leaseExpiresAt}
        WHERE ${sql.in("id", params.ids)} AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING id, cancel_requested`,

    complete: (
      params: { readonly id: string; readonly workerId: string; readonly result: string; readonly now: number }
    ) =>
      sql`UPDATE ${tasks}
        SET status = 'succeeded', result = ${params.result}, finished_at = ${params.now},
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
        WHERE id = ${params.id} AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING *` as Rows,

    fail: (params: {
      readonly id: string
      readonly workerId: string
      readonly status: TaskStatus.TaskStatus
      readonly error: string
      readonly runAt: number | undefined
      readonly now: number
    }): Rows =>
      params.runAt !== undefined
        ? sql`UPDATE ${tasks}
          SET status = ${params.status}, error = ${params.error}, run_at = ${params.runAt}, finished_at = NULL,
            updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
          WHERE id = ${params.id} AND status = 'running' AND lease_owner = ${params.workerId}
          RETURNING *`
        : sql`UPDATE ${tasks}
          SET status = ${params.status}, error = ${params.error}, finished_at = ${params.now},
            updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
          WHERE id = ${params.id} AND status = 'running' AND lease_owner = ${params.workerId}
          RETURNING *`,

    /**
     * Completes many running tasks held by their items' workers, in one statement. `items` is a
     * JSON array of `{ i: id, w: workerId, r: result as JSON text }`.
     */
    completeMany: (params: { readonly items: string; readonly now: number }): Effect.Effect<
      ReadonlyArray<SettledRow>,
      SqlError
    > =>
      sql`UPDATE ${tasks}
        SET status = 'succeeded', result = r.r_result, finished_at = ${params.now},
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
        FROM (SELECT value ->> 'i' AS r_id, value ->> 'w' AS r_worker, value ->> 'r' AS r_result
          FROM json_each(${params.items})) AS r
        WHERE id = r.r_id AND status = 'running' AND lease_owner = r.r_worker
        RETURNING id, name, queue, attempt`.values.pipe(Effect.map(settledRows)),

    /**
     * `completeMany` for items of one worker and one result (a batch of tasks returning nothing,
     * say): `ids` is a JSON array of ids. A quarter cheaper than reading each item's fields.
     */
    completeSame: (params: {
      readonly ids: string
      readonly workerId: string
      readonly result: string
      readonly now: number
    }): Effect.Effect<ReadonlyArray<SettledRow>, SqlError> =>
      sql`UPDATE ${tasks}
        SET status = 'succeeded', result = ${params.result}, finished_at = ${params.now},
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
        WHERE id IN (SELECT value FROM json_each(${params.ids}))
          AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING id, name, queue, attempt`.values.pipe(Effect.map(settledRows)),

    /**
     * Ends many running attempts held by their items' workers, in one statement. `items` is a
     * JSON array of `{ i: id, w: workerId, s: status, e: error as JSON text, t: runAt | null }`;
     * `scheduled` (a retry) keeps `finished_at` null.
     */
    failMany: (params: { readonly items: string; readonly now: number }): Effect.Effect<
      ReadonlyArray<SettledRow>,
      SqlError
    > =>
      sql`UPDATE ${tasks}
        SET status = r.r_status, error = r.r_error, run_at = coalesce(r.r_run_at, run_at),
          finished_at = CASE WHEN r.r_status = 'scheduled' THEN NULL ELSE ${params.now} END,
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
        FROM (SELECT value ->> 'i' AS r_id, value ->> 'w' AS r_worker, value ->> 's' AS r_status,
            value ->> 'e' AS r_error, value ->> 't' AS r_run_at
          FROM json_each(${params.items})) AS r
        WHERE id = r.r_id AND status = 'running' AND lease_owner = r.r_worker
        RETURNING id, name, queue, attempt`.values.pipe(Effect.map(settledRows)),

    release: (params: { readonly workerId: string; readonly ids: ReadonlyArray<string>; readonly now: number }): Rows =>
      sql`UPDATE ${tasks}
        SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'pending' END,
          attempt = CASE WHEN cancel_requested = 1 THEN attempt ELSE MAX(attempt - 1, 0) END,
          finished_at = CASE WHEN cancel_requested = 1 THEN ${params.now} ELSE NULL END,
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
        WHERE ${sql.in("id", params.ids)} AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING *`,

    rescue: (params: { readonly now: number; readonly limit: number }): Rows =>
      sql`UPDATE ${tasks}
        SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled'
            WHEN attempt >= max_attempts THEN 'dead' ELSE 'pending' END,
          finished_at = CASE WHEN cancel_requested = 1 OR attempt >= max_attempts THEN ${params.now} ELSE NULL END,
          error = json_object('tag', 'LeaseExpired',
            'message', 'the lease of worker ' || coalesce(lease_owner, 'null') || ' expired', 'cause', ''),
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0
        WHERE id IN (
          SELECT id FROM ${tasks} WHERE status = 'running' AND lease_expires_at < ${params.now}
          ORDER BY lease_expires_at LIMIT ${params.limit}
        )
        RETURNING *`,

    get: (id: string): Rows => sql`SELECT * FROM ${tasks} WHERE id = ${id}`,

    cancelNow: (params: { readonly id: string; readonly from: TaskStatus.TaskStatus; readonly now: number }): Rows =>
      sql`UPDATE ${tasks}
        SET status = 'cancelled', finished_at = ${params.now}, updated_at = ${params.now}
        WHERE id = ${params.id} AND status = ${params.from}
        RETURNING *`,

    cancelRequest: (params: { readonly id: string; readonly now: number }): Rows =>
      sql`UPDATE ${tasks}
        SET cancel_requested = 1, updated_at = ${params.now}
        WHERE id = ${params.id} AND status = 'running'
        RETURNING *`,

    retry: (params: {
      readonly id: string
      readonly from: TaskStatus.TaskStatus
      readonly status: "pending" | "scheduled"
      readonly runAt: number
      readonly extraAttempts: number
      readonly now: number
    }): Rows =>
      sql`UPDATE ${tasks}
        SET status = ${params.status}, run_at = ${params.runAt}, max_attempts = MAX(max_attempts, attempt + ${params.extraAttempts}),
          finished_at = NULL, result = NULL, cancel_requested = 0, lease_owner = NULL, lease_expires_at = NULL,
          updated_at = ${params.now}
        WHERE id = ${params.id} AND status = ${params.from}
        RETURNING *`,

    progress: (params: {
      readonly id: string
      readonly workerId: string
      readonly progress: number
      readonly message: string | undefined
      readonly now: number
    }): Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError> =>
      sql`UPDATE ${tasks}
        SET progress = ${params.progress}, progress_message = ${params.message ?? null}, updated_at = ${params.now}
        WHERE id = ${params.id} AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING *`,

    logAppend: (
      lines: ReadonlyArray<
        {
          readonly task_id: string
          readonly attempt: number
          readonly at: number
          readonly level: string
          readonly message: string
        }
      >
    ) => sql`INSERT INTO ${logs} ${sql.insert(lines as unknown as ReadonlyArray<Record<string, unknown>>)}`,

    logs: (id: string) =>
      sql<{ task_id: string; attempt: number; at: number; level: string; message: string }>`
        SELECT task_id, attempt, at, level, message FROM ${logs} WHERE task_id = ${id} ORDER BY seq`,

    list: (params: {
      readonly filter: TaskStore.TaskStore.Filter | undefined
      readonly sortBy: TaskStore.TaskStore.SortKey
      readonly order: "asc" | "desc"
      readonly limit: number
      readonly after: readonly [number, string] | undefined
    }): Rows => {
      const clauses = filterClauses(params.filter)
      // Priority sorts by importance (`desc` is critical first): 3 - rank.
      const column = params.sortBy === "priority" ? sql.literal("(3 - priority)") : sql(sortColumn[params.sortBy])
      if (params.after !== undefined) {
        clauses.push(
          params.order === "asc"
            ? sql`(${column}, id) > (${params.after[0]}, ${params.after[1]})`
            : sql`(${column}, id) < (${params.after[0]}, ${params.after[1]})`
        )
      }
      const direction = sql.literal(params.order === "asc" ? "ASC" : "DESC")
      const where = clauses.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(clauses)}`
      return sql`SELECT * FROM ${tasks} ${where}
        ORDER BY ${column} ${direction}, id ${direction} LIMIT ${params.limit}`
    },

    /** Task counts per (name, queue, status): one scan for the three breakdowns of the statistics. */
    counts: sql<{ name: string; queue: string; status: string; n: number }>`
      SELECT name, queue, status, count(*) AS n FROM ${tasks} GROUP BY name, queue, status`,
    pausedQueues: sql<{ queue: string }>`SELECT queue FROM ${paused}`,
    queues: sql<{ queue: string }>`SELECT DISTINCT queue FROM ${tasks} UNION SELECT queue FROM ${paused}`,

    /** Finished tasks per bucket of `bucketMs`, since `since`. */
    finishedBuckets: (since: number, bucketMs: number) =>
      sql<{ bucket: number; succeeded: number; failed: number }>`
        SELECT CAST(finished_at / ${bucketMs} AS INTEGER) * ${bucketMs} AS bucket,
          SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
          SUM(CASE WHEN status IN ('failed', 'dead', 'timed-out') THEN 1 ELSE 0 END) AS failed
        FROM ${tasks} WHERE finished_at IS NOT NULL AND finished_at >= ${since}
        GROUP BY bucket`,

    durationSummary: (since: number) =>
      sql<{ n: number; mean: number | null }>`
        SELECT count(*) AS n, avg(finished_at - started_at) AS mean FROM ${tasks}
        WHERE finished_at IS NOT NULL AND finished_at >= ${since} AND started_at IS NOT NULL
        AND status IN ('succeeded', 'failed', 'dead', 'timed-out')`,

    durationAt: (since: number, offset: number) =>
      sql<{ d: number }>`
        SELECT finished_at - started_at AS d FROM ${tasks}
        WHERE finished_at IS NOT NULL AND finished_at >= ${since} AND started_at IS NOT NULL
        AND status IN ('succeeded', 'failed', 'dead', 'timed-out')
        ORDER BY d LIMIT 1 OFFSET ${offset}`,

    deleteLogsOfFinished: (before: number, statuses: ReadonlyArray<string>) =>
      sql`DELETE FROM ${logs} WHERE task_id IN (
        SELECT id FROM ${tasks} WHERE finished_at IS NOT NULL AND finished_at < ${before}
        AND ${sql.in("status", statuses)})`,

    deleteFinished: (before: number, statuses: ReadonlyArray<string>) =>
      sql`DELETE FROM ${tasks} WHERE finished_at IS NOT NULL AND finished_at < ${before}
        AND ${sql.in("status", statuses)}`,

    changes: sql<{ n: number }>`SELECT changes() AS n`,

    pause: (queue: string, now: number) =>
      sql`INSERT INTO ${paused} (queue, paused_at) VALUES (${queue}, ${now}) ON CONFLICT (queue) DO NOTHING`,

    resume: (queue: string) => sql`DELETE FROM ${paused} WHERE queue = ${queue}`,

    /** The earliest future runAt of a claimable task. */
    nextDue: (now: number) =>
      sql<{ due: number | null }>`SELECT min(run_at) AS due FROM ${tasks}
        WHERE status IN ('pending', 'scheduled') AND run_at > ${now}`,

    dataVersion: sql<{ data_version: number }>`PRAGMA data_version`
  }
}

/** @internal */
export type Queries = ReturnType<typeof makeQueries>
