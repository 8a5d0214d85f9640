/**
 * Runs the same backtests twice, on the main thread and on a `WorkerPool`,
 * checks that the results are identical, and reports both durations.
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as WorkerPool from "@spindle/core/WorkerPool"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { Worker } from "node:worker_threads"
import { Backtest, backtest, type BacktestResult, makeJobs } from "./backtest.js"

/**
 * @since 0.1.0
 */
export interface ProgramOptions {
  /** How many parameter sets to backtest. */
  readonly jobs: number
  /** Length of the price series of each job. */
  readonly pricesPerJob: number
  /** Size of the worker pool. */
  readonly workers: number
  /** The compiled worker script (default: `worker.js` next to this module). */
  readonly workerUrl?: URL | undefined
}

/**
 * @since 0.1.0
 */
export interface Report {
  readonly jobs: number
  readonly pricesPerJob: number
  readonly workers: number
  readonly mainThreadMillis: number
  /** Time to start the pool's threads (not part of `poolMillis`). */
  readonly startupMillis: number
  readonly poolMillis: number
  /** `mainThreadMillis / poolMillis`. */
  readonly speedup: number
  /** Whether the pool returned exactly the main thread's results, in order. */
  readonly identical: boolean
  readonly results: ReadonlyArray<BacktestResult>
  /** The parameter set with the highest final equity. */
  readonly best: BacktestResult
  readonly stats: WorkerPool.WorkerPool.Stats
}

const sameResults = (a: ReadonlyArray<BacktestResult>, b: ReadonlyArray<BacktestResult>): boolean =>
  a.length === b.length && a.every((result, i) => JSON.stringify(result) === JSON.stringify(b[i]))

/**
 * @since 0.1.0
 */
export const program = (options: ProgramOptions): Effect.Effect<Report, WorkerPool.WorkerTaskError> =>
  Effect.gen(function*() {
    const jobs = makeJobs(options.jobs, options.pricesPerJob)
    const workerUrl = options.workerUrl ?? new URL("./worker.js", import.meta.url)

    // 1. on the main thread, one job after the other
    const mainStart = yield* Clock.currentTimeMillis
    const sequential = yield* Effect.sync(() => jobs.map(backtest))
    const mainThreadMillis = (yield* Clock.currentTimeMillis) - mainStart

    // 2. on the pool, all jobs submitted at once
    const startupStart = yield* Clock.currentTimeMillis
    const pool = yield* WorkerPool.make<Backtest>({
      name: "cpu-pool-example",
      size: options.workers,
      spawn: () => new Worker(workerUrl)
    })
    // the pool starts its threads in the background: wait for them, so that start-up is not timed
    yield* pool.stats.pipe(
      Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (stats) => stats.workers === options.workers })
    )
    const poolStart = yield* Clock.currentTimeMillis
    const startupMillis = poolStart - startupStart
    const pooled = yield* Effect.forEach(jobs, (job) => pool.execute(new Backtest(job)), {
      concurrency: "unbounded"
    })
    const poolMillis = (yield* Clock.currentTimeMillis) - poolStart

    const best = pooled.reduce((a, b) => (b.finalEquity > a.finalEquity ? b : a))
    return {
      jobs: options.jobs,
      pricesPerJob: options.pricesPerJob,
      workers: options.workers,
      mainThreadMillis,
      startupMillis,
      poolMillis,
      speedup: mainThreadMillis / Math.max(1, poolMillis),
      identical: sameResults(sequential, pooled),
      results: pooled,
      best,
      stats: yield* pool.stats
    }
  }).pipe(Effect.scoped, Effect.provide(NodeWorker.layerManager))
