import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as CliTest from "./cliTestUtils.js"

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const repoRoot = path.resolve(packageDir, "../..")
const bin = path.join(packageDir, "dist", "bin.js")
const skip = !existsSync(bin) && process.env.CI !== "true"
if (skip) console.warn(`skipping the end-to-end test of the spindle executable: ${bin} is missing (run npx tsc -b)`)

const withoutSpindleVariables = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith("SPINDLE_"))
)

interface Ended {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

describe("the spindle executable", () => {
  it.scopedLive.skipIf(skip)("serve: prints its URL, runs tasks, exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      assert.isTrue(existsSync(bin), `${bin} is missing: the root npm test runs tsc -b first`)
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "spindle-bin-" })
      const listening = yield* Deferred.make<string>()
      const ended = yield* Deferred.make<Ended>()
      let stdout = ""
      let stderr = ""
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, [
            bin,
            "serve",
            "--db",
            path.join(dir, "t.db"),
            "--port",
            "0",
            "--quiet",
            "--tasks",
            path.relative(repoRoot, CliTest.fixture("tasks.mjs"))
          ], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: withoutSpindleVariables })
        ),
        (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
      )
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk
        const match = /spindle listening on (http:\/\/\S+)/.exec(stdout)
        if (match !== null) Deferred.unsafeDone(listening, Exit.succeed(match[1]!))
      })
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk
      })
      child.on("exit", (code, signal) => Deferred.unsafeDone(ended, Exit.succeed({ code, signal })))

      const url = yield* Deferred.await(listening).pipe(
        Effect.raceFirst(
          Effect.flatMap(Deferred.await(ended), (end) =>
            Effect.dieMessage(`spindle serve exited (${end.code ?? end.signal}) before listening:\n${stderr}`))
        ),
        Effect.timeoutFail({
          duration: "20 seconds",
          onTimeout: () =>
            new Error(`spindle serve printed no URL in 20s:\n${stdout}\n${stderr}`)
        })
      )

      const result = yield* CliTest.run(["submit", "--url", url, "--wait", "--json", "greet", "{\"name\":\"e2e\"}"])
      assert.strictEqual(result.exitCode, 0, result.stderr)
      const answer = JSON.parse(result.stdout)
      assert.strictEqual(answer.status, "succeeded")
      assert.strictEqual(answer.result, "hello e2e")

      child.kill("SIGTERM")
      const end = yield* Deferred.await(ended).pipe(
        Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => new Error(`spindle serve did not exit within 5s of SIGTERM:\n${stderr}`)
        })
      )
      assert.deepStrictEqual(end, { code: 0, signal: null }, stderr)
    }).pipe(Effect.provide(NodeContext.layer)))
})
