/**
 * The SQLite task store: the `TaskStore` service over an `SqlClient` on a SQLite file.
 *
 * - Every write of several statements runs in a `BEGIN IMMEDIATE` transaction (SQLite has one
 *   writer: taking the write lock up front means two processes sharing the file wait on the busy
 *   timeout instead of failing on a read-to-write upgrade); a write of one statement runs on its
 *   own (an UPDATE takes the write lock when it starts). Writes run under an in-process lock and
 *   publish their events once committed, in commit order.
 * - Status changes are conditional UPDATEs (`… WHERE status = … AND lease_owner = …
 *   RETURNING *`): no row back means the task moved on (LeaseLost, IllegalTransition). The
 *   worker's batches (`tasksComplete`, `tasksFail`) are one `UPDATE … FROM json_each(?)` each,
 *   returning only the columns of the events (no row decoding).
 * - Events are per process (a PubSub with a per-process sequence); `awaitWork` wakes on this
 *   process's changes and on `PRAGMA data_version`, which moves when another process commits.
 *
 * @internal
 */
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type { TaskEvent, TaskRecord } from "@spindle/tasks"
import { TaskStatus, TaskStore } from "@spindle/tasks"
import type { ParseResult } from "effect"
import type { Fiber } from "effect"
import { Cause, Clock, Duration, Effect, Either, FiberId, Option, Scope } from "effect"
import type { SqliteTables } from "./sqliteMigrations.js"
import { migrate, prefixPattern, tablesOf } from "./sqliteMigrations.js"
import type { SettledRow } from "./sqliteSql.js"
import { idChunk, insertChunk, makeQueries } from "./sqliteSql.js"
import type { NewTaskColumns } from "./taskRow.js"
import {
  completionResults,
  decodeCursor,
  encodeCursor,
  encodeJson,
  failureItems,
  finishedStatuses,
  makeTaskRowCodec,
  newTaskColumns,
  recordFromColumns,
  settleBatch
} from "./taskRow.js"

type Service = TaskStore.TaskStore["Type"]

const MINUTE = 60_000
const HOUR = 3_600_000

const codec = makeTaskRowCodec("text")

const isSqlError = (u: unknown): u is SqlError => u instanceof SqlError

/**
 * Fails without capturing the current span into the error (`Effect.fail` inside the
 * transaction's span would hand callers a Proxy of the error instead of the error itself).
 */
const failPlain = <E>(error: E): Effect.Effect<never, E> => Effect.failCause(Cause.fail(error))

/** @internal */
export interface MakeOptions {
  readonly tablePrefix?: string | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
}

/** @internal */
export const defaultPrefix = "spindle_"

/** @internal */
export const validatePrefix = (prefix: string): Effect.Effect<SqliteTables> =>
  prefixPattern.test(prefix)
    ? Effect.succeed(tablesOf(prefix))
    : Effect.dieMessage(`SqliteTaskStore: table prefix ${JSON.stringify(prefix)} must match ${prefixPattern}`)

/**
 * A `BEGIN IMMEDIATE` transaction on the client's connection (nested calls use savepoints, and
 * statements of `@effect/sql` inside it, such as the Migrator's, join it).
 *
 * @internal
 */
export const immediateTransaction = (
  sql: SqlClient.SqlClient
): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R> =>
  SqlClient.makeWithTransaction({
    transactionTag: SqlClient.TransactionConnection,
    spanAttributes: [["db.system.name", "sqlite"]],
    acquireConnection: Effect.flatMap(
      Scope.make(),
      (scope) => Effect.map(Scope.extend(sql.reserve, scope), (conn) => [scope, conn] as const)
    ),
    begin: (conn) => conn.executeUnprepared("BEGIN IMMEDIATE", [], undefined),
    savepoint: (conn, id) => conn.executeUnprepared(`SAVEPOINT spindle_${id}`, [], undefined),
    commit: (conn) => conn.executeUnprepared("COMMIT", [], undefined),
    // When BEGIN itself failed (busy timeout) there is no transaction to roll back.
    rollback: (conn) => Effect.ignore(conn.executeUnprepared("ROLLBACK", [], undefined)),
    rollbackSavepoint: (conn, id) => conn.executeUnprepared(`ROLLBACK TO SAVEPOINT spindle_${id}`, [], undefined)
  })

const messageOf = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null) {
    const inner = (cause as { readonly cause?: unknown }).cause
    if (inner instanceof Error) return inner.message
    if (cause instanceof Error) return cause.message
  }
  return String(cause)
}

const storeError = (operation: string) => (cause: SqlError | ParseResult.ParseError | unknown) =>
  new TaskStore.TaskStoreError({ operation, message: messageOf(cause), cause })

/**
 * Runs the migrations, then builds the store.
 *
 * @internal
 */
export const make = (
  options: MakeOptions = {}
): Effect.Effect<Service, SqlError | Migrator.MigrationError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* SqlClient.SqlClient
    const tables = yield* validatePrefix(options.tablePrefix ?? defaultPrefix)
    const transaction = immediateTransaction(client)
    yield* migrate(tables, transaction)
    const q = makeQueries(client, tables)
    const pollMs = Duration.toMillis(options.pollInterval ?? Duration.millis(100))

    const hub = yield* TaskStore.makeEventHub
    const lock = yield* Effect.makeSemaphore(1)
    let sequence = 0
    /**
     * The callbacks of the `awaitWork` calls waiting, and a count of the signals so far (a wait
     * that read it before its queries sees a signal sent meanwhile).
     */
    const waiters = new Set<() => void>()
    let signals = 0
    const signal = () => {
      signals++
      if (waiters.size === 0) return
      const current = Array.from(waiters)
      waiters.clear()
      for (const wake of current) wake()
    }

    const event = (
      type: TaskEvent.TaskEventType,
      task: TaskRecord.TaskRecord,
      extra?: Pick<TaskEvent.TaskEvent, "progress" | "message" | "error" | "result">
    ): TaskEvent.TaskEvent => ({
      sequence: ++sequence,
      type,
      taskId: task.id,
      name: task.name,
      queue: task.queue,
      status: task.status,
      attempt: task.attempt,
      at: task.updatedAt,
      ...extra
    })

    /**
     * Runs `body` with the current time in a write transaction under the in-process lock, then
     * publishes the events it collected (and wakes `awaitWork` when asked to).
     */
    const write = <A, E, R>(
      operation: string,
      body: (now: number, effects: { events: Array<TaskEvent.TaskEvent>; wake: boolean }) => Effect.Effect<A, E, R>,
      /**
       * False when `body` runs one statement: a single write statement is atomic by itself and
       * takes the write lock when it starts (waiting on the busy timeout), so it needs no
       * explicit transaction; that saves two round trips on the hot path (claim, complete).
       */
      inTransaction = true
    ): Effect.Effect<A, Exclude<E, SqlError> | TaskStore.TaskStoreError, R> =>
      lock.withPermits(1)(
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const effects = { events: [] as Array<TaskEvent.TaskEvent>, wake: false }
          const run = body(now, effects)
          return (inTransaction ? transaction(run) : run).pipe(
            Effect.catchIf(isSqlError, (e) => failPlain(storeError(operation)(e))),
            Effect.tap(() => {
              if (effects.wake) signal()
              return effects.events.length === 0 ? Effect.void : hub.publish(effects.events)
            })
          )
        })
      )

    const decodeAll =
      (operation: string) =>
      (rows: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<TaskRecord.TaskRecord>, TaskStore.TaskStoreError> => {
        const decoded = codec.decodeAll(rows)
        return Either.isRight(decoded) ? Effect.succeed(decoded.right) : failPlain(storeError(operation)(decoded.left))
      }

    const decodeOne = (operation: string) =>
    (
      rows: ReadonlyArray<unknown>
    ): Effect.Effect<Option.Option<TaskRecord.TaskRecord>, TaskStore.TaskStoreError> => {
      if (rows.length === 0) return Effect.succeed(Option.none())
      const decoded = codec.decode(rows[0])
      return Either.isRight(decoded)
        ? Effect.succeed(Option.some(decoded.right))
        : failPlain(storeError(operation)(decoded.left))
    }

    const read = <A, E>(
      operation: string,
      effect: Effect.Effect<A, E>
    ): Effect.Effect<A, Exclude<E, SqlError> | TaskStore.TaskStoreError> =>
      Effect.catchIf(
        effect,
        (e): e is Extract<E, SqlError> => isSqlError(e),
        (e) => failPlain(storeError(operation)(e))
      ) as Effect.Effect<A, Exclude<E, SqlError> | TaskStore.TaskStoreError>

    const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
      const out: Array<ReadonlyArray<A>> = []
      for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
      return out
    }

    /** The handoffs of the `awaitWork` calls waiting (see `TaskStore.awaitWork`). */
    const handoffs = TaskStore.makeHandoffs()

    /**
     * A lone task taken by a waiting worker: inserted claimed by it in one statement (unless its
     * queue is paused), then handed to it. Wakes nobody else when claimed.
     */
    const insertHandedOff = (
      handoff: TaskStore.TaskStore.Handoff,
      input: TaskRecord.NewTask
    ): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.Inserted>, TaskStore.TaskStoreError> => {
      let handed: TaskRecord.TaskRecord | undefined
      return write("tasksInsert", (now, effects) =>
        Effect.gen(function*() {
          let row: NewTaskColumns
          try {
            row = newTaskColumns(input, now)
          } catch (error) {
            return yield* failPlain(storeError("tasksInsert")(error))
          }
          const record = recordFromColumns(row)
          if (Either.isLeft(record)) return yield* failPlain(storeError("tasksInsert")(record.left))
          const [inserted] = yield* q.insertClaimed(row, { workerId: handoff.workerId, now, leaseMs: handoff.leaseMs })
          effects.events.push(event("submitted", record.right))
          if (inserted?.status !== "running") {
            effects.wake = true
            return [{ task: record.right, created: true }]
          }
          handed = TaskStore.claimedRecord(record.right, handoff, now)
          effects.events.push(event("started", handed))
          return [{ task: handed, created: true }]
        }), false).pipe(Effect.ensuring(Effect.sync(() => handoff.receive(handed))))
    }

    const tasksInsert: Service["tasksInsert"] = ({ tasks }) =>
      handoffs.waiting() ?
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const handoff = handoffs.take(tasks, now)
          return handoff === undefined ? insertMany(tasks) : insertHandedOff(handoff, tasks[0]!)
        }) :
        insertMany(tasks)

    const insertMany = (tasks: ReadonlyArray<TaskRecord.NewTask>) =>
      write("tasksInsert", (now, effects) =>
        Effect.gen(function*() {
          if (tasks.length === 0) return []
          // plain code per row: an Effect step per row costs more than building the row
          let rows: Array<NewTaskColumns>
          try {
            rows = tasks.map((task) => newTaskColumns(task, now))
          } catch (error) {
            return yield* failPlain(storeError("tasksInsert")(error))
          }
          // The inserted rows are known: only their ids come back (no decoding on the bulk path),
          // and without idempotency keys not even those (every row is inserted, or the insert
          // fails).
          const keyed = rows.some((row) => row.idempotency_key !== null)
          const insertedIds = new Set<string>()
          for (const chunk of chunks(rows, insertChunk)) {
            const returned = yield* q.insert(chunk, keyed)
            if (keyed) { for (const { id } of returned) insertedIds.add(id) }
          }
          const inserted = new Map<string, TaskRecord.TaskRecord>()
          for (const row of rows) {
            if (!keyed || insertedIds.has(row.id)) {
              const record = recordFromColumns(row)
              if (Either.isLeft(record)) return yield* failPlain(storeError("tasksInsert")(record.left))
              inserted.set(row.id, record.right)
            }
          }
          // Rows skipped by the idempotency index: read back the unfinished task holding the key.
          const skipped = rows.filter((row) => !inserted.has(row.id))
          const existing = new Map<string, TaskRecord.TaskRecord>()
          if (skipped.length > 0) {
            const pairs = skipped.flatMap((row) =>
              row.idempotency_key === null ? [] : [[row.name, row.idempotency_key] as const]
            )
            for (const chunk of chunks(pairs, 1000)) {
              const records = yield* Effect.flatMap(q.byIdempotencyKeys(chunk), decodeAll("tasksInsert"))
              for (const record of records) existing.set(`${record.name}\u0000${record.idempotencyKey}`, record)
            }
          }
          const results: Array<TaskStore.TaskStore.Inserted> = []
          const seen = new Set<string>()
          for (const row of rows) {
            const created = inserted.get(row.id)
            if (created !== undefined && !seen.has(row.id)) {
              seen.add(row.id)
              results.push({ task: created, created: true })
              effects.events.push(event("submitted", created))
              continue
            }
            const other = row.idempotency_key === null
              ? undefined
              : existing.get(`${row.name}\u0000${row.idempotency_key}`)
            if (other === undefined) {
              return yield* failPlain(
                new TaskStore.TaskStoreError({
                  operation: "tasksInsert",
                  message: `task ${row.id} was not inserted (a task with this id already exists)`
                })
              )
            }
            results.push({ task: other, created: false })
          }
          effects.wake = inserted.size > 0
          return results
        }), !singleStatementInsert(tasks))

    /**
     * An insert that is one INSERT statement (one chunk, no idempotency key that could make it
     * read the existing task back) is atomic on its own: no transaction (two round trips fewer).
     */
    const singleStatementInsert = (tasks: ReadonlyArray<TaskRecord.NewTask>): boolean => {
      if (tasks.length > insertChunk) return false
      for (const task of tasks) if (task.idempotencyKey !== undefined && task.idempotencyKey !== null) return false
      return true
    }

    const tasksClaim: Service["tasksClaim"] = ({ leaseMs, limit, names, queues, workerId }) =>
      limit <= 0 || queues?.length === 0 || names?.length === 0
        ? Effect.succeed([])
        : write("tasksClaim", (now, effects) =>
          Effect.flatMap(
            q.claim({ workerId, now, leaseMs, limit: Math.floor(limit), queues, names }),
            decodeAll("tasksClaim")
          ).pipe(Effect.map((records) => {
            const sorted = [...records].sort(TaskStore.compareClaimOrder)
            // one statement, committed: built only when someone listens (see TaskStore.makeEventHub)
            if (hub.wants("started")) { for (const record of sorted) effects.events.push(event("started", record)) }
            return sorted
          })), false)

    const tasksHeartbeat: Service["tasksHeartbeat"] = ({ ids, leaseMs, workerId }) =>
      ids.length === 0
        ? Effect.succeed({ renewed: [], lost: [], cancelRequested: [] })
        : write("tasksHeartbeat", (now) =>
          Effect.gen(function*() {
            const held = new Map<string, boolean>()
            for (const chunk of chunks(ids, idChunk)) {
              const rows = yield* q.heartbeat({ workerId, ids: chunk, leaseExpiresAt: now + leaseMs })
              for (const row of rows) held.set(row.id, Number(row.cancel_requested) !== 0)
            }
            const renewed: Array<string> = []
            const lost: Array<string> = []
            const cancelRequested: Array<string> = []
            for (const id of ids) {
              const cancel = held.get(id)
              if (cancel === undefined) lost.push(id)
              else {
                renewed.push(id)
                if (cancel) cancelRequested.push(id)
              }
            }
            return { renewed, lost, cancelRequested }
          }), ids.length <= idChunk)

    const leaseLost = (id: string, workerId: string) => new TaskStore.LeaseLost({ taskId: id, workerId })

    const taskComplete: Service["taskComplete"] = ({ id, result, workerId }) =>
      write("taskComplete", (now, effects) =>
        q.complete({ id, workerId, result: encodeJson(result), now }).pipe(
          Effect.flatMap(decodeOne("taskComplete")),
          Effect.flatMap(Option.match({
            onNone: () => failPlain(leaseLost(id, workerId)),
            onSome: (record) => {
              effects.events.push(event("succeeded", record, { result: record.result }))
              return Effect.succeed(record)
            }
          }))
        ), false)

    const taskFail: Service["taskFail"] = ({ error, id, outcome, workerId }) =>
      write("taskFail", (now, effects) =>
        q.fail({
          id,
          workerId,
          status: TaskStore.failStatus(outcome),
          error: encodeJson(error),
          runAt: outcome._tag === "retry" ? outcome.runAt.getTime() : undefined,
          now
        }).pipe(
          Effect.flatMap(decodeOne("taskFail")),
          Effect.flatMap(Option.match({
            onNone: () => failPlain(leaseLost(id, workerId)),
            onSome: (record) => {
              effects.events.push(event(TaskStore.failEventType(outcome), record, { error }))
              if (outcome._tag === "retry") effects.wake = true
              return Effect.succeed(record)
            }
          }))
        ), false)

    /**
     * Settles a batch in one statement (see `settleBatch`): `run` gets the JSON of the first item
     * of each id and returns the rows it changed; `onSettled` records the event of each.
     */
    const settleMany = <I extends { readonly id: string; readonly workerId: string }>(
      operation: string,
      items: ReadonlyArray<I>,
      encode: (item: I) => unknown,
      run: (json: string, now: number) => Effect.Effect<ReadonlyArray<SettledRow>, SqlError>,
      onSettled: (
        item: I,
        row: SettledRow,
        now: number,
        effects: { events: Array<TaskEvent.TaskEvent>; wake: boolean }
      ) => void
    ): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.BatchOutcome>, TaskStore.TaskStoreError> => {
      if (items.length === 0) return Effect.succeed([])
      const batch = settleBatch(items, encode)
      return write(operation, (now, effects) =>
        Effect.map(
          run(batch.json, now),
          (rows) => batch.outcomes(rows, (item, row) => onSettled(item, row, now, effects))
        ), false)
    }

    const settledEvent = (
      type: TaskEvent.TaskEventType,
      row: SettledRow,
      status: TaskStatus.TaskStatus,
      now: number,
      extra: Pick<TaskEvent.TaskEvent, "error" | "result">
    ): TaskEvent.TaskEvent => ({
      sequence: ++sequence,
      type,
      taskId: row.id,
      name: row.name,
      queue: row.queue,
      status,
      attempt: Number(row.attempt),
      at: new Date(now),
      ...extra
    })

    const tasksComplete: Service["tasksComplete"] = ({ items }) => {
      const { results, same } = completionResults(items)
      return settleMany(
        "tasksComplete",
        items,
        same ? (item) => item.id : (item) => ({ i: item.id, w: item.workerId, r: results.get(item.id)! }),
        same
          ? (json, now) =>
            q.completeSame({ ids: json, workerId: items[0]!.workerId, result: results.get(items[0]!.id)!, now })
          : (json, now) => q.completeMany({ items: json, now }),
        (item, row, now, effects) => {
          if (!hub.wants("succeeded")) return
          const result = JSON.parse(results.get(item.id)!) as unknown
          effects.events.push(settledEvent("succeeded", row, "succeeded", now, { result }))
        }
      )
    }

    const tasksFail: Service["tasksFail"] = ({ items }) => {
      const failures = failureItems()
      return settleMany(
        "tasksFail",
        items,
        failures.encode,
        (json, now) => q.failMany({ items: json, now }),
        ({ id, outcome }, row, now, effects) => {
          effects.events.push(
            settledEvent(TaskStore.failEventType(outcome), row, TaskStore.failStatus(outcome), now, {
              error: failures.error(id)
            })
          )
          if (outcome._tag === "retry") effects.wake = true
        }
      )
    }

    const tasksRelease: Service["tasksRelease"] = ({ ids, workerId }) =>
      ids.length === 0 ? Effect.succeed(0) : write("tasksRelease", (now, effects) =>
        Effect.gen(function*() {
          let released = 0
          for (const chunk of chunks(ids, idChunk)) {
            const records = yield* Effect.flatMap(q.release({ workerId, ids: chunk, now }), decodeAll("tasksRelease"))
            for (const record of records) {
              effects.events.push(event(record.status === "cancelled" ? "cancelled" : "released", record))
              released++
            }
          }
          effects.wake = released > 0
          return released
        }), ids.length <= idChunk)

    const tasksRescue: Service["tasksRescue"] = (params) =>
      write("tasksRescue", (now, effects) =>
        Effect.flatMap(
          q.rescue({ now, limit: params.limit === undefined ? -1 : Math.max(0, Math.floor(params.limit)) }),
          decodeAll("tasksRescue")
        ).pipe(Effect.map((records) => {
          const sorted = [...records].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
          for (const record of sorted) {
            const type = record.status === "pending" ? "rescued" : record.status as TaskEvent.TaskEventType
            effects.events.push(event(type, record, record.error === null ? undefined : { error: record.error }))
            if (record.status === "pending") effects.wake = true
          }
          return sorted
        })), false)

    const getRecord = (operation: string, id: string) =>
      Effect.flatMap(q.get(id), decodeOne(operation)).pipe(
        Effect.flatMap(Option.match({
          onNone: () => failPlain(new TaskStore.TaskNotFound({ taskId: id })),
          onSome: Effect.succeed
        }))
      )

    const taskCancel: Service["taskCancel"] = ({ id }) =>
      write("taskCancel", (now, effects) =>
        Effect.gen(function*() {
          const task = yield* getRecord("taskCancel", id)
          if (task.status === "running") {
            if (task.cancelRequested) return task
            const updated = yield* Effect.flatMap(q.cancelRequest({ id, now }), decodeOne("taskCancel"))
            const record = Option.getOrElse(updated, () => task)
            effects.events.push(event("cancel-requested", record))
            return record
          }
          if (!TaskStatus.canTransition(task.status, "cancelled")) {
            return yield* failPlain(
              new TaskStatus.IllegalTransition({ taskId: id, from: task.status, to: "cancelled" })
            )
          }
          const updated = yield* Effect.flatMap(q.cancelNow({ id, from: task.status, now }), decodeOne("taskCancel"))
          const record = Option.getOrElse(updated, () => task)
          effects.events.push(event("cancelled", record))
          return record
        }))

    const taskRetry: Service["taskRetry"] = ({ extraAttempts, id, runAt }) =>
      write("taskRetry", (now, effects) =>
        Effect.gen(function*() {
          const task = yield* getRecord("taskRetry", id)
          const at = runAt?.getTime() ?? now
          const to = at > now ? "scheduled" : "pending"
          if (!TaskStatus.retryable.includes(task.status)) {
            return yield* failPlain(new TaskStatus.IllegalTransition({ taskId: id, from: task.status, to }))
          }
          const updated = yield* Effect.flatMap(
            q.retry({ id, from: task.status, status: to, runAt: at, extraAttempts: extraAttempts ?? 1, now }),
            decodeOne("taskRetry")
          )
          const record = Option.getOrElse(updated, () => task)
          effects.events.push(event("retried", record))
          effects.wake = true
          return record
        }))

    const taskProgress: Service["taskProgress"] = ({ id, message, progress, workerId }) =>
      write("taskProgress", (now, effects) =>
        q.progress({ id, workerId, progress, message, now }).pipe(
          Effect.flatMap(decodeOne("taskProgress")),
          Effect.flatMap(Option.match({
            onNone: () => failPlain(leaseLost(id, workerId)),
            onSome: (record) => {
              effects.events.push(
                event("progress", record, message === undefined ? { progress } : { progress, message })
              )
              return Effect.void
            }
          }))
        ), false)

    const taskLogAppend: Service["taskLogAppend"] = ({ lines }) =>
      lines.length === 0 ? Effect.void : write("taskLogAppend", () =>
        Effect.forEach(
          chunks(lines, 5000),
          (chunk) =>
            q.logAppend(chunk.map((line) => ({
              task_id: line.taskId,
              attempt: line.attempt,
              at: line.at.getTime(),
              level: line.level,
              message: line.message
            }))),
          { discard: true }
        ), lines.length <= 5000)

    const taskLogs: Service["taskLogs"] = ({ id }) =>
      read(
        "taskLogs",
        Effect.map(q.logs(id), (rows) =>
          rows.map((row): TaskRecord.TaskLogLine => ({
            taskId: row.task_id,
            attempt: Number(row.attempt),
            at: new Date(Number(row.at)),
            level: row.level as TaskRecord.TaskLogLine["level"],
            message: row.message
          })))
      )

    const taskGet: Service["taskGet"] = ({ id }) => Effect.flatMap(read("taskGet", q.get(id)), decodeOne("taskGet"))

    const tasksList: Service["tasksList"] = (params) =>
      Effect.suspend(() => {
        const sortBy = params.sortBy ?? "createdAt"
        const order = params.order ?? "desc"
        const limit = Math.min(1000, Math.max(1, Math.floor(params.limit ?? 50)))
        let after: readonly [number, string] | undefined
        if (params.cursor !== undefined) {
          after = decodeCursor(params.cursor)
          if (after === undefined) {
            return failPlain(new TaskStore.TaskStoreError({ operation: "tasksList", message: "invalid cursor" }))
          }
        }
        return read(
          "tasksList",
          Effect.flatMap(
            q.list({ filter: params.filter, sortBy, order, limit: limit + 1, after }),
            decodeAll("tasksList")
          )
        ).pipe(Effect.map((records) => {
          const items = records.slice(0, limit)
          const last = items[items.length - 1]
          return {
            items,
            nextCursor: records.length > limit && last !== undefined
              ? encodeCursor(TaskStore.sortValue(last, sortBy), last.id)
              : undefined
          }
        }))
      })

    /** The counts by (name, queue, status), in one scan, and the paused queues. */
    const readCounts = Effect.gen(function*() {
      const counter = TaskStore.makeCounter((yield* q.pausedQueues).map((row) => row.queue))
      for (const row of yield* q.counts) {
        counter.add(row.name, row.queue, row.status as TaskStatus.TaskStatus, Number(row.n))
      }
      return counter.counts()
    })

    const tasksCount: Service["tasksCount"] = () => read("tasksCount", client.withTransaction(readCounts))

    const tasksStats: Service["tasksStats"] = (params) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        read(
          "tasksStats",
          client.withTransaction(Effect.gen(function*() {
            const minutes = Math.max(1, Math.floor(params.minutes ?? 60))
            const currentMinute = Math.floor(now / MINUTE) * MINUTE
            const windowStart = currentMinute - (minutes - 1) * MINUTE
            const currentHour = Math.floor(now / HOUR) * HOUR
            const hoursStart = currentHour - 23 * HOUR
            const counts = yield* readCounts
            const throughput = Array.from({ length: minutes }, (_, i) => ({
              minute: new Date(windowStart + i * MINUTE),
              succeeded: 0,
              failed: 0
            }))
            const hourly = Array.from({ length: 24 }, (_, i) => ({
              hour: new Date(hoursStart + i * HOUR),
              succeeded: 0,
              failed: 0
            }))
            let succeeded = 0
            let failed = 0
            // One pass of minute buckets over both windows (both start on a minute): the hours
            // add their minutes up.
            for (const row of yield* q.finishedBuckets(Math.min(windowStart, hoursStart), MINUTE)) {
              const at = Number(row.bucket)
              const rowSucceeded = Number(row.succeeded)
              const rowFailed = Number(row.failed)
              if (at >= windowStart) {
                const bucket = throughput[Math.min(minutes - 1, Math.floor((at - windowStart) / MINUTE))]!
                bucket.succeeded += rowSucceeded
                bucket.failed += rowFailed
                succeeded += rowSucceeded
                failed += rowFailed
              }
              if (at >= hoursStart) {
                const bucket = hourly[Math.min(23, Math.floor((at - hoursStart) / HOUR))]!
                bucket.succeeded += rowSucceeded
                bucket.failed += rowFailed
              }
            }
            const [summary] = yield* q.durationSummary(windowStart)
            const n = Number(summary?.n ?? 0)
            let p95 = 0
            if (n > 0) {
              const [at] = yield* q.durationAt(windowStart, Math.max(0, Math.ceil(0.95 * n) - 1))
              p95 = Number(at?.d ?? 0)
            }
            const stats: TaskStore.TaskStore.Stats = {
              ...counts,
              throughput,
              successRate: succeeded + failed === 0 ? 1 : succeeded / (succeeded + failed),
              meanDurationMs: n === 0 ? 0 : Number(summary?.mean ?? 0),
              p95DurationMs: p95,
              hourly
            }
            return stats
          }))
        ))

    const tasksDelete: Service["tasksDelete"] = ({ finishedBefore, statuses }) =>
      Effect.suspend(() => {
        const allowed = (statuses ?? finishedStatuses).filter(TaskStatus.isFinished)
        if (allowed.length === 0) return Effect.succeed(0)
        const before = finishedBefore.getTime()
        return write("tasksDelete", () =>
          Effect.gen(function*() {
            yield* q.deleteLogsOfFinished(before, allowed)
            yield* q.deleteFinished(before, allowed)
            const [changes] = yield* q.changes
            return Number(changes?.n ?? 0)
          }))
      })

    const queuePause: Service["queuePause"] = ({ queue }) =>
      write("queuePause", (now) => Effect.asVoid(q.pause(queue, now)))

    const queueResume: Service["queueResume"] = ({ queue }) =>
      write("queueResume", (_, effects) =>
        Effect.gen(function*() {
          yield* q.resume(queue)
          const [changes] = yield* q.changes
          effects.wake = Number(changes?.n ?? 0) > 0
        }))

    const queuesList: Service["queuesList"] = () =>
      read(
        "queuesList",
        Effect.gen(function*() {
          const paused = new Set((yield* q.pausedQueues).map((row) => row.queue))
          const queues = (yield* q.queues).map((row) => row.queue).sort()
          return queues.map((queue) => ({ queue, paused: paused.has(queue) }))
        })
      )

    const dataVersion = Effect.map(q.dataVersion, (rows) => Number(rows[0]?.data_version ?? 0))

    /**
     * Commits of other connections to the file: while an `awaitWork` waits, one fiber reads
     * `PRAGMA data_version` every `pollMs` and signals when it moved; it ends at a poll that finds
     * no wait. A wait itself is a callback (no fiber forked and interrupted per wait: that was a
     * third of the idle enqueue-to-start latency).
     */
    const scope = yield* Effect.scope
    let polling = false
    let seenVersion: number | undefined
    const pollForeign: Effect.Effect<void> = Effect.zipRight(
      Effect.sleep(pollMs),
      Effect.suspend(() => {
        if (waiters.size === 0) {
          polling = false
          seenVersion = undefined
          return Effect.void
        }
        return Effect.zipRight(
          Effect.match(dataVersion, {
            onFailure: () => undefined,
            onSuccess: (version) => {
              const changed = seenVersion !== undefined && version !== seenVersion
              seenVersion = version
              if (changed) signal()
            }
          }),
          pollForeign
        )
      })
    )

    const awaitWork: Service["awaitWork"] = ({ handoff, timeoutMs }) => handoffs.offer(handoff, waitForWork(timeoutMs))

    const waitForWork = (timeoutMs: number) =>
      Effect.gen(function*() {
        const seen = signals
        const clock = yield* Effect.clock
        const now = clock.unsafeCurrentTimeMillis()
        const [next] = yield* q.nextDue(now)
        // the version commits of other connections are told apart from
        if (seenVersion === undefined) seenVersion = yield* dataVersion
        const due = next?.due === null || next?.due === undefined ? Infinity : Number(next.due) - now
        const timeout = Math.max(0, Math.min(timeoutMs, due))
        if (signals !== seen || timeout === 0) return
        if (!polling) {
          polling = true
          yield* Effect.forkIn(pollForeign, scope)
        }
        yield* Effect.async<void>((resume) => {
          let timer: Fiber.RuntimeFiber<void> | undefined
          let woken = false
          const wake = () => {
            if (woken) return
            woken = true
            waiters.delete(wake)
            timer?.unsafeInterruptAsFork(FiberId.none)
            resume(Effect.void)
          }
          waiters.add(wake)
          if (Number.isFinite(timeout)) {
            timer = Effect.runFork(Effect.andThen(clock.sleep(Duration.millis(timeout)), wake))
          }
          return Effect.sync(() => {
            waiters.delete(wake)
            timer?.unsafeInterruptAsFork(FiberId.none)
          })
        })
      }).pipe(Effect.ignore)

    const service: Service = {
      tasksInsert,
      tasksClaim,
      tasksHeartbeat,
      taskComplete,
      tasksComplete,
      taskFail,
      tasksFail,
      tasksRelease,
      tasksRescue,
      taskCancel,
      taskRetry,
      taskProgress,
      taskLogAppend,
      taskLogs,
      taskGet,
      tasksList,
      tasksCount,
      tasksStats,
      tasksDelete,
      queuePause,
      queueResume,
      queuesList,
      events: hub.events,
      eventsOf: hub.eventsOf,
      awaitWork
    }
    return service
  })
