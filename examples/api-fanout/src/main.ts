/**
 * Run: `npm start -w @spindle/example-api-fanout` (CALLS, CONCURRENCY, RATE to change).
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Config, Console, Effect } from "effect"
import { program } from "./program.js"

const main = Effect.gen(function*() {
  const calls = yield* Config.integer("CALLS").pipe(Config.withDefault(1_000))
  const concurrency = yield* Config.integer("CONCURRENCY").pipe(Config.withDefault(32))
  const ratePerSecond = yield* Config.integer("RATE").pipe(Config.withDefault(500))
  yield* Console.log(
    `${calls} calls to a flaky local API (10% 503s, 2% hangs): concurrency ${concurrency}, ${ratePerSecond} requests/s`
  )
  const report = yield* program({ calls, concurrency, ratePerSecond, failureRate: 0.1, hangRate: 0.02, seed: 7 })
  const failures = Object.entries(report.failed).map(([tag, n]) => `${n} ${tag}`).join(", ") || "none"
  yield* Console.log(
    [
      `succeeded        ${report.succeeded} / ${report.calls}`,
      `failed           ${failures}`,
      `attempts         ${report.attempts} (${report.retries} retries), ${report.requestsSeen} requests reached the API`,
      `soft warnings    ${report.softWarnings} slow attempts (> 100 ms)`,
      `latency per call p50 ${report.p50Millis} ms, p95 ${report.p95Millis} ms (retries included)`,
      `peak in flight   ${report.peakInFlight} (limit ${concurrency})`,
      `time             ${report.seconds.toFixed(2)} s`
    ].join("\n")
  )
})

main.pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici), NodeRuntime.runMain)
