import { assert, describe, it } from "@effect/vitest"
import { median, renderTable, summarize } from "../src/report.js"

describe("bench report", () => {
  it("median of odd and even lists", () => {
    assert.strictEqual(median([3, 1, 2]), 2)
    assert.strictEqual(median([4, 1, 3, 2]), 2.5)
    assert.throws(() => median([]))
  })

  it("ratios are taken between medians", () => {
    const rows = summarize([
      { variant: "base", perSecond: [100, 90, 110] },
      { variant: "fast", perSecond: [300, 200, 400] }
    ], ["base"])
    assert.deepStrictEqual(rows[1], { variant: "fast", median: 300, min: 200, max: 400, ratios: { base: 3 } })
    const table = renderTable("t", "tasks", rows, ["base"])
    assert.include(table, "3.00x")
    assert.include(table, "300 (200–400)")
  })
})
