/**
 * The `spindle` command: `serve` and `worker` run the task service, `migrate` prepares its
 * store, and `submit`, `get`, `list`, `stats`, `cancel`, `retry`, `queues`, `pause`, `resume`
 * and `bench` talk to a running service over HTTP.
 *
 * Flags win over the environment (`SPINDLE_DB`, `SPINDLE_PORT`, `SPINDLE_HOST`, `SPINDLE_TOKEN`,
 * `SPINDLE_CONCURRENCY`, `SPINDLE_URL`, `SPINDLE_TASKS`, read through `Config`), which wins over
 * the defaults. Results go to stdout through `Console.log` (`--json` prints the API's JSON),
 * errors and progress to stderr.
 *
 * @since 0.1.0
 */
import type { CliApp } from "@effect/cli"
import type { TaskService } from "@spindle/server"
import type { Effect, Option, Redacted } from "effect"
import * as internal from "./internal/cli.js"
import * as error from "./internal/error.js"
import * as module_ from "./internal/module.js"

/**
 * Why a command failed: a bad flag or environment variable (`Usage`), unreadable input
 * (`Input`), a task module that does not load (`Module`), an error answered by the API (`Api`),
 * an unreachable service (`Connection`), a service that could not start (`Service`), or a waited
 * task that did not succeed (`TaskFailed`). `lines` is what was printed to stderr.
 *
 * @example
 * ```ts
 * import { Cli } from "@spindle/cli"
 *
 * const error = new Cli.CliError({ reason: "Connection", lines: ["error: cannot reach http://127.0.0.1:7400"] })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const CliError: typeof error.CliError = error.CliError

/**
 * @since 0.1.0
 * @category errors
 */
export type CliError = error.CliError

/**
 * What an embedding program gives `run`: its task module, and what to do once `serve` listens.
 *
 * @example
 * ```ts
 * import { Cli } from "@spindle/cli"
 * import { TaskService } from "@spindle/server"
 * import { Console } from "effect"
 *
 * const options: Cli.RunOptions = {
 *   module: TaskService.module({ definitions: [] }),
 *   onListening: ({ url }) => Console.log(`dashboard: ${url}/`)
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /**
   * The task module `serve` and `worker` run when no `--tasks` flag is given (an embedding
   * program passes its own), or a function making it for the store address the command resolved
   * (`--db`, `SPINDLE_DB` or the default), for a module whose files go next to the store.
   * Without it, `--tasks` or `SPINDLE_TASKS` names one.
   */
  readonly module?: TaskService.TaskModule | ((service: { readonly db: string }) => TaskService.TaskModule) | undefined
  /**
   * Called by `serve` once the service listens, after it printed `spindle listening on <url>`:
   * the base URL, the store address and the bearer token the API requires (`--token` or
   * `SPINDLE_TOKEN`, none when empty), for an embedding program that talks to its own service.
   */
  readonly onListening?:
    | ((info: {
      readonly url: string
      readonly db: string
      readonly token: Option.Option<Redacted.Redacted>
    }) => Effect.Effect<void>)
    | undefined
}

/**
 * The root command with its subcommands, for help, completions or composition.
 *
 * @example
 * ```ts
 * import { Command } from "@effect/cli"
 * import { Cli } from "@spindle/cli"
 *
 * const names = Command.getNames(Cli.command)
 * ```
 *
 * @since 0.1.0
 * @category commands
 */
export const command: typeof internal.command = internal.command

/**
 * Runs the command on `args`, the arguments after the program's name
 * (`process.argv.slice(2)`). Errors are printed to stderr (`error: <tag>: <message>`) and the
 * effect fails with a `CliError`, so that `NodeRuntime.runMain` exits with code 1; `serve` and
 * `worker` run until interrupted (SIGINT, SIGTERM), then shut down gracefully.
 *
 * @example
 * ```ts
 * import { NodeContext, NodeRuntime } from "@effect/platform-node"
 * import { Cli } from "@spindle/cli"
 * import { TaskService } from "@spindle/server"
 * import { Effect } from "effect"
 *
 * const module = TaskService.module({ definitions: [] })
 *
 * Cli.run(process.argv.slice(2), { module }).pipe(
 *   Effect.provide(NodeContext.layer),
 *   NodeRuntime.runMain({ disableErrorReporting: true })
 * )
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: (
  args: ReadonlyArray<string>,
  options?: RunOptions
) => Effect.Effect<void, CliError, CliApp.CliApp.Environment> = internal.run

/**
 * Imports a task module as `--tasks` does: `path` is resolved against `cwd` (default the
 * process's), and its default export, or its `tasks` export, must be a `TaskService.TaskModule`;
 * otherwise fails with a `CliError` (reason `Module`) saying what is wrong.
 *
 * @example
 * ```ts
 * import { Cli } from "@spindle/cli"
 *
 * const module = Cli.loadModule("./tasks.mjs")
 * ```
 *
 * @since 0.1.0
 * @category modules
 */
export const loadModule: (
  path: string,
  cwd?: string
) => Effect.Effect<TaskService.TaskModule, CliError> = module_.load
