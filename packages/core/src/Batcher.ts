/**
 * Micro-batching: gather the items that independent callers submit within a short window into
 * one call of a batch function, and hand each caller its own result.
 *
 * Effect's `RequestResolver` batches the requests made inside one batched call
 * (`Effect.forEach(..., { batching: true })`); a `Batcher` gathers independent callers, from any
 * fiber, over time: a batch is flushed when it holds `maxSize` items or `maxWait` after its first
 * item arrived, whichever comes first.
 *
 * - `run` returns one result per item, in order. A batch whose `run` returns another number of
 *   results fails all its callers with `BatchError` of reason `"ResultCountMismatch"`.
 * - A failing `run` fails only the callers of that batch, with `BatchError` of reason
 *   `"RunFailed"` carrying the error of `run` as `cause`; other batches are unaffected. Defects
 *   of `run` reach its callers as defects.
 * - With `key`, identical keys submitted to one batch are merged: `run` sees the item once and
 *   every caller with that key gets the same result.
 * - An interrupted caller stops waiting; its item stays in its batch (other callers may share
 *   it), and its result is dropped.
 * - Closing the scope flushes: the open batch is sealed, every pending batch runs and completes
 *   its callers, then the fibers stop. Submissions after that fail at once with `BatchError` of
 *   reason `"Closed"`. Nobody is left waiting.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/batcher.js"

/**
 * The identifier of `Batcher` values.
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 *
 * const isBatcher = (u: object): boolean => Batcher.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * The type of `Batcher.TypeId`.
 *
 * @example
 * ```ts
 * import type { Batcher } from "@spindle/core"
 *
 * type Branded = { readonly [K in Batcher.TypeId]: Batcher.TypeId }
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A running micro-batcher: `submit` an item, get that item's result once its batch has run.
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const batcher: Batcher.Batcher<number, string> = yield* Batcher.make({
 *     name: "to-string",
 *     maxSize: 100,
 *     maxWait: "10 millis",
 *     run: (items: ReadonlyArray<number>) => Effect.succeed(items.map(String))
 *   })
 *   return yield* Effect.forEach([1, 2, 3], batcher.submit, { concurrency: "unbounded" })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Batcher<in A, out B, out E = never> {
  readonly [TypeId]: TypeId
  /** The name given at construction, used in metric tags and errors. */
  readonly name: string
  /**
   * Adds `item` to the open batch and waits for its own result. Cheap: the caller's fiber is
   * suspended once and its item appended to an array, no clock read (except for the first item
   * of a batch) and no metric update per call; the batch is flushed by size, by time or by
   * closing the scope.
   */
  readonly submit: (item: A) => Effect.Effect<B, BatchError<E>>
  /** A snapshot of the counters of this batcher. */
  readonly stats: Effect.Effect<Stats>
}

/**
 * Options of `make`.
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const options: Batcher.Options<string, number> = {
 *   name: "lengths",
 *   maxSize: 500,
 *   maxWait: "5 millis",
 *   run: (words) => Effect.succeed(words.map((word) => word.length)),
 *   key: (word) => word,
 *   concurrency: 2
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, B, E = never, R = never> {
  /** Instance name: the `batcher` tag of the metrics and the `batcher` field of errors. */
  readonly name: string
  /** A batch is flushed as soon as it holds this many items (after merging). At least 1. */
  readonly maxSize: number
  /** A batch is flushed this long after its first item arrived. `Duration.infinity`: size and close only. */
  readonly maxWait: Duration.DurationInput
  /** Runs one batch; must return one result per item, in the order of `items`. */
  readonly run: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>, E, R>
  /** Items with the same key in one batch are merged: `run` sees the first, all callers get its result. */
  readonly key?: ((item: A) => string) | undefined
  /** How many batches may run at once. Default 1. */
  readonly concurrency?: number | undefined
}

/**
 * Counters of one batcher, as returned by `Batcher.stats`.
 *
 * @example
 * ```ts
 * import type { Batcher } from "@spindle/core"
 *
 * const meanBatch = (stats: Batcher.Stats): number =>
 *   stats.batches === 0 ? 0 : (stats.submitted - stats.merged) / stats.batches
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Submissions accepted (not counting those refused because the batcher was closed). */
  readonly submitted: number
  /** Batches that have run to completion, successfully or not. */
  readonly batches: number
  /** Batches flushed because they reached `maxSize`. */
  readonly flushedBySize: number
  /** Batches flushed because `maxWait` elapsed after their first item. */
  readonly flushedByTime: number
  /** Batches flushed because the batcher's scope was closing. */
  readonly flushedByClose: number
  /** Submissions merged into an item with the same key. */
  readonly merged: number
  /** Batches that failed: `run` failed or died, or returned the wrong number of results. */
  readonly failed: number
  /** Callers waiting for their result. */
  readonly pending: number
  /** Batches running now. */
  readonly running: number
}

/**
 * Options of `batchProcess`.
 *
 * @example
 * ```ts
 * import type { Batcher } from "@spindle/core"
 *
 * const options: Batcher.BatchProcessOptions = { size: 1000, concurrency: 4, name: "import" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchProcessOptions {
  /** Items per chunk (the last chunk may be smaller). At least 1. */
  readonly size: number
  /** How many chunks may be processed at once. Default 1. */
  readonly concurrency?: number | "unbounded" | undefined
  /** Name reported in the `batcher` field of errors. Default `"batchProcess"`. */
  readonly name?: string | undefined
}

/**
 * Why a batched item did not get its result.
 *
 * - `"RunFailed"`: `run` (or the `batchProcess` function) failed; `cause` holds its error.
 * - `"ResultCountMismatch"`: `run` returned `actual` results for `expected` items.
 * - `"Closed"`: the item was submitted after the batcher's scope was closed.
 *
 * @example
 * ```ts
 * import type { Batcher } from "@spindle/core"
 *
 * const reasons: ReadonlyArray<Batcher.BatchErrorReason> = ["RunFailed", "ResultCountMismatch", "Closed"]
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type BatchErrorReason = "RunFailed" | "ResultCountMismatch" | "Closed"

/**
 * The typed failure of a batched item: every caller of a failed batch gets one, and callers of
 * other batches are unaffected.
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Data, Effect } from "effect"
 *
 * class DbError extends Data.TaggedError("DbError")<{ readonly code: number }> {}
 *
 * declare const batcher: Batcher.Batcher<string, number, DbError>
 *
 * const insert = (row: string) =>
 *   batcher.submit(row).pipe(
 *     Effect.catchTag("BatchError", (error) =>
 *       error.reason === "RunFailed" && error.cause !== undefined
 *         ? Effect.succeed(-error.cause.code)
 *         : Effect.fail(error))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class BatchError<E = never> extends Data.TaggedError("BatchError")<{
  readonly reason: BatchErrorReason
  /** Name of the batcher (or of the `batchProcess` run). */
  readonly batcher: string
  /** Items in the failed batch (0 for `"Closed"`). */
  readonly batchSize: number
  /** The error of `run`, for `"RunFailed"`. */
  readonly cause?: E
  /** For `"ResultCountMismatch"`: the number of items, i.e. of results expected. */
  readonly expected?: number
  /** For `"ResultCountMismatch"`: the number of results returned. */
  readonly actual?: number
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    switch (this.reason) {
      case "RunFailed":
        return `batch of ${this.batchSize} in "${this.batcher}" failed`
      case "ResultCountMismatch":
        return `batch of ${this.batchSize} in "${this.batcher}" returned ${this.actual} results for ${this.expected} items`
      case "Closed":
        return `batcher "${this.batcher}" is closed`
    }
  }
}

/**
 * Starts a batcher in the current scope. Closing the scope flushes what is pending (every caller
 * gets its result or its batch's error) and stops the batcher's fibers; later submissions fail
 * with `BatchError` of reason `"Closed"`.
 *
 * Metrics, tagged `batcher=<name>`: `spindle_batcher_batch_size` (histogram of items per batch),
 * `spindle_batcher_flush_latency_seconds` (histogram: first item enqueued to batch completed),
 * `spindle_batcher_flushes_total` (counter tagged `reason=size|time|close`),
 * `spindle_batcher_merged_total` (counter of merged submissions).
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const users = yield* Batcher.make({
 *     name: "users",
 *     maxSize: 100,
 *     maxWait: "5 millis",
 *     key: (id: number) => String(id),
 *     run: (ids: ReadonlyArray<number>) => Effect.succeed(ids.map((id) => ({ id, name: `user ${id}` })))
 *   })
 *   // Three callers, one batch, `run` sees [1, 2].
 *   return yield* Effect.all([users.submit(1), users.submit(2), users.submit(1)], { concurrency: "unbounded" })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <A, B, E = never, R = never>(
  options: Options<A, B, E, R>
) => Effect.Effect<Batcher<A, B, E>, never, Scope.Scope | R> = internal.make

/**
 * A layer providing a batcher under the user's tag; the batcher lives as long as the layer.
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Context, Effect } from "effect"
 *
 * class Lengths extends Context.Tag("Lengths")<Lengths, Batcher.Batcher<string, number>>() {}
 *
 * const LengthsLive = Batcher.layer(Lengths, {
 *   name: "lengths",
 *   maxSize: 100,
 *   maxWait: "5 millis",
 *   run: (words: ReadonlyArray<string>) => Effect.succeed(words.map((word) => word.length))
 * })
 *
 * const program = Effect.flatMap(Lengths, (lengths) => lengths.submit("spindle")).pipe(
 *   Effect.provide(LengthsLive)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <I, A, B, E = never, R = never>(
  tag: Context.Tag<I, Batcher<A, B, E>>,
  options: Options<A, B, E, R>
) => Layer.Layer<I, never, R> = internal.layer

/**
 * A snapshot of the counters of a batcher (the same as `batcher.stats`).
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const batcher = yield* Batcher.make({
 *     name: "echo",
 *     maxSize: 10,
 *     maxWait: "1 millis",
 *     run: (items: ReadonlyArray<number>) => Effect.succeed(items)
 *   })
 *   yield* batcher.submit(1)
 *   const { submitted, batches } = yield* Batcher.stats(batcher)
 *   return { submitted, batches }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = <A, B, E>(batcher: Batcher<A, B, E>): Effect.Effect<Stats> => batcher.stats

/**
 * Processes an offline list in chunks of `size`, at most `concurrency` chunks at once, and
 * returns the results in input order. `f` returns one result per item of its chunk. Fails fast:
 * the first failing chunk (`"RunFailed"` with its error as `cause`, or `"ResultCountMismatch"`)
 * interrupts the others.
 *
 * @example
 * ```ts
 * import { Batcher } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const squares = Batcher.batchProcess(
 *   [1, 2, 3, 4, 5],
 *   { size: 2, concurrency: 2 },
 *   (chunk: ReadonlyArray<number>) => Effect.succeed(chunk.map((n) => n * n))
 * ) // Effect<Array<number>, BatchError<never>>: [1, 4, 9, 16, 25]
 *
 * const piped = Effect.succeed([1, 2, 3]).pipe(
 *   Effect.flatMap(Batcher.batchProcess({ size: 2 }, (chunk: ReadonlyArray<number>) => Effect.succeed(chunk)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const batchProcess: {
  <A, B, E, R>(
    options: BatchProcessOptions,
    f: (chunk: ReadonlyArray<A>, index: number) => Effect.Effect<ReadonlyArray<B>, E, R>
  ): (items: Iterable<A>) => Effect.Effect<Array<B>, BatchError<E>, R>
  <A, B, E, R>(
    items: Iterable<A>,
    options: BatchProcessOptions,
    f: (chunk: ReadonlyArray<A>, index: number) => Effect.Effect<ReadonlyArray<B>, E, R>
  ): Effect.Effect<Array<B>, BatchError<E>, R>
} = internal.batchProcess
