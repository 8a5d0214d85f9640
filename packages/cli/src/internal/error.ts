import { Data } from "effect"

/** @internal */
export type Reason = "Usage" | "Config" | "Input" | "Module" | "Api" | "Connection" | "Service" | "TaskFailed"

/**
 * A command failed. `lines` is what was printed to stderr (`error: ...` first).
 *
 * @internal
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly reason: Reason
  readonly lines: ReadonlyArray<string>
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.lines.join("\n")
  }
}

/** @internal */
export const fail = (reason: Reason, message: string, cause?: unknown): CliError =>
  new CliError({ reason, lines: [`error: ${message}`], cause })
