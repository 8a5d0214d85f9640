/**
 * CPU-bound work in worker threads, with Schema-typed requests.
 *
 * Built on `@effect/platform`'s `Worker` (the `WorkerManager` protocol:
 * ready handshake, request ids, tracing spans) and `WorkerRunner` on the
 * worker side. Effect's own `Worker.makePoolSerialized` sends several requests
 * to one worker, has no per-task timeout that can stop a thread stuck in a
 * CPU loop, no recycling, and lets a crashed worker fail everything it was
 * running and respawn it in the background. The `WorkerPool` manages each
 * worker itself instead:
 *
 * - at most `size` worker threads, each running one task at a time; callers
 *   wait for a free worker in FIFO order;
 * - `taskTimeout`: a task running longer fails with reason `"timeout"` and its
 *   thread is terminated (`worker.terminate()`, the only way to stop a
 *   synchronous loop) and replaced;
 * - a worker that dies (`process.exit`, an uncaught exception, out of memory)
 *   fails only the task it was running, with reason `"crashed"`, and is
 *   replaced; tasks on other workers carry on;
 * - `recycleAfter`: a worker is retired gracefully after that many tasks and
 *   replaced by a fresh thread (memory hygiene for leaky native code or caches);
 * - requests, successes and failures are encoded and decoded with the
 *   request's own Schema (`Schema.TaggedRequest`), so results arrive typed and
 *   as real class instances;
 * - live statistics and metrics.
 *
 * The worker script is a few lines with {@link runner}.
 *
 * @since 0.1.0
 */
import type * as Worker from "@effect/platform/Worker"
import type { WorkerError } from "@effect/platform/WorkerError"
import type * as WorkerRunner from "@effect/platform/WorkerRunner"
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as ChildProcess from "node:child_process"
import type * as WorkerThreads from "node:worker_threads"
import * as internal from "./internal/workerPool.js"

/**
 * The identifier of `WorkerPool` values.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 *
 * const isWorkerPool = (u: object): boolean => WorkerPool.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId as never

/**
 * The type of `WorkerPool.TypeId`.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "@spindle/core"
 *
 * type Branded = { readonly [K in WorkerPool.TypeId]: WorkerPool.TypeId }
 * ```
 *
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A pool of worker threads running requests of the union `I` (a union of
 * `Schema.TaggedRequest` classes).
 *
 * `execute(request)` waits (FIFO) for a free worker, sends the encoded
 * request, and returns the decoded success, or fails with the decoded failure
 * of the request's schema, or with a {@link WorkerTaskError}. Defects raised by
 * the handler in the worker are defects of `execute`.
 *
 * Interrupting a caller that waits for a worker removes it from the queue.
 * Interrupting a caller whose task is running terminates that worker's
 * thread (the task may be a synchronous loop that would otherwise keep the
 * worker busy) and replaces it.
 *
 * When the pool's scope closes, waiting and running tasks are interrupted,
 * idle workers are closed gracefully and busy ones are terminated.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 * import { NodeWorker } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { Worker } from "node:worker_threads"
 *
 * class Fib extends Schema.TaggedRequest<Fib>()("Fib", {
 *   payload: { n: Schema.Number },
 *   success: Schema.Number,
 *   failure: Schema.Never
 * }) {}
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make<Fib>({
 *     name: "fib",
 *     size: 2,
 *     spawn: () => new Worker(new URL("./fib-worker.js", import.meta.url))
 *   })
 *   const results = yield* Effect.forEach([30, 31, 32], (n) => pool.execute(new Fib({ n })), {
 *     concurrency: "unbounded"
 *   })
 *   const stats = yield* pool.stats
 *   return { results, completed: stats.completed }
 * }).pipe(Effect.scoped, Effect.provide(NodeWorker.layerManager))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerPool<in out I extends Schema.TaggedRequest.All> extends Pipeable {
  readonly [TypeId]: TypeId
  /** The name used in metrics (`pool=<name>`), stats and errors. */
  readonly name: string
  /** The maximum number of worker threads. */
  readonly size: number
  /** Runs one request on a worker; see {@link WorkerPool}. */
  readonly execute: <Req extends I>(request: Req) => Effect.Effect<
    Schema.WithResult.Success<Req>,
    Schema.WithResult.Failure<Req> | WorkerTaskError,
    Schema.SerializableWithResult.Context<Req>
  >
  /** A snapshot of the live statistics. */
  readonly stats: Effect.Effect<WorkerPool.Stats>
}

/**
 * The types that go with a `WorkerPool`: the spawn function, its options and its stats.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace WorkerPool {
  /**
   * Creates the thread (or child process) of one worker, as
   * `NodeWorker.layer` expects. `id` counts up from 0 for every worker the
   * pool starts, replacements included.
   *
   * @since 0.1.0
   * @category models
   */
  export type Spawn = (id: number) => WorkerThreads.Worker | ChildProcess.ChildProcess

  /**
   * Options of `WorkerPool.make`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** Names the pool in stats, errors and the `pool` metric tag (default `"default"`). */
    readonly name?: string | undefined
    /** The maximum number of workers; a positive integer. */
    readonly size: number
    /** Starts the thread of a worker. */
    readonly spawn: Spawn
    /** Retire a worker and start a fresh one after it has run this many tasks. */
    readonly recycleAfter?: number | undefined
    /**
     * Fails a task still running after this long with reason `"timeout"`,
     * and terminates and replaces its worker.
     */
    readonly taskTimeout?: Duration.DurationInput | undefined
  }

  /**
   * Live statistics of a pool. Counts are exact at the time of reading.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    readonly name: string
    /** The configured maximum number of workers. */
    readonly size: number
    /** Worker threads alive now (below `size` while a replacement starts). */
    readonly workers: number
    /** Tasks running now (one per busy worker). */
    readonly busy: number
    /** Live workers waiting for a task. */
    readonly idle: number
    /** Callers waiting for a worker. */
    readonly queued: number
    /** Tasks that succeeded. */
    readonly completed: number
    /** Tasks that failed: typed failures, {@link WorkerTaskError}s and defects. */
    readonly failed: number
    /** Callers interrupted while waiting or running. */
    readonly interrupted: number
    /** Workers that died (while running a task or idle). */
    readonly crashed: number
    /** Workers retired by `recycleAfter`. */
    readonly recycled: number
    /** Tasks failed by `taskTimeout` (each also terminated its worker). */
    readonly timedOut: number
  }
}

/**
 * Why a task failed outside its own typed failure:
 *
 * - `"crashed"`: the worker died while running the task (`process.exit`, an
 *   uncaught exception, out of memory);
 * - `"timeout"`: the task ran longer than `taskTimeout`; the worker was terminated;
 * - `"spawn"`: no worker could be started for the task;
 * - `"encode"`: the request, or the worker's answer, could not be encoded;
 * - `"decode"`: the request could not be decoded by the worker, or its answer
 *   did not match the request's success or failure schema.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "@spindle/core"
 *
 * const retryable = (reason: WorkerPool.WorkerTaskErrorReason): boolean =>
 *   reason === "crashed" || reason === "timeout"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type WorkerTaskErrorReason = "crashed" | "timeout" | "spawn" | "encode" | "decode"

/**
 * A task failed because of its worker, not because of its own logic.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 * import { Effect, Schema } from "effect"
 *
 * class Render extends Schema.TaggedRequest<Render>()("Render", {
 *   payload: { page: Schema.Number },
 *   success: Schema.String,
 *   failure: Schema.Never
 * }) {}
 *
 * declare const pool: WorkerPool.WorkerPool<Render>
 *
 * const render = (page: number) =>
 *   pool.execute(new Render({ page })).pipe(
 *     Effect.catchTag("WorkerTaskError", (error) =>
 *       error.reason === "timeout" ? Effect.succeed("(page too slow to render)") : Effect.fail(error))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerTaskError extends Data.TaggedError("WorkerTaskError")<{
  readonly reason: WorkerTaskErrorReason
  /** The name of the pool. */
  readonly pool: string
  /** The task's sequence number in its pool. */
  readonly taskId: number
  /** The `_tag` of the request. */
  readonly taskName: string
  /** The id of the worker (as given to `spawn`), when one was assigned. */
  readonly workerId?: number | undefined
  /** What went wrong underneath: the thread's error or exit code, a `WorkerError`, a `ParseError`. */
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const task = `task ${this.taskName}#${this.taskId} in worker pool "${this.pool}"`
    const worker = this.workerId === undefined ? "" : ` (worker ${this.workerId})`
    switch (this.reason) {
      case "crashed":
        return `${task}: the worker crashed${worker}`
      case "timeout":
        return `${task}: timed out, the worker was terminated${worker}`
      case "spawn":
        return `${task}: no worker could be started${worker}`
      case "encode":
        return `${task}: a message could not be encoded${worker}`
      case "decode":
        return `${task}: a message could not be decoded${worker}`
    }
  }
}

/**
 * Creates a pool and starts its `size` workers in the background (the first
 * tasks wait for them). Needs a `WorkerManager`: `NodeWorker.layerManager`
 * from `@effect/platform-node`, or use {@link layerNode}.
 *
 * Metrics, tagged `pool=<name>`: `spindle_worker_pool_busy` (gauge),
 * `spindle_worker_pool_tasks_total` (counter tagged `outcome`: `success`,
 * `failure`, `defect`, `interrupted`, or a {@link WorkerTaskErrorReason}),
 * `spindle_worker_pool_task_seconds` (histogram of the time tasks ran on a
 * worker), `spindle_worker_pool_restarts_total` (counter tagged `reason`:
 * `crashed`, `timeout`, `recycled`, `interrupted`).
 *
 * Dies with an `IllegalArgumentException` if `size` or `recycleAfter` is not
 * a positive integer.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 * import { NodeWorker } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { Worker } from "node:worker_threads"
 *
 * class Hash extends Schema.TaggedRequest<Hash>()("Hash", {
 *   payload: { text: Schema.String },
 *   success: Schema.String,
 *   failure: Schema.Never
 * }) {}
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make<Hash>({
 *     name: "hash",
 *     size: 4,
 *     spawn: () => new Worker(new URL("./hash-worker.js", import.meta.url)),
 *     recycleAfter: 1000,
 *     taskTimeout: "10 seconds"
 *   })
 *   return yield* pool.execute(new Hash({ text: "hello" }))
 * }).pipe(Effect.scoped, Effect.provide(NodeWorker.layerManager))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <I extends Schema.TaggedRequest.All>(
  options: WorkerPool.Options
) => Effect.Effect<WorkerPool<I>, never, Scope.Scope | Worker.WorkerManager> = internal.make

/**
 * Provides a pool under a tag of your own; needs a `WorkerManager`.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 * import { NodeWorker } from "@effect/platform-node"
 * import { Context, Effect, Layer, Schema } from "effect"
 * import { Worker } from "node:worker_threads"
 *
 * class Resize extends Schema.TaggedRequest<Resize>()("Resize", {
 *   payload: { width: Schema.Number },
 *   success: Schema.Number,
 *   failure: Schema.Never
 * }) {}
 *
 * class ImagePool extends Context.Tag("app/ImagePool")<ImagePool, WorkerPool.WorkerPool<Resize>>() {}
 *
 * const ImagePoolLive = WorkerPool.layer(ImagePool, {
 *   name: "images",
 *   size: 2,
 *   spawn: () => new Worker(new URL("./image-worker.js", import.meta.url))
 * }).pipe(Layer.provide(NodeWorker.layerManager))
 *
 * const program = Effect.flatMap(ImagePool, (pool) => pool.execute(new Resize({ width: 640 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: <Id, I extends Schema.TaggedRequest.All>(
  tag: Context.Tag<Id, WorkerPool<I>>,
  options: WorkerPool.Options
) => Layer.Layer<Id, never, Worker.WorkerManager> = internal.layer

/**
 * Like {@link layer}, with Node's `WorkerManager` (`NodeWorker.layerManager`)
 * already provided.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 * import { Context, Effect, Schema } from "effect"
 * import { Worker } from "node:worker_threads"
 *
 * class Score extends Schema.TaggedRequest<Score>()("Score", {
 *   payload: { text: Schema.String },
 *   success: Schema.Number,
 *   failure: Schema.Never
 * }) {}
 *
 * class ScorePool extends Context.Tag("app/ScorePool")<ScorePool, WorkerPool.WorkerPool<Score>>() {}
 *
 * const ScorePoolLive = WorkerPool.layerNode(ScorePool, {
 *   size: 2,
 *   spawn: () => new Worker(new URL("./score-worker.js", import.meta.url))
 * })
 *
 * const program = Effect.flatMap(ScorePool, (pool) => pool.execute(new Score({ text: "spindle" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNode: <Id, I extends Schema.TaggedRequest.All>(
  tag: Context.Tag<Id, WorkerPool<I>>,
  options: WorkerPool.Options
) => Layer.Layer<Id> = internal.layerNode

/**
 * A snapshot of the live statistics of a worker pool (the same as `pool.stats`).
 *
 * @example
 * ```ts
 * import { WorkerPool } from "@spindle/core"
 * import { Effect, Schema } from "effect"
 *
 * class Ping extends Schema.TaggedRequest<Ping>()("Ping", {
 *   payload: {},
 *   success: Schema.String,
 *   failure: Schema.Never
 * }) {}
 *
 * const report = (pool: WorkerPool.WorkerPool<Ping>) =>
 *   Effect.map(WorkerPool.stats(pool), ({ busy, completed }) => `${busy} busy, ${completed} done`)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = <I extends Schema.TaggedRequest.All>(pool: WorkerPool<I>): Effect.Effect<WorkerPool.Stats> =>
  pool.stats

/**
 * The body of a worker script: serves the requests of `schema` (the union of
 * the pool's request classes) with one handler per `_tag`, in a Node worker
 * thread or child process, until the pool closes the worker. Run it with
 * `NodeRuntime.runMain`.
 *
 * Handlers return an `Effect` (its success and failure are encoded with the
 * request's schemas); a handler's defect reaches the caller as a defect.
 *
 * @example
 * ```ts
 * // fib-worker.ts, compiled to fib-worker.js
 * import { WorkerPool } from "@spindle/core"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 *
 * class Fib extends Schema.TaggedRequest<Fib>()("Fib", {
 *   payload: { n: Schema.Number },
 *   success: Schema.Number,
 *   failure: Schema.Never
 * }) {}
 *
 * const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2))
 *
 * WorkerPool.runner(Fib, { Fib: ({ n }) => Effect.sync(() => fib(n)) }).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const runner: <
  A extends Schema.TaggedRequest.All,
  I,
  R,
  const Handlers extends WorkerRunner.SerializedRunner.Handlers<A>
>(
  schema: Schema.Schema<A, I, R>,
  handlers: Handlers
) => Effect.Effect<void, WorkerError, R | WorkerRunner.SerializedRunner.HandlersContext<Handlers>> = internal.runner
