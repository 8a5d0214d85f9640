import { assert, describe, it } from "@effect/vitest"
import {
  type DurableSamples,
  parseDurableBenchArgs,
  peerNames,
  percentile,
  renderDurableReport,
  runTimeoutMs
} from "../src/durablePeers.js"
import { chunkSizes, makeCounter } from "../src/durableRunner.js"

describe("durable benchmark harness", () => {
  it("percentile by nearest rank", () => {
    const values = Array.from({ length: 50 }, (_, i) => 50 - i)
    assert.strictEqual(percentile(values, 50), 25)
    assert.strictEqual(percentile(values, 95), 48)
    assert.strictEqual(percentile([7], 95), 7)
    assert.throws(() => percentile([], 50))
  })

  it("flags default to the method of BENCHMARKS.md", () => {
    const options = parseDurableBenchArgs([])
    assert.deepStrictEqual(options, {
      jobs: 20_000,
      concurrencies: [10, 50],
      rounds: 3,
      latencySamples: 50,
      systems: undefined
    })
    const small = parseDurableBenchArgs(["--jobs", "2000", "--concurrency", "10", "--systems", "bullmq,pg-boss"])
    assert.deepStrictEqual(small.concurrencies, [10])
    assert.deepStrictEqual(small.systems, ["bullmq", "pg-boss"])
    assert.throws(() => parseDurableBenchArgs(["--rounds", "0"]))
  })

  it("every run is bounded in time", () => {
    for (const mode of ["probe", "enqueue", "drain"] as const) {
      assert.isTrue(runTimeoutMs(mode, 20_000) <= 300_000, mode)
    }
    // latency runs are sized by their sample count
    assert.isTrue(runTimeoutMs("latency", 50) <= 300_000)
  })

  it("a Spindle system slots in next to the peers, with ratios against each peer", () => {
    const samples: Array<DurableSamples> = [
      { system: "graphile-worker", metric: "drain@10", samples: [16_000, 15_000, 17_000] },
      { system: "spindle-pg", metric: "drain@10", samples: [24_000, 23_000, 25_000] },
      { system: "graphile-worker", metric: "enqueue", samples: [26_000] },
      { system: "spindle-pg", metric: "enqueue", samples: [52_000] },
      { system: "bullmq", metric: "latency-p50", samples: [1.5] },
      { system: "bullmq", metric: "latency-p95", samples: [3] },
      { system: "spindle-pg", metric: "latency-p50", samples: [3] },
      { system: "spindle-pg", metric: "latency-p95", samples: [6] }
    ]
    const report = renderDurableReport(samples, { jobs: 20_000, rounds: 3, latencySamples: 50, baselines: peerNames })
    const sections = report.split("\n\n")
    assert.strictEqual(sections.length, 3)
    assert.include(sections[0]!, "Bulk enqueue")
    assert.include(sections[0]!, "2.00x")
    assert.include(sections[1]!, "Drain at concurrency 10")
    assert.include(sections[1]!, "24k (23k–25k)")
    assert.include(sections[1]!, "1.50x")
    assert.notInclude(sections[1]!, "vs bullmq")
    assert.include(sections[2]!, "p50 vs bullmq")
    assert.include(sections[2]!, "2.00x")
  })

  it("runners enqueue in chunks of 1,000 and count handled jobs", async () => {
    assert.deepStrictEqual(chunkSizes(2_500), [1_000, 1_000, 500])
    assert.deepStrictEqual(chunkSizes(0), [])
    const counter = makeCounter()
    const done = counter.reached(3)
    counter.add()
    counter.add(2)
    await done
    assert.strictEqual(counter.count, 3)
    await counter.reached(1)
  })
})
