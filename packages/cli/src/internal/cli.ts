import type { CliApp } from "@effect/cli"
import { CliConfig, Command, HelpDoc, ValidationError } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Console, Effect, Option } from "effect"
import * as ClientCommands from "./clientCommands.js"
import { CliError } from "./error.js"
import * as Service from "./service.js"

/** @internal */
export const version = "0.1.0"

/** @internal */
export const make = (options: Service.RunOptions = {}) => {
  // `spindle` alone prints the help of the whole command
  let help: HelpDoc.HelpDoc = HelpDoc.empty
  const root = Command.make("spindle", {}, () => Console.log(HelpDoc.toAnsiText(help))).pipe(
    Command.withDescription("Durable tasks: run the service, submit and inspect tasks"),
    Command.withSubcommands([
      Service.serve(options),
      Service.worker(options),
      Service.migrate,
      ClientCommands.submit,
      ClientCommands.get,
      ClientCommands.list,
      ClientCommands.stats,
      ClientCommands.cancel,
      ClientCommands.retry,
      ClientCommands.queues,
      ClientCommands.pause,
      ClientCommands.resume,
      ClientCommands.bench
    ])
  )
  help = Command.getHelp(root, CliConfig.defaultConfig)
  return root
}

/** @internal */
export const command = make()

const report = (cause: Cause.Cause<unknown>): Effect.Effect<never, CliError> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof CliError) {
      return Console.error(error.lines.join("\n")).pipe(Effect.zipRight(Effect.fail(error)))
    }
    if (ValidationError.isValidationError(error)) {
      // @effect/cli has printed it already
      const text = ValidationError.isHelpRequested(error) ? "help requested" : HelpDoc.toAnsiText(error.error).trimEnd()
      return Effect.fail(new CliError({ reason: "Usage", lines: [text], cause: error }))
    }
  }
  const lines = ["error: unexpected failure", Cause.pretty(cause)]
  return Console.error(lines.join("\n")).pipe(
    Effect.zipRight(Effect.fail(new CliError({ reason: "Service", lines, cause })))
  )
}

/** @internal */
export const run = (
  args: ReadonlyArray<string>,
  options: Service.RunOptions = {}
): Effect.Effect<void, CliError, CliApp.CliApp.Environment> =>
  Command.run(options.module === undefined && options.onListening === undefined ? command : make(options), {
    name: "spindle",
    version,
    executable: "spindle"
  })(["node", "spindle", ...args]).pipe(
    Effect.provide(FetchHttpClient.layer),
    Effect.catchAllCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.interrupt : report(cause))
  )
