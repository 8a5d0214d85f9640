import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { program } from "../src/program.js"

describe("api-fanout", () => {
  it.scopedLive("settles every call, retrying 503s and hangs within the limits", () =>
    Effect.gen(function*() {
      const report = yield* program({
        calls: 60,
        concurrency: 8,
        ratePerSecond: 2_000,
        failureRate: 0.2,
        hangRate: 0.05,
        seed: 3
      })
      const failed = Object.values(report.failed).reduce((a, b) => a + b, 0)
      assert.strictEqual(report.succeeded + failed, 60)
      assert.isTrue(report.succeeded >= 55, `succeeded ${report.succeeded}`)
      // 20% 503s and 5% hangs over 60 calls: the seeded server makes some calls retry
      assert.isAbove(report.retries, 0)
      assert.strictEqual(report.attempts, report.calls + report.retries)
      assert.isAtLeast(report.requestsSeen, report.attempts)
      assert.isTrue(report.peakInFlight >= 1 && report.peakInFlight <= 8)
      assert.isAtMost(report.p50Millis, report.p95Millis)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)), { timeout: 60_000 })
})
