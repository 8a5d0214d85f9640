/**
 * The CPU-bound work of `report.generate`: sales statistics over generated order rows.
 *
 * The rows are split into chunks; each chunk is generated and summarized on a worker thread
 * (`SummarizeChunk`), and the main thread merges the summaries in chunk order. A chunk's rows
 * depend only on the seed and the chunk's index, so the report is the same whatever the pool's
 * size or the order in which chunks finish.
 *
 * This module is shared by the main thread and the worker script, and imports only
 * `effect/Schema`, so the worker starts quickly.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { seeded } from "./random.js"

/**
 * The regions the generated orders come from.
 *
 * @since 0.1.0
 * @category constants
 */
export const REGIONS = ["north", "south", "east", "west", "online"] as const

/** Buckets of the amount histogram: log10(amount) from -1 to 5, 100 buckets per decade. */
const HISTOGRAM_MIN = -1
const HISTOGRAM_MAX = 5
const BUCKETS_PER_DECADE = 100
const BUCKETS = (HISTOGRAM_MAX - HISTOGRAM_MIN) * BUCKETS_PER_DECADE

/**
 * The summary of some orders of one region.
 *
 * @since 0.1.0
 * @category models
 */
export const RegionSummary = Schema.Struct({
  orders: Schema.Number,
  revenue: Schema.Number,
  sumOfSquares: Schema.Number,
  min: Schema.Number,
  max: Schema.Number,
  units: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type RegionSummary = typeof RegionSummary.Type

/**
 * The summary of one chunk: one entry per region (in `REGIONS` order) and a histogram of the
 * order amounts.
 *
 * @since 0.1.0
 * @category models
 */
export const ChunkSummary = Schema.Struct({
  index: Schema.Number,
  rows: Schema.Number,
  regions: Schema.Array(RegionSummary),
  histogram: Schema.Array(Schema.Number)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChunkSummary = typeof ChunkSummary.Type

/**
 * The request a worker thread serves: generate and summarize rows `start` to
 * `start + count - 1` of the data set of `seed`.
 *
 * @since 0.1.0
 * @category requests
 */
export class SummarizeChunk extends Schema.TaggedRequest<SummarizeChunk>()("SummarizeChunk", {
  payload: {
    seed: Schema.Number,
    index: Schema.Number,
    start: Schema.Number,
    count: Schema.Number
  },
  success: ChunkSummary,
  failure: Schema.Never
}) {}

/**
 * One chunk to summarize.
 *
 * @since 0.1.0
 * @category models
 */
export interface Chunk {
  readonly seed: number
  readonly index: number
  readonly start: number
  readonly count: number
}

/**
 * Splits `rows` rows into chunks of at most `chunkSize`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const planChunks = (seed: number, rows: number, chunkSize: number): ReadonlyArray<Chunk> => {
  const size = Math.max(1, Math.floor(chunkSize))
  const chunks: Array<Chunk> = []
  for (let start = 0, index = 0; start < rows; start += size, index++) {
    chunks.push({ seed, index, start, count: Math.min(size, rows - start) })
  }
  return chunks
}

/** Mean of log(amount) per region: the regions' typical order sizes differ. */
const REGION_LOG_MEAN = [3.2, 3.0, 3.4, 2.9, 2.6]

/**
 * Generates and summarizes one chunk (the worker's job; also callable on the main thread).
 *
 * @since 0.1.0
 * @category computations
 */
export const summarizeChunk = (chunk: Chunk): ChunkSummary => {
  const next = seeded((chunk.seed * 0x9E3779B1 + chunk.index * 0x85EBCA77) >>> 0)
  const regions = REGIONS.map(() => ({ orders: 0, revenue: 0, sumOfSquares: 0, min: Infinity, max: 0, units: 0 }))
  const histogram = new Array<number>(BUCKETS).fill(0)
  for (let i = 0; i < chunk.count; i++) {
    const region = Math.floor(next() * REGIONS.length)
    // log-normal amount (Box-Muller), a quantity of 1 to 10 units
    const u = Math.max(next(), Number.EPSILON)
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next())
    const amount = Math.round(Math.exp(REGION_LOG_MEAN[region] + 0.75 * normal) * 100) / 100
    const units = 1 + Math.floor(next() * 10)
    const summary = regions[region]
    summary.orders++
    summary.revenue += amount
    summary.sumOfSquares += amount * amount
    if (amount < summary.min) summary.min = amount
    if (amount > summary.max) summary.max = amount
    summary.units += units
    const bucket = Math.floor((Math.log10(Math.max(amount, 0.1)) - HISTOGRAM_MIN) * BUCKETS_PER_DECADE)
    histogram[Math.min(BUCKETS - 1, Math.max(0, bucket))]++
  }
  return {
    index: chunk.index,
    rows: chunk.count,
    regions: regions.map((region) => region.orders === 0 ? { ...region, min: 0 } : region),
    histogram
  }
}

/**
 * The statistics of one region in the final report.
 *
 * @since 0.1.0
 * @category models
 */
export const RegionStats = Schema.Struct({
  region: Schema.String,
  orders: Schema.Number,
  revenue: Schema.Number,
  meanOrder: Schema.Number,
  stddevOrder: Schema.Number,
  minOrder: Schema.Number,
  maxOrder: Schema.Number,
  units: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type RegionStats = typeof RegionStats.Type

/**
 * The statistics of the whole data set.
 *
 * @since 0.1.0
 * @category models
 */
export const Statistics = Schema.Struct({
  rows: Schema.Number,
  revenue: Schema.Number,
  regions: Schema.Array(RegionStats),
  /** Order amounts at the 50th, 95th and 99th percentiles (within 2.3%: the histogram's resolution). */
  p50: Schema.Number,
  p95: Schema.Number,
  p99: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type Statistics = typeof Statistics.Type

const round2 = (n: number): number => Math.round(n * 100) / 100

/**
 * Merges chunk summaries (in chunk order, so that the sums are the same on every run).
 *
 * @since 0.1.0
 * @category computations
 */
export const mergeSummaries = (summaries: ReadonlyArray<ChunkSummary>): Statistics => {
  const ordered = [...summaries].sort((a, b) => a.index - b.index)
  const regions = REGIONS.map(() => ({ orders: 0, revenue: 0, sumOfSquares: 0, min: Infinity, max: 0, units: 0 }))
  const histogram = new Array<number>(BUCKETS).fill(0)
  let rows = 0
  for (const summary of ordered) {
    rows += summary.rows
    summary.regions.forEach((region, i) => {
      const total = regions[i]
      if (region.orders === 0) return
      total.orders += region.orders
      total.revenue += region.revenue
      total.sumOfSquares += region.sumOfSquares
      total.min = Math.min(total.min, region.min)
      total.max = Math.max(total.max, region.max)
      total.units += region.units
    })
    summary.histogram.forEach((count, i) => {
      histogram[i] += count
    })
  }
  const percentile = (q: number): number => {
    const target = q * rows
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += histogram[i]
      if (seen >= target && seen > 0) return round2(10 ** (HISTOGRAM_MIN + (i + 1) / BUCKETS_PER_DECADE))
    }
    return 0
  }
  return {
    rows,
    revenue: round2(regions.reduce((sum, region) => sum + region.revenue, 0)),
    regions: regions.map((region, i) => {
      const mean = region.orders === 0 ? 0 : region.revenue / region.orders
      const variance = region.orders === 0 ? 0 : Math.max(0, region.sumOfSquares / region.orders - mean * mean)
      return {
        region: REGIONS[i],
        orders: region.orders,
        revenue: round2(region.revenue),
        meanOrder: round2(mean),
        stddevOrder: round2(Math.sqrt(variance)),
        minOrder: region.orders === 0 ? 0 : region.min,
        maxOrder: region.max,
        units: region.units
      }
    }),
    p50: percentile(0.5),
    p95: percentile(0.95),
    p99: percentile(0.99)
  }
}
