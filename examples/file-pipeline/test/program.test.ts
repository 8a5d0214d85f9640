import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { program } from "../src/program.js"

describe("file-pipeline", () => {
  it.scopedLive("streams every row through the limited stage and writes them all", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const report = yield* program({ rows: 5_000, directory, concurrency: 8, malformedEvery: 1_000 })
      assert.strictEqual(report.malformed, 5)
      assert.strictEqual(report.rows, 4_995)
      assert.strictEqual(Object.values(report.totalsBySensor).reduce((a, b) => a + b, 0), 4_995)
      assert.isTrue(report.peakInFlight >= 1 && report.peakInFlight <= 8)
      const written = (yield* fs.readFileString(`${directory}/calibrated.csv`)).trimEnd().split("\n")
      assert.strictEqual(written.length, 4_995)
      // order is kept: row 1 is sensor "beta", value 91.9, calibrated by 1.02
      assert.strictEqual(written[0], "1,beta,93.738")
      // row 5000 is malformed, so the last one written is 4999: sensor "delta", value 8.1
      assert.strictEqual(written.at(-1), "4999,delta,8.262")
    }).pipe(Effect.provide(NodeContext.layer)), { timeout: 60_000 })
})
