/**
 * The SQL of the Postgres task store: one function per query, each returning raw rows (task rows
 * are decoded by `taskRow.ts`). Nothing here publishes events, sends notifications or checks the
 * state machine: `pgTaskStore.ts` does.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment, Statement } from "@effect/sql/Statement"
import type { TaskStatus, TaskStore } from "@spindle/tasks"
import { TaskRecord } from "@spindle/tasks"
import { Effect } from "effect"
import type { PgStatement } from "./pgLane.js"
import { statementName } from "./pgLane.js"
import type { NewTaskColumns } from "./taskRow.js"
import { claimReturnedColumns, newTaskSetColumns } from "./taskRow.js"

/** The tables of a store in `schema`. @internal */
export interface PgTables {
  readonly tasks: string
  readonly logs: string
  readonly paused: string
  /** The claim's function of rows to take (see `claim`). */
  readonly claimable: string
  /** The handed-off insert's function (see `insertClaimed`), quoted. */
  readonly insertClaimed: string
}

/** @internal */
export const tablesOf = (schema: string): PgTables => ({
  tasks: `${schema}.tasks`,
  logs: `${schema}.task_logs`,
  paused: `${schema}.paused_queues`,
  claimable: `${schema}.claimable_tasks`,
  insertClaimed: `"${schema}"."insert_claimed"`
})

type Rows = Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>

/** What a batch settle returns per row changed. @internal */
export interface SettledRow {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly attempt: number
}

const unfinished = "status IN ('pending', 'scheduled', 'running')"

/** Every priority rank, as the claim index orders them. */
const priorityRanks = Object.values(TaskRecord.priorityRank)

/**
 * The queries of a store on `client`; `hot` runs the statements of the claim loop and the
 * settler (see `PgLanes.run`).
 *
 * @internal
 */
export const makeQueries = (
  client: SqlClient.SqlClient,
  tables: PgTables,
  hot: <A extends object>(statement: Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError> = (statement) =>
    statement
) => {
  const sql = client.withoutTransforms()
  const tasks = sql(tables.tasks)
  const logs = sql(tables.logs)
  const paused = sql(tables.paused)
  const claimable = sql(tables.claimable)
  const claimColumns = sql.literal(claimReturnedColumns.join(", "))
  const insertClaimedText =
    `SELECT ${tables.insertClaimed}($1, $2, $3, $4, $5::smallint, $6::jsonb, $7::integer, $8::jsonb,
    $9::bigint, $10::bigint, $11::bigint, $12::bigint, $13::bigint, $14, $15, $16::jsonb, $17, $18::bigint, $19::bigint) AS status`
  const insertClaimedName = statementName(insertClaimedText)

  /**
   * The rows a batch settle changed (an `UPDATE … RETURNING t.id, t.name, t.queue, t.attempt`),
   * read as one JSON array of arrays: as rows, the driver decoded each of their values on its
   * own, a cost per task for the process that the database does not pay back.
   */
  const settled = (update: Fragment): Effect.Effect<ReadonlyArray<SettledRow>, SqlError> =>
    Effect.map(
      hot(sql<{ readonly rows: ReadonlyArray<readonly [string, string, string, number]> | null }>`WITH settled AS (
        ${update}
      ) SELECT json_agg(json_build_array(id, name, queue, attempt)) AS rows FROM settled`),
      (result) => (result[0]?.rows ?? []).map(([id, name, queue, attempt]) => ({ id, name, queue, attempt }))
    )

  const sortExpression = {
    createdAt: sql`created_at`,
    runAt: sql`run_at`,
    updatedAt: sql`updated_at`,
    // by importance: `asc` is `low` first (as the memory store)
    priority: sql`(3 - priority)`
  } as const

  /**
   * The INSERT of new tasks, one JSON array of text per column (Postgres parses one array of
   * scalars per column much faster than an array of objects with every key repeated, and
   * `json` faster than `jsonb`). The columns a new task always starts with (attempt 0, no
   * result, error, lease or progress) come from the table's defaults.
   */
  const insertRows = (rows: ReadonlyArray<NewTaskColumns>) => {
    const column = (get: (row: NewTaskColumns) => string | number | null) => JSON.stringify(rows.map(get))
    const id = column((row) => row.id)
    const name = column((row) => row.name)
    const queue = column((row) => row.queue)
    const status = column((row) => row.status)
    const priority = column((row) => row.priority)
    const payload = column((row) => row.payload)
    const maxAttempts = column((row) => row.max_attempts)
    const retry = column((row) => row.retry)
    const timeout = column((row) => row.timeout_ms)
    const softTimeout = column((row) => row.soft_timeout_ms)
    const runAt = column((row) => row.run_at)
    const createdAt = column((row) => row.created_at)
    const updatedAt = column((row) => row.updated_at)
    const key = column((row) => row.idempotency_key)
    const parent = column((row) => row.parent_id)
    const tags = column((row) => row.tags)
    return sql`INSERT INTO ${tasks} (${sql.literal(newTaskSetColumns.join(", "))})
      SELECT id, name, queue, status, priority::smallint, payload::jsonb, max_attempts::integer, retry::jsonb,
        timeout_ms::bigint, soft_timeout_ms::bigint, run_at::bigint, created_at::bigint, updated_at::bigint,
        idempotency_key, parent_id, tags::jsonb
      FROM ROWS FROM (
        json_array_elements_text(${id}::json), json_array_elements_text(${name}::json),
        json_array_elements_text(${queue}::json), json_array_elements_text(${status}::json),
        json_array_elements_text(${priority}::json), json_array_elements_text(${payload}::json),
        json_array_elements_text(${maxAttempts}::json), json_array_elements_text(${retry}::json),
        json_array_elements_text(${timeout}::json), json_array_elements_text(${softTimeout}::json),
        json_array_elements_text(${runAt}::json), json_array_elements_text(${createdAt}::json),
        json_array_elements_text(${updatedAt}::json), json_array_elements_text(${key}::json),
        json_array_elements_text(${parent}::json), json_array_elements_text(${tags}::json)
      ) AS r(${sql.literal(newTaskSetColumns.join(", "))})`
  }

  return {
    /**
     * Inserts new tasks; rows whose (name, idempotency key) clash with an unfinished task are
     * skipped. Returns the ids inserted.
     */
    insertKeyed: (
      rows: ReadonlyArray<NewTaskColumns>
    ): Effect.Effect<ReadonlyArray<{ readonly id: string }>, SqlError> =>
      sql<{ readonly id: string }>`${insertRows(rows)}
        ON CONFLICT (name, idempotency_key) WHERE idempotency_key IS NOT NULL AND ${sql.literal(unfinished)}
          DO NOTHING
        RETURNING id`,

    /**
     * Inserts new tasks none of which has an idempotency key: every row is inserted (or the
     * statement fails), so nothing needs to come back.
     */
    insert: (rows: ReadonlyArray<NewTaskColumns>) => insertRows(rows),

    /**
     * Inserts a lone task (no idempotency key) claimed by `workerId`: running, attempt 1,
     * leased; or as usual when its queue is paused. A call of the schema's `insert_claimed`
     * function (migration 0004), as a named statement for `PgLanes.execute`; its one row holds
     * the status inserted.
     */
    insertClaimed: (
      row: NewTaskColumns,
      claim: { readonly workerId: string; readonly now: number; readonly leaseMs: number }
    ): PgStatement => ({
      text: insertClaimedText,
      name: insertClaimedName,
      params: [
        row.id,
        row.name,
        row.queue,
        row.status,
        row.priority,
        row.payload,
        row.max_attempts,
        row.retry,
        row.timeout_ms,
        row.soft_timeout_ms,
        row.run_at,
        row.created_at,
        row.updated_at,
        row.idempotency_key,
        row.parent_id,
        row.tags,
        claim.workerId,
        claim.now,
        claim.now + claim.leaseMs
      ]
    }),

    /**
     * The tasks holding one of these (name, key) pairs, unfinished ones last, then oldest first
     * (so that, read in order, the last row of a pair is the one to report).
     */
    byIdempotencyKeys: (names: ReadonlyArray<string>, keys: ReadonlyArray<string>): Rows =>
      sql`SELECT t.* FROM ${tasks} t
        JOIN unnest(${names}::text[], ${keys}::text[]) AS k(name, key)
          ON t.name = k.name AND t.idempotency_key = k.key
        ORDER BY (t.${sql.literal(unfinished)}) ASC, t.created_at ASC, t.id ASC`,

    // The rows are chosen by the schema's `claimable_tasks` function (migration 0002): a walk
    // of the claim index in claim order, skipping paused queues and locked rows, that stops after
    // `limit` rows, whatever the table's statistics say. They come as an array of their physical
    // addresses (an InitPlan), so the UPDATE reads them by a TID scan: joined to a CTE instead,
    // the planner hashed the whole table for 512 rows (EXPLAIN ANALYZE with 22,000 rows: 12 ms
    // instead of 6 ms), and by primary key it spent a third of the statement finding them again
    // (2.2 of 6.3 ms). A locked row keeps its address until the statement updates it; the status
    // is checked again all the same. The rows come back in no order, without the columns the
    // claim set (see `claimedRow`), as one JSON array of arrays (the values of
    // `claimReturnedColumns`) the driver parses at once: as rows, the driver decoded every value
    // of every row (19 a task) on its own, the costliest part of a claim for the process; as
    // objects (`json_agg` of the rows), the database wrote, and the process parsed, every column
    // name of every row (2.5 times the text, and twice the parsing: 1.4 µs a row instead of 0.65).
    claim: (params: {
      readonly workerId: string
      readonly now: number
      readonly leaseMs: number
      readonly limit: number
      readonly queues: ReadonlyArray<string> | undefined
      readonly names: ReadonlyArray<string> | undefined
    }): Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError> =>
      Effect.map(
        hot(sql<{ readonly rows: ReadonlyArray<ReadonlyArray<unknown>> | null }>`WITH claimed AS (
          UPDATE ${tasks} SET
            status = 'running', attempt = attempt + 1, started_at = ${params.now}, finished_at = NULL,
            lease_owner = ${params.workerId}, lease_expires_at = ${params.now + params.leaseMs},
            cancel_requested = FALSE, updated_at = ${params.now}
          WHERE ctid = ANY(ARRAY(SELECT ${claimable}(${params.now}::bigint, ${params.limit}::integer,
            ${params.queues ?? null}::text[], ${params.names ?? null}::text[])))
            AND status IN ('pending', 'scheduled')
          RETURNING ${claimColumns}
        ) SELECT json_agg(json_build_array(${claimColumns})) AS rows FROM claimed`),
        (result) => result[0]?.rows ?? []
      ),

    heartbeat: (params: {
      readonly workerId: string
      readonly ids: ReadonlyArray<string>
      readonly leaseExpiresAt: number
    }): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly cancel_requested: boolean }>, SqlError> =>
      sql<{ readonly id: string; readonly cancel_requested: boolean }>`UPDATE ${tasks}
        SET lease_expires_at = ${params.leaseExpiresAt}
        WHERE id = ANY(${params.ids}::text[]) AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING id, cancel_requested`,

    /** Ends a running attempt held by `workerId`: status `to`, plus `set`. */
    leaveRunning: (params: {
      readonly id: string
      readonly workerId: string
      readonly to: TaskStatus.TaskStatus
      readonly finished: boolean
      readonly now: number
      readonly set: Fragment
    }): Rows =>
      sql`UPDATE ${tasks} SET
          status = ${params.to}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE,
          updated_at = ${params.now}, finished_at = ${params.finished ? params.now : null}, ${params.set}
        WHERE id = ${params.id} AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING *`,

    /** The `set` of a success: the result as JSON text. */
    setResult: (result: string): Fragment => sql`result = ${result}::jsonb`,

    /** The `set` of a failure: the error as JSON text, and the next run of a retry. */
    setError: (error: string, runAt: number | undefined): Fragment =>
      runAt === undefined ? sql`error = ${error}::jsonb` : sql`error = ${error}::jsonb, run_at = ${runAt}`,

    /**
     * Completes many running tasks held by their items' workers, in one statement. `items` is a
     * JSON array of `{ i: id, w: workerId, r: result as JSON text }`.
     */
    completeMany: (params: { readonly items: string; readonly now: number }) =>
      settled(sql`UPDATE ${tasks} t SET
          status = 'succeeded', result = x.r::jsonb, finished_at = ${params.now}, updated_at = ${params.now},
          lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
        FROM jsonb_to_recordset(${params.items}::jsonb) AS x(i TEXT, w TEXT, r TEXT)
        WHERE t.id = x.i AND t.status = 'running' AND t.lease_owner = x.w
        RETURNING t.id, t.name, t.queue, t.attempt`),

    /**
     * `completeMany` for items of one worker and one result (a batch of tasks returning nothing,
     * say): `ids` is a JSON array of ids, less to send and to parse than an object per item.
     * The ids are read once, as an array (an InitPlan): joined to the rows instead, the planner
     * took `lease_owner = <worker>` for a rare value (the statistics of a freshly filled table
     * hold no running task) and chose a nested loop that parsed the JSON again for every row
     * (53 µs a task instead of 8, in the drain benchmark).
     */
    completeSame: (params: {
      readonly ids: string
      readonly workerId: string
      readonly result: string
      readonly now: number
    }) =>
      settled(sql`UPDATE ${tasks} t SET
          status = 'succeeded', result = ${params.result}::jsonb, finished_at = ${params.now},
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
        WHERE t.id = ANY(ARRAY(SELECT json_array_elements_text(${params.ids}::json)))
          AND t.status = 'running' AND t.lease_owner = ${params.workerId}
        RETURNING t.id, t.name, t.queue, t.attempt`),

    /**
     * Ends many running attempts held by their items' workers, in one statement. `items` is a
     * JSON array of `{ i: id, w: workerId, s: status, e: error as JSON text, t: runAt | null }`;
     * `scheduled` (a retry) keeps `finished_at` null.
     */
    failMany: (params: { readonly items: string; readonly now: number }) =>
      settled(sql`UPDATE ${tasks} t SET
          status = x.s, error = x.e::jsonb, run_at = COALESCE(x.t, t.run_at),
          finished_at = CASE WHEN x.s = 'scheduled' THEN NULL ELSE ${params.now}::bigint END,
          updated_at = ${params.now}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
        FROM jsonb_to_recordset(${params.items}::jsonb) AS x(i TEXT, w TEXT, s TEXT, e TEXT, t BIGINT)
        WHERE t.id = x.i AND t.status = 'running' AND t.lease_owner = x.w
        RETURNING t.id, t.name, t.queue, t.attempt`),

    /** Gives running tasks back (a task whose cancellation was requested is cancelled instead). */
    release: (params: { readonly workerId: string; readonly ids: ReadonlyArray<string>; readonly now: number }): Rows =>
      sql`UPDATE ${tasks} SET
          status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
          attempt = CASE WHEN cancel_requested THEN attempt ELSE GREATEST(0, attempt - 1) END,
          finished_at = CASE WHEN cancel_requested THEN ${params.now}::bigint ELSE NULL END,
          lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, updated_at = ${params.now}
        WHERE id = ANY(${params.ids}::text[]) AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING *`,

    rescue: (params: { readonly now: number; readonly limit: number | null }): Rows =>
      sql`WITH expired AS (
          SELECT id FROM ${tasks}
          WHERE status = 'running' AND lease_expires_at < ${params.now}
          ORDER BY lease_expires_at, id
          LIMIT ${params.limit}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE ${tasks} t SET
          status = CASE WHEN t.cancel_requested THEN 'cancelled'
            WHEN t.attempt >= t.max_attempts THEN 'dead' ELSE 'pending' END,
          finished_at = CASE WHEN t.cancel_requested OR t.attempt >= t.max_attempts
            THEN ${params.now}::bigint ELSE NULL END,
          error = jsonb_build_object(
            'tag', 'LeaseExpired',
            'message', 'the lease of worker ' || t.lease_owner || ' expired',
            'cause', ''),
          lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, updated_at = ${params.now}
        FROM expired WHERE t.id = expired.id
        RETURNING t.*`,

    get: (id: string): Rows => sql`SELECT * FROM ${tasks} WHERE id = ${id}`,

    /** Cancels a pending or scheduled task, or requests the cancellation of a running one. */
    cancel: (params: { readonly id: string; readonly now: number }): Rows =>
      sql`UPDATE ${tasks} SET
          status = CASE WHEN status = 'running' THEN 'running' ELSE 'cancelled' END,
          cancel_requested = (status = 'running'),
          finished_at = CASE WHEN status = 'running' THEN finished_at ELSE ${params.now}::bigint END,
          updated_at = ${params.now}
        WHERE id = ${params.id}
          AND (status IN ('pending', 'scheduled') OR (status = 'running' AND NOT cancel_requested))
        RETURNING *`,

    retry: (params: {
      readonly id: string
      readonly status: "pending" | "scheduled"
      readonly runAt: number
      readonly extraAttempts: number
      readonly from: ReadonlyArray<TaskStatus.TaskStatus>
      readonly now: number
    }): Rows =>
      sql`UPDATE ${tasks} SET
          status = ${params.status}, run_at = ${params.runAt},
          max_attempts = GREATEST(max_attempts, attempt + ${params.extraAttempts}),
          result = NULL, finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
          cancel_requested = FALSE, updated_at = ${params.now}
        WHERE id = ${params.id} AND status = ANY(${params.from}::text[])
        RETURNING *`,

    progress: (params: {
      readonly id: string
      readonly workerId: string
      readonly progress: number
      readonly message: string | undefined
      readonly now: number
    }): Rows =>
      sql`UPDATE ${tasks}
        SET progress = ${params.progress}, progress_message = ${params.message ?? null}, updated_at = ${params.now}
        WHERE id = ${params.id} AND status = 'running' AND lease_owner = ${params.workerId}
        RETURNING *`,

    /** Appends log lines: a JSON array of `{ taskId, attempt, at, level, message }`. */
    logAppend: (lines: string) =>
      sql`INSERT INTO ${logs} (task_id, attempt, at, level, message)
        SELECT "taskId", attempt, at, level, message
        FROM jsonb_to_recordset(${lines}::jsonb) AS r("taskId" TEXT, attempt INTEGER, at BIGINT, level TEXT, message TEXT)`,

    logs: (id: string) =>
      sql<{ task_id: string; attempt: number; at: string; level: string; message: string }>`
        SELECT task_id, attempt, at, level, message FROM ${logs} WHERE task_id = ${id} ORDER BY seq`,

    list: (params: {
      readonly filter: TaskStore.TaskStore.Filter | undefined
      readonly sortBy: TaskStore.TaskStore.SortKey
      readonly order: "asc" | "desc"
      readonly limit: number
      readonly after: readonly [number, string] | undefined
    }): Rows => {
      const filter = params.filter
      const clauses: Array<Fragment> = []
      if (filter?.status !== undefined) clauses.push(sql`status = ANY(${filter.status}::text[])`)
      if (filter?.name !== undefined) clauses.push(sql`name = ANY(${filter.name}::text[])`)
      if (filter?.queue !== undefined) clauses.push(sql`queue = ANY(${filter.queue}::text[])`)
      if (filter?.tag !== undefined) {
        const tags = typeof filter.tag === "string" ? [filter.tag] : filter.tag
        clauses.push(sql`tags @> ${JSON.stringify(tags)}::jsonb`)
      }
      if (filter?.parentId !== undefined) clauses.push(sql`parent_id = ${filter.parentId}`)
      const expression = sortExpression[params.sortBy]
      const asc = params.order === "asc"
      if (params.after !== undefined) {
        clauses.push(
          asc
            ? sql`(${expression}, id) > (${params.after[0]}::bigint, ${params.after[1]}::text)`
            : sql`(${expression}, id) < (${params.after[0]}::bigint, ${params.after[1]}::text)`
        )
      }
      const direction = asc ? sql`ASC` : sql`DESC`
      return sql`SELECT * FROM ${tasks} WHERE ${sql.and(clauses)}
        ORDER BY ${expression} ${direction}, id ${direction}
        LIMIT ${params.limit}`
    },

    counts: sql<{ name: string; queue: string; status: TaskStatus.TaskStatus; count: string }>`
      SELECT name, queue, status, count(*) AS count FROM ${tasks} GROUP BY name, queue, status`,

    pausedQueues: sql<{ queue: string }>`SELECT queue FROM ${paused}`,

    /**
     * Finished tasks per bucket of `bucketMs` since `since` (bucket 0 starts at `since`; later
     * ones, a clock ahead, count in the last of `buckets`): succeeded, and failed (`failed`,
     * `dead`, `timed-out`).
     */
    finishedBuckets: (params: { readonly since: number; readonly bucketMs: number; readonly buckets: number }) =>
      sql<{ bucket: string; succeeded: string; failed: string }>`
        SELECT LEAST(${
        params.buckets - 1
      }::bigint, (finished_at - ${params.since}::bigint) / ${params.bucketMs}::bigint)
            AS bucket,
          count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
          count(*) FILTER (WHERE status <> 'succeeded') AS failed
        FROM ${tasks}
        WHERE finished_at >= ${params.since} AND status IN ('succeeded', 'failed', 'dead', 'timed-out')
        GROUP BY 1`,

    /**
     * The durations (start to finish) of the tasks finished since `since`: how many, their sum,
     * and the 95th percentile (the value at rank ⌈0.95 n⌉).
     */
    durations: (since: number) =>
      sql<{ n: string; total: string | null; p95: string | null }>`
        SELECT count(*) AS n, sum(finished_at - started_at) AS total,
          percentile_disc(0.95) WITHIN GROUP (ORDER BY finished_at - started_at) AS p95
        FROM ${tasks}
        WHERE finished_at >= ${since} AND started_at IS NOT NULL
          AND status IN ('succeeded', 'failed', 'dead', 'timed-out')`,

    /** Deletes the tasks (and their logs) finished before `before` in `statuses`; returns the count. */
    deleteFinished: (before: number, statuses: ReadonlyArray<TaskStatus.TaskStatus>) =>
      sql<{ count: string }>`WITH deleted AS (
          DELETE FROM ${tasks}
          WHERE finished_at < ${before} AND status = ANY(${statuses}::text[])
          RETURNING id
        ), deleted_logs AS (
          DELETE FROM ${logs} WHERE task_id IN (SELECT id FROM deleted)
        )
        SELECT count(*) AS count FROM deleted`,

    pause: (queue: string, now: number) =>
      sql`INSERT INTO ${paused} (queue, paused_at) VALUES (${queue}, ${now}) ON CONFLICT (queue) DO NOTHING`,

    resume: (queue: string) => sql`DELETE FROM ${paused} WHERE queue = ${queue} RETURNING queue`,

    queues: sql<{ queue: string; paused: boolean }>`
      SELECT q.queue, EXISTS (SELECT 1 FROM ${paused} p WHERE p.queue = q.queue) AS paused
      FROM (SELECT DISTINCT queue FROM ${tasks} UNION SELECT queue FROM ${paused}) q
      ORDER BY q.queue COLLATE "C"`,

    /**
     * The earliest future run-at of a claimable task: the first of each priority, each one
     * step down the claim index (a `min(run_at)` over the index ordered by priority first read
     * every claimable entry: 1 ms with 20,000 pending tasks, and growing with the backlog).
     */
    nextDue: (now: number) =>
      sql<{ next: string | null }>`
        SELECT min(n.run_at) AS next FROM unnest(${priorityRanks}::smallint[]) AS p(rank), LATERAL (
          SELECT run_at FROM ${tasks}
          WHERE status IN ('pending', 'scheduled') AND priority = p.rank AND run_at > ${now}
          ORDER BY run_at LIMIT 1
        ) n`,

    /**
     * Sends notification payloads on `channel`, given as one JSON array (node-postgres escapes a
     * text[] literal character by character).
     */
    notify: (channel: string, payloads: string) =>
      sql`SELECT pg_notify(${channel}, p) FROM json_array_elements_text(${payloads}::json) AS p`,

    /** One notification (PgClient's `notify` binds the payload as a parameter, which NOTIFY does not accept). */
    notifyOne: (channel: string, payload: string) => sql`SELECT pg_notify(${channel}, ${payload})`
  }
}

/** @internal */
export type Queries = ReturnType<typeof makeQueries>
