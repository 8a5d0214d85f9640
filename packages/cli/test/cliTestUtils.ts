/**
 * Runs the `spindle` command in-process with its output captured: `Console.log` lines are
 * stdout, `Console.error` lines stderr (progress included: the test process is not a TTY).
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Cli } from "@spindle/cli"
import { TaskService } from "@spindle/server"
import type { Scope } from "effect"
import { Cause, Console, Context, Effect, Exit, Layer, Option } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures")

export const fixture = (name: string): string => path.join(fixtures, name)

export interface Result {
  readonly exitCode: 0 | 1
  readonly stdout: string
  readonly stderr: string
  readonly error: Cli.CliError | undefined
}

const format = (args: ReadonlyArray<unknown>): string =>
  args.map((arg) => typeof arg === "string" ? arg : String(arg)).join(" ")

/** A Console writing into two arrays (and telling `onStdout` of every line). */
export const makeConsole = (
  stdout: Array<string>,
  stderr: Array<string>,
  onStdout: (line: string) => void = () => {}
): Console.Console => {
  const ignore = () => Effect.void
  const out = (...args: ReadonlyArray<unknown>) =>
    Effect.sync(() => {
      const line = format(args)
      stdout.push(line)
      onStdout(line)
    })
  const err = (...args: ReadonlyArray<unknown>) => Effect.sync(() => void stderr.push(format(args)))
  return {
    [Console.TypeId]: Console.TypeId,
    assert: ignore,
    clear: Effect.void,
    count: ignore,
    countReset: ignore,
    debug: err,
    dir: out,
    dirxml: out,
    error: err,
    group: ignore,
    groupEnd: Effect.void,
    info: out,
    log: out,
    table: out,
    time: ignore,
    timeEnd: ignore,
    timeLog: ignore,
    trace: err,
    warn: err,
    unsafe: globalThis.console
  }
}

/** Runs `spindle <args>`; never fails: the exit code says how it ended. */
export const run = (
  args: ReadonlyArray<string>,
  options?: { readonly module?: TaskService.TaskModule }
): Effect.Effect<Result> =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const exit = yield* Cli.run(args, options).pipe(
      Effect.withConsole(makeConsole(stdout, stderr)),
      Effect.provide(NodeContext.layer),
      Effect.exit
    )
    return {
      exitCode: Exit.isSuccess(exit) ? 0 : 1,
      stdout: stdout.join("\n"),
      stderr: stderr.join("\n"),
      error: Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    }
  })

/**
 * A task service on a free port over a fresh SQLite file, running `fixtures/tasks.mjs` (greet,
 * noop, boom; `elsewhere` accepted but run by no worker). Gives its URL.
 */
export const service = (
  server: TaskService.Options["server"] = {}
): Effect.Effect<string, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "spindle-cli-" })
    const module = yield* Cli.loadModule(fixture("tasks.mjs"))
    const context = yield* Layer.build(
      TaskService.layer({
        db: path.join(dir, "tasks.db"),
        port: 0,
        module,
        concurrency: 4,
        server: { requestLog: false, ...server }
      })
    )
    const running = Context.get(context, TaskService.TaskService)
    return Option.getOrThrow(running.url)
  }).pipe(Effect.provide(NodeContext.layer))
