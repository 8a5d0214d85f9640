import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

/** The compiled worker script of the report pool. */
export const workerUrl = new URL("../dist/reportWorker.js", import.meta.url)

/** The compiled main job. */
export const mainScript = fileURLToPath(new URL("../dist/main.js", import.meta.url))

/**
 * Builds the example, as the worker thread runs the compiled script (Node 20 cannot load
 * TypeScript in a worker). `tsc -b` is incremental: after `npm test`'s typecheck, which builds
 * every dist, it only checks that the build is up to date. When a referenced package does not
 * build, `tsc -b` skips this example; `tsc -p` then emits it from the packages' last dist.
 */
export const buildExample = (): void => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  const project = fileURLToPath(new URL("../tsconfig.json", import.meta.url))
  for (const mode of ["-b", "-p"]) {
    try {
      execFileSync(process.execPath, [tsc, mode, project], { stdio: "pipe" })
      return
    } catch (error) {
      // type errors elsewhere still emit; only a missing worker script is fatal
      if (mode === "-p" && !existsSync(workerUrl)) throw error
    }
  }
}
