import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { beforeAll } from "vitest"
import { backtest, makeJobs } from "../src/backtest.js"
import { program } from "../src/program.js"

// The worker thread runs the compiled script (Node 20 cannot load TypeScript in a worker), so the
// example is built first. `tsc -b` is incremental: after `npm test`'s typecheck, which builds every
// dist, it only checks that the build is up to date; in a fresh checkout it builds @spindle/core and
// this example.
const workerUrl = new URL("../dist/worker.js", import.meta.url)

beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  const project = fileURLToPath(new URL("../tsconfig.json", import.meta.url))
  try {
    execFileSync(process.execPath, [tsc, "-b", project], { stdio: "pipe" })
  } catch (error) {
    // type errors elsewhere in the build still emit; only a missing worker script is fatal
    if (!existsSync(workerUrl)) throw error
  }
}, 180_000)

describe("cpu-pool", () => {
  it("backtests deterministically", () => {
    const [job] = makeJobs(1, 5_000)
    assert.deepStrictEqual(backtest(job), backtest(job))
    assert.isAbove(backtest(job).trades, 0)
  })

  it.live("runs the backtests on the main thread and on the pool with identical results", () =>
    Effect.gen(function*() {
      const report = yield* program({ jobs: 12, pricesPerJob: 20_000, workers: 2, workerUrl })
      assert.isTrue(report.identical)
      assert.strictEqual(report.results.length, 12)
      assert.deepStrictEqual(report.results.map((result) => result.id), Array.from({ length: 12 }, (_, i) => i))
      assert.deepStrictEqual(report.results[5], backtest(makeJobs(12, 20_000)[5]))
      assert.strictEqual(report.stats.completed, 12)
      assert.strictEqual(report.stats.failed, 0)
      assert.isAtMost(report.best.finalEquity, Math.max(...report.results.map((result) => result.finalEquity)))
      assert.isAbove(report.speedup, 0)
    }), { timeout: 60_000 })
})
