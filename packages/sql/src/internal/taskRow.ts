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
import { TaskRecord, TaskStatus } from "@spindle/tasks"
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

/**
 * A decoder of raw rows (as the driver returns them) into `TaskRecord`s.
 *
 * @internal
 */
export const makeTaskRowCodec = (mode: JsonMode) => {
  const Row = makeTaskRow(mode)
  const decodeRow = Schema.decodeUnknownEither(Row)
  const decode = (raw: unknown): Either.Either<TaskRecord.TaskRecord, ParseResult.ParseError> =>
    Either.map(decodeRow(raw), recordFromRow)
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
  return { Row, decode, decodeAll } as const
}

/** JSON as text for a JSON column; `undefined` becomes `null`. @internal */
export const encodeJson = (value: unknown): string => JSON.stringify(value === undefined ? null : value)

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

/** The number of columns of a task row (for the bound-variable limit of multi-row inserts). @internal */
export const taskColumnCount = 26

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

/**
 * The sort value of a record for a listing cursor; priority sorts by importance (critical
 * highest), as the SQL `(3 - priority)` does. @internal
 */
export const sortValue = (record: TaskRecord.TaskRecord, key: keyof typeof sortColumn): number => {
  switch (key) {
    case "createdAt":
      return record.createdAt.getTime()
    case "runAt":
      return record.runAt.getTime()
    case "updatedAt":
      return record.updatedAt.getTime()
    case "priority":
      return 3 - TaskRecord.priorityRank[record.priority]
  }
}

/** Statuses in which a task is finished, as SQL literals can list them. @internal */
export const finishedStatuses: ReadonlyArray<TaskStatus.TaskStatus> = TaskStatus.all.filter(TaskStatus.isFinished)
