/**
 * Every Spindle benchmark, in one run: `npm run bench` from the repository root.
 * Flags are passed to each suite (see core.ts).
 */
import { parseCoreBenchArgs, runCoreBench } from "./core.js"

console.log(await runCoreBench(parseCoreBenchArgs(process.argv.slice(2))))
