/**
 * The Postgres task store: one statement per method (the SQL is in `pgSql.ts`), claims with
 * `FOR UPDATE SKIP LOCKED`, the worker's batches of outcomes (`tasksComplete`, `tasksFail`) one
 * `UPDATE … FROM jsonb_to_recordset` each, wake-ups and lifecycle events across processes through
 * LISTEN/NOTIFY on one channel per schema.
 *
 * Events: each process publishes the events of its own changes to its in-process PubSub as soon
 * as the statement has returned, and queues them for a background fiber that sends them to the
 * other processes with `pg_notify` (many events per notification, each payload under the
 * 8000-byte limit; a `result` or `error` too big to fit is left out, and the reader gets it from
 * the task). Events alone wait up to `EVENT_BATCH_MS` for more before they are sent (wake-ups
 * go at once): a busy worker's claims and completions share one round trip. Events and wake-ups
 * are sent only while another store listens on the channel: stores know each other by the
 * probes their listeners send now and then (see "the other stores on the channel" below), so a
 * process alone with its database sends none. Nothing is
 * written per transition beyond the task row itself, and a batch of claims or inserts costs one
 * extra round trip in the background, not one per task: that is why events are not kept in a
 * table. The price: `sequence` is a per-process counter (no SSE
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
import type { TaskEvent, TaskStore } from "@spindle/tasks"
import { TaskRecord, TaskStatus, TaskStore as TaskStoreModule } from "@spindle/tasks"
import type { Scope } from "effect"
import { Chunk, Clock, Deferred, Duration, Effect, Either, Fiber, Option, Queue, Ref, Stream } from "effect"
import * as PgLane from "./pgLane.js"
import { migrate, validSchemaName } from "./pgMigrations.js"
import type { SettledRow } from "./pgSql.js"
import { makeQueries, tablesOf } from "./pgSql.js"
import {
  claimedRow,
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
type StoreError = TaskStore.TaskStoreError

const { LeaseLost, TaskNotFound, TaskStoreError } = TaskStoreModule

const MINUTE = 60_000
const HOUR = 3_600_000
/** Postgres refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_900
const MAX_EVENT_BYTES = 4_000
/** How long the sender waits for more events before a notification of events alone. */
const EVENT_BATCH_MS = 10
/** The default interval of a store's listener probes (`listenHealthCheck`). */
const DEFAULT_PROBE_MS = 10_000
/** Another store counts as live for this many of its probe intervals after it was last heard. */
const PEER_LIVE_PROBES = 3

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
  /** Events and groups of alike events, in order. */
  readonly g?: ReadonlyArray<WireEvent | WireGroup>
  /**
   * Events one by one, as versions before groups sent them (read, never sent: a process of
   * such a version ignores `g`, which it would misread, and misses those events instead).
   */
  readonly e?: ReadonlyArray<WireEvent>
  /** A listener readiness probe (every store sends them now and then: its sign of life). */
  readonly probe?: number
  /** With a probe: the sender's probe interval in milliseconds (until when to count on it). */
  readonly hc?: number
  /** With a probe: when it was sent (the sender's clock, milliseconds). */
  readonly t?: number
  /** The sender is closing: it hears nothing more. */
  readonly bye?: 1
}

type WireEvent = Omit<TaskEvent.TaskEvent, "sequence" | "at"> & { readonly at: number }

/**
 * Consecutive events that differ only in their task (a batch of submissions, claims or
 * completions) travel as one entry: about 30 bytes a task instead of 130. @internal
 */
interface WireGroup {
  readonly type: TaskEvent.TaskEventType
  readonly name: string
  readonly queue: string
  readonly status: TaskStatus.TaskStatus
  readonly attempt: number
  readonly at: number
  /** Every event has `result: null` (a task that returned nothing). */
  readonly nullResult?: 1
  readonly ids: ReadonlyArray<string>
}

/** What the sender sends: a wake-up, or the events of one statement. */
type Outgoing = { readonly _tag: "work" } | { readonly _tag: "events"; readonly events: ReadonlyArray<WireEvent> }

const byteLength = (text: string): number => Buffer.byteLength(text, "utf8")

/** An event a group can carry: nothing but its task sets it apart. */
const groupable = (event: WireEvent): boolean =>
  event.progress === undefined && event.message === undefined && event.error === undefined &&
  (event.result === undefined || event.result === null)

const alike = (a: WireEvent, b: WireEvent): boolean =>
  a.type === b.type && a.name === b.name && a.queue === b.queue && a.status === b.status &&
  a.attempt === b.attempt && a.at === b.at && (a.result === null) === (b.result === null)

/** The opening of a group's JSON, up to its first id. */
const groupPrefix = (event: WireEvent): string => {
  const { attempt, at, name, queue, status, type } = event
  const group = event.result === null ? { type, name, queue, status, attempt, at, nullResult: 1 } : {
    type,
    name,
    queue,
    status,
    attempt,
    at
  }
  return `${JSON.stringify(group).slice(0, -1)},"ids":[`
}

/**
 * Packs outgoing work signals and events into as few notification payloads as fit, groups of
 * alike events as one entry each (split across payloads when too big for one).
 */
const packPayloads = (origin: string, items: ReadonlyArray<Outgoing>): Array<string> => {
  const work = items.some((item) => item._tag === "work")
  const payloads: Array<string> = []
  const head = work ? `{"o":${JSON.stringify(origin)},"w":1` : `{"o":${JSON.stringify(origin)}`
  const empty = byteLength(head) + 10
  let current: Array<string> = []
  let size = empty
  // the open group: its first event, the JSON up to its ids, and its ids so far
  let group: { readonly first: WireEvent; readonly prefix: string; ids: Array<string> } | undefined
  const closeGroup = () => {
    if (group !== undefined && group.ids.length > 0) current.push(`${group.prefix}${group.ids.join(",")}]}`)
    group = undefined
  }
  const flush = () => {
    closeGroup()
    payloads.push(current.length === 0 ? `${head}}` : `${head},"g":[${current.join(",")}]}`)
    current = []
    size = empty
  }
  for (const event of items.flatMap((item) => item._tag === "events" ? item.events : [])) {
    if (groupable(event)) {
      const id = JSON.stringify(event.taskId)
      const idBytes = byteLength(id) + 1
      if (group === undefined || !alike(group.first, event)) {
        closeGroup()
        const prefix = groupPrefix(event)
        const prefixBytes = byteLength(prefix) + 3
        if (current.length > 0 && size + prefixBytes + idBytes > MAX_PAYLOAD_BYTES) flush()
        group = { first: event, prefix, ids: [] }
        size += prefixBytes
      } else if (size + idBytes > MAX_PAYLOAD_BYTES) {
        const { first, prefix } = group
        flush()
        group = { first, prefix, ids: [] }
        size += byteLength(prefix) + 3
      }
      group.ids.push(id)
      size += idBytes
      continue
    }
    closeGroup()
    let text = JSON.stringify(event)
    if (byteLength(text) > MAX_EVENT_BYTES) {
      const { error: _error, message: _message, result: _result, ...rest } = event
      text = JSON.stringify(rest)
    }
    const bytes = byteLength(text) + 1
    if (current.length > 0 && size + bytes > MAX_PAYLOAD_BYTES) flush()
    current.push(text)
    size += bytes
  }
  closeGroup()
  if (current.length > 0 || work && payloads.length === 0) flush()
  return payloads
}

/** The events of a notification's entries, in order. */
const unpackEvents = (entries: ReadonlyArray<WireEvent | WireGroup>): Array<WireEvent> => {
  const events: Array<WireEvent> = []
  for (const entry of entries) {
    if (!("ids" in entry)) {
      events.push(entry)
      continue
    }
    const { attempt, at, ids, name, nullResult, queue, status, type } = entry
    for (const taskId of ids) {
      events.push(
        nullResult === 1
          ? { type, taskId, name, queue, status, attempt, at, result: null }
          : { type, taskId, name, queue, status, attempt, at }
      )
    }
  }
  return events
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

    /** The connections kept for the hot statements (see pgLane.ts). */
    const lanes = yield* PgLane.make(sql)
    const q = makeQueries(sql, tablesOf(schema), lanes.run)
    const channel = `${schema}_tasks`
    const codec = makeTaskRowCodec("native")
    const origin = crypto.randomUUID()

    const storeError = (operation: string) => (cause: SqlError.SqlError | { readonly message: string }) =>
      new TaskStoreError({ operation, message: cause.message, cause })

    /**
     * Runs a statement, uninterruptibly: an interrupted statement is cancelled by
     * `pg_cancel_backend`, and when its result came in meanwhile its connection went back to the
     * pool before the cancel was done, which then cancelled the next statement run there,
     * someone else's (a wait for work interrupted by a wake-up while it read the next due time
     * failed a later count, 2 runs in 40 of the latency benchmark). A statement thus always ends
     * before its caller is interrupted.
     */
    const query = <A, R>(operation: string, statement: Effect.Effect<A, SqlError.SqlError, R>) =>
      Effect.mapError(Effect.uninterruptible(statement), storeError(operation))

    const decodeAll = (operation: string, rows: ReadonlyArray<unknown>) =>
      Effect.mapError(codec.decodeAll(rows), storeError(operation))

    /** Runs a statement returning task rows and decodes them. */
    const queryTasks = <R>(
      operation: string,
      statement: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError, R>
    ) => Effect.flatMap(query(operation, statement), (rows) => decodeAll(operation, rows))

    // --- events and wake-ups -------------------------------------------------------------------

    const hub = yield* TaskStoreModule.makeEventHub
    const outbox = yield* Effect.acquireRelease(Queue.unbounded<Outgoing>(), Queue.shutdown)
    let sequence = 0
    const wakeUp = yield* Ref.make(yield* Deferred.make<void>())

    const signalLocal = Effect.flatMap(
      Deferred.make<void>(),
      (next) => Effect.flatMap(Ref.getAndSet(wakeUp, next), (current) => Deferred.succeed(current, undefined))
    )

    /** Wakes local waiters now, and other processes through the channel. */
    const signalWork = Effect.zipRight(signalLocal, Queue.offer(outbox, { _tag: "work" }))

    /** The local form of an event: numbered, its time a Date (built field by field: a spread costs more). */
    const localEvent = (event: WireEvent): TaskEvent.TaskEvent => {
      const { attempt, error, message, name, progress, queue, result, status, taskId, type } = event
      const local: { -readonly [K in keyof TaskEvent.TaskEvent]: TaskEvent.TaskEvent[K] } = {
        sequence: ++sequence,
        type,
        taskId,
        name,
        queue,
        status,
        attempt,
        at: new Date(event.at)
      }
      if (progress !== undefined) local.progress = progress
      if (message !== undefined) local.message = message
      if (error !== undefined) local.error = error
      if ("result" in event) local.result = result
      return local
    }

    /** Publishes, in their local form, the events someone here listens to. */
    const publishLocal = (events: ReadonlyArray<WireEvent>) => {
      const wanted: Array<TaskEvent.TaskEvent> = []
      for (const event of events) if (hub.wants(event.type)) wanted.push(localEvent(event))
      return hub.publish(wanted)
    }

    /** Publishes events here, and queues them for the other stores while there may be any. */
    const publish = (events: ReadonlyArray<WireEvent>) =>
      events.length === 0 ? Effect.void : peers.size === 0 ? publishLocal(events) : Effect.zipRight(
        publishLocal(events),
        Queue.offer(outbox, { _tag: "events", events })
      )

    /**
     * Whether events of `type` would reach anyone: a subscriber here, or another store. Asked
     * once a change is committed, so that changes nobody watches build no event (see
     * `TaskStore.makeEventHub`).
     */
    const listened = (type: TaskEvent.TaskEventType): boolean => peers.size > 0 || hub.wants(type)

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

    const healthCheck = Duration.decode(options.listenHealthCheck ?? DEFAULT_PROBE_MS)
    const healthCheckMs = Duration.toMillis(healthCheck)
    // Peers and probes run on the live clock, as the listener and the sender.
    const clock = Clock.make()

    // --- the other stores on the channel ---------------------------------------------------------
    // Events and wake-ups are for the other stores listening on the channel (in this process or
    // another): this store's own waiters and subscribers have them already. They are sent only
    // while another store may be listening, so a process alone with its database (the embedded
    // case, a single worker) sends no notification for them. Every store probes its listener now
    // and then (below), and a probe tells every other store that it is there and when it will
    // probe next; a store heard for the first time hears back at once; a closing store says bye.

    /** Other stores, by origin: until when each counts as live (`PEER_LIVE_PROBES` probe intervals). */
    const peers = new Map<string, number>()
    /** The send time of the latest of this store's own probes heard back: its listener heard then. */
    let heardOwnAt = 0
    let confirmedAt = Number.NEGATIVE_INFINITY

    const sendProbe = (nonce: number) =>
      query(
        "notify",
        q.notifyOne(
          channel,
          JSON.stringify({ o: origin, probe: nonce, hc: healthCheckMs, t: clock.unsafeCurrentTimeMillis() })
        )
      )

    /** Notes a message of another store; true when that store was not known (or its time was up). */
    const notePeer = (message: Message): boolean => {
      if (message.bye === 1) {
        peers.delete(message.o)
        return false
      }
      const now = clock.unsafeCurrentTimeMillis()
      const known = peers.get(message.o)
      const until = now + PEER_LIVE_PROBES * (message.hc ?? DEFAULT_PROBE_MS)
      if (known === undefined || known < until) peers.set(message.o, until)
      return known === undefined || known < now
    }

    /**
     * Whether another store may be listening. A store whose time is up is dropped only once this
     * store's own listener is known to have heard the channel since (a probe sent after that time
     * came back): a store that stopped hearing (its LISTEN connection lost) keeps sending meanwhile,
     * and probes, at most once a second, to find out.
     */
    const peersListening: Effect.Effect<boolean> = Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      let live = false
      let unconfirmed = false
      for (const [peer, until] of peers) {
        if (until >= now) live = true
        else if (until < heardOwnAt) peers.delete(peer)
        else unconfirmed = true
      }
      if (!unconfirmed || now - confirmedAt < 1_000) return Effect.succeed(live || unconfirmed)
      confirmedAt = now
      return Effect.as(Effect.forkDaemon(Effect.ignore(sendProbe(0))), true)
    })

    const send = (items: ReadonlyArray<Outgoing>) =>
      items.length === 0 ? Effect.void : Effect.flatMap(peersListening, (listening) =>
        listening
          ? query("notify", q.notify(channel, JSON.stringify(packPayloads(origin, items)))).pipe(
            Effect.catchAllCause((cause) => Effect.logWarning("PgTaskStore: NOTIFY failed", cause))
          )
          : Effect.void)

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
    // releases reach the other processes. Then the others hear that this store is gone.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(outbox), (rest) => send(Chunk.toReadonlyArray(rest))).pipe(
        Effect.zipRight(
          peers.size === 0
            ? Effect.void
            : Effect.ignore(query("notify", q.notifyOne(channel, JSON.stringify({ o: origin, bye: 1 }))))
        )
      )
    )

    // Probes: a notification to ourselves, to know that the listener hears the channel.
    let probeNonce = 0
    let probeHeard = yield* Deferred.make<void>()
    const probe = (timeout: Duration.DurationInput) =>
      Effect.gen(function*() {
        const nonce = ++probeNonce
        const heard = yield* Deferred.make<void>()
        probeHeard = heard
        yield* Effect.ignore(sendProbe(nonce))
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
          if (typeof message.t === "number" && message.t > heardOwnAt) heardOwnAt = message.t
          return message.probe === probeNonce ? Deferred.succeed(probeHeard, undefined) : Effect.void
        }
        // A store heard for the first time hears back at once (a probe nobody waits for), so that
        // it sends its events here from now on instead of after this store's next probe.
        const hello = notePeer(message) ? Effect.forkDaemon(Effect.ignore(sendProbe(0))) : Effect.void
        return Effect.zipRight(
          hello,
          Effect.zipRight(
            message.w === 1 ? signalLocal : Effect.void,
            message.g !== undefined ?
              publishLocal(unpackEvents(message.g)) :
              message.e !== undefined ?
              publishLocal(message.e) :
              Effect.void
          )
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

    /** The handoffs of the `awaitWork` calls waiting (see `TaskStore.awaitWork`). */
    const handoffs = TaskStoreModule.makeHandoffs()

    /**
     * A lone task taken by a waiting worker of this process: inserted claimed by it in one
     * statement on a lane (unless its queue is paused), then handed to it. Wakes nobody when
     * claimed. The worker starts it before its events are published (they wait on nobody).
     */
    const insertHandedOff = (
      handoff: TaskStore.TaskStore.Handoff,
      input: TaskRecord.NewTask,
      now: number
    ): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.Inserted>, StoreError> => {
      let received = false
      /** Gives the worker its task, or nothing (the insert failed, or the queue is paused), once. */
      const receive = (record: TaskRecord.TaskRecord | undefined) => {
        if (received) return
        received = true
        handoff.receive(record)
      }
      return Effect.gen(function*() {
        const row = yield* Effect.try({
          try: () => newTaskColumns(input, now),
          catch: (cause) => new TaskStoreError({ operation: "tasksInsert", message: String(cause), cause })
        })
        const record = recordFromColumns(row)
        if (Either.isLeft(record)) return yield* storeError("tasksInsert")(record.left)
        const handed = TaskStoreModule.claimedRecord(record.right, handoff, now)
        // readied by the worker while the insert is on its way (a microtask runs once this fiber
        // waits for the reply)
        const prepare = handoff.prepare
        if (prepare !== undefined) queueMicrotask(() => prepare(handed))
        // the worker gets its task (or nothing, its queue paused) as the driver hands over the
        // reply, before this fiber resumes
        const [inserted] = yield* query(
          "tasksInsert",
          lanes.execute(
            q.insertClaimed(row, { workerId: handoff.workerId, now, leaseMs: handoff.leaseMs }),
            (rows) => receive(rows[0]?.status === "running" ? handed : undefined)
          )
        )
        if (inserted?.status !== "running") {
          yield* publish([event("submitted", record.right)])
          yield* signalWork
          return [{ task: record.right, created: true }]
        }
        yield* publish([event("submitted", record.right), event("started", handed)])
        return [{ task: handed, created: true }]
      }).pipe(Effect.ensuring(Effect.sync(() => receive(undefined))))
    }

    const tasksInsert: Service["tasksInsert"] = ({ tasks: inputs }) =>
      handoffs.waiting() ?
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const handoff = handoffs.take(inputs, now)
          return handoff === undefined ? insertMany(inputs) : insertHandedOff(handoff, inputs[0]!, now)
        }) :
        insertMany(inputs)

    const insertMany = (inputs: ReadonlyArray<TaskRecord.NewTask>) =>
      Effect.gen(function*() {
        if (inputs.length === 0) return []
        const now = yield* Clock.currentTimeMillis
        const columns = yield* Effect.try({
          try: () => inputs.map((input) => newTaskColumns(input, now)),
          catch: (cause) => new TaskStoreError({ operation: "tasksInsert", message: String(cause), cause })
        })
        // Only the ids come back: the records are made from the columns sent (no decoding).
        // Without idempotency keys every row is inserted; otherwise only the inserted ids come
        // back. Either way the records are made from the columns sent (no decoding).
        let createdIds: ReadonlySet<string> | undefined
        if (columns.some((column) => column.idempotency_key !== null)) {
          const rows = yield* query("tasksInsert", q.insertKeyed(columns))
          createdIds = new Set(rows.map((row) => row.id))
        } else {
          yield* query("tasksInsert", q.insert(columns))
        }
        const inserted: Array<TaskRecord.TaskRecord> = []
        for (const column of columns) {
          if (createdIds !== undefined && !createdIds.has(column.id)) continue
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
            q.byIdempotencyKeys(lookup.map((c) => c.name), lookup.map((c) => c.idempotency_key!))
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
        const rows = yield* query(
          "tasksClaim",
          q.claim({ workerId, now, leaseMs, limit: Math.floor(limit), queues, names })
        )
        const claim = { workerId, now, leaseExpiresAt: now + leaseMs }
        const claimed = yield* decodeAll("tasksClaim", rows.map((row) => claimedRow(row, claim)))
        const ordered = [...claimed].sort(TaskStoreModule.compareClaimOrder)
        if (listened("started")) yield* publish(ordered.map((task) => event("started", task)))
        return ordered
      })

    const tasksHeartbeat: Service["tasksHeartbeat"] = ({ ids, leaseMs, workerId }) =>
      Effect.gen(function*() {
        if (ids.length === 0) return { renewed: [], lost: [], cancelRequested: [] }
        const now = yield* Clock.currentTimeMillis
        const rows = yield* query("tasksHeartbeat", q.heartbeat({ workerId, ids, leaseExpiresAt: now + leaseMs }))
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
      set: ReturnType<typeof q.setResult>
    ) =>
      Effect.flatMap(
        queryTasks(operation, q.leaveRunning({ id, workerId, to, finished: TaskStatus.isFinished(to), now, set })),
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
          q.setResult(encodeJson(result))
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
          q.setError(JSON.stringify(error), outcome._tag === "retry" ? outcome.runAt.getTime() : undefined)
        )
        yield* publish([event(TaskStoreModule.failEventType(outcome), task, { error })])
        if (outcome._tag === "retry") yield* signalWork
        return task
      })

    /**
     * Settles a batch in one statement (see `settleBatch`): `run` gets the JSON of the first item
     * of each id and returns the rows it changed; `eventOf` makes the event of each.
     */
    const settleMany = <I extends { readonly id: string; readonly workerId: string }>(
      operation: string,
      items: ReadonlyArray<I>,
      encode: (item: I) => unknown,
      run: (json: string, now: number) => Effect.Effect<ReadonlyArray<SettledRow>, SqlError.SqlError>,
      /** The type of an item's event: built by `eventOf` only when listened to. */
      typeOf: (item: I) => TaskEvent.TaskEventType,
      eventOf: (item: I, row: SettledRow, now: number, type: TaskEvent.TaskEventType) => WireEvent
    ): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.BatchOutcome>, StoreError> =>
      Effect.gen(function*() {
        if (items.length === 0) return []
        const batch = settleBatch(items, encode)
        const now = yield* Clock.currentTimeMillis
        const rows = yield* query(operation, run(batch.json, now))
        const events: Array<WireEvent> = []
        const outcomes = batch.outcomes(rows, (item, row) => {
          const type = typeOf(item)
          if (listened(type)) events.push(eventOf(item, row, now, type))
        })
        yield* publish(events)
        return outcomes
      })

    const tasksComplete: Service["tasksComplete"] = ({ items }) => {
      const { results, same } = completionResults(items)
      return settleMany(
        "tasksComplete",
        items,
        same ? (item) => item.id : (item) => ({ i: item.id, w: item.workerId, r: results.get(item.id)! }),
        same
          ? (ids, now) => q.completeSame({ ids, workerId: items[0]!.workerId, result: results.get(items[0]!.id)!, now })
          : (items, now) => q.completeMany({ items, now }),
        () => "succeeded",
        (item, row, now, type) => ({
          type,
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
      const failures = failureItems()
      return Effect.tap(
        settleMany(
          "tasksFail",
          items,
          failures.encode,
          (items, now) => q.failMany({ items, now }),
          ({ outcome }) => TaskStoreModule.failEventType(outcome),
          ({ id, outcome }, row, now, type) => ({
            type,
            taskId: row.id,
            name: row.name,
            queue: row.queue,
            status: TaskStoreModule.failStatus(outcome),
            attempt: row.attempt,
            at: now,
            error: failures.error(id)
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
        const released = yield* queryTasks("tasksRelease", q.release({ workerId, ids, now }))
        yield* publish(released.map((task) => event(task.status === "cancelled" ? "cancelled" : "released", task)))
        if (released.some((task) => task.status === "pending")) yield* signalWork
        return released.length
      })

    const tasksRescue: Service["tasksRescue"] = (params) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const limit = params.limit === undefined ? null : Math.max(0, Math.floor(params.limit))
        const rescued = yield* queryTasks("tasksRescue", q.rescue({ now, limit }))
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
        queryTasks(operation, q.get(id)),
        (rows) => rows.length === 0 ? Effect.fail(new TaskNotFound({ taskId: id })) : Effect.succeed(rows[0]!)
      )

    const taskCancel: Service["taskCancel"] = ({ id }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* queryTasks("taskCancel", q.cancel({ id, now }))
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
          q.retry({ id, status: to, runAt: at, extraAttempts: extraAttempts ?? 1, from: TaskStatus.retryable, now })
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
        const rows = yield* queryTasks("taskProgress", q.progress({ id, workerId, progress, message, now }))
        const task = rows[0]
        if (task === undefined) return yield* new LeaseLost({ taskId: id, workerId })
        yield* publish([event("progress", task, message === undefined ? { progress } : { progress, message })])
      })

    const taskLogAppend: Service["taskLogAppend"] = ({ lines }) =>
      lines.length === 0 ? Effect.void : Effect.asVoid(query(
        "taskLogAppend",
        q.logAppend(JSON.stringify(lines.map((line) => ({ ...line, at: line.at.getTime() }))))
      ))

    const taskLogs: Service["taskLogs"] = ({ id }) =>
      Effect.map(
        query("taskLogs", q.logs(id)),
        (rows) =>
          rows.map((row): TaskRecord.TaskLogLine => ({
            taskId: row.task_id,
            attempt: row.attempt,
            at: new Date(Number(row.at)),
            level: row.level as TaskRecord.TaskLogLine["level"],
            message: row.message
          }))
      )

    const taskGet: Service["taskGet"] = ({ id }) =>
      Effect.map(queryTasks("taskGet", q.get(id)), (rows) => Option.fromNullable(rows[0]))

    const tasksList: Service["tasksList"] = (params) =>
      Effect.gen(function*() {
        const key = params.sortBy ?? "createdAt"
        const limit = Math.min(1000, Math.max(1, Math.floor(params.limit ?? 50)))
        let after: readonly [number, string] | undefined
        if (params.cursor !== undefined) {
          after = decodeCursor(params.cursor)
          if (after === undefined) {
            return yield* new TaskStoreError({ operation: "tasksList", message: "invalid cursor" })
          }
        }
        const items = yield* queryTasks(
          "tasksList",
          q.list({ filter: params.filter, sortBy: key, order: params.order ?? "desc", limit: limit + 1, after })
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

    /** The counts of (name, queue, status) rows and the paused queues, as `Counts`. */
    const countsOf = (
      rows: ReadonlyArray<
        {
          readonly name: string
          readonly queue: string
          readonly status: TaskStatus.TaskStatus
          readonly count: string
        }
      >,
      paused: ReadonlyArray<{ readonly queue: string }>
    ) => {
      const counter = TaskStoreModule.makeCounter(paused.map((row) => row.queue))
      for (const row of rows) counter.add(row.name, row.queue, row.status, Number(row.count))
      return counter.counts()
    }

    const tasksCount: Service["tasksCount"] = () =>
      Effect.map(
        Effect.all([query("tasksCount", q.counts), query("tasksCount", q.pausedQueues)], { concurrency: "unbounded" }),
        ([counts, paused]) => countsOf(counts, paused)
      )

    const tasksStats: Service["tasksStats"] = (params) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const minutes = Math.max(1, Math.floor(params.minutes ?? 60))
        const currentMinute = Math.floor(now / MINUTE) * MINUTE
        const windowStart = currentMinute - (minutes - 1) * MINUTE
        const currentHour = Math.floor(now / HOUR) * HOUR
        const hoursStart = currentHour - 23 * HOUR
        const { counts, durations, hours, paused, perMinute } = yield* Effect.all({
          counts: query("tasksStats", q.counts),
          paused: query("tasksStats", q.pausedQueues),
          perMinute: query("tasksStats", q.finishedBuckets({ since: windowStart, bucketMs: MINUTE, buckets: minutes })),
          hours: query("tasksStats", q.finishedBuckets({ since: hoursStart, bucketMs: HOUR, buckets: 24 })),
          durations: query("tasksStats", q.durations(windowStart))
        }, { concurrency: "unbounded" })
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
        for (const row of perMinute) {
          const bucket = throughput[Number(row.bucket)]!
          bucket.succeeded = Number(row.succeeded)
          bucket.failed = Number(row.failed)
          succeeded += bucket.succeeded
          failed += bucket.failed
        }
        for (const row of hours) {
          const bucket = hourly[Number(row.bucket)]!
          bucket.succeeded = Number(row.succeeded)
          bucket.failed = Number(row.failed)
        }
        const timed = Number(durations[0]?.n ?? 0)
        const stats: TaskStore.TaskStore.Stats = {
          ...countsOf(counts, paused),
          throughput,
          successRate: succeeded + failed === 0 ? 1 : succeeded / (succeeded + failed),
          meanDurationMs: timed === 0 ? 0 : Number(durations[0]!.total) / timed,
          p95DurationMs: timed === 0 ? 0 : Number(durations[0]!.p95),
          hourly
        }
        return stats
      })

    const tasksDelete: Service["tasksDelete"] = ({ finishedBefore, statuses }) =>
      Effect.map(
        query(
          "tasksDelete",
          q.deleteFinished(
            finishedBefore.getTime(),
            (statuses ?? finishedStatuses).filter((status) => TaskStatus.isFinished(status))
          )
        ),
        (rows) => Number(rows[0]?.count ?? 0)
      )

    const queuePause: Service["queuePause"] = ({ queue }) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.asVoid(query("queuePause", q.pause(queue, now))))

    const queueResume: Service["queueResume"] = ({ queue }) =>
      Effect.flatMap(
        query("queueResume", q.resume(queue)),
        (rows) => rows.length > 0 ? signalWork : Effect.void
      )

    const queuesList: Service["queuesList"] = () =>
      Effect.map(
        query("queuesList", q.queues),
        (rows) => rows.map((row) => ({ queue: row.queue, paused: row.paused }))
      )

    const awaitWork: Service["awaitWork"] = ({ handoff, timeoutMs }) =>
      Effect.zipRight(lanes.want, handoffs.offer(handoff, waitForWork(timeoutMs)))

    const waitForWork = (timeoutMs: number) =>
      Effect.gen(function*() {
        const signal = yield* Ref.get(wakeUp)
        const now = yield* Clock.currentTimeMillis
        // Wake up when the next scheduled task falls due, if that comes before the timeout.
        const next = yield* query("awaitWork", q.nextDue(now)).pipe(
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
