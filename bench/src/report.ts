/**
 * Benchmark reporting: every comparison is made in one run, side by side, and reported as the
 * median of the rounds with its min–max and the ratio of medians to a named baseline.
 */

/** Samples of one variant, in units per second (higher is better). */
export interface Samples {
  readonly variant: string
  readonly perSecond: ReadonlyArray<number>
}

/** One printed row. */
export interface Row {
  readonly variant: string
  readonly median: number
  readonly min: number
  readonly max: number
  readonly ratios: Readonly<Record<string, number>>
}

/** The median of a non-empty list of numbers. */
export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) throw new RangeError("median of an empty list")
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Rows with the median, min and max of each variant and its ratio to each baseline variant. */
export const summarize = (samples: ReadonlyArray<Samples>, baselines: ReadonlyArray<string>): Array<Row> => {
  const medians = new Map(samples.map((s) => [s.variant, median(s.perSecond)]))
  return samples.map((s) => {
    const m = medians.get(s.variant)!
    const ratios: Record<string, number> = {}
    for (const baseline of baselines) {
      const b = medians.get(baseline)
      if (b !== undefined && b > 0) ratios[baseline] = m / b
    }
    return { variant: s.variant, median: m, min: Math.min(...s.perSecond), max: Math.max(...s.perSecond), ratios }
  })
}

const formatRate = (n: number): string =>
  n >= 1_000_000 ? `${(n / 1_000_000).toFixed(2)}M` : n >= 10_000 ? `${Math.round(n / 1000)}k` : n.toFixed(0)

/** A plain-text table: variant, median/s (min–max), then one `x<baseline>` column per baseline. */
export const renderTable = (
  title: string,
  unit: string,
  rows: ReadonlyArray<Row>,
  baselines: ReadonlyArray<string>
): string => {
  const header = ["variant", `${unit}/s median (min–max)`, ...baselines.map((b) => `vs ${b}`)]
  const body = rows.map((r) => [
    r.variant,
    `${formatRate(r.median)} (${formatRate(r.min)}–${formatRate(r.max)})`,
    ...baselines.map((b) => (r.ratios[b] === undefined ? "" : `${r.ratios[b]!.toFixed(2)}x`))
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  return [title, line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}
