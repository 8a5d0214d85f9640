/**
 * The Postgres task store: one statement per method, claims with `FOR UPDATE SKIP LOCKED`,
 * the worker's batches of outcomes (`tasksComplete`, `tasksFail`) one `UPDATE … FROM
 * jsonb_to_recordset` each,
 * wake-ups and lifecycle events across processes through LISTEN/NOTIFY on one channel per
 * schema.
 *
 * Events: each process publishes the events of its own changes to its in-process PubSub as soon
 * as the statement has returned, and queues them for a background fiber that sends them to the
 * other processes with `pg_notify` (many events per notification, each payload under the
 * 8000-byte limit; a `result` or `error` too big to fit is left out, and the reader gets it from
 * the task). Events alone wait up to `EVENT_BATCH_MS` for more before they are sent (wake-ups
 * go at once): a busy worker's claims and completions share one round trip. Nothing is written per transition beyond the task row itself, and a batch of
 * claims or inserts costs one extra round trip in the background, not one per task: that is
 * why events are not kept in a table. The price: `sequence` is a per-process counter (no SSE
 * `Last-Event-ID` resumption across restarts), and a process that dies between its commit and
 * the send leaves other processes without those events (the task rows are right; whoever
 * awaits a task should also re-read it, as it must after any reconnect). An events table with
 * a BIGSERIAL sequence written in the same statement (a data-modifying CTE) can be added as a
 * later migration when resumption is wanted.
 *
 * Wake-ups: inserts, retry outcomes, manual retries, releases, rescues and resumed queues wake
 * local waiters at once and other processes through the channel; `awaitWork` also wakes when
 * the next scheduled task falls due, and otherwise times out (polling is the backstop).
 *
 * @internal
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import type { TaskEvent, TaskStore } from "@spindle/tasks"
import { TaskRecord, TaskStatus, TaskStore as TaskStoreModule } from "@spindle/tasks"
import type { Scope } from "effect"
import { Chunk, Clock, Deferred, Duration, Effect, Either, Fiber, Option, PubSub, Queue, Ref, Stream } from "effect"
import { migrate, validSchemaName } from "./pgMigrations.js"
import {
  decodeCursor,
  encodeCursor,
  encodeJson,
  finishedStatuses,
  makeTaskRowCodec,
  newTaskColumns,
  recordFromColumns,
  settleBatch
} from "./taskRow.js"

type Service = TaskStore.TaskStore["Type"]
type StoreError = TaskStore.TaskStoreError

const { LeaseLost, TaskNotFound, TaskStoreError } = TaskStoreModule

const MINUTE = 60_000
const HOUR = 3_600_000
/** Postgres refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_900
const MAX_EVENT_BYTES = 4_000
/** How long the sender waits for more events before a notification of events alone. */
const EVENT_BATCH_MS = 10

/** @internal */
export interface Options {
  readonly schema?: string | undefined
  readonly listenHealthCheck?: Duration.DurationInput | undefined
}

/** A notification on the schema's channel. @internal */
interface Message {
  /** The origin: the store instance that sent it. */
  readonly o: string
  /** Claimable work may have arrived. */
  readonly w?: 1
  readonly e?: ReadonlyArray<WireEvent>
  /** A listener readiness probe. */
  readonly probe?: 1
}

type WireEvent = Omit<TaskEvent.TaskEvent, "sequence" | "at"> & { readonly at: number }

type Outgoing = { readonly _tag: "work" } | { readonly _tag: "event"; readonly event: WireEvent }

const byteLength = (text: string): number => Buffer.byteLength(text, "utf8")

/** Packs outgoing work signals and events into as few notification payloads as fit. */
const packPayloads = (origin: string, items: ReadonlyArray<Outgoing>): Array<string> => {
  const work = items.some((item) => item._tag === "work")
  const payloads: Array<string> = []
  const head = work ? `{"o":${JSON.stringify(origin)},"w":1` : `{"o":${JSON.stringify(origin)}`
  let current: Array<string> = []
  let size = byteLength(head) + 10
  const flush = () => {
    payloads.push(current.length === 0 ? `${head}}` : `${head},"e":[${current.join(",")}]}`)
    current = []
    size = byteLength(head) + 10
  }
  for (const item of items) {
    if (item._tag !== "event") continue
    let text = JSON.stringify(item.event)
    if (byteLength(text) > MAX_EVENT_BYTES) {
      const { error: _error, message: _message, result: _result, ...rest } = item.event
      text = JSON.stringify(rest)
    }
    const bytes = byteLength(text) + 1
    if (current.length > 0 && size + bytes > MAX_PAYLOAD_BYTES) flush()
    current.push(text)
    size += bytes
  }
  if (current.length > 0 || work && payloads.length === 0) flush()
  return payloads
}

/**
 * Validates the schema name and runs the migrations.
 *
 * @internal
 */
export const migrateSchema = (
  schema: string
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, StoreError, PgClient.PgClient> =>
  validSchemaName.test(schema)
    ? migrate(schema).pipe(
      Effect.provideServiceEffect(SqlClient.SqlClient, PgClient.PgClient),
      Effect.mapError((cause) => new TaskStoreError({ operation: "migrate", message: cause.message, cause }))
    )
    : Effect.fail(
      new TaskStoreError({
        operation: "migrate",
        message: `invalid schema name "${schema}": lower-case letters, digits and _, at most 48 characters`
      })
    )

/** @internal */
export const make = (
  options: Options
): Effect.Effect<Service, StoreError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = options.schema ?? "spindle"
    yield* migrateSchema(schema)
    const sql = yield* PgClient.PgClient

    const tasks = sql(`${schema}.tasks`)
    const logsTable = sql(`${schema}.task_logs`)
    const pausedTable = sql(`${schema}.paused_queues`)
    const channel = `${schema}_tasks`
    const codec = makeTaskRowCodec("native")
    const origin = crypto.randomUUID()

    const storeError = (operation: string) => (cause: SqlError.SqlError | { readonly message: string }) =>
      new TaskStoreError({ operation, message: cause.message, cause })

    const query = <A extends object>(operation: string, statement: Statement.Statement<A>) =>
      Effect.mapError(statement.withoutTransform, storeError(operation))

    const decodeAll = (operation: string, rows: ReadonlyArray<unknown>) =>
      Effect.mapError(codec.decodeAll(rows), storeError(operation))

    /** Runs a statement returning task rows and decodes them. */
    const queryTasks = (operation: string, statement: Statement.Statement<object>) =>
      Effect.flatMap(query(operation, statement), (rows) => decodeAll(operation, rows))

    // --- events and wake-ups -------------------------------------------------------------------

    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<TaskEvent.TaskEvent>(), PubSub.shutdown)
    const outbox = yield* Effect.acquireRelease(Queue.unbounded<Outgoing>(), Queue.shutdown)
    let sequence = 0
    const wakeUp = yield* Ref.make(yield* Deferred.make<void>())

    const signalLocal = Effect.flatMap(
      Deferred.make<void>(),
      (next) => Effect.flatMap(Ref.getAndSet(wakeUp, next), (current) => Deferred.succeed(current, undefined))
    )

    /** Wakes local waiters now, and other processes through the channel. */
    const signalWork = Effect.zipRight(signalLocal, Queue.offer(outbox, { _tag: "work" }))

    const publishLocal = (events: ReadonlyArray<WireEvent>) =>
      events.length === 0 ? Effect.void : PubSub.publishAll(
        pubsub,
        events.map((event): TaskEvent.TaskEvent => ({ ...event, sequence: ++sequence, at: new Date(event.at) }))
      )

    const publish = (events: ReadonlyArray<WireEvent>) =>
      events.length === 0 ? Effect.void : Effect.zipRight(
        publishLocal(events),
        Queue.offerAll(outbox, events.map((event): Outgoing => ({ _tag: "event", event })))
      )

    const event = (
      type: TaskEvent.TaskEventType,
      task: TaskRecord.TaskRecord,
      extra?: Pick<TaskEvent.TaskEvent, "progress" | "message" | "error" | "result">
    ): WireEvent => ({
      type,
      taskId: task.id,
      name: task.name,
      queue: task.queue,
      status: task.status,
      attempt: task.attempt,
      at: task.updatedAt.getTime(),
      ...extra
    })

    const send = (items: ReadonlyArray<Outgoing>) =>
      items.length === 0 ?
        Effect.void :
        // the payloads as one JSON array: node-postgres escapes a text[] literal character by character
        sql`SELECT pg_notify(${channel}, p) FROM json_array_elements_text(${
          JSON.stringify(packPayloads(origin, items))
        }::json) AS p`.withoutTransform
          .pipe(
            Effect.catchAllCause((cause) => Effect.logWarning("PgTaskStore: NOTIFY failed", cause))
          )

    // The sender: everything queued since the last round trip goes out in one statement. A
    // wake-up goes at once; events alone wait `EVENT_BATCH_MS` for more (a busy worker makes a
    // claim and a few batches of completions in that time: one round trip instead of several,
    // each costing both processes about a millisecond on a loaded machine). It runs on the live
    // clock, as the listener.
    yield* Effect.gen(function*() {
      const first = yield* Queue.take(outbox)
      let items = [first, ...Chunk.toReadonlyArray(yield* Queue.takeAll(outbox))]
      if (!items.some((item) => item._tag === "work")) {
        yield* Effect.sleep(EVENT_BATCH_MS)
        items = items.concat(Chunk.toReadonlyArray(yield* Queue.takeAll(outbox)))
      }
      yield* send(items)
    }).pipe(Effect.forever, Effect.withClock(Clock.make()), Effect.forkScoped)
    // On close (after the sender stopped), what is still queued goes out: a worker's last
    // releases reach the other processes.
    yield* Effect.addFinalizer(() => Effect.flatMap(Queue.takeAll(outbox), (rest) => send(Chunk.toReadonlyArray(rest))))

    // Probes: a notification to ourselves, to know that the listener hears the channel.
    let probeNonce = 0
    let probeHeard = yield* Deferred.make<void>()
    const probe = (timeout: Duration.DurationInput) =>
      Effect.gen(function*() {
        const nonce = ++probeNonce
        const heard = yield* Deferred.make<void>()
        probeHeard = heard
        // (PgClient's `notify` binds the payload as a parameter, which NOTIFY does not accept)
        yield* sql`SELECT pg_notify(${channel}, ${JSON.stringify({ o: origin, probe: nonce })})`.withoutTransform
          .pipe(Effect.ignore)
        return Option.isSome(yield* Deferred.await(heard).pipe(Effect.timeoutOption(timeout)))
      })

    // Every process hears its own notifications too: those are skipped unparsed (all but the probes).
    const ownPrefix = JSON.stringify({ o: origin }).slice(0, -1)
    const onMessage = (payload: string) =>
      Effect.suspend(() => {
        if (payload.startsWith(ownPrefix) && !payload.startsWith(`${ownPrefix},"probe"`)) return Effect.void
        let message: Message
        try {
          message = JSON.parse(payload) as Message
        } catch {
          return Effect.void
        }
        if (message.o === origin) {
          return message.probe === probeNonce ? Deferred.succeed(probeHeard, undefined) : Effect.void
        }
        return Effect.zipRight(
          message.w === 1 ? signalLocal : Effect.void,
          message.e !== undefined ? publishLocal(message.e) : Effect.void
        )
      })

    /** Probes until heard, for about 2 seconds. */
    const awaitListening = Effect.gen(function*() {
      for (let i = 0; i < 100; i++) {
        if (yield* probe("20 millis")) return true
      }
      return false
    })

    // The listener, supervised: it (re)connects, waits until it hears its own probe, then
    // probes every `listenHealthCheck` and starts over when two probes go unheard (the LISTEN connection
    // was lost: the driver does not report that). It runs on the live clock: reconnecting and
    // probing must not wait on a TestClock that nobody moves.
    const healthCheck = Duration.decode(options.listenHealthCheck ?? "10 seconds")
    const probeTimeout = Duration.min(Duration.seconds(2), healthCheck)
    const firstReady = yield* Deferred.make<boolean>()
    yield* Effect.gen(function*() {
      while (true) {
        const listening = yield* Effect.fork(Stream.runForEach(sql.listen(channel), onMessage))
        let healthy = yield* awaitListening
        yield* Deferred.succeed(firstReady, healthy)
        while (healthy) {
          yield* Effect.sleep(healthCheck)
          healthy = (yield* probe(probeTimeout)) || (yield* probe(probeTimeout))
        }
        yield* Effect.logWarning("PgTaskStore: not hearing LISTEN notifications, reconnecting")
        yield* Fiber.interrupt(listening)
        yield* Effect.sleep("1 second")
      }
    }).pipe(Effect.withClock(Clock.make()), Effect.forkScoped)
    // A store is never returned deaf to the notifications sent after it was made (unless the
    // listener could not start: then polling remains).
    if (!(yield* Deferred.await(firstReady))) {
      yield* Effect.logWarning("PgTaskStore: LISTEN not ready, relying on polling")
    }

    // --- tasks ----------------------------------------------------------------------------------

    const tasksInsert: Service["tasksInsert"] = ({ tasks: inputs }) =>
      Effect.gen(function*() {
        if (inputs.length === 0) return []
        const now = yield* Clock.currentTimeMillis
        const columns = yield* Effect.try({
          try: () => inputs.map((input) => newTaskColumns(input, now)),
          catch: (cause) => new TaskStoreError({ operation: "tasksInsert", message: String(cause), cause })
        })
        // Only the ids come back: the records are made from the columns sent (no decoding).
        const insertedIds = yield* query(
          "tasksInsert",
          sql<{ readonly id: string }>`INSERT INTO ${tasks} (
              id, name, queue, status, priority, payload, result, error, attempt, max_attempts, retry,
              timeout_ms, soft_timeout_ms, run_at, created_at, updated_at, started_at, finished_at,
              lease_owner, lease_expires_at, cancel_requested, progress, progress_message,
              idempotency_key, parent_id, tags)
            SELECT id, name, queue, status, priority, payload::jsonb, NULL, NULL, attempt, max_attempts,
              retry::jsonb, timeout_ms, soft_timeout_ms, run_at, created_at, updated_at, NULL, NULL,
              NULL, NULL, FALSE, 0, NULL, idempotency_key, parent_id, tags::jsonb
            FROM jsonb_to_recordset(${JSON.stringify(columns)}::jsonb) AS r(
              id TEXT, name TEXT, queue TEXT, status TEXT, priority SMALLINT, payload TEXT, attempt INTEGER,
              max_attempts INTEGER, retry TEXT, timeout_ms BIGINT, soft_timeout_ms BIGINT, run_at BIGINT,
              created_at BIGINT, updated_at BIGINT, idempotency_key TEXT, parent_id TEXT, tags TEXT)
            ON CONFLICT (name, idempotency_key)
              WHERE idempotency_key IS NOT NULL AND status IN ('pending', 'scheduled', 'running')
              DO NOTHING
            RETURNING id`
        )
        const createdIds = new Set(insertedIds.map((row) => row.id))
        const inserted: Array<TaskRecord.TaskRecord> = []
        for (const column of columns) {
          if (!createdIds.has(column.id)) continue
          const record = recordFromColumns(column)
          if (Either.isLeft(record)) return yield* storeError("tasksInsert")(record.left)
          inserted.push(record.right)
        }
        const byId = new Map(inserted.map((task) => [task.id, task]))
        const keyOf = (name: string, key: string) => `${name}\u0000${key}`
        const missing = columns.filter((column) => !byId.has(column.id) && column.idempotency_key !== null)
        const existing = new Map<string, TaskRecord.TaskRecord>()
        for (const task of inserted) {
          if (task.idempotencyKey !== null) existing.set(keyOf(task.name, task.idempotencyKey), task)
        }
        const lookup = missing.filter((column) => !existing.has(keyOf(column.name, column.idempotency_key!)))
        if (lookup.length > 0) {
          const found = yield* queryTasks(
            "tasksInsert",
            sql`SELECT t.* FROM ${tasks} t
              JOIN unnest(${lookup.map((c) => c.name)}::text[], ${
              lookup.map((c) => c.idempotency_key!)
            }::text[]) AS k(name, key)
                ON t.name = k.name AND t.idempotency_key = k.key
              ORDER BY (t.status IN ('pending', 'scheduled', 'running')) ASC, t.created_at ASC, t.id ASC`
          )
          // later rows win: unfinished ones, then the newest
          for (const task of found) existing.set(keyOf(task.name, task.idempotencyKey!), task)
        }
        const results: Array<TaskStore.TaskStore.Inserted> = []
        for (const column of columns) {
          const task = byId.get(column.id)
          if (task !== undefined) {
            results.push({ task, created: true })
            continue
          }
          const other = column.idempotency_key === null
            ? undefined
            : existing.get(keyOf(column.name, column.idempotency_key))
          if (other === undefined) {
            return yield* new TaskStoreError({
              operation: "tasksInsert",
              message: `task ${column.id} was neither inserted nor found by its idempotency key`
            })
          }
          results.push({ task: other, created: false })
        }
        if (inserted.length > 0) {
          yield* publish(inserted.map((task) => event("submitted", task)))
          yield* signalWork
        }
        return results
      })

    const tasksClaim: Service["tasksClaim"] = ({ leaseMs, limit, names, queues, workerId }) =>
      Effect.gen(function*() {
        if (limit <= 0) return []
        const now = yield* Clock.currentTimeMillis
        // The paused queues are read once (an InitPlan), so the claim walks the partial index in
        // claim order and stops after `limit` rows (an anti-join would sort every claimable row).
        // The COALESCE hides the filter from the row estimator: `queue <> ALL (<unknown array>)`
        // is estimated from the queues' distinct count (close to no rows with one queue), and
        // the planner then prefers a bitmap scan and a sort of every claimable row (EXPLAIN
        // ANALYZE with 20,000 pending and 200,000 finished rows: 9-80 ms instead of 0.1 ms).
        const claimed = yield* queryTasks(
          "tasksClaim",
          sql`WITH next AS (
              SELECT c.id, c.priority, c.run_at FROM ${tasks} c
              WHERE c.status IN ('pending', 'scheduled') AND c.run_at <= ${now}
                AND COALESCE(c.queue <> ALL (ARRAY(SELECT queue FROM ${pausedTable})), TRUE)
                ${queues === undefined ? sql`` : sql`AND c.queue = ANY(${queues}::text[])`}
                ${names === undefined ? sql`` : sql`AND c.name = ANY(${names}::text[])`}
              ORDER BY c.priority, c.run_at, c.id
              LIMIT ${Math.floor(limit)}
              FOR UPDATE SKIP LOCKED
            )
            UPDATE ${tasks} t SET
              status = 'running', attempt = t.attempt + 1, started_at = ${now}, finished_at = NULL,
              lease_owner = ${workerId}, lease_expires_at = ${now + leaseMs}, cancel_requested = FALSE,
              updated_at = ${now}
            FROM next WHERE t.id = next.id
            RETURNING t.*`
        )
        const ordered = [...claimed].sort(TaskStoreModule.compareClaimOrder)
        yield* publish(ordered.map((task) => event("started", task)))
        return ordered
      })

    const tasksHeartbeat: Service["tasksHeartbeat"] = ({ ids, leaseMs, workerId }) =>
      Effect.gen(function*() {
        if (ids.length === 0) return { renewed: [], lost: [], cancelRequested: [] }
        const now = yield* Clock.currentTimeMillis
        const rows = yield* query(
          "tasksHeartbeat",
          sql<{ readonly id: string; readonly cancel_requested: boolean }>`UPDATE ${tasks}
            SET lease_expires_at = ${now + leaseMs}
            WHERE id = ANY(${ids}::text[]) AND status = 'running' AND lease_owner = ${workerId}
            RETURNING id, cancel_requested`
        )
        const held = new Set(rows.map((row) => row.id))
        const cancelled = new Set(rows.filter((row) => row.cancel_requested).map((row) => row.id))
        return {
          renewed: ids.filter((id) => held.has(id)),
          lost: ids.filter((id) => !held.has(id)),
          cancelRequested: ids.filter((id) => cancelled.has(id))
        }
      })

    /** Ends a running attempt held by `workerId`: status `to`, plus `set`. */
    const leaveRunning = (
      operation: string,
      id: string,
      workerId: string,
      to: TaskStatus.TaskStatus,
      now: number,
      set: Statement.Fragment
    ) =>
      Effect.flatMap(
        queryTasks(
          operation,
          sql`UPDATE ${tasks} SET
              status = ${to}, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE,
              updated_at = ${now}, finished_at = ${TaskStatus.isFinished(to) ? now : null}, ${set}
            WHERE id = ${id} AND status = 'running' AND lease_owner = ${workerId}
            RETURNING *`
        ),
        (rows) => rows.length === 0 ? Effect.fail(new LeaseLost({ taskId: id, workerId })) : Effect.succeed(rows[0]!)
      )

    const taskComplete: Service["taskComplete"] = ({ id, result, workerId }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const task = yield* leaveRunning(
          "taskComplete",
          id,
          workerId,
          "succeeded",
          now,
          sql`result = ${encodeJson(result)}::jsonb`
        )
        yield* publish([event("succeeded", task, { result: task.result })])
        return task
      })

    const taskFail: Service["taskFail"] = ({ error, id, outcome, workerId }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const to: TaskStatus.TaskStatus = TaskStoreModule.failStatus(outcome)
        const task = yield* leaveRunning(
          "taskFail",
          id,
          workerId,
          to,
          now,
          outcome._tag === "retry"
            ? sql`error = ${JSON.stringify(error)}::jsonb, run_at = ${outcome.runAt.getTime()}`
            : sql`error = ${JSON.stringify(error)}::jsonb`
        )
        yield* publish([event(TaskStoreModule.failEventType(outcome), task, { error })])
        if (outcome._tag === "retry") yield* signalWork
        return task
      })

    /** A row changed by a batch settle. */
    interface SettledRow {
      readonly id: string
      readonly name: string
      readonly queue: string
      readonly attempt: number
    }

    /**
     * Settles a batch in one statement (see `settleBatch`): `run` gets the JSON of the first item
     * of each id and returns the rows it changed; `eventOf` makes the event of each.
     */
    const settleMany = <I extends { readonly id: string; readonly workerId: string }>(
      operation: string,
      items: ReadonlyArray<I>,
      encode: (item: I) => object,
      run: (json: string, now: number) => Statement.Statement<SettledRow>,
      eventOf: (item: I, row: SettledRow, now: number) => WireEvent
    ): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.BatchOutcome>, StoreError> =>
      Effect.gen(function*() {
        if (items.length === 0) return []
        const batch = settleBatch(items, encode)
        const now = yield* Clock.currentTimeMillis
        const rows = yield* query(operation, run(batch.json, now))
        const events: Array<WireEvent> = []
        const outcomes = batch.outcomes(rows, (item, row) => {
          events.push(eventOf(item, row, now))
        })
        yield* publish(events)
        return outcomes
      })

    const tasksComplete: Service["tasksComplete"] = ({ items }) => {
      const results = new Map<string, string>()
      return settleMany(
        "tasksComplete",
        items,
        (item) => {
          const result = encodeJson(item.result)
          results.set(item.id, result)
          return { i: item.id, w: item.workerId, r: result }
        },
        (json, now) =>
          sql<SettledRow>`UPDATE ${tasks} t SET
              status = 'succeeded', result = x.r::jsonb, finished_at = ${now}, updated_at = ${now},
              lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
            FROM jsonb_to_recordset(${json}::jsonb) AS x(i TEXT, w TEXT, r TEXT)
            WHERE t.id = x.i AND t.status = 'running' AND t.lease_owner = x.w
            RETURNING t.id, t.name, t.queue, t.attempt`,
        (item, row, now) => ({
          type: "succeeded",
          taskId: row.id,
          name: row.name,
          queue: row.queue,
          status: "succeeded",
          attempt: row.attempt,
          at: now,
          result: JSON.parse(results.get(item.id)!) as unknown
        })
      )
    }

    const tasksFail: Service["tasksFail"] = ({ items }) => {
      const errors = new Map<string, string>()
      return Effect.tap(
        settleMany(
          "tasksFail",
          items,
          ({ error, id, outcome, workerId }) => {
            const text = encodeJson(error)
            errors.set(id, text)
            return {
              i: id,
              w: workerId,
              s: TaskStoreModule.failStatus(outcome),
              e: text,
              t: outcome._tag === "retry" ? outcome.runAt.getTime() : null
            }
          },
          (json, now) =>
            sql<SettledRow>`UPDATE ${tasks} t SET
                status = x.s, error = x.e::jsonb, run_at = COALESCE(x.t, t.run_at),
                finished_at = CASE WHEN x.s = 'scheduled' THEN NULL ELSE ${now}::bigint END, updated_at = ${now},
                lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
              FROM jsonb_to_recordset(${json}::jsonb) AS x(i TEXT, w TEXT, s TEXT, e TEXT, t BIGINT)
              WHERE t.id = x.i AND t.status = 'running' AND t.lease_owner = x.w
              RETURNING t.id, t.name, t.queue, t.attempt`,
          ({ id, outcome }, row, now) => ({
            type: TaskStoreModule.failEventType(outcome),
            taskId: row.id,
            name: row.name,
            queue: row.queue,
            status: TaskStoreModule.failStatus(outcome),
            attempt: row.attempt,
            at: now,
            error: JSON.parse(errors.get(id)!) as TaskRecord.TaskError
          })
        ),
        (outcomes) =>
          outcomes.some((outcome, i) => outcome === "settled" && items[i]!.outcome._tag === "retry")
            ? signalWork
            : Effect.void
      )
    }

    const tasksRelease: Service["tasksRelease"] = ({ ids, workerId }) =>
      Effect.gen(function*() {
        if (ids.length === 0) return 0
        const now = yield* Clock.currentTimeMillis
        // A task whose cancellation was requested is cancelled rather than run again.
        const released = yield* queryTasks(
          "tasksRelease",
          sql`UPDATE ${tasks} SET
              status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
              attempt = CASE WHEN cancel_requested THEN attempt ELSE GREATEST(0, attempt - 1) END,
              finished_at = CASE WHEN cancel_requested THEN ${now}::bigint ELSE NULL END,
              lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, updated_at = ${now}
            WHERE id = ANY(${ids}::text[]) AND status = 'running' AND lease_owner = ${workerId}
            RETURNING *`
        )
        yield* publish(released.map((task) => event(task.status === "cancelled" ? "cancelled" : "released", task)))
        if (released.some((task) => task.status === "pending")) yield* signalWork
        return released.length
      })

    const tasksRescue: Service["tasksRescue"] = (params) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const limit = params.limit === undefined ? null : Math.max(0, Math.floor(params.limit))
        const rescued = yield* queryTasks(
          "tasksRescue",
          sql`WITH expired AS (
              SELECT id FROM ${tasks}
              WHERE status = 'running' AND lease_expires_at < ${now}
              ORDER BY lease_expires_at, id
              LIMIT ${limit}
              FOR UPDATE SKIP LOCKED
            )
            UPDATE ${tasks} t SET
              status = CASE WHEN t.cancel_requested THEN 'cancelled'
                WHEN t.attempt >= t.max_attempts THEN 'dead' ELSE 'pending' END,
              finished_at = CASE WHEN t.cancel_requested OR t.attempt >= t.max_attempts THEN ${now}::bigint ELSE NULL END,
              error = jsonb_build_object(
                'tag', 'LeaseExpired',
                'message', 'the lease of worker ' || t.lease_owner || ' expired',
                'cause', ''),
              lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, updated_at = ${now}
            FROM expired WHERE t.id = expired.id
            RETURNING t.*`
        )
        const ordered = [...rescued].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
        yield* publish(ordered.map((task) =>
          event(
            task.status === "pending" ? "rescued" : task.status === "dead" ? "dead" : "cancelled",
            task,
            task.error === null ? undefined : { error: task.error }
          )
        ))
        if (ordered.some((task) => task.status === "pending")) yield* signalWork
        return ordered
      })

    /** The record of `id`, for the follow-up of an update that matched no row. */
    const current = (operation: string, id: string) =>
      Effect.flatMap(
        queryTasks(operation, sql`SELECT * FROM ${tasks} WHERE id = ${id}`),
        (rows) => rows.length === 0 ? Effect.fail(new TaskNotFound({ taskId: id })) : Effect.succeed(rows[0]!)
      )

    const taskCancel: Service["taskCancel"] = ({ id }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* queryTasks(
          "taskCancel",
          sql`UPDATE ${tasks} SET
              status = CASE WHEN status = 'running' THEN 'running' ELSE 'cancelled' END,
              cancel_requested = (status = 'running'),
              finished_at = CASE WHEN status = 'running' THEN finished_at ELSE ${now}::bigint END,
              updated_at = ${now}
            WHERE id = ${id} AND (status IN ('pending', 'scheduled') OR (status = 'running' AND NOT cancel_requested))
            RETURNING *`
        )
        const task = rows[0]
        if (task !== undefined) {
          yield* publish([event(task.status === "running" ? "cancel-requested" : "cancelled", task)])
          return task
        }
        const existing = yield* current("taskCancel", id)
        if (existing.status === "running") return existing // already requested
        return yield* new TaskStatus.IllegalTransition({ taskId: id, from: existing.status, to: "cancelled" })
      })

    const taskRetry: Service["taskRetry"] = ({ extraAttempts, id, runAt }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const at = runAt?.getTime() ?? now
        const to: TaskStatus.TaskStatus = at > now ? "scheduled" : "pending"
        const rows = yield* queryTasks(
          "taskRetry",
          sql`UPDATE ${tasks} SET
              status = ${to}, run_at = ${at},
              max_attempts = GREATEST(max_attempts, attempt + ${extraAttempts ?? 1}),
              result = NULL, finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
              cancel_requested = FALSE, updated_at = ${now}
            WHERE id = ${id} AND status = ANY(${TaskStatus.retryable}::text[])
            RETURNING *`
        )
        const task = rows[0]
        if (task !== undefined) {
          yield* publish([event("retried", task)])
          yield* signalWork
          return task
        }
        const existing = yield* current("taskRetry", id)
        return yield* new TaskStatus.IllegalTransition({ taskId: id, from: existing.status, to })
      })

    const taskProgress: Service["taskProgress"] = ({ id, message, progress, workerId }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* queryTasks(
          "taskProgress",
          sql`UPDATE ${tasks} SET progress = ${progress}, progress_message = ${message ?? null}, updated_at = ${now}
            WHERE id = ${id} AND status = 'running' AND lease_owner = ${workerId}
            RETURNING *`
        )
        const task = rows[0]
        if (task === undefined) return yield* new LeaseLost({ taskId: id, workerId })
        yield* publish([event("progress", task, message === undefined ? { progress } : { progress, message })])
      })

    const taskLogAppend: Service["taskLogAppend"] = ({ lines }) =>
      lines.length === 0 ? Effect.void : Effect.asVoid(query(
        "taskLogAppend",
        sql`INSERT INTO ${logsTable} (task_id, attempt, at, level, message)
          SELECT "taskId", attempt, at, level, message
          FROM jsonb_to_recordset(${
          JSON.stringify(lines.map((line) => ({ ...line, at: line.at.getTime() })))
        }::jsonb) AS r("taskId" TEXT, attempt INTEGER, at BIGINT, level TEXT, message TEXT)`
      ))

    const taskLogs: Service["taskLogs"] = ({ id }) =>
      Effect.map(
        query(
          "taskLogs",
          sql<
            { task_id: string; attempt: number; at: string; level: TaskRecord.TaskLogLine["level"]; message: string }
          >`SELECT task_id, attempt, at, level, message FROM ${logsTable} WHERE task_id = ${id} ORDER BY seq`
        ),
        (rows) =>
          rows.map((row): TaskRecord.TaskLogLine => ({
            taskId: row.task_id,
            attempt: row.attempt,
            at: new Date(Number(row.at)),
            level: row.level,
            message: row.message
          }))
      )

    const taskGet: Service["taskGet"] = ({ id }) =>
      Effect.map(queryTasks("taskGet", sql`SELECT * FROM ${tasks} WHERE id = ${id}`), (rows) =>
        Option.fromNullable(rows[0]))

    const sortExpression = {
      createdAt: sql`created_at`,
      runAt: sql`run_at`,
      updatedAt: sql`updated_at`,
      // by importance: `asc` is `low` first (as the memory store)
      priority: sql`(3 - priority)`
    } as const

    const tasksList: Service["tasksList"] = (params) =>
      Effect.gen(function*() {
        const key = params.sortBy ?? "createdAt"
        const asc = params.order === "asc"
        const limit = Math.min(1000, Math.max(1, Math.floor(params.limit ?? 50)))
        const filter = params.filter
        const clauses: Array<Statement.Fragment> = []
        if (filter?.status !== undefined) {
          clauses.push(sql`status = ANY(${filter.status}::text[])`)
        }
        if (filter?.name !== undefined) {
          clauses.push(sql`name = ANY(${filter.name}::text[])`)
        }
        if (filter?.queue !== undefined) {
          clauses.push(sql`queue = ANY(${filter.queue}::text[])`)
        }
        if (filter?.tag !== undefined) {
          const tags = typeof filter.tag === "string" ? [filter.tag] : filter.tag
          clauses.push(sql`tags @> ${JSON.stringify(tags)}::jsonb`)
        }
        if (filter?.parentId !== undefined) {
          clauses.push(sql`parent_id = ${filter.parentId}`)
        }
        const expression = sortExpression[key]
        if (params.cursor !== undefined) {
          const after = decodeCursor(params.cursor)
          if (after === undefined) {
            return yield* new TaskStoreError({ operation: "tasksList", message: "invalid cursor" })
          }
          clauses.push(
            asc
              ? sql`(${expression}, id) > (${after[0]}::bigint, ${after[1]}::text)`
              : sql`(${expression}, id) < (${after[0]}::bigint, ${after[1]}::text)`
          )
        }
        const direction = asc ? sql`ASC` : sql`DESC`
        const items = yield* queryTasks(
          "tasksList",
          sql`SELECT * FROM ${tasks} WHERE ${sql.and(clauses)}
            ORDER BY ${expression} ${direction}, id ${direction}
            LIMIT ${limit + 1}`
        )
        const page = items.slice(0, limit)
        const last = page[page.length - 1]
        return {
          items: page,
          nextCursor: items.length > limit && last !== undefined
            ? encodeCursor(TaskStoreModule.sortValue(last, key), last.id)
            : undefined
        }
      })

    const tasksStats: Service["tasksStats"] = (params) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const minutes = Math.max(1, Math.floor(params.minutes ?? 60))
        const currentMinute = Math.floor(now / MINUTE) * MINUTE
        const windowStart = currentMinute - (minutes - 1) * MINUTE
        const currentHour = Math.floor(now / HOUR) * HOUR
        const hoursStart = currentHour - 23 * HOUR
        const counts = yield* query(
          "tasksStats",
          sql<{ name: string; queue: string; status: TaskStatus.TaskStatus; count: string }>`
            SELECT name, queue, status, count(*) AS count FROM ${tasks} GROUP BY name, queue, status`
        )
        const paused = yield* query("tasksStats", sql<{ queue: string }>`SELECT queue FROM ${pausedTable}`)
        const finished = yield* query(
          "tasksStats",
          sql<{ status: TaskStatus.TaskStatus; started_at: string | null; finished_at: string }>`
            SELECT status, started_at, finished_at FROM ${tasks}
            WHERE finished_at >= ${Math.min(windowStart, hoursStart)}
              AND status IN ('succeeded', 'failed', 'dead', 'timed-out')`
        )
        const byStatus = TaskStatus.emptyCounts()
        const byName = new Map<string, { [S in TaskStatus.TaskStatus]: number }>()
        const byQueue = new Map<string, { [S in TaskStatus.TaskStatus]: number }>()
        const pausedSet = new Set(paused.map((row) =>
          row.queue
        ))
        for (const queue of pausedSet) byQueue.set(queue, TaskStatus.emptyCounts())
        let total = 0
        for (const row of counts) {
          const n = Number(row.count)
          total += n
          byStatus[row.status] += n
          let names = byName.get(row.name)
          if (names === undefined) byName.set(row.name, names = TaskStatus.emptyCounts())
          names[row.status] += n
          let queues = byQueue.get(row.queue)
          if (queues === undefined) byQueue.set(row.queue, queues = TaskStatus.emptyCounts())
          queues[row.status] += n
        }
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
        const durations: Array<number> = []
        let succeeded = 0
        let failed = 0
        for (const row of finished) {
          const ok = row.status === "succeeded"
          const at = Number(row.finished_at)
          if (at >= windowStart) {
            const bucket = throughput[Math.min(minutes - 1, Math.floor((at - windowStart) / MINUTE))]!
            if (ok) {
              bucket.succeeded++
              succeeded++
            } else {
              bucket.failed++
              failed++
            }
            if (row.started_at !== null) durations.push(at - Number(row.started_at))
          }
          if (at >= hoursStart) {
            const bucket = hourly[Math.min(23, Math.floor((at - hoursStart) / HOUR))]!
            if (ok) bucket.succeeded++
            else bucket.failed++
          }
        }
        durations.sort((a, b) => a - b)
        const byKey = <A>(entries: Iterable<[string, A]>) => [...entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
        const stats: TaskStore.TaskStore.Stats = {
          total,
          byStatus,
          byName: byKey(byName.entries()).map(([name, counts]) => ({ name, counts })),
          byQueue: byKey(byQueue.entries()).map(([queue, counts]) => ({ queue, paused: pausedSet.has(queue), counts })),
          throughput,
          successRate: succeeded + failed === 0 ? 1 : succeeded / (succeeded + failed),
          meanDurationMs: durations.length === 0 ? 0 : durations.reduce((sum, d) => sum + d, 0) / durations.length,
          p95DurationMs: durations.length === 0 ? 0 : durations[Math.max(0, Math.ceil(0.95 * durations.length) - 1)]!,
          hourly
        }
        return stats
      })

    const tasksDelete: Service["tasksDelete"] = ({ finishedBefore, statuses }) =>
      Effect.map(
        query(
          "tasksDelete",
          sql<{ count: string }>`WITH deleted AS (
              DELETE FROM ${tasks}
              WHERE finished_at < ${finishedBefore.getTime()}
                AND status = ANY(${
            (statuses ?? finishedStatuses).filter((status) => TaskStatus.isFinished(status))
          }::text[])
              RETURNING id
            ), logs AS (
              DELETE FROM ${logsTable} WHERE task_id IN (SELECT id FROM deleted)
            )
            SELECT count(*) AS count FROM deleted`
        ),
        (rows) => Number(rows[0]?.count ?? 0)
      )

    const queuePause: Service["queuePause"] = ({ queue }) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.asVoid(query(
          "queuePause",
          sql`INSERT INTO ${pausedTable} (queue, paused_at) VALUES (${queue}, ${now}) ON CONFLICT (queue) DO NOTHING`
        )))

    const queueResume: Service["queueResume"] = ({ queue }) =>
      Effect.flatMap(
        query("queueResume", sql`DELETE FROM ${pausedTable} WHERE queue = ${queue} RETURNING queue`),
        (rows) => rows.length > 0 ? signalWork : Effect.void
      )

    const queuesList: Service["queuesList"] = () =>
      Effect.map(
        query(
          "queuesList",
          sql<{ queue: string; paused: boolean }>`
            SELECT q.queue, EXISTS (SELECT 1 FROM ${pausedTable} p WHERE p.queue = q.queue) AS paused
            FROM (SELECT DISTINCT queue FROM ${tasks} UNION SELECT queue FROM ${pausedTable}) q
            ORDER BY q.queue COLLATE "C"`
        ),
        (rows) => rows.map((row) => ({ queue: row.queue, paused: row.paused }))
      )

    const awaitWork: Service["awaitWork"] = ({ timeoutMs }) =>
      Effect.gen(function*() {
        const signal = yield* Ref.get(wakeUp)
        const now = yield* Clock.currentTimeMillis
        // Wake up when the next scheduled task falls due, if that comes before the timeout.
        const next = yield* sql<{ next: string | null }>`
          SELECT min(run_at) AS next FROM ${tasks}
          WHERE status IN ('pending', 'scheduled') AND run_at > ${now}`.withoutTransform.pipe(
          Effect.map((rows) => rows[0]?.next ?? null),
          Effect.orElseSucceed(() => null)
        )
        let wait = Math.max(0, timeoutMs)
        if (next !== null && Number(next) - now < wait) wait = Number(next) - now
        yield* Deferred.await(signal).pipe(Effect.timeoutOption(wait))
      })

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
      tasksStats,
      tasksDelete,
      queuePause,
      queueResume,
      queuesList,
      events: Stream.fromPubSub(pubsub),
      awaitWork
    }
    return service
  })
