/**
 * The lane: one pooled connection a Postgres store keeps for the statements a caller waits on
 * alone (the handed-off insert, whose round trip is most of enqueue-to-start latency), sent
 * straight to it. Through the client's statements, each went through a span, a scope and the
 * pool's checkout: 0.4 of the 2.7 ms from submit to start when the process had been idle
 * (`node bench/dist/durableSpindle.js pg latency 50 10`: that much code runs slowly when
 * nothing has run for a while).
 *
 * - It is taken when first wanted (a worker of the process waits for work), not by stores that
 *   never hand tasks off, and only from a pool of at least 4 connections.
 * - It takes a statement only when free: a statement arriving while it is busy goes through the
 *   pool, so the lane never queues anything.
 * - A lane whose connection was lost (the server restarted, the backend was terminated) is
 *   released (the pool discards the connection) and taken again when next wanted, at most once a
 *   second. A statement the lost connection refused before sending it goes through the pool; one
 *   lost in flight fails, as it would have through the pool.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, Scope } from "effect"
import type { PgStatement } from "./pgSql.js"

/** @internal */
export interface PgLane {
  /** Runs a statement on the lane when it is free, through the pool otherwise. */
  readonly execute: (statement: PgStatement) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>
  /** Takes the lane in the background unless it is held (or being taken, or was lately). */
  readonly want: Effect.Effect<void>
}

/** The smallest pool the lane takes a connection from. */
const MIN_POOL = 4

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

/** @internal */
export const make = (sql: PgClient.PgClient): Effect.Effect<PgLane, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pooled = (statement: PgStatement) =>
      sql.unsafe<Record<string, unknown>>(statement.text, statement.params).withoutTransform
    if ((sql.config.maxConnections ?? 10) < MIN_POOL) return { execute: pooled, want: Effect.void }

    const storeScope = yield* Effect.scope
    let lane: { readonly connection: Connection; readonly scope: Scope.CloseableScope } | undefined
    let busy = false
    let taking = false
    let lastTakenAt = Number.NEGATIVE_INFINITY
    let closed = false

    const release = (held: NonNullable<typeof lane>) =>
      Effect.suspend(() => {
        if (lane === held) lane = undefined
        return Scope.close(held.scope, Exit.void)
      })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return lane === undefined ? Effect.void : release(lane)
      })
    )

    // uninterruptible: a checkout interrupted midway would leave the pool's connection out
    const take = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const reserved = yield* Effect.exit(Scope.extend(sql.reserve, scope))
      taking = false
      if (Exit.isFailure(reserved) || closed) return yield* Scope.close(scope, Exit.void)
      lane = { connection: reserved.value, scope }
    }).pipe(Effect.uninterruptible)

    const want: Effect.Effect<void> = Effect.suspend(() => {
      if (lane !== undefined || taking || closed || Date.now() - lastTakenAt < 1000) return Effect.void
      taking = true
      lastTakenAt = Date.now()
      return Effect.asVoid(Effect.forkIn(take, storeScope))
    })

    const execute = (statement: PgStatement) =>
      Effect.suspend(() => {
        const held = lane
        if (held === undefined) return Effect.zipRight(want, pooled(statement))
        if (busy) return pooled(statement)
        busy = true
        return held.connection.execute(statement.text, statement.params, undefined).pipe(
          Effect.ensuring(Effect.sync(() => {
            busy = false
          })),
          Effect.catchAll((error) =>
            lostConnection(error)
              ? Effect.zipRight(release(held), neverSent(error) ? pooled(statement) : Effect.fail(error))
              : Effect.fail(error)
          )
        )
      })

    return { execute, want }
  })
