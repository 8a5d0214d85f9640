import { assert, describe, it } from "@effect/vitest"
import { DURABLE_GOALS, durableSystemNames, renderDurableGoals, spindleSystems } from "../src/durable.js"
import type { DurableSamples } from "../src/durablePeers.js"
import { peerNames } from "../src/durablePeers.js"

describe("durable benchmark: Spindle's side", () => {
  it("lists Spindle's stores before the peers, each on the Spindle runner with its store", () => {
    assert.deepStrictEqual(durableSystemNames, ["spindle-sqlite", "spindle-pg", ...peerNames])
    assert.deepStrictEqual(spindleSystems.map((s) => s.args.slice(1)), [["sqlite"], ["pg"]])
    for (const system of spindleSystems) assert.isTrue(system.args[0]!.endsWith("durableSpindle.js"))
  })

  it("checks the goals of issue 3 against the medians of each Spindle store", () => {
    const samples: Array<DurableSamples> = [
      { system: "spindle-sqlite", metric: "enqueue", samples: [60_000, 40_000, 55_000] },
      { system: "spindle-sqlite", metric: "drain@50", samples: [30_000] },
      { system: "spindle-sqlite", metric: "drain@10", samples: [20_000] },
      { system: "spindle-sqlite", metric: "latency-p50", samples: [1.5] },
      { system: "spindle-pg", metric: "latency-p50", samples: [2.5] },
      { system: "graphile-worker", metric: "enqueue", samples: [26_000] }
    ]
    assert.deepStrictEqual(renderDurableGoals(samples).split("\n"), [
      "Goals (issue 3)",
      "MISS  spindle-sqlite drain at concurrency 10: 20,000 jobs/s (goal >= 24,000 jobs/s)",
      "met   spindle-sqlite drain at concurrency 50: 30,000 jobs/s (goal >= 24,000 jobs/s)",
      "met   spindle-sqlite bulk enqueue: 55,000 jobs/s (goal >= 50,000 jobs/s)",
      "met   spindle-sqlite idle latency p50: 1.50 ms (goal <= 2 ms)",
      "MISS  spindle-pg drain at concurrency 10: n/a (goal >= 24,000 jobs/s)",
      "MISS  spindle-pg drain at concurrency 50: n/a (goal >= 24,000 jobs/s)",
      "MISS  spindle-pg bulk enqueue: n/a (goal >= 50,000 jobs/s)",
      "MISS  spindle-pg idle latency p50: 2.50 ms (goal <= 2 ms)"
    ])
    assert.strictEqual(DURABLE_GOALS.drainPerSecond, 24_000)
  })

  it("has no goal lines for a store that was not measured", () => {
    assert.strictEqual(renderDurableGoals([{ system: "bullmq", metric: "enqueue", samples: [1] }]), "Goals (issue 3)")
  })
})
