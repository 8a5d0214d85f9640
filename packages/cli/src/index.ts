/**
 * @spindle/cli — the `spindle` command: run the task service, submit and inspect tasks.
 *
 * @since 0.1.0
 */

/**
 * The `spindle` command, its subcommands and `run` to embed it.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
