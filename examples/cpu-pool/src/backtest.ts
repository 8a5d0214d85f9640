/**
 * The CPU-heavy work of the example: a moving-average crossover strategy
 * backtested over a generated random-walk price series.
 *
 * This module is shared by the main thread and the worker script: the request
 * schema (`Backtest`) and the pure computation (`backtest`). It imports only
 * `effect/Schema`, so the worker thread starts quickly.
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 */
export const BacktestResult = Schema.Struct({
  id: Schema.Number,
  seed: Schema.Number,
  fast: Schema.Number,
  slow: Schema.Number,
  /** Number of entries into a long position. */
  trades: Schema.Number,
  /** Equity at the end, starting from 1. */
  finalEquity: Schema.Number,
  /** Largest peak-to-trough fall of the equity, as a fraction. */
  maxDrawdown: Schema.Number
})

/**
 * @since 0.1.0
 */
export type BacktestResult = typeof BacktestResult.Type

/**
 * One job: backtest the (`fast`, `slow`) crossover on the `prices`-long
 * random walk generated from `seed`.
 *
 * @since 0.1.0
 */
export class Backtest extends Schema.TaggedRequest<Backtest>()("Backtest", {
  payload: {
    id: Schema.Number,
    seed: Schema.Number,
    prices: Schema.Number,
    fast: Schema.Number,
    slow: Schema.Number
  },
  success: BacktestResult,
  failure: Schema.Never
}) {}

/**
 * @since 0.1.0
 */
export interface Job {
  readonly id: number
  readonly seed: number
  readonly prices: number
  readonly fast: number
  readonly slow: number
}

/**
 * `jobs` parameter sets over four generated markets (seeds 1 to 4).
 *
 * @since 0.1.0
 */
export const makeJobs = (jobs: number, pricesPerJob: number): ReadonlyArray<Job> =>
  Array.from({ length: jobs }, (_, id) => {
    const fast = 5 + (id % 8) * 3
    const slow = fast * 2 + 10 + Math.floor(id / 8) * 7
    return { id, seed: 1 + (id % 4), prices: pricesPerJob, fast, slow }
  })

/** mulberry32: a small deterministic PRNG, identical on every thread. */
const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A geometric random walk starting at 100, moving at most 1% a step.
 *
 * @since 0.1.0
 */
export const randomWalk = (seed: number, length: number): Float64Array => {
  const next = random(seed)
  const prices = new Float64Array(length)
  let price = 100
  for (let i = 0; i < length; i++) {
    price *= 1 + (next() - 0.5) * 0.02
    prices[i] = price
  }
  return prices
}

/**
 * Runs one job: long while the fast moving average is above the slow one,
 * flat otherwise.
 *
 * @since 0.1.0
 */
export const backtest = (job: Job): BacktestResult => {
  const prices = randomWalk(job.seed, job.prices)
  let fastSum = 0
  let slowSum = 0
  let long = false
  let trades = 0
  let equity = 1
  let peak = 1
  let maxDrawdown = 0
  for (let i = 0; i < prices.length; i++) {
    const price = prices[i]
    if (long) {
      equity *= price / prices[i - 1]
      if (equity > peak) peak = equity
      const drawdown = (peak - equity) / peak
      if (drawdown > maxDrawdown) maxDrawdown = drawdown
    }
    fastSum += price
    slowSum += price
    if (i >= job.fast) fastSum -= prices[i - job.fast]
    if (i >= job.slow) slowSum -= prices[i - job.slow]
    if (i + 1 >= job.slow) {
      const above = fastSum / job.fast > slowSum / job.slow
      if (above && !long) trades++
      long = above
    }
  }
  return { id: job.id, seed: job.seed, fast: job.fast, slow: job.slow, trades, finalEquity: equity, maxDrawdown }
}
