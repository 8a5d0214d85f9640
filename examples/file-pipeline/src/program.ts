/**
 * file-pipeline: a large generated CSV file streamed line by line, each row enriched by an
 * asynchronous lookup under a Spindle Limiter, the result written to a second file. Memory
 * stays flat whatever the file size: the stream pulls only as fast as the limited stage and the
 * writer drain it (backpressure), so at most a few chunks are in memory at any time.
 */
import { FileSystem } from "@effect/platform"
import { Limiter } from "@spindle/core"
import { Chunk, Clock, Data, Effect, Either, Option, Schedule, Stream } from "effect"

/** Options of one pipeline run. */
export interface PipelineOptions {
  /** Rows to generate into the input file. */
  readonly rows: number
  /** Folder for the input and output files. */
  readonly directory: string
  /** How many rows are enriched at once. */
  readonly concurrency: number
  /** Every n-th generated row is malformed, to show that bad input is counted, not fatal. */
  readonly malformedEvery?: number
}

/** What a run measured. */
export interface PipelineReport {
  readonly rows: number
  readonly malformed: number
  readonly inputBytes: number
  readonly outputBytes: number
  readonly seconds: number
  readonly rowsPerSecond: number
  readonly peakHeapBytes: number
  readonly peakRssBytes: number
  readonly peakInFlight: number
  readonly totalsBySensor: Readonly<Record<string, number>>
}

/** A line that is not `id,sensor,value`. */
export class MalformedRow extends Data.TaggedError("MalformedRow")<{ readonly line: string }> {}

interface Reading {
  readonly id: number
  readonly sensor: string
  readonly value: number
}

const sensors = ["alpha", "beta", "gamma", "delta"] as const

const generatedLine = (i: number, malformedEvery: number): string =>
  malformedEvery > 0 && i % malformedEvery === 0
    ? `${i},broken-row`
    : `${i},${sensors[i % sensors.length]},${((i * 7919) % 1000) / 10}`

/** Write `rows` CSV lines (plus a header) to `path`, streaming, in chunks of 1,000 lines. */
export const generateInput = (path: string, rows: number, malformedEvery = 0) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Stream.make("id,sensor,value\n").pipe(
      Stream.concat(
        Stream.range(1, rows, 1000).pipe(
          Stream.map((i) => generatedLine(i, malformedEvery)),
          Stream.grouped(1000),
          Stream.map((lines) => Chunk.join(lines, "\n") + "\n")
        )
      ),
      Stream.encodeText,
      Stream.run(fs.sink(path))
    ))

const parseLine = (line: string): Either.Either<Reading, MalformedRow> => {
  const [id, sensor, value] = line.split(",")
  const parsedId = Number(id)
  const parsedValue = Number(value)
  return sensor === undefined || value === undefined || !Number.isFinite(parsedId) || !Number.isFinite(parsedValue)
    ? Either.left(new MalformedRow({ line }))
    : Either.right({ id: parsedId, sensor, value: parsedValue })
}

/** The asynchronous lookup each row needs (think: a cache or an HTTP call); one event-loop hop here. */
const enrich = (reading: Reading) =>
  Effect.async<Reading & { readonly calibrated: number }>((resume) => {
    const handle = setImmediate(() => resume(Effect.succeed({ ...reading, calibrated: reading.value * 1.02 })))
    return Effect.sync(() => clearImmediate(handle))
  })

/** Sample memory while `effect` runs; returns the effect's value and the peak heap and RSS. */
const withPeakMemory = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const peak = { heapUsed: 0, rss: 0 }
    const sample = Effect.sync(() => {
      const usage = process.memoryUsage()
      peak.heapUsed = Math.max(peak.heapUsed, usage.heapUsed)
      peak.rss = Math.max(peak.rss, usage.rss)
    })
    yield* sample
    const value = yield* effect.pipe(
      Effect.raceFirst(Effect.repeat(sample, Schedule.spaced("20 millis")).pipe(Effect.zipRight(Effect.never)))
    )
    yield* sample
    return [value, peak] as const
  })

/** Generate the input, run the pipeline over it, and report throughput and peak memory. */
export const program = (options: PipelineOptions) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const input = `${options.directory}/readings.csv`
    const output = `${options.directory}/calibrated.csv`
    yield* generateInput(input, options.rows, options.malformedEvery ?? 0)

    const limiter = yield* Limiter.make({ name: "file-pipeline", limit: options.concurrency })
    const totals: Record<string, number> = {}
    let rows = 0
    let malformed = 0

    const pipeline = fs.stream(input, { chunkSize: 64 * 1024 }).pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.drop(1),
      Stream.filterMap((line) =>
        Either.match(parseLine(line), {
          onLeft: () => {
            malformed++
            return Option.none()
          },
          onRight: Option.some
        })
      ),
      // The limited stage works a chunk at a time: `limiter.forEach` runs at most `concurrency`
      // lookups at once over the chunk with a few worker fibers, keeps order, and the next chunk
      // is pulled only when this one is done (backpressure). `Stream.mapEffect(f, { concurrency })`
      // forks a fiber and crosses a queue per row: two orders of magnitude slower here.
      Stream.rechunk(1024),
      Stream.mapChunksEffect((readings) => Effect.map(limiter.forEach(readings, enrich), Chunk.unsafeFromArray)),
      Stream.tap((row) =>
        Effect.sync(() => {
          rows++
          totals[row.sensor] = (totals[row.sensor] ?? 0) + 1
        })
      ),
      Stream.map((row) => `${row.id},${row.sensor},${row.calibrated.toFixed(3)}`),
      Stream.grouped(1000),
      Stream.map((lines) => Chunk.join(lines, "\n") + "\n"),
      Stream.encodeText,
      Stream.run(fs.sink(output))
    )

    const started = yield* Clock.currentTimeMillis
    const [, peak] = yield* withPeakMemory(pipeline)
    const seconds = Math.max((yield* Clock.currentTimeMillis) - started, 1) / 1000
    const stats = yield* limiter.stats
    return {
      rows,
      malformed,
      inputBytes: Number((yield* fs.stat(input)).size),
      outputBytes: Number((yield* fs.stat(output)).size),
      seconds,
      rowsPerSecond: rows / seconds,
      peakHeapBytes: peak.heapUsed,
      peakRssBytes: peak.rss,
      peakInFlight: stats.peak,
      totalsBySensor: totals
    } satisfies PipelineReport
  })
