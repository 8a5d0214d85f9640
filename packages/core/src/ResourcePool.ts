/**
 * A scoped pool of reusable resources (database connections, HTTP clients, browser pages...)
 * built on `effect/Pool`, adding what it lacks: an acquire timeout with a typed error, health
 * checks on acquire and in the background (unhealthy resources are destroyed and replaced),
 * live stats and metrics.
 *
 * Sizing follows `Pool.makeWithTTL`: `min` resources are acquired when the pool is made, the
 * pool grows on demand up to `max`, and shrinks back towards `min` when the excess has been
 * idle for `idleTimeToLive`. Each resource is released by the finalizers of its own `acquire`
 * (write `acquire` with `Effect.acquireRelease`); closing the pool's scope releases them all.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type { Pipeable } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/resourcePool.js"

/**
 * Identifies a `ResourcePool`.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 *
 * const isPool = (u: object) => ResourcePool.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * The type of `TypeId`.
 *
 * @example
 * ```ts
 * import type { ResourcePool } from "@spindle/core"
 *
 * type Id = ResourcePool.TypeId
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A named pool of resources of type `A`; acquiring a new resource may fail with `E`.
 *
 * A resource obtained with `get` belongs to the caller until the caller's scope closes, then
 * goes back to the pool (or is destroyed if it was invalidated meanwhile).
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* ResourcePool.make({
 *     name: "db",
 *     acquire: Effect.acquireRelease(Effect.sync(() => ({ query: (sql: string) => sql })), () => Effect.void),
 *     min: 1,
 *     max: 10
 *   })
 *   const rows = yield* pool.use((conn) => Effect.succeed(conn.query("select 1")))
 *   const stats = yield* pool.stats
 *   return { rows, utilization: stats.utilization }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ResourcePool<in out A, out E = never> extends Pipeable {
  readonly [TypeId]: TypeId
  /** The pool's name, used as the `pool` tag of its metrics and in its errors. */
  readonly name: string
  /**
   * Checks a resource out of the pool for the lifetime of the current scope. Waits while all
   * `max` resources are in use (counted in `waiters`); fails with `PoolAcquireTimeout` after
   * `acquireTimeout`, with `PoolUnhealthy` when `healthCheckMaxAttempts` resources in a row
   * failed their health check, or with `E` when acquiring a new resource failed.
   */
  readonly get: Effect.Effect<A, E | PoolAcquireTimeout | PoolUnhealthy, Scope.Scope>
  /**
   * Checks a resource out, runs `f` with it and returns it to the pool when `f` completes.
   */
  use<B, E2, R2>(
    f: (resource: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | PoolAcquireTimeout | PoolUnhealthy, Exclude<R2, Scope.Scope>>
  /**
   * Invalidates a resource (`Pool.invalidate`): destroyed now if idle, or when its holder
   * returns it; the pool then acquires a replacement if it is below `min` or demand needs one.
   */
  invalidate(resource: A): Effect.Effect<void>
  /** A snapshot of the pool's counters. */
  readonly stats: Effect.Effect<ResourcePool.Stats>
}

/**
 * Options and stats types of a `ResourcePool`.
 *
 * @example
 * ```ts
 * import type { ResourcePool } from "@spindle/core"
 *
 * type Options = ResourcePool.ResourcePool.Options<string, never, never>
 * type Stats = ResourcePool.ResourcePool.Stats
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace ResourcePool {
  /**
   * Options of `ResourcePool.make`.
   *
   * @example
   * ```ts
   * import type { ResourcePool } from "@spindle/core"
   * import { Effect } from "effect"
   *
   * interface Conn {
   *   readonly ping: Effect.Effect<boolean>
   * }
   * declare const connect: Effect.Effect<Conn>
   *
   * const options: ResourcePool.ResourcePool.Options<Conn, never, never> = {
   *   name: "db",
   *   acquire: Effect.acquireRelease(connect, () => Effect.void),
   *   min: 2,
   *   max: 10,
   *   idleTimeToLive: "5 minutes",
   *   acquireTimeout: "5 seconds",
   *   healthCheck: (conn) => conn.ping,
   *   healthCheckInterval: "30 seconds"
   * }
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options<A, E, R> {
    /** The pool's name: the `pool` tag of its metrics, reported in its errors. */
    readonly name: string
    /**
     * Acquires one resource. It runs in a scope of its own that is closed when the resource
     * is destroyed, so its release is its finalizer (`Effect.acquireRelease`), as with
     * `Pool.make`.
     */
    readonly acquire: Effect.Effect<A, E, R | Scope.Scope>
    /** Resources kept even when idle; acquired before `make` completes. */
    readonly min: number
    /** Resources never exceeded; callers beyond it wait. */
    readonly max: number
    /**
     * How long resources above `min` may stay unused before the pool shrinks: every period,
     * the pool destroys the resources it has beyond its current need (`Pool.makeWithTTL`
     * with the "usage" strategy), so an idle excess is gone within one to two periods.
     * Defaults to 60 seconds.
     */
    readonly idleTimeToLive?: Duration.DurationInput | undefined
    /**
     * The longest a `get` may wait for a healthy resource (a free slot, a new resource, its
     * health checks) before failing with `PoolAcquireTimeout`. Unbounded by default.
     */
    readonly acquireTimeout?: Duration.DurationInput | undefined
    /**
     * Tells whether a resource is usable: `false`, a failure or a defect mean unhealthy;
     * `true` or `void` mean healthy. Bound its duration inside (`Effect.timeout`) if it may
     * hang: a resource under check is handed to nobody.
     */
    readonly healthCheck?: ((resource: A) => Effect.Effect<boolean | void, unknown, R>) | undefined
    /**
     * Checks every idle resource at this interval; unhealthy ones are destroyed and, below
     * `min`, replaced. No background checks by default.
     */
    readonly healthCheckInterval?: Duration.DurationInput | undefined
    /**
     * Checks each resource before handing it out of `get`; an unhealthy one is destroyed and
     * the caller gets another. Defaults to `true` when a `healthCheck` is given.
     */
    readonly healthCheckOnAcquire?: boolean | undefined
    /**
     * How many unhealthy resources in a row one `get` may discard before failing with
     * `PoolUnhealthy`. Defaults to 3.
     */
    readonly healthCheckMaxAttempts?: number | undefined
  }

  /**
   * A snapshot of a pool's counters.
   *
   * @example
   * ```ts
   * import type { ResourcePool } from "@spindle/core"
   *
   * const describe = (s: ResourcePool.ResourcePool.Stats) =>
   *   `${s.inUse}/${s.max} in use (${Math.round(s.utilization * 100)}%), ${s.waiters} waiting`
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    /** The configured minimum. */
    readonly min: number
    /** The configured maximum. */
    readonly max: number
    /** Live resources: acquired, and whose destruction has not begun. */
    readonly size: number
    /** Resources checked out by callers. */
    readonly inUse: number
    /** Live resources not checked out: `size - inUse`. */
    readonly idle: number
    /** Callers blocked in `get` that have not received a resource yet. */
    readonly waiters: number
    /** `inUse / max`, from 0 to 1. */
    readonly utilization: number
    /** Resources acquired since the pool was made. */
    readonly created: number
    /**
     * Resources destroyed (or being destroyed) since the pool was made: invalidated, unhealthy,
     * idle beyond `min`, or closed with the pool.
     */
    readonly destroyed: number
    /** Health checks that found a resource unhealthy (on acquire and in the background). */
    readonly healthCheckFailures: number
    /** `get` calls that failed with `PoolAcquireTimeout`. */
    readonly acquireTimeouts: number
  }
}

/**
 * `get` waited `timeout` without obtaining a healthy resource from pool `pool`. `stats` is the
 * pool's state when the timeout fired.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const pool: ResourcePool.ResourcePool<string>
 *
 * const program = pool.use(Effect.succeed).pipe(
 *   Effect.catchTag("PoolAcquireTimeout", (e) =>
 *     Effect.logWarning(`pool ${e.pool} exhausted: ${e.stats.inUse}/${e.stats.max} in use`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolAcquireTimeout extends Data.TaggedError("PoolAcquireTimeout")<{
  /** The pool's name. */
  readonly pool: string
  /** The configured `acquireTimeout`. */
  readonly timeout: Duration.Duration
  /** The pool's stats when the timeout fired. */
  readonly stats: ResourcePool.Stats
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `pool "${this.pool}": no resource within ${Duration.format(this.timeout)} ` +
      `(in use ${this.stats.inUse}/${this.stats.max}, waiters ${this.stats.waiters})`
  }
}

/**
 * `get` discarded `attempts` resources in a row because their health check failed. `cause` is
 * the last check's failure, or `undefined` when it returned `false`.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const pool: ResourcePool.ResourcePool<string>
 *
 * const program = pool.use(Effect.succeed).pipe(
 *   Effect.catchTag("PoolUnhealthy", (e) => Effect.fail(`backend down after ${e.attempts} tries`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolUnhealthy extends Data.TaggedError("PoolUnhealthy")<{
  /** The pool's name. */
  readonly pool: string
  /** How many resources this `get` checked and discarded. */
  readonly attempts: number
  /** The last health check's failure, `undefined` if it returned `false`. */
  readonly cause: Cause.Cause<unknown> | undefined
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `pool "${this.pool}": ${this.attempts} resources in a row failed their health check`
  }
}

/**
 * Makes a pool in the current scope. It completes once `min` resources are acquired (a
 * failed acquisition is not an error here: the pool acquires again on demand, and `get`
 * reports the failure); closing the scope stops the background checks and destroys every
 * resource, waiting for checked-out ones to be returned.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * let next = 0
 * const connect = Effect.acquireRelease(
 *   Effect.sync(() => ({ id: ++next, alive: true })),
 *   (conn) => Effect.sync(() => { conn.alive = false })
 * )
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* ResourcePool.make({
 *     name: "api-clients",
 *     acquire: connect,
 *     min: 2,
 *     max: 8,
 *     acquireTimeout: "2 seconds",
 *     healthCheck: (conn) => Effect.succeed(conn.alive),
 *     healthCheckInterval: "30 seconds"
 *   })
 *   return yield* Effect.forEach([1, 2, 3], (n) => pool.use((conn) => Effect.succeed(conn.id * n)), {
 *     concurrency: "unbounded"
 *   })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <A, E = never, R = never>(
  options: ResourcePool.Options<A, E, R>
) => Effect.Effect<ResourcePool<A, E>, never, Scope.Scope | R> = internal.make

/**
 * Provides a pool under a tag of yours; the pool lives as long as the layer.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Context, Effect } from "effect"
 *
 * interface Conn {
 *   readonly query: (sql: string) => Effect.Effect<ReadonlyArray<unknown>>
 * }
 * declare const connect: Effect.Effect<Conn>
 *
 * class Db extends Context.Tag("app/Db")<Db, ResourcePool.ResourcePool<Conn>>() {}
 *
 * const DbLive = ResourcePool.layer(Db, { name: "db", acquire: connect, min: 1, max: 10 })
 *
 * const program = Effect.flatMap(Db, (db) => db.use((conn) => conn.query("select 1"))).pipe(
 *   Effect.provide(DbLive)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <I, A, E = never, R = never>(
  tag: Context.Tag<I, ResourcePool<A, E>>,
  options: ResourcePool.Options<A, E, R>
) => Layer.Layer<I, never, Exclude<R, Scope.Scope>> = internal.layer

/**
 * Checks a resource out of the pool for the lifetime of the current scope (`pool.get`).
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const pool: ResourcePool.ResourcePool<{ readonly id: number }>
 *
 * const program = Effect.scoped(Effect.map(ResourcePool.get(pool), (conn) => conn.id))
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const get: <A, E>(
  self: ResourcePool<A, E>
) => Effect.Effect<A, E | PoolAcquireTimeout | PoolUnhealthy, Scope.Scope> = internal.get

/**
 * Runs `f` with a resource checked out of the pool, returned when `f` completes
 * (`pool.use(f)`).
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect, pipe } from "effect"
 *
 * declare const pool: ResourcePool.ResourcePool<{ readonly id: number }>
 *
 * const a = ResourcePool.use(pool, (conn) => Effect.succeed(conn.id))
 * const b = pipe(pool, ResourcePool.use((conn) => Effect.succeed(conn.id)))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const use: {
  <A, B, E2, R2>(
    f: (resource: A) => Effect.Effect<B, E2, R2>
  ): <E>(
    self: ResourcePool<A, E>
  ) => Effect.Effect<B, E | E2 | PoolAcquireTimeout | PoolUnhealthy, Exclude<R2, Scope.Scope>>
  <A, E, B, E2, R2>(
    self: ResourcePool<A, E>,
    f: (resource: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | PoolAcquireTimeout | PoolUnhealthy, Exclude<R2, Scope.Scope>>
} = internal.use

/**
 * Invalidates a resource (`pool.invalidate(resource)`): destroyed now if idle, or when
 * returned if checked out, and replaced when the pool is below `min` or demand needs one.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const pool: ResourcePool.ResourcePool<{ readonly broken: boolean }>
 *
 * const program = pool.use((conn) => conn.broken ? ResourcePool.invalidate(pool, conn) : Effect.void)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidate: {
  <A>(resource: A): <E>(self: ResourcePool<A, E>) => Effect.Effect<void>
  <A, E>(self: ResourcePool<A, E>, resource: A): Effect.Effect<void>
} = internal.invalidate

/**
 * A snapshot of the pool's counters (`pool.stats`).
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * declare const pool: ResourcePool.ResourcePool<string>
 *
 * const program = Effect.map(ResourcePool.stats(pool), (s) => s.utilization > 0.9)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats: <A, E>(self: ResourcePool<A, E>) => Effect.Effect<ResourcePool.Stats> = internal.stats

/**
 * The pool's metrics, each tagged `pool=<name>`: gauges `spindle_pool_size`,
 * `spindle_pool_in_use`, `spindle_pool_waiters`, `spindle_pool_utilization` (0..1), counters
 * `spindle_pool_health_check_failures_total`, `spindle_pool_acquire_timeouts_total` and the
 * histogram `spindle_pool_acquire_wait_seconds` (time for a successful `get` to obtain a
 * healthy resource). Pools sharing a name share their metrics.
 *
 * @example
 * ```ts
 * import { ResourcePool } from "@spindle/core"
 * import { Effect, Metric } from "effect"
 *
 * const inUse = Metric.value(Metric.tagged(ResourcePool.metrics.inUse, "pool", "db"))
 * const program = Effect.map(inUse, (state) => state.value)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics: {
  readonly size: Metric.Metric.Gauge<number>
  readonly inUse: Metric.Metric.Gauge<number>
  readonly waiters: Metric.Metric.Gauge<number>
  readonly utilization: Metric.Metric.Gauge<number>
  readonly healthCheckFailures: Metric.Metric.Counter<number>
  readonly acquireTimeouts: Metric.Metric.Counter<number>
  readonly acquireWaitSeconds: Metric.Metric.Histogram<number>
} = internal.metrics
