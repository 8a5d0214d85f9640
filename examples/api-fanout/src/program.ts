/**
 * api-fanout: 1,000 calls to a slow, flaky API through the four tools a careful client needs.
 *
 * - `Limiter`: at most `concurrency` calls in flight, results in input order, every call settled.
 * - `RateLimiter`: at most `ratePerSecond` requests leave the process (token bucket, callers wait).
 * - `Deadline`: each attempt warns when slow (soft) and is cut off when it hangs (hard).
 * - `RetryPolicy`: 503s and cut-off attempts are retried with capped, jittered exponential backoff.
 */
import { HttpClient } from "@effect/platform"
import { Deadline, Limiter, RateLimiter, RetryPolicy } from "@spindle/core"
import { Clock, Data, Effect, Either, Logger, LogLevel } from "effect"
import { flakyServer } from "./flakyServer.js"

/** Options of one fan-out run. */
export interface FanoutOptions {
  readonly calls: number
  readonly concurrency: number
  readonly ratePerSecond: number
  readonly failureRate: number
  readonly hangRate: number
  readonly seed: number
}

/** What the run measured. */
export interface FanoutReport {
  readonly calls: number
  readonly succeeded: number
  readonly failed: Readonly<Record<string, number>>
  readonly attempts: number
  readonly retries: number
  readonly softWarnings: number
  readonly requestsSeen: number
  readonly peakInFlight: number
  readonly p50Millis: number
  readonly p95Millis: number
  readonly seconds: number
}

/** The API answered 503. */
export class Unavailable extends Data.TaggedError("Unavailable")<{ readonly status: number }> {}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

/** Runs the fan-out against a local flaky server and reports what happened. */
export const program = (options: FanoutOptions) =>
  Effect.gen(function*() {
    const server = yield* flakyServer({
      failureRate: options.failureRate,
      hangRate: options.hangRate,
      hangMillis: 2_000,
      seed: options.seed
    })
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const limiter = yield* Limiter.make({ name: "api-fanout", limit: options.concurrency })
    const rate = yield* RateLimiter.make({
      name: "api-fanout",
      algorithm: "token-bucket",
      limit: options.ratePerSecond,
      interval: "1 second",
      onExceeded: "delay"
    })
    const policy = RetryPolicy.exponential({
      name: "api-fanout",
      initial: "20 millis",
      maxDelay: "500 millis",
      maxAttempts: 5,
      jitter: "full",
      retryOn: ["Unavailable", "DeadlineExceeded"]
    })

    let attempts = 0
    let softWarnings = 0
    const attempt = (id: number) =>
      Effect.suspend(() => {
        attempts++
        return client.get(`${server.url}/items/${id}`)
      }).pipe(
        Effect.flatMap((response) => response.json),
        Effect.mapError((error) =>
          error._tag === "ResponseError" && error.response.status === 503
            ? new Unavailable({ status: error.response.status })
            : error
        ),
        Deadline.timeout({
          name: "api-fanout-attempt",
          soft: "100 millis",
          hard: "300 millis",
          onSoft: () => Effect.sync(() => softWarnings++)
        }),
        rate.run
      )

    const call = (id: number) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const value = yield* attempt(id).pipe(RetryPolicy.retry(policy))
        return [value, (yield* Clock.currentTimeMillis) - started] as const
      })

    const started = yield* Clock.currentTimeMillis
    const results = yield* limiter.forEach(
      Array.from({ length: options.calls }, (_, i) => i),
      call,
      { mode: "settle" }
    ).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
    const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000

    const latencies: Array<number> = []
    const failed: Record<string, number> = {}
    for (const result of results) {
      if (Either.isRight(result)) latencies.push(result.right[1])
      else failed[result.left._tag] = (failed[result.left._tag] ?? 0) + 1
    }
    latencies.sort((a, b) => a - b)
    const stats = yield* limiter.stats
    return {
      calls: options.calls,
      succeeded: latencies.length,
      failed,
      attempts,
      retries: Math.max(0, attempts - options.calls),
      softWarnings,
      requestsSeen: server.requests(),
      peakInFlight: stats.peak,
      p50Millis: percentile(latencies, 50),
      p95Millis: percentile(latencies, 95),
      seconds
    } satisfies FanoutReport
  })
