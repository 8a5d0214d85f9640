/**
 * A named concurrency limit: at most `limit` effects run at once, whoever
 * submits them (`run` and `forEach` draw from the same permits).
 *
 * Effect's `Semaphore` provides the permit idea; the `Limiter` adds what a
 * production limit needs on top of it: FIFO hand-over of permits (a finishing
 * effect gives its permit directly to the oldest waiter, so there is no
 * thundering herd and nobody starves), live statistics (in flight, peak,
 * waiting, completed, failed, wait times), metrics, and an ordered `forEach`
 * that runs at most `limit` worker fibers instead of one parked fiber per
 * item.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import * as internal from "./internal/limiter.js"

/**
 * The identifier of `Limiter` values.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 *
 * const isLimiter = (u: object): boolean => Limiter.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * The type of `Limiter.TypeId`.
 *
 * @example
 * ```ts
 * import type { Limiter } from "@spindle/core"
 *
 * type Branded = { readonly [K in Limiter.TypeId]: Limiter.TypeId }
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A named concurrency limit shared by every caller.
 *
 * - `run(effect)` runs one effect holding one permit.
 * - `forEach(items, f)` runs `f` over every item, at most `limit` at once
 *   (counting every other user of the limiter), and returns the results in
 *   input order.
 * - `stats` reads the live statistics.
 *
 * Permits are handed out in FIFO order. An interrupted waiter or runner
 * always gives its permit back.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* Limiter.make({ name: "github-api", limit: 10 })
 *   const users = yield* limiter.forEach(["ada", "grace"], (login) => Effect.succeed(login.toUpperCase()))
 *   const one = yield* limiter.run(Effect.succeed(42))
 *   const stats = yield* limiter.stats
 *   return { users, one, completed: stats.completed }
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Limiter extends Pipeable {
  readonly [TypeId]: TypeId
  /** The name used in metrics (`limiter=<name>`) and stats. */
  readonly name: string
  /** The maximum number of effects running at once. */
  readonly limit: number
  /**
   * Runs `effect` once a permit is free and returns the permit when it ends,
   * whatever the outcome. Interrupting the caller while it waits removes it
   * from the queue.
   */
  run<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
  /**
   * Runs `f` over every item, at most `limit` at once, results in input order.
   *
   * - `mode: "fail-fast"` (default): the first typed failure interrupts the
   *   items still running, starts no more, and fails with that error.
   * - `mode: "settle"`: runs every item and never fails with a typed error;
   *   each result is `Either.right(value)` or `Either.left(error)`, in input
   *   order. Defects and interruptions are not results: they propagate as in
   *   `Effect.forEach`.
   *
   * At most `min(limit, items)` worker fibers are started; each takes a permit
   * per item from the shared limiter.
   */
  readonly forEach: Limiter.ForEach
  /** A snapshot of the live statistics. */
  readonly stats: Effect.Effect<Limiter.Stats>
}

/**
 * The types that go with a `Limiter`: its options, `forEach` modes and stats.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace Limiter {
  /**
   * Options of `Limiter.make`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** Names the limiter in stats and in the `limiter` metric tag. Keep it unique per process. */
    readonly name: string
    /** How many effects may run at once; a positive integer. */
    readonly limit: number
  }

  /**
   * `"fail-fast"`: the first failure interrupts the rest. `"settle"`: every
   * item runs and each result is an `Either`.
   *
   * @since 0.1.0
   * @category models
   */
  export type Mode = "fail-fast" | "settle"

  /**
   * The signature of `limiter.forEach`: fail-fast by default, or settle every item into an `Either`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface ForEach {
    <A, B, E, R>(
      items: Iterable<A>,
      f: (item: A, index: number) => Effect.Effect<B, E, R>,
      options?: { readonly mode?: "fail-fast" | undefined } | undefined
    ): Effect.Effect<Array<B>, E, R>
    <A, B, E, R>(
      items: Iterable<A>,
      f: (item: A, index: number) => Effect.Effect<B, E, R>,
      options: { readonly mode: "settle" }
    ): Effect.Effect<Array<Either.Either<B, E>>, never, R>
  }

  /**
   * Live statistics of a limiter. Counts are exact at the time of reading.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    readonly name: string
    readonly limit: number
    /** Effects holding a permit now. */
    readonly inFlight: number
    /** The highest `inFlight` seen. */
    readonly peak: number
    /** Effects queued for a permit now. */
    readonly waiting: number
    /** Effects that ran and succeeded (in settle mode: each `Right`). */
    readonly completed: number
    /** Effects that ran and failed or died (in settle mode: each `Left`). */
    readonly failed: number
    /** Effects interrupted while holding a permit. */
    readonly interrupted: number
    /** Mean time from submission to permit over every acquisition (those that found a free permit count as zero). */
    readonly meanWait: Duration.Duration
    /** The longest wait for a permit. */
    readonly maxWait: Duration.Duration
  }
}

/**
 * Creates a limiter.
 *
 * Metrics, tagged `limiter=<name>`: `spindle_limiter_in_flight` and
 * `spindle_limiter_waiting` (gauges), `spindle_limiter_completed_total`,
 * `spindle_limiter_failed_total` and `spindle_limiter_interrupted_total`
 * (counters), `spindle_limiter_wait_seconds` (histogram of the wait of every
 * acquisition that had to queue; one that found a free permit is not
 * observed, so the fast path touches no metric). Metric updates are
 * coalesced: they are flushed at most once per scheduler tick, and whenever
 * `stats` is read.
 *
 * Dies with an `IllegalArgumentException` if `limit` is not a positive integer.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* Limiter.make({ name: "db-writes", limit: 4 })
 *   return yield* limiter.run(Effect.succeed("written"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Limiter.Options) => Effect.Effect<Limiter> = internal.make

/**
 * Provides a limiter under a tag of your own.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 * import { Context, Effect } from "effect"
 *
 * class ApiLimiter extends Context.Tag("app/ApiLimiter")<ApiLimiter, Limiter.Limiter>() {}
 *
 * const ApiLimiterLive = Limiter.layer(ApiLimiter, { name: "api", limit: 8 })
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* ApiLimiter
 *   return yield* limiter.run(Effect.succeed("ok"))
 * }).pipe(Effect.provide(ApiLimiterLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <I>(tag: Context.Tag<I, Limiter>, options: Limiter.Options) => Layer.Layer<I> = internal.layer

/**
 * Runs an effect under a limiter: `Limiter.run(limiter, effect)` or
 * `effect.pipe(Limiter.run(limiter))`.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* Limiter.make({ name: "downloads", limit: 2 })
 *   const a = yield* Limiter.run(limiter, Effect.succeed(1))
 *   const b = yield* Effect.succeed(2).pipe(Limiter.run(limiter))
 *   return a + b
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const run: {
  (limiter: Limiter): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(limiter: Limiter, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
} = internal.run

/**
 * Reads a limiter's live statistics.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* Limiter.make({ name: "reports", limit: 3 })
 *   yield* limiter.run(Effect.void)
 *   const { completed, peak } = yield* Limiter.stats(limiter)
 *   return { completed, peak }
 * })
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = (limiter: Limiter): Effect.Effect<Limiter.Stats> => limiter.stats

/**
 * Returns `true` if the value is a `Limiter`.
 *
 * @example
 * ```ts
 * import { Limiter } from "@spindle/core"
 *
 * Limiter.isLimiter({}) // false
 * ```
 *
 * @since 0.1.0
 * @category refinements
 */
export const isLimiter: (u: unknown) => u is Limiter = internal.isLimiter
