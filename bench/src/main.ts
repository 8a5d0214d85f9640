/**
 * Every Spindle benchmark, in one run: `npm run bench` from the repository root.
 *
 *   node bench/dist/main.js [--suite core|durable|http|all]   (default all: core, durable, then http)
 *
 * Each flag goes to the suite that knows it (see core.ts and durable.ts); `--rounds` to both.
 * `--concurrency` is the core suite's (one number) when it runs, the durable suite's (a list)
 * with `--suite durable`; `--durable-concurrency` is always the durable suite's.
 */
import { parseArgs } from "node:util"
import { parseCoreBenchArgs, runCoreBench } from "./core.js"
import { runDurableSuite } from "./durable.js"
import { parseDurableBenchArgs } from "./durablePeers.js"
import { parseHttpBenchArgs, runHttpBench } from "./http.js"

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    suite: { type: "string", default: "all" },
    tasks: { type: "string" },
    concurrency: { type: "string" },
    rows: { type: "string" },
    rounds: { type: "string" },
    jobs: { type: "string" },
    "durable-concurrency": { type: "string" },
    "latency-samples": { type: "string" },
    systems: { type: "string" },
    seconds: { type: "string" },
    connections: { type: "string" },
    targets: { type: "string" }
  }
})
const suite = values.suite
if (suite !== "core" && suite !== "durable" && suite !== "http" && suite !== "all") {
  throw new RangeError(`--suite must be core, durable, http or all, got ${suite}`)
}
const flags = (entries: Record<string, string | undefined>): Array<string> =>
  Object.entries(entries).flatMap(([name, value]) => (value === undefined ? [] : [`--${name}`, value]))

if (suite === "core" || suite === "all") {
  const { concurrency, rounds, rows, tasks } = values
  console.log(await runCoreBench(parseCoreBenchArgs(flags({ tasks, concurrency, rows, rounds }))))
}
if (suite === "durable" || suite === "all") {
  if (suite === "all") console.log("")
  const concurrency = values["durable-concurrency"] ?? (suite === "durable" ? values.concurrency : undefined)
  const { jobs, rounds, systems } = values
  console.log(
    await runDurableSuite(
      parseDurableBenchArgs(flags({ jobs, concurrency, rounds, "latency-samples": values["latency-samples"], systems }))
    )
  )
}
if (suite === "http" || suite === "all") {
  if (suite === "all") console.log("")
  const { connections, rounds, seconds, targets } = values
  console.log(await runHttpBench(parseHttpBenchArgs(flags({ seconds, connections, rounds, targets }))))
}
