/**
 * The HTTP benchmark: `POST /v1/tasks` accepted per second by the task service on a durable
 * SQLite file and on Postgres, against the ceiling of a bare Node `http` server that only parses
 * the JSON body, measured in one run (each server in a child process of its own, the load
 * generator in this one; targets interleaved and rotated each round).
 *
 *   node bench/dist/http.js [--seconds 5] [--connections 64] [--rounds 3]
 *     [--targets bare,spindle-sqlite,spindle-pg]
 *
 * Goals (issue 4): at least 10,000 accepted tasks/s on SQLite, and at least 50% of the ceiling.
 * Every Spindle round checks that the store holds exactly the tasks it accepted.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { PG_URL } from "./env.js"
import { runLoad } from "./httpLoad.js"
import type { Samples } from "./report.js"
import { median, renderTable, summarize } from "./report.js"

/**
 * The servers measured.
 *
 * @since 0.1.0
 */
export const httpTargets = ["bare", "spindle-sqlite", "spindle-pg"] as const

/**
 * @since 0.1.0
 */
export type HttpTarget = typeof httpTargets[number]

/**
 * Options of a run.
 *
 * @since 0.1.0
 */
export interface HttpBenchOptions {
  readonly seconds: number
  readonly connections: number
  readonly rounds: number
  readonly targets: ReadonlyArray<HttpTarget>
}

/**
 * The goals of issue 4.
 *
 * @since 0.1.0
 */
export const HTTP_GOALS = { sqlitePerSecond: 10_000, ofCeiling: 0.5 } as const

const distDir = fileURLToPath(new URL(".", import.meta.url))
const BODY = JSON.stringify({ name: "bench.noop", payload: { n: 1 } })

/**
 * Parses the command line.
 *
 * @since 0.1.0
 */
export const parseHttpBenchArgs = (args: ReadonlyArray<string>): HttpBenchOptions => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      seconds: { type: "string", default: "5" },
      connections: { type: "string", default: "64" },
      rounds: { type: "string", default: "3" },
      targets: { type: "string", default: httpTargets.join(",") }
    }
  })
  const positive = (name: string, value: string) => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${value}`)
    return n
  }
  const targets = values.targets.split(",").map((t) => t.trim()).filter((t) => t !== "")
  for (const target of targets) {
    if (!(httpTargets as ReadonlyArray<string>).includes(target)) {
      throw new RangeError(`unknown target ${target}: one of ${httpTargets.join(", ")}`)
    }
  }
  return {
    seconds: positive("seconds", values.seconds),
    connections: positive("connections", values.connections),
    rounds: positive("rounds", values.rounds),
    targets: targets as Array<HttpTarget>
  }
}

interface Running {
  readonly port: number
  readonly stop: () => Promise<void>
}

const startTarget = (target: HttpTarget, address: string | undefined): Promise<Running> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(distDir, "httpTarget.js"), target, ...(address ? [address] : [])], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.once("exit", (code) => reject(new Error(`${target} exited with ${code} before listening: ${output}`)))
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening (\d+)/.exec(output)
      if (match) {
        resolve({
          port: Number(match[1]),
          stop: () => {
            child.kill("SIGTERM")
            const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
            return exited.then(() => clearTimeout(killer))
          }
        })
      }
    })
  })

const countTasks = async (port: number): Promise<number> => {
  const response = await fetch(`http://127.0.0.1:${port}/v1/stats`)
  if (!response.ok) throw new Error(`GET /v1/stats answered ${response.status}`)
  const stats = await response.json() as { total: number }
  return stats.total
}

const withPgDatabase = async <A>(f: (url: string) => Promise<A>): Promise<A> => {
  const name = `spindle_bench_http_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const admin = (statement: string) =>
    Effect.runPromise(
      Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(statement)).pipe(
        Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL) }))
      )
    )
  await admin(`CREATE DATABASE "${name}"`)
  try {
    const url = new URL(PG_URL)
    url.pathname = `/${name}`
    return await f(url.toString())
  } finally {
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  }
}

/**
 * One measurement: a fresh server (and a fresh store), a 1-second warm-up, then `seconds` of
 * load. Returns accepted per second.
 *
 * @since 0.1.0
 */
export const measureTarget = async (target: HttpTarget, options: HttpBenchOptions): Promise<number> => {
  const run = async (address: string | undefined) => {
    const server = await startTarget(target, address)
    try {
      const load = {
        host: "127.0.0.1",
        port: server.port,
        method: "POST" as const,
        path: target === "bare" ? "/" : "/v1/tasks",
        body: BODY,
        connections: options.connections
      }
      const warm = await runLoad({ ...load, durationMs: 1000 })
      const result = await runLoad({ ...load, durationMs: options.seconds * 1000 })
      const rejected = result.requests - result.ok
      if (rejected > 0 || result.errors > 0) {
        throw new Error(
          `${target}: ${rejected} requests not accepted (${JSON.stringify(result.statuses)}), ${result.errors} errors`
        )
      }
      if (target !== "bare") {
        const stored = await countTasks(server.port)
        if (stored !== warm.ok + result.ok) {
          throw new Error(`${target}: accepted ${warm.ok + result.ok} tasks but the store holds ${stored}`)
        }
      }
      return result.okPerSecond
    } finally {
      await server.stop()
    }
  }
  if (target === "spindle-pg") return withPgDatabase(run)
  if (target === "spindle-sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "spindle-bench-http-"))
    try {
      return await run(join(dir, "bench.db"))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return run(undefined)
}

/**
 * Runs every target `rounds` times, interleaved and rotated, and renders the table with the
 * ratio to the ceiling and the goals.
 *
 * @since 0.1.0
 */
export const runHttpBench = async (options: HttpBenchOptions): Promise<string> => {
  const samples = new Map<HttpTarget, Array<number>>(options.targets.map((t) => [t, []]))
  for (let round = 0; round < options.rounds; round++) {
    const order = options.targets.map((_, i) => options.targets[(i + round) % options.targets.length]!)
    for (const target of order) samples.get(target)!.push(await measureTarget(target, options))
  }
  const all: Array<Samples> = options.targets.map((t) => ({ variant: t, perSecond: samples.get(t)! }))
  const baselines = options.targets.includes("bare") ? ["bare"] : []
  const table = renderTable(
    `POST /v1/tasks, ${options.connections} connections, ${options.seconds} s x ${options.rounds} rounds (median of rounds)`,
    "accepted",
    summarize(all, baselines),
    baselines
  )
  const goals: Array<string> = []
  const sqlite = samples.get("spindle-sqlite")
  const bare = samples.get("bare")
  if (sqlite !== undefined) {
    const m = median(sqlite)
    goals.push(
      `goal spindle-sqlite >= ${HTTP_GOALS.sqlitePerSecond}/s: ${m >= HTTP_GOALS.sqlitePerSecond ? "met" : "MISSED"} (${
        Math.round(m)
      }/s)`
    )
    if (bare !== undefined) {
      const ratio = m / median(bare)
      goals.push(
        `goal spindle-sqlite >= ${HTTP_GOALS.ofCeiling * 100}% of bare: ${
          ratio >= HTTP_GOALS.ofCeiling ? "met" : "MISSED"
        } (${(ratio * 100).toFixed(0)}%)`
      )
    }
  }
  return [table, "", ...goals].join("\n")
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runHttpBench(parseHttpBenchArgs(process.argv.slice(2))))
}
