/**
 * The row form of a task, shared by the SQLite and Postgres stores, and its mapping to and from
 * `TaskRecord`. Dialect-neutral:
 *
 * - times are integer epoch milliseconds in both dialects (INTEGER in SQLite, BIGINT in
 *   Postgres);
 * - integer columns accept `number | bigint | string` (node-postgres returns BIGINT as a
 *   string, better-sqlite3 returns a bigint under `safeIntegers`);
 * - JSON columns are TEXT in SQLite (a JSON string to parse) and jsonb in Postgres (a value
 *   already parsed by the driver). A JSON string value such as `"hi"` is ambiguous between the
 *   two, so the decoder is made for one of them: `makeTaskRowCodec("text")` or
 *   `makeTaskRowCodec("native")`.
 *
 * Writing goes through `newTaskColumns` / `encodeJson`: JSON always as text, which SQLite stores
 * as is and Postgres casts (`$1::jsonb`).
 *
 * @internal
 */
import { RetryPolicy } from "@spindle/core"
import { TaskRecord, TaskStatus, TaskStore } from "@spindle/tasks"
import { Either, ParseResult, Schema } from "effect"

/** @internal */
export const IntColumn: Schema.Schema<number, number | bigint | string> = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.BigIntFromSelf, Schema.String),
  Schema.Number,
  {
    strict: true,
    decode: (value, _, ast) => {
      const n = typeof value === "number" ? value : Number(value)
      return Number.isFinite(n)
        ? ParseResult.succeed(n)
        : ParseResult.fail(new ParseResult.Type(ast, value, "expected an integer column"))
    },
    encode: (n) => ParseResult.succeed(n)
  }
)

/** @internal */
export const NullableIntColumn = Schema.NullOr(IntColumn)

/** @internal */
export const RealColumn = IntColumn

/** @internal */
export const BooleanColumn: Schema.Schema<boolean, boolean | number | bigint | string> = Schema.transform(
  Schema.Union(Schema.Boolean, Schema.Number, Schema.BigIntFromSelf, Schema.String),
  Schema.Boolean,
  {
    strict: true,
    decode: (value) =>
      typeof value === "boolean" ? value : typeof value === "string" ?
        value === "1" || value === "t" ||
        value === "true" :
        Number(value) !== 0,
    encode: (b) => b
  }
)

/** JSON stored as text (SQLite). @internal */
export const JsonText: Schema.Schema<unknown, string> = Schema.parseJson()

/** JSON already parsed by the driver (Postgres jsonb). @internal */
export const JsonNative: Schema.Schema<unknown, unknown> = Schema.Unknown

/** @internal */
export type JsonMode = "text" | "native"

/** @internal */
export const makeTaskRow = (mode: JsonMode) => {
  const json = <A, I>(schema: Schema.Schema<A, I>): Schema.Schema<A, any> =>
    mode === "text" ? Schema.parseJson(schema) : schema
  const Json: Schema.Schema<unknown, any> = mode === "text" ? JsonText : JsonNative
  return Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    queue: Schema.String,
    status: TaskStatus.TaskStatus,
    priority: IntColumn,
    payload: Json,
    result: Schema.NullOr(Json),
    error: Schema.NullOr(json(TaskRecord.TaskError)),
    attempt: IntColumn,
    max_attempts: IntColumn,
    retry: Schema.NullOr(json(RetryPolicy.Schema)),
    timeout_ms: NullableIntColumn,
    soft_timeout_ms: NullableIntColumn,
    run_at: IntColumn,
    created_at: IntColumn,
    updated_at: IntColumn,
    started_at: NullableIntColumn,
    finished_at: NullableIntColumn,
    lease_owner: Schema.NullOr(Schema.String),
    lease_expires_at: NullableIntColumn,
    cancel_requested: BooleanColumn,
    progress: RealColumn,
    progress_message: Schema.NullOr(Schema.String),
    idempotency_key: Schema.NullOr(Schema.String),
    parent_id: Schema.NullOr(Schema.String),
    tags: json(Schema.Array(Schema.String))
  })
}

/** The decoded row (numbers, parsed and validated JSON). @internal */
export type TaskRow = Schema.Schema.Type<ReturnType<typeof makeTaskRow>>

const date = (millis: number | null): Date | null => millis === null ? null : new Date(millis)

/** A decoded row as a `TaskRecord`. @internal */
export const recordFromRow = (row: TaskRow): TaskRecord.TaskRecord => ({
  id: row.id,
  name: row.name,
  queue: row.queue,
  status: row.status,
  priority: TaskRecord.priorityOfRank(row.priority),
  payload: row.payload,
  result: row.result ?? null,
  error: row.error,
  attempt: row.attempt,
  maxAttempts: row.max_attempts,
  retry: row.retry,
  timeoutMs: row.timeout_ms,
  softTimeoutMs: row.soft_timeout_ms,
  runAt: new Date(row.run_at),
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
  startedAt: date(row.started_at),
  finishedAt: date(row.finished_at),
  leaseOwner: row.lease_owner,
  leaseExpiresAt: date(row.lease_expires_at),
  cancelRequested: row.cancel_requested,
  progress: row.progress,
  progressMessage: row.progress_message,
  idempotencyKey: row.idempotency_key,
  parentId: row.parent_id,
  tags: row.tags
})

/** Marks a value the fast decoder does not accept: the Schema decoder then has the last word. @internal */
export const Fallback: unique symbol = Symbol.for("@spindle/sql/taskRow/Fallback")
/** @internal */
export type Fallback = typeof Fallback

const intColumn = (value: unknown): number | Fallback => {
  if (typeof value === "number") return Number.isFinite(value) ? value : Fallback
  if (typeof value === "bigint" || typeof value === "string") {
    const n = Number(value)
    return Number.isFinite(n) ? n : Fallback
  }
  return Fallback
}

const nullableIntColumn = (value: unknown): number | null | Fallback => value === null ? null : intColumn(value)

const booleanColumn = (value: unknown): boolean | Fallback => {
  switch (typeof value) {
    case "boolean":
      return value
    case "string":
      return value === "1" || value === "t" || value === "true"
    case "number":
    case "bigint":
      return Number(value) !== 0
    default:
      return Fallback
  }
}

const nullableString = (value: unknown): string | null | Fallback =>
  value === null || typeof value === "string" ? value : Fallback

const statuses: ReadonlySet<unknown> = new Set(TaskStatus.all)

/**
 * The row decoder of the hot path (claims and listings decode every row): the same result as
 * the `Row` Schema (a test checks them against each other), without the Schema machinery
 * (about 100 µs a row). Anything it does not recognise exactly (a missing or mistyped column,
 * a malformed JSON text) returns `Fallback`, and the Schema decodes the row instead, which
 * either accepts it or reports the ParseError. Errors and retry policies go through their
 * Schemas (retry policies are few and repeat: their decodings are cached by JSON text).
 *
 * @internal
 */
export const makeFastDecode = (mode: JsonMode) => {
  const parse: (value: unknown) => unknown | Fallback = mode === "text"
    ? (value) => {
      if (typeof value !== "string") return Fallback
      try {
        return JSON.parse(value) as unknown
      } catch {
        return Fallback
      }
    }
    : (value) => value === undefined ? Fallback : value
  const json = <A>(schema: Schema.Schema<A, any>) => {
    const decode = Schema.decodeUnknownEither(mode === "text" ? Schema.parseJson(schema) : schema)
    return (value: unknown): A | Fallback => {
      const decoded = decode(value)
      return Either.isRight(decoded) ? decoded.right : Fallback
    }
  }
  const decodeError = json(TaskRecord.TaskError)
  const decodeRetry = json(RetryPolicy.Schema)
  const retries = new Map<string, RetryPolicy.Serializable | Fallback>()
  const retryColumn = (value: unknown): RetryPolicy.Serializable | null | Fallback => {
    if (value === null) return null
    const key = mode === "text" ? (typeof value === "string" ? value : undefined) : JSON.stringify(value)
    if (key === undefined) return Fallback
    let decoded = retries.get(key)
    if (decoded === undefined) {
      decoded = decodeRetry(value)
      if (retries.size >= 256) retries.clear()
      retries.set(key, decoded)
    }
    return decoded
  }
  const tagsColumn = (value: unknown): ReadonlyArray<string> | Fallback => {
    const tags = parse(value)
    if (!Array.isArray(tags)) return Fallback
    for (const tag of tags) if (typeof tag !== "string") return Fallback
    return tags as ReadonlyArray<string>
  }

  return (raw: unknown): TaskRecord.TaskRecord | Fallback => {
    if (typeof raw !== "object" || raw === null) return Fallback
    const row = raw as { readonly [K in keyof TaskRow]?: unknown }
    const { id, name, queue, status } = row
    if (typeof id !== "string" || typeof name !== "string" || typeof queue !== "string" || !statuses.has(status)) {
      return Fallback
    }
    const priority = intColumn(row.priority)
    const payload = parse(row.payload)
    const result = row.result === null ? null : parse(row.result)
    const error = row.error === null ? null : decodeError(row.error)
    const attempt = intColumn(row.attempt)
    const maxAttempts = intColumn(row.max_attempts)
    const retry = retryColumn(row.retry)
    const timeoutMs = nullableIntColumn(row.timeout_ms)
    const softTimeoutMs = nullableIntColumn(row.soft_timeout_ms)
    const runAt = intColumn(row.run_at)
    const createdAt = intColumn(row.created_at)
    const updatedAt = intColumn(row.updated_at)
    const startedAt = nullableIntColumn(row.started_at)
    const finishedAt = nullableIntColumn(row.finished_at)
    const leaseOwner = nullableString(row.lease_owner)
    const leaseExpiresAt = nullableIntColumn(row.lease_expires_at)
    const cancelRequested = booleanColumn(row.cancel_requested)
    const progress = intColumn(row.progress)
    const progressMessage = nullableString(row.progress_message)
    const idempotencyKey = nullableString(row.idempotency_key)
    const parentId = nullableString(row.parent_id)
    const tags = tagsColumn(row.tags)
    if (
      priority === Fallback || payload === Fallback || result === Fallback || error === Fallback ||
      attempt === Fallback || maxAttempts === Fallback || retry === Fallback || timeoutMs === Fallback ||
      softTimeoutMs === Fallback || runAt === Fallback || createdAt === Fallback || updatedAt === Fallback ||
      startedAt === Fallback || finishedAt === Fallback || leaseOwner === Fallback || leaseExpiresAt === Fallback ||
      cancelRequested === Fallback || progress === Fallback || progressMessage === Fallback ||
      idempotencyKey === Fallback || parentId === Fallback || tags === Fallback
    ) {
      return Fallback
    }
    return {
      id,
      name,
      queue,
      status: status as TaskStatus.TaskStatus,
      priority: TaskRecord.priorityOfRank(priority),
      payload,
      result: result ?? null,
      error,
      attempt,
      maxAttempts,
      retry,
      timeoutMs,
      softTimeoutMs,
      runAt: new Date(runAt),
      createdAt: new Date(createdAt),
      updatedAt: new Date(updatedAt),
      startedAt: date(startedAt),
      finishedAt: date(finishedAt),
      leaseOwner,
      leaseExpiresAt: date(leaseExpiresAt),
      cancelRequested,
      progress,
      progressMessage,
      idempotencyKey,
      parentId,
      tags
    }
  }
}

/**
 * A decoder of raw rows (as the driver returns them) into `TaskRecord`s: a hand-written decoder
 * on the hot path, the `Row` Schema for anything it does not recognise (and for the errors).
 * `decodeSchema` is the Schema alone (the reference the fast decoder is tested against).
 *
 * @internal
 */
export const makeTaskRowCodec = (mode: JsonMode) => {
  const Row = makeTaskRow(mode)
  const decodeRow = Schema.decodeUnknownEither(Row)
  const fast = makeFastDecode(mode)
  const decodeSchema = (raw: unknown): Either.Either<TaskRecord.TaskRecord, ParseResult.ParseError> =>
    Either.map(decodeRow(raw), recordFromRow)
  const decode = (raw: unknown): Either.Either<TaskRecord.TaskRecord, ParseResult.ParseError> => {
    const record = fast(raw)
    return record === Fallback ? decodeSchema(raw) : Either.right(record)
  }
  const decodeAll = (
    raws: ReadonlyArray<unknown>
  ): Either.Either<ReadonlyArray<TaskRecord.TaskRecord>, ParseResult.ParseError> => {
    const out: Array<TaskRecord.TaskRecord> = []
    for (const raw of raws) {
      const decoded = decode(raw)
      if (Either.isLeft(decoded)) return Either.left(decoded.left)
      out.push(decoded.right)
    }
    return Either.right(out)
  }
  return { Row, decode, decodeAll, decodeSchema } as const
}

/**
 * JSON as text for a JSON column; `undefined` (and anything else JSON cannot represent on its
 * own, such as a function) becomes `null`. @internal
 */
export const encodeJson = (value: unknown): string => {
  const text = value === undefined ? undefined : JSON.stringify(value)
  return text === undefined ? "null" : text
}

const encodeRetry = Schema.encodeSync(RetryPolicy.Schema)

/**
 * The column values of a new task, every one a string, a number or null (JSON as text).
 *
 * @internal
 */
export interface NewTaskColumns {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly status: "pending" | "scheduled"
  readonly priority: number
  readonly payload: string
  readonly result: null
  readonly error: null
  readonly attempt: number
  readonly max_attempts: number
  readonly retry: string | null
  readonly timeout_ms: number | null
  readonly soft_timeout_ms: number | null
  readonly run_at: number
  readonly created_at: number
  readonly updated_at: number
  readonly started_at: null
  readonly finished_at: null
  readonly lease_owner: null
  readonly lease_expires_at: null
  readonly cancel_requested: number
  readonly progress: number
  readonly progress_message: null
  readonly idempotency_key: string | null
  readonly parent_id: string | null
  readonly tags: string
}

/**
 * The columns of a new task with the defaults of `NewTask` applied. Throws when the retry
 * policy cannot be encoded (a custom schedule): callers map that to their store error.
 *
 * @internal
 */
export const newTaskColumns = (task: TaskRecord.NewTask, now: number): NewTaskColumns => {
  const runAt = task.runAt === undefined ? now : task.runAt.getTime()
  return {
    id: task.id ?? TaskRecord.makeId(now),
    name: task.name,
    queue: task.queue ?? "default",
    status: runAt > now ? "scheduled" : "pending",
    priority: TaskRecord.priorityRank[task.priority ?? "normal"],
    payload: encodeJson(task.payload),
    result: null,
    error: null,
    attempt: 0,
    max_attempts: task.maxAttempts ?? 1,
    retry: task.retry === undefined || task.retry === null ? null : JSON.stringify(encodeRetry(task.retry)),
    timeout_ms: task.timeoutMs ?? null,
    soft_timeout_ms: task.softTimeoutMs ?? null,
    run_at: runAt,
    created_at: now,
    updated_at: now,
    started_at: null,
    finished_at: null,
    lease_owner: null,
    lease_expires_at: null,
    cancel_requested: 0,
    progress: 0,
    progress_message: null,
    idempotency_key: task.idempotencyKey ?? null,
    parent_id: task.parentId ?? null,
    tags: JSON.stringify(task.tags ?? [])
  }
}

const decodeRetryJson = Schema.decodeEither(Schema.parseJson(RetryPolicy.Schema))

/**
 * The record of a row just inserted from `columns`, without reading it back: JSON columns are
 * parsed from the text that was stored, so the record holds what a read would return.
 *
 * @internal
 */
export const recordFromColumns = (
  columns: NewTaskColumns
): Either.Either<TaskRecord.TaskRecord, ParseResult.ParseError> => {
  const retry = columns.retry === null ? Either.right(null) : decodeRetryJson(columns.retry)
  return Either.map(retry, (retry) =>
    recordFromRow({
      ...columns,
      payload: JSON.parse(columns.payload) as unknown,
      retry,
      cancel_requested: false,
      tags: JSON.parse(columns.tags) as ReadonlyArray<string>
    }))
}

/** Column names of a task row, in table order. @internal */
export const taskColumns: ReadonlyArray<keyof NewTaskColumns> = [
  "id",
  "name",
  "queue",
  "status",
  "priority",
  "payload",
  "result",
  "error",
  "attempt",
  "max_attempts",
  "retry",
  "timeout_ms",
  "soft_timeout_ms",
  "run_at",
  "created_at",
  "updated_at",
  "started_at",
  "finished_at",
  "lease_owner",
  "lease_expires_at",
  "cancel_requested",
  "progress",
  "progress_message",
  "idempotency_key",
  "parent_id",
  "tags"
]

/**
 * The columns an INSERT of new tasks sets, in table order; the others start as NULL, 0 or false.
 *
 * @internal
 */
export const newTaskSetColumns: ReadonlyArray<keyof NewTaskColumns> = taskColumns.filter((column) =>
  ![
    "result",
    "error",
    "attempt",
    "started_at",
    "finished_at",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested",
    "progress",
    "progress_message"
  ].includes(column)
)

/**
 * The columns a claim returns, in table order: those it does not set (`claimedRow` adds the
 * ones it sets, so the database sends and the driver reads fewer columns a row).
 *
 * @internal
 */
export const claimReturnedColumns: ReadonlyArray<keyof NewTaskColumns> = taskColumns.filter((column) =>
  !["status", "updated_at", "started_at", "finished_at", "lease_owner", "lease_expires_at", "cancel_requested"]
    .includes(column)
)

/**
 * A claimed row from the values of `claimReturnedColumns`, in that order, and what the claim
 * set: the same row as `RETURNING *` gives. Built as one literal, every claimed row has the
 * same shape (the decoder reading them stays monomorphic).
 *
 * @internal
 */
export const claimedRow = (
  values: ReadonlyArray<unknown>,
  claim: { readonly workerId: string; readonly now: number; readonly leaseExpiresAt: number }
): Record<string, unknown> => ({
  id: values[0],
  name: values[1],
  queue: values[2],
  status: "running",
  priority: values[3],
  payload: values[4],
  result: values[5],
  error: values[6],
  attempt: values[7],
  max_attempts: values[8],
  retry: values[9],
  timeout_ms: values[10],
  soft_timeout_ms: values[11],
  run_at: values[12],
  created_at: values[13],
  updated_at: claim.now,
  started_at: claim.now,
  finished_at: null,
  lease_owner: claim.workerId,
  lease_expires_at: claim.leaseExpiresAt,
  cancel_requested: false,
  progress: values[14],
  progress_message: values[15],
  idempotency_key: values[16],
  parent_id: values[17],
  tags: values[18]
})

/** The number of columns of a task row (for the bound-variable limit of multi-row inserts). @internal */
export const taskColumnCount = taskColumns.length

/** The column a listing sorts by. @internal */
export const sortColumn = {
  createdAt: "created_at",
  runAt: "run_at",
  updatedAt: "updated_at",
  priority: "priority"
} as const

/** A listing cursor: the sort value and id of the last item of a page. @internal */
export const encodeCursor = (value: number, id: string): string =>
  Buffer.from(JSON.stringify([value, id]), "utf8").toString("base64url")

/** @internal */
export const decodeCursor = (cursor: string): readonly [number, string] | undefined => {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
    if (
      Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === "number" && typeof parsed[1] === "string"
    ) {
      return [parsed[0], parsed[1]]
    }
    return undefined
  } catch {
    return undefined
  }
}

/** Statuses in which a task is finished, as SQL literals can list them. @internal */
export const finishedStatuses: ReadonlyArray<TaskStatus.TaskStatus> = TaskStatus.all.filter(TaskStatus.isFinished)

/**
 * The JSON items of a batch of failures, as both dialects' `failMany` read them (`i` id, `w`
 * worker, `s` new status, `e` error, `t` retry run-at or null); `error(id)` gives back the
 * stored error of an item for its event.
 *
 * @internal
 */
export const failureItems = (): {
  readonly encode: (failure: TaskStore.TaskStore.Failure) => object
  readonly error: (id: string) => TaskRecord.TaskError
} => {
  const errors = new Map<string, string>()
  return {
    encode: ({ error, id, outcome, workerId }) => {
      const text = encodeJson(error)
      errors.set(id, text)
      return {
        i: id,
        w: workerId,
        s: TaskStore.failStatus(outcome),
        e: text,
        t: outcome._tag === "retry" ? outcome.runAt.getTime() : null
      }
    },
    error: (id) => JSON.parse(errors.get(id)!) as TaskRecord.TaskError
  }
}

/**
 * The results of a batch of completions as JSON text (of the first item of each id), and
 * whether the batch has one worker and one result (tasks returning nothing, say): such a batch
 * takes the cheaper statement that reads ids alone.
 *
 * @internal
 */
export const completionResults = (
  items: ReadonlyArray<TaskStore.TaskStore.Completion>
): { readonly results: Map<string, string>; readonly same: boolean } => {
  const results = new Map<string, string>()
  let same = true
  for (const item of items) {
    if (results.has(item.id)) continue
    const result = encodeJson(item.result)
    results.set(item.id, result)
    same &&= item.workerId === items[0]!.workerId && result === results.get(items[0]!.id)
  }
  return { results, same }
}

/**
 * A batch of settlements (`tasksComplete`, `tasksFail`) made ready for one statement. Only the
 * first item of each id applies (a row is updated once): `json` is the JSON array of
 * `encode(item)` for those items, in input order, and `outcomes(rows)` gives the outcome of every
 * item in input order from the rows the statement changed: `lease-lost` for a repeated id or an
 * id with no row, else `settled` (after calling `onSettled` with the item and its row).
 *
 * @internal
 */
export const settleBatch = <I extends { readonly id: string }>(
  items: ReadonlyArray<I>,
  encode: (item: I) => unknown
): {
  readonly json: string
  readonly outcomes: <R extends { readonly id: string }>(
    rows: ReadonlyArray<R>,
    onSettled: (item: I, row: R) => void
  ) => Array<TaskStore.TaskStore.BatchOutcome>
} => {
  const firsts = new Map<string, I>()
  for (const item of items) if (!firsts.has(item.id)) firsts.set(item.id, item)
  const json = JSON.stringify(Array.from(firsts.values(), encode))
  return {
    json,
    outcomes: (rows, onSettled) => {
      const settled = new Map<string, (typeof rows)[number]>()
      for (const row of rows) settled.set(row.id, row)
      const outcomes: Array<TaskStore.TaskStore.BatchOutcome> = []
      for (const item of items) {
        const row = settled.get(item.id)
        if (row === undefined || firsts.get(item.id) !== item) {
          outcomes.push("lease-lost")
          continue
        }
        onSettled(item, row)
        outcomes.push("settled")
      }
      return outcomes
    }
  }
}
