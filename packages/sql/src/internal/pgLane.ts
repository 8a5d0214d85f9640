/**
 * Lanes: a few pooled connections a Postgres store keeps for its hot statements (the claims,
 * the batched completions, the handed-off insert), sent straight to them.
 *
 * Through the client's statements, each went through a span, a scope and the pool's checkout
 * (which waits for `process.nextTick`): 0.4 of the 2.7 ms from submit to start when the process
 * had been idle (`node bench/dist/durableSpindle.js pg latency 50 10`: code that has not run
 * lately runs slowly); the claim of a worker woken from idle went the same way. A drain of many
 * short tasks is no faster (its claims and completions are few and large).
 *
 * - Lanes are taken when first wanted (by a worker of the process waiting or claiming), not by
 *   stores that never claim: up to 3, leaving 2 connections to the pool (none from a pool of 2).
 * - A lane takes a statement only when free: a statement arriving while every lane is busy goes
 *   through the pool, so lanes never queue anything.
 * - Named statements (`execute`: the handed-off insert) are prepared once per lane
 *   and then only bound and run: parsing and planning the call each time was 0.15 to 0.3 ms of
 *   its round trip when idle (node-pg, 80 samples: 1.53 ms named, 1.67 ms unnamed). The driver
 *   prepares a statement given as `{ name, text }`, which `Connection.execute` hands it as is;
 *   a lane whose driver did not answer a probe so (a driver changed under us) runs text.
 * - `execute` with `onRows` (the handed-off insert) runs on the lane's node-pg client directly,
 *   when reachable, and gives the rows to `onRows` in the driver's callback: the worker starts
 *   the task before the store's fiber resumes (idle enqueue-to-start p50 2.18 ms instead of 2.26,
 *   6 alternated pairs of 50 samples).
 * - A lane whose connection was lost (the server restarted, the backend was terminated) is
 *   released (the pool discards the connection) and taken again when next wanted, at most once a
 *   second after a loss. A statement the lost connection refused before sending it goes through
 *   the pool; one lost in flight fails, as it would have through the pool.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { Statement } from "@effect/sql/Statement"
import { Effect, Exit, Scope } from "effect"

/**
 * A statement as text and parameters; with a `name` (unique to its text), a lane runs it
 * prepared. @internal
 */
export interface PgStatement {
  readonly text: string
  readonly params: ReadonlyArray<string | number | null>
  readonly name?: string | undefined
}

/** @internal */
export interface PgLanes {
  /**
   * Runs a statement given as text on a free lane, through the pool otherwise. `onRows`, when
   * given, sees the rows as the driver hands them over, before the calling fiber resumes (see
   * `DriverClient`); through the pool, just before it resumes.
   */
  readonly execute: (
    statement: PgStatement,
    onRows?: (rows: ReadonlyArray<Record<string, unknown>>) => void
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>
  /** Runs a statement on a free lane, as usual otherwise. */
  readonly run: <A extends object>(statement: Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError>
  /** Takes a lane in the background when fewer are held than may be. */
  readonly want: Effect.Effect<void>
}

/** The most lanes a store takes. */
const MAX_LANES = 3

/** The connections a store leaves to its pool. */
const LEFT_TO_POOL = 2

/** The messages of node-pg's refusals of a query on a connection already lost (never sent). */
const NEVER_SENT = new Set([
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable"
])

/**
 * Whether an error means the connection is gone: any error not sent by the server, or a
 * server's connection exception (class 08) or shutdown (57P01–57P03).
 */
const lostConnection = (error: SqlError): boolean => {
  const cause = error.cause as { readonly severity?: unknown; readonly code?: unknown } | undefined
  if (cause === undefined || cause === null || typeof cause !== "object" || cause.severity === undefined) return true
  const code = typeof cause.code === "string" ? cause.code : ""
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03"
}

const neverSent = (error: SqlError): boolean => {
  const cause = error.cause
  return cause instanceof Error && NEVER_SENT.has(cause.message)
}

/**
 * The node-pg client under a reserved connection of @effect/sql-pg (its `pg` field), when there
 * is one. A statement sent to it directly hands its rows to a callback in the driver's own
 * callback: through `Connection.execute`, they reached the caller once its fiber had resumed,
 * a scheduler turn and a few steps later (0.13 of the 0.25 ms from the handed-off insert's
 * reply to its handler's first line, when idle: code that has not run lately runs slowly).
 */
interface DriverClient {
  readonly query: (
    query: unknown,
    values: ReadonlyArray<unknown>,
    callback: (error: Error | null, result: { readonly rows?: ReadonlyArray<unknown> }) => void
  ) => void
}

/** @internal */
export const driverClientOf = (connection: Connection): DriverClient | undefined => {
  const client = (connection as { readonly pg?: unknown }).pg
  return typeof client === "object" && client !== null && typeof (client as DriverClient).query === "function"
    ? client as DriverClient
    : undefined
}

/**
 * `query` on the driver's client; `onRows` sees the rows in the driver's callback. Not
 * cancelled when interrupted (the store runs its statements uninterruptibly).
 */
const onDriver = <A>(
  client: DriverClient,
  query: unknown,
  params: ReadonlyArray<unknown>,
  onRows: (rows: ReadonlyArray<A>) => void
) =>
  Effect.async<ReadonlyArray<A>, SqlError>((resume) => {
    client.query(query, params, (error, result) => {
      if (error !== null && error !== undefined) {
        return resume(Effect.fail(new SqlError({ cause: error, message: "Failed to execute statement" })))
      }
      const rows = (result.rows ?? []) as ReadonlyArray<A>
      // in the driver's callback: a throw here would escape into the socket's event handler
      try {
        onRows(rows)
      } catch (defect) {
        return resume(Effect.die(defect))
      }
      resume(Effect.succeed(rows))
    })
  })

interface Lane {
  readonly connection: Connection
  /** The driver's client under `connection`, if reachable (see `DriverClient`). */
  readonly driver: DriverClient | undefined
  readonly scope: Scope.CloseableScope
  /** Whether its named statements run prepared (see `prepared`). */
  readonly prepares: boolean
  busy: boolean
}

/**
 * A name for a prepared statement of `text`, the same for the same text: its FNV-1a hash, short
 * enough for Postgres (which cuts names at 63 bytes, so that names made of a schema's could
 * clash).
 *
 * @internal
 */
export const statementName = (text: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return `spindle_${(hash >>> 0).toString(16)}_${text.length}`
}

/**
 * A named statement as node-pg's query of a prepared statement (see the module's comment), in
 * place of the text `Connection.execute` takes.
 */
const prepared = (name: string, text: string): string => ({ name, text }) as unknown as string

/** Whether the driver prepared a statement handed to it as `prepared` text. */
const preparesStatements = (connection: Connection) =>
  connection.execute(prepared("spindle_probe", "SELECT 1 AS spindle_prepared"), [], undefined).pipe(
    Effect.map((rows) => rows.length === 1 && rows[0]?.spindle_prepared === 1),
    Effect.catchAllCause(() => Effect.succeed(false))
  )

/** @internal */
export const make = (sql: PgClient.PgClient): Effect.Effect<PgLanes, never, Scope.Scope> =>
  Effect.gen(function*() {
    const size = Math.min(MAX_LANES, (sql.config.maxConnections ?? 10) - LEFT_TO_POOL)
    /** A statement given as text, through the pool; `onRows` sees its rows before the caller does. */
    const throughPool = (
      statement: PgStatement,
      onRows: ((rows: ReadonlyArray<Record<string, unknown>>) => void) | undefined
    ) => {
      const rows = sql.unsafe<Record<string, unknown>>(statement.text, statement.params).withoutTransform
      return onRows === undefined ? rows : Effect.tap(rows, (rows) => Effect.sync(() => onRows(rows)))
    }
    if (size < 1) {
      return {
        execute: throughPool,
        run: (statement) => statement,
        want: Effect.void
      }
    }

    const storeScope = yield* Effect.scope
    const lanes: Array<Lane> = []
    let taking = 0
    let lostAt = Number.NEGATIVE_INFINITY
    let closed = false

    const release = (lane: Lane) =>
      Effect.suspend(() => {
        const index = lanes.indexOf(lane)
        if (index >= 0) lanes.splice(index, 1)
        return Scope.close(lane.scope, Exit.void)
      })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(lanes.slice(), release, { discard: true })
      })
    )

    // uninterruptible: a checkout interrupted midway would leave the pool's connection out
    const take = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const reserved = yield* Effect.exit(Scope.extend(sql.reserve, scope))
      const prepares = Exit.isSuccess(reserved) && !closed ? yield* preparesStatements(reserved.value) : false
      // counted as taking until held, so that no more are taken than `size`
      taking--
      if (Exit.isFailure(reserved) || closed) return yield* Scope.close(scope, Exit.void)
      lanes.push({ connection: reserved.value, driver: driverClientOf(reserved.value), scope, prepares, busy: false })
    }).pipe(Effect.uninterruptible)

    const want: Effect.Effect<void> = Effect.suspend(() => {
      if (lanes.length + taking >= size || closed || Date.now() - lostAt < 1000) return Effect.void
      taking++
      return Effect.asVoid(Effect.forkIn(take, storeScope))
    })

    /**
     * `text` on a free lane (prepared if `name` is given), or `otherwise()` (made only when
     * needed); with `onRows`, on the lane's driver client when reachable.
     */
    const onLane = <A>(
      text: string,
      params: ReadonlyArray<unknown>,
      name: string | undefined,
      otherwise: () => Effect.Effect<ReadonlyArray<A>, SqlError>,
      onRows?: (rows: ReadonlyArray<A>) => void
    ) =>
      Effect.suspend((): Effect.Effect<ReadonlyArray<A>, SqlError> => {
        const chosen = lanes.find((lane) => !lane.busy)
        if (chosen === undefined) return Effect.zipRight(want, otherwise())
        chosen.busy = true
        const query = name !== undefined && chosen.prepares ? prepared(name, text) : text
        const run: Effect.Effect<ReadonlyArray<A>, SqlError> = onRows !== undefined && chosen.driver !== undefined
          ? onDriver(chosen.driver, query, params, onRows)
          : chosen.connection.execute(query, params, undefined)
        return run.pipe(
          Effect.ensuring(Effect.sync(() => {
            chosen.busy = false
          })),
          Effect.catchAll((error) => {
            if (!lostConnection(error)) return Effect.fail(error)
            lostAt = Date.now()
            return Effect.zipRight(release(chosen), neverSent(error) ? otherwise() : Effect.fail(error))
          })
        )
      })

    return {
      execute: (statement, onRows) =>
        onLane(
          statement.text,
          statement.params,
          statement.name,
          () => throughPool(statement, onRows),
          onRows
        ),
      run: (statement) =>
        Effect.suspend(() => {
          const [text, params] = statement.compile()
          return onLane(text, params, undefined, () => statement)
        }),
      want
    }
  })
