/**
 * At most N effects at once per key, for any number of keys: per host, per
 * tenant, per user. Each key gets its own `Limiter` permits (FIFO hand-over,
 * interruption-safe) created on first use; keys that go idle are dropped, so
 * millions of distinct keys do not accumulate.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/keyedLimiter.js"
import type * as Limiter from "./Limiter.js"

/**
 * The identifier of `KeyedLimiter` values.
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 *
 * const isKeyedLimiter = (u: object): boolean => KeyedLimiter.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * The type of `KeyedLimiter.TypeId`.
 *
 * @example
 * ```ts
 * import type { KeyedLimiter } from "@spindle/core"
 *
 * type Branded = { readonly [K in KeyedLimiter.TypeId]: KeyedLimiter.TypeId }
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A concurrency limit per key. Keys are compared with `Equal` (primitives by
 * value, `Data` structures structurally).
 *
 * A key exists while it has effects in flight or queued, plus
 * `idleTimeToLive` after that; then it is evicted along with its statistics.
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const perHost = yield* KeyedLimiter.make<string>({ name: "per-host", limitPerKey: 2 })
 *   const page = yield* perHost.run("example.com", Effect.succeed("<html>"))
 *   const stats = yield* perHost.stats
 *   return { page, keys: stats.keys }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyedLimiter<in out K> extends Pipeable {
  readonly [TypeId]: TypeId
  /** The name used in metrics (`limiter=<name>`) and stats. */
  readonly name: string
  /** The maximum number of effects running at once for one key. */
  readonly limitPerKey: number
  /**
   * Runs `effect` once a permit of `key` is free (FIFO per key) and returns
   * the permit when it ends, whatever the outcome.
   */
  run<A, E, R>(key: K, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
  /**
   * The statistics of one key, or `None` if the key is not held (never used,
   * or evicted after going idle). `name` is the keyed limiter's name and
   * `limit` is `limitPerKey`.
   */
  statsFor(key: K): Effect.Effect<Option.Option<Limiter.Limiter.Stats>>
  /** Totals over every key, evicted ones included in the counters. */
  readonly stats: Effect.Effect<KeyedLimiter.Stats>
}

/**
 * The types that go with a `KeyedLimiter`: its options and its stats.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace KeyedLimiter {
  /**
   * Options of `KeyedLimiter.make`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** Names the limiter in stats and in the `limiter` metric tag. */
    readonly name: string
    /** How many effects may run at once for one key; a positive integer. */
    readonly limitPerKey: number
    /**
     * How long a key with nothing in flight and nothing queued is kept (with
     * its statistics) before it is evicted. Default: zero, evicted as soon as
     * it goes idle. When positive, a background fiber in the scope sweeps
     * idle keys every `idleTimeToLive`, so a key is evicted between one and
     * two times `idleTimeToLive` after its last use.
     */
    readonly idleTimeToLive?: Duration.DurationInput | undefined
  }

  /**
   * Totals over all keys. Counters (`completed`, `failed`, `interrupted`,
   * `evicted`) include keys evicted since.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    readonly name: string
    readonly limitPerKey: number
    /** Keys held now (active or idle within their time to live). */
    readonly keys: number
    /** Keys evicted so far. */
    readonly evicted: number
    /** Effects holding a permit now, over all keys. */
    readonly inFlight: number
    /** The highest total `inFlight` seen. */
    readonly peak: number
    /** Effects queued now, over all keys. */
    readonly waiting: number
    readonly completed: number
    readonly failed: number
    readonly interrupted: number
    /** Mean time from submission to permit over every acquisition. */
    readonly meanWait: Duration.Duration
    /** The longest wait for a permit. */
    readonly maxWait: Duration.Duration
  }
}

/**
 * Creates a keyed limiter in a scope (the scope owns the idle-key sweeper).
 *
 * Metrics, tagged `limiter=<name>` (never per key: keys are unbounded):
 * `spindle_keyed_limiter_keys`, `spindle_keyed_limiter_in_flight`,
 * `spindle_keyed_limiter_waiting` (gauges),
 * `spindle_keyed_limiter_completed_total`, `spindle_keyed_limiter_failed_total`,
 * `spindle_keyed_limiter_interrupted_total`, `spindle_keyed_limiter_evicted_total`
 * (counters), `spindle_keyed_limiter_wait_seconds` (histogram of the waits of
 * acquisitions that had to queue).
 *
 * Dies with an `IllegalArgumentException` if `limitPerKey` is not a positive integer.
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const perTenant = yield* KeyedLimiter.make<string>({
 *     name: "per-tenant",
 *     limitPerKey: 4,
 *     idleTimeToLive: "1 minute"
 *   })
 *   return yield* perTenant.run("acme", Effect.succeed("report"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <K = string>(options: KeyedLimiter.Options) => Effect.Effect<KeyedLimiter<K>, never, Scope.Scope> =
  internal.make

/**
 * Provides a keyed limiter under a tag of your own.
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 * import { Context, Effect } from "effect"
 *
 * class PerHost extends Context.Tag("app/PerHost")<PerHost, KeyedLimiter.KeyedLimiter<string>>() {}
 *
 * const PerHostLive = KeyedLimiter.layer(PerHost, { name: "per-host", limitPerKey: 6 })
 *
 * const program = Effect.gen(function*() {
 *   const perHost = yield* PerHost
 *   return yield* perHost.run("api.example.com", Effect.succeed(200))
 * }).pipe(Effect.provide(PerHostLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <I, K>(tag: Context.Tag<I, KeyedLimiter<K>>, options: KeyedLimiter.Options) => Layer.Layer<I> =
  internal.layer

/**
 * Runs an effect under the permits of one key:
 * `KeyedLimiter.run(limiter, key, effect)` or
 * `effect.pipe(KeyedLimiter.run(limiter, key))`.
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const perUser = yield* KeyedLimiter.make<number>({ name: "per-user", limitPerKey: 1 })
 *   const a = yield* KeyedLimiter.run(perUser, 7, Effect.succeed("a"))
 *   const b = yield* Effect.succeed("b").pipe(KeyedLimiter.run(perUser, 7))
 *   return a + b
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const run: {
  <K>(limiter: KeyedLimiter<K>, key: NoInfer<K>): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <K, A, E, R>(limiter: KeyedLimiter<K>, key: NoInfer<K>, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
} = internal.run

/**
 * Totals over all keys of a keyed limiter (the same as `limiter.stats`).
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const perHost = yield* KeyedLimiter.make({ name: "per-host", limitPerKey: 2 })
 *   yield* perHost.run("example.com", Effect.void)
 *   const { keys, completed } = yield* KeyedLimiter.stats(perHost)
 *   return { keys, completed }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = <K>(limiter: KeyedLimiter<K>): Effect.Effect<KeyedLimiter.Stats> => limiter.stats

/**
 * Returns `true` if the value is a `KeyedLimiter`.
 *
 * @example
 * ```ts
 * import { KeyedLimiter } from "@spindle/core"
 *
 * KeyedLimiter.isKeyedLimiter({}) // false
 * ```
 *
 * @since 0.1.0
 * @category refinements
 */
export const isKeyedLimiter: (u: unknown) => u is KeyedLimiter<unknown> = internal.isKeyedLimiter
