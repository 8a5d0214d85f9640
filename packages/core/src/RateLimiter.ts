/**
 * Rate limiting: a token bucket or an exact sliding window, global and per key, that either
 * delays callers (FIFO per key) or fails them at once with a typed `RateLimitExceeded`.
 *
 * Effect's own `effect/RateLimiter` offers a token bucket and a fixed window with a single
 * global bucket that always delays. This module adds what it lacks: per-key buckets created
 * lazily and dropped when idle, an exact sliding window, fail-on-excess with `retryAfter`,
 * live stats and Metrics. Time is read from the `Clock`, so `TestClock` drives it.
 *
 * Only the moment a call starts is limited: how many admitted calls run at once is the job of
 * `Limiter`.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/rateLimiter.js"

/**
 * The identifier of `RateLimiter` values.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 *
 * const isRateLimiter = (u: object): boolean => RateLimiter.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * The type of `RateLimiter.TypeId`.
 *
 * @example
 * ```ts
 * import type { RateLimiter } from "@spindle/core"
 *
 * type Branded = { readonly [K in RateLimiter.TypeId]: RateLimiter.TypeId }
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A named rate limiter. `E` is the error a caller may see when the limit is reached:
 * `RateLimitExceeded` for `onExceeded: "fail"`, `never` for `onExceeded: "delay"`.
 *
 * Calls without a key share one global bucket; each key has its own bucket, independent of
 * the global one and of other keys. To enforce both a global and a per-key rate, compose two
 * limiters.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "github",
 *     algorithm: "token-bucket",
 *     limit: 10,
 *     interval: "1 second",
 *     onExceeded: "delay"
 *   })
 *   yield* limiter.run(Effect.log("call"), { key: "user-1" })
 *   const usage = yield* limiter.usage("user-1")
 *   yield* Effect.log(`user-1 has ${usage.available} tokens left`)
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiter<out E = RateLimitExceeded> {
  readonly [TypeId]: TypeId
  /** The name used in metrics and errors. */
  readonly name: string
  readonly algorithm: RateLimiter.Algorithm
  readonly onExceeded: RateLimiter.OnExceeded
  /** Admissions allowed per `interval` (token bucket) or per `window` (sliding window). */
  readonly limit: number
  /** The largest cost one call may have: the bucket capacity, or `limit` for a sliding window. */
  readonly capacity: number
  /**
   * Waits for (or, in fail mode, checks) `cost` units of capacity under `key` (the global
   * bucket when `key` is omitted), and consumes them. `cost` defaults to 1 and must be an
   * integer from 1 to `capacity` (anything else is a defect).
   */
  readonly take: (key?: string, cost?: number) => Effect.Effect<void, E>
  /** Runs `effect` once `take(options.key, options.cost)` admits it. */
  readonly run: <A, E2, R>(
    effect: Effect.Effect<A, E2, R>,
    options?: RateLimiter.RunOptions
  ) => Effect.Effect<A, E | E2, R>
  /** Counters since the limiter was made, and its current keys and waiters. */
  readonly stats: Effect.Effect<RateLimiter.Stats>
  /** The current usage of one key (the global bucket when `key` is omitted). */
  readonly usage: (key?: string) => Effect.Effect<RateLimiter.Usage>
}

/**
 * The types that go with a `RateLimiter`: algorithms, options, stats and usage.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace RateLimiter {
  /**
   * - `"token-bucket"`: a bucket of `capacity` tokens (default `limit`) refilled continuously
   *   at `limit` tokens per `interval`. It allows bursts of up to `capacity`, then a steady
   *   rate of one token every `interval / limit`.
   * - `"sliding-window"`: an exact sliding log. A call is admitted at time `t` only if the
   *   costs admitted in `(t - window, t]` plus its own cost are at most `limit`, so no
   *   half-open interval `[t, t + window)` ever sees more than `limit` units. The log keeps
   *   one entry per distinct admission millisecond still inside the window: at most `limit`
   *   entries per key.
   *
   * @since 0.1.0
   * @category models
   */
  export type Algorithm = "token-bucket" | "sliding-window"

  /**
   * - `"delay"`: the caller waits until admitted. Waiters of one key are admitted in arrival
   *   order (a costly head waits for its whole cost, and the waiters behind it wait too).
   *   Interrupting a waiter consumes nothing and lets the next one move up.
   * - `"fail"`: the caller fails at once with `RateLimitExceeded`, whose `retryAfter` is the
   *   exact time after which the same call would be admitted if nothing else is admitted.
   *
   * @since 0.1.0
   * @category models
   */
  export type OnExceeded = "delay" | "fail"

  /**
   * The options both algorithms share.
   *
   * @since 0.1.0
   * @category models
   */
  export interface BaseOptions {
    /** Name of the limiter, used as the `limiter` metric tag. */
    readonly name: string
    /** Admissions (cost units) allowed per interval or window: a positive integer. */
    readonly limit: number
    /** What happens to a call over the limit: wait for capacity (`"delay"`) or fail (`"fail"`). */
    readonly onExceeded: OnExceeded
    /**
     * The most keys kept at once (default 100,000). When a new key would exceed it, the
     * least recently used key without waiters is dropped, forgetting its usage.
     */
    readonly maxKeys?: number | undefined
    /**
     * A key without waiters that has not been used for this long is dropped. The default is
     * the time the key takes to recover completely (a full refill, or one window), which
     * makes dropping it lossless: its next call sees exactly the state it would have seen.
     * A shorter TTL saves memory at the price of forgetting recent usage.
     */
    readonly idleTimeToLive?: Duration.DurationInput | undefined
  }

  /**
   * A token bucket: `limit` tokens refill every `interval`, up to `capacity` (a burst).
   *
   * @since 0.1.0
   * @category models
   */
  export interface TokenBucketOptions extends BaseOptions {
    readonly algorithm: "token-bucket"
    /** The bucket refills `limit` tokens per `interval`. */
    readonly interval: Duration.DurationInput
    /** The burst size: how many tokens the bucket holds (default `limit`). */
    readonly capacity?: number | undefined
  }

  /**
   * An exact sliding window: at most `limit` admissions in any `window`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface SlidingWindowOptions extends BaseOptions {
    readonly algorithm: "sliding-window"
    /** At most `limit` units are admitted in any window of this length. */
    readonly window: Duration.DurationInput
  }

  /**
   * Options of `RateLimiter.make`: one of the two algorithms with its own period option.
   *
   * @since 0.1.0
   * @category models
   */
  export type Options = TokenBucketOptions | SlidingWindowOptions

  /**
   * Options of `run` and `withRateLimit`: the key (global when omitted) and the cost (default 1).
   *
   * @since 0.1.0
   * @category models
   */
  export interface RunOptions {
    /** The bucket to use; the global bucket when omitted. */
    readonly key?: string | undefined
    /** Capacity units the call consumes (default 1). */
    readonly cost?: number | undefined
  }

  /**
   * Counters of a rate limiter since it was made.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    /** Calls admitted (immediately or after waiting). */
    readonly admitted: number
    /** Calls that had to wait (admitted, interrupted or still waiting). */
    readonly delayed: number
    /** Calls that failed with `RateLimitExceeded`. */
    readonly rejected: number
    /** Callers waiting now. */
    readonly waiting: number
    /** Keys currently held (the global bucket not included). */
    readonly keys: number
    /** Keys dropped so far (idle or over `maxKeys`). */
    readonly evicted: number
  }

  /**
   * The current usage of one key (or of the global limit).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Usage {
    readonly key: string | undefined
    /** The bucket capacity, or `limit` for a sliding window. */
    readonly capacity: number
    /** Units in use: `capacity` minus the tokens left, or the cost admitted in the current window. */
    readonly used: number
    /** Units available now (tokens may be fractional while the bucket refills). */
    readonly available: number
    /** Callers waiting on this key. */
    readonly waiting: number
    /** Time until the key is fully recovered (bucket full, window empty) if nothing else is admitted. */
    readonly resetAfter: Duration.Duration
  }
}

/**
 * The limit was reached and the limiter is in `onExceeded: "fail"` mode. `retryAfter` is the
 * time after which the same call would be admitted, if nothing else is admitted meanwhile.
 * It is a `Schema.TaggedError` (HTTP status 429) so that it can be stored with a task or
 * sent over HTTP.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Duration, Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "api",
 *     algorithm: "sliding-window",
 *     limit: 100,
 *     window: "1 minute",
 *     onExceeded: "fail"
 *   })
 *   yield* limiter.take("client-7").pipe(
 *     Effect.catchTag("RateLimitExceeded", (e) =>
 *       Effect.log(`retry in ${Duration.format(e.retryAfter)}`))
 *   )
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitExceeded extends Schema.TaggedError<RateLimitExceeded>("@spindle/core/RateLimitExceeded")(
  "RateLimitExceeded",
  {
    limiter: Schema.String,
    key: Schema.optional(Schema.String),
    limit: Schema.Number,
    retryAfter: Schema.DurationFromMillis
  },
  HttpApiSchema.annotations({ status: 429 })
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const key = this.key === undefined ? "" : ` for key "${this.key}"`
    return `Rate limit of ${this.limit} exceeded on "${this.limiter}"${key}: retry after ${
      Duration.format(this.retryAfter)
    }`
  }
}

/**
 * Makes a rate limiter. Per-key state is created on first use and dropped when idle (see
 * `idleTimeToLive` and `maxKeys`); a background fiber forked in the scope sweeps idle keys.
 *
 * Invalid options (a `limit`, `capacity` or `maxKeys` that is not a positive integer, a
 * non-positive duration) are defects.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   // 5 calls per second per user, bursts of up to 20; excess callers wait their turn
 *   const perUser = yield* RateLimiter.make({
 *     name: "per-user",
 *     algorithm: "token-bucket",
 *     limit: 5,
 *     interval: "1 second",
 *     capacity: 20,
 *     onExceeded: "delay"
 *   })
 *   yield* Effect.forEach(["a", "b", "a"], (user) => perUser.run(Effect.log(user), { key: user }))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  (
    options: RateLimiter.Options & { readonly onExceeded: "delay" }
  ): Effect.Effect<RateLimiter<never>, never, Scope.Scope>
  (options: RateLimiter.Options): Effect.Effect<RateLimiter, never, Scope.Scope>
} = internal.make

/**
 * Provides a rate limiter under a tag of your own.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Context, Effect } from "effect"
 *
 * class SearchLimiter extends Context.Tag("SearchLimiter")<SearchLimiter, RateLimiter.RateLimiter>() {}
 *
 * const SearchLimiterLive = RateLimiter.layer(SearchLimiter, {
 *   name: "search",
 *   algorithm: "sliding-window",
 *   limit: 30,
 *   window: "1 minute",
 *   onExceeded: "fail"
 * })
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* SearchLimiter
 *   yield* limiter.run(Effect.log("search"), { key: "tenant-1" })
 * }).pipe(Effect.provide(SearchLimiterLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  <I>(
    tag: Context.Tag<I, RateLimiter<never>>,
    options: RateLimiter.Options & { readonly onExceeded: "delay" }
  ): Layer.Layer<I>
  <I>(tag: Context.Tag<I, RateLimiter>, options: RateLimiter.Options): Layer.Layer<I>
} = internal.layer

/**
 * Runs an effect through a rate limiter: `limiter.run(effect, options)`, usable in a pipe.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "reports",
 *     algorithm: "token-bucket",
 *     limit: 2,
 *     interval: "1 second",
 *     onExceeded: "delay"
 *   })
 *   // a heavy report costs 2 tokens
 *   const report = Effect.succeed("report").pipe(
 *     RateLimiter.withRateLimit(limiter, { key: "tenant-1", cost: 2 })
 *   )
 *   // data first
 *   const light = RateLimiter.withRateLimit(Effect.succeed("light"), limiter)
 *   return yield* Effect.all([report, light])
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRateLimit: {
  <E2>(
    limiter: RateLimiter<E2>,
    options?: RateLimiter.RunOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | E2, R>
  <A, E, R, E2>(
    self: Effect.Effect<A, E, R>,
    limiter: RateLimiter<E2>,
    options?: RateLimiter.RunOptions
  ): Effect.Effect<A, E | E2, R>
} = internal.withRateLimit

/**
 * The counters of a rate limiter (the same as `limiter.stats`).
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "search",
 *     algorithm: "sliding-window",
 *     limit: 5,
 *     window: "1 second",
 *     onExceeded: "fail"
 *   })
 *   yield* limiter.take()
 *   const { admitted, rejected } = yield* RateLimiter.stats(limiter)
 *   return { admitted, rejected }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = <E>(limiter: RateLimiter<E>): Effect.Effect<RateLimiter.Stats> => limiter.stats

/**
 * Calls admitted, tagged `limiter=<name>`.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Effect, Metric } from "effect"
 *
 * const admitted = Metric.value(Metric.tagged(RateLimiter.admittedTotal, "limiter", "github")).pipe(
 *   Effect.map((state) => state.count)
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const admittedTotal: Metric.Metric.Counter<number> = internal.admittedTotal

/**
 * Calls rejected with `RateLimitExceeded`, tagged `limiter=<name>`.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const rejected = Metric.value(Metric.tagged(RateLimiter.rejectedTotal, "limiter", "github"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const rejectedTotal: Metric.Metric.Counter<number> = internal.rejectedTotal

/**
 * Calls that had to wait, tagged `limiter=<name>`.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const delayed = Metric.value(Metric.tagged(RateLimiter.delayedTotal, "limiter", "github"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const delayedTotal: Metric.Metric.Counter<number> = internal.delayedTotal

/**
 * Seconds each delayed call waited before admission (calls admitted at once are not
 * recorded), tagged `limiter=<name>`.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const waits = Metric.value(Metric.tagged(RateLimiter.waitSeconds, "limiter", "github"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const waitSeconds: Metric.Metric.Histogram<number> = internal.waitSeconds
