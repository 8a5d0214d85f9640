import { Options } from "@effect/cli"
import { TaskService } from "@spindle/server"
import { Config, ConfigError, Either, Option, Redacted } from "effect"

/** @internal */
export const defaults = {
  ...TaskService.defaults,
  url: `http://${TaskService.defaults.host}:${TaskService.defaults.port}`
} as const

const rangeText = (min: number, max: number): string =>
  max >= Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`

/**
 * An integer flag in `min..max`; a bad value is reported naming the flag.
 *
 * @internal
 */
export const integer = (flag: string, min: number, max: number = Number.MAX_SAFE_INTEGER): Options.Options<number> =>
  Options.text(flag).pipe(
    Options.withPseudoName("integer"),
    Options.filterMap((text) => {
      const n = /^[+-]?\d+$/.test(text.trim()) ? Number(text) : NaN
      return Number.isSafeInteger(n) && n >= min && n <= max ? Option.some(n) : Option.none()
    }, `--${flag} must be an integer ${rangeText(min, max)}`)
  )

const integerIn = (flag: string, env: string, min: number, max: number, fallback: number): Options.Options<number> =>
  integer(flag, min, max).pipe(
    Options.withFallbackConfig(
      Config.integer(env).pipe(
        Config.validate({
          message: `${env} must be an integer ${rangeText(min, max)}`,
          validation: (n) => n >= min && n <= max
        })
      )
    ),
    Options.withDefault(fallback)
  )

const nonEmpty = (flag: string, env: string, fallback: string): Options.Options<string> =>
  Options.text(flag).pipe(
    Options.filterMap((s) => s.trim() === "" ? Option.none() : Option.some(s.trim()), `--${flag} must not be empty`),
    Options.withFallbackConfig(
      Config.string(env).pipe(
        Config.validate({ message: `${env} must not be empty`, validation: (s) => s.trim() !== "" }),
        Config.map((s) => s.trim())
      )
    ),
    Options.withDefault(fallback)
  )

/** @internal */
export const db = nonEmpty("db", "SPINDLE_DB", defaults.db).pipe(
  Options.withDescription(`SQLite file path or postgres:// URL (env SPINDLE_DB, default ${defaults.db})`)
)

/** @internal */
export const port = integerIn("port", "SPINDLE_PORT", 0, 65535, defaults.port).pipe(
  Options.withDescription(`HTTP port, 0 picks a free one (env SPINDLE_PORT, default ${defaults.port})`)
)

/** @internal */
export const host = nonEmpty("host", "SPINDLE_HOST", defaults.host).pipe(
  Options.withDescription(`Interface to listen on (env SPINDLE_HOST, default ${defaults.host})`)
)

/** @internal */
export const concurrency = integerIn("concurrency", "SPINDLE_CONCURRENCY", 1, 100_000, defaults.concurrency).pipe(
  Options.withDescription(`Tasks the worker runs at once (env SPINDLE_CONCURRENCY, default ${defaults.concurrency})`)
)

/**
 * The bearer token; an empty value (`--token ""`, `SPINDLE_TOKEN=`) means none.
 *
 * @internal
 */
export const token: Options.Options<Option.Option<Redacted.Redacted>> = Options.redacted("token").pipe(
  Options.withFallbackConfig(
    Config.string("SPINDLE_TOKEN").pipe(
      Config.mapOrFail((value) =>
        value === ""
          ? Either.left(ConfigError.MissingData(["SPINDLE_TOKEN"], "SPINDLE_TOKEN is empty"))
          : Either.right(Redacted.make(value))
      )
    )
  ),
  Options.optional,
  Options.map(Option.filter((value) => Redacted.value(value) !== "")),
  Options.withDescription("Bearer token (env SPINDLE_TOKEN)")
)

/** @internal */
export const tasksFlag = Options.text("tasks").pipe(
  Options.withDescription("Path of a JS module whose default export (or `tasks` export) is a task module")
)

/** @internal */
export const tasks = (withEnv: boolean): Options.Options<Option.Option<string>> =>
  withEnv
    ? tasksFlag.pipe(
      Options.withFallbackConfig(Config.string("SPINDLE_TASKS")),
      Options.optional,
      Options.withDescription("(env SPINDLE_TASKS)")
    )
    : Options.optional(tasksFlag)

/** @internal */
export const noWorker = Options.boolean("no-worker", { aliases: ["api-only"] }).pipe(
  Options.withDescription("Serve the API only, run no worker")
)

/** @internal */
export const cors = Options.text("cors").pipe(
  Options.optional,
  Options.map(Option.map((s) => s.split(",").map((origin) => origin.trim()).filter((origin) => origin !== ""))),
  Options.withDescription("Allowed CORS origins, comma-separated (`*` for any)")
)

/** @internal */
export const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("Print the resolved configuration (and the module's tasks) and exit")
)

const isHttpUrl = (s: string): boolean => {
  try {
    const url = new URL(s)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/** @internal */
export const url = Options.text("url").pipe(
  Options.filterMap((s) => isHttpUrl(s) ? Option.some(s) : Option.none(), "--url must be an http:// or https:// URL"),
  Options.withFallbackConfig(
    Config.string("SPINDLE_URL").pipe(
      Config.validate({ message: "SPINDLE_URL must be an http:// or https:// URL", validation: isHttpUrl })
    )
  ),
  Options.withDefault(defaults.url),
  Options.withDescription(`The service's base URL (env SPINDLE_URL, default ${defaults.url})`)
)

/** @internal */
export const json = Options.boolean("json").pipe(Options.withDescription("Print the API's JSON"))

/** @internal */
export const client = { url, token, json }

const durationUnits: Record<string, number> = {
  ms: 1,
  millis: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000
}

/**
 * `500`, `500ms`, `30s`, `5 minutes`, `1h` to milliseconds.
 *
 * @internal
 */
export const parseDurationMs = (input: string): Option.Option<number> => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(input.trim().toLowerCase())
  if (match === null) return Option.none()
  const factor = match[2] === "" ? 1 : durationUnits[match[2]!]
  if (factor === undefined) return Option.none()
  const ms = Math.round(Number(match[1]) * factor)
  return Number.isSafeInteger(ms) ? Option.some(ms) : Option.none()
}

/** @internal */
export const duration = (flag: string, description: string): Options.Options<Option.Option<number>> =>
  Options.text(flag).pipe(
    Options.filterMap(parseDurationMs, `--${flag} must be a duration such as 500ms, 30s, 5m or 1h`),
    Options.optional,
    Options.withDescription(description)
  )

/** @internal */
export const positiveInt = (flag: string, fallback: number, max = 1_000_000_000): Options.Options<number> =>
  integer(flag, 1, max).pipe(Options.withDefault(fallback))

/** @internal */
export const commaList = (flag: string, description: string): Options.Options<Option.Option<Array<string>>> =>
  Options.text(flag).pipe(
    Options.repeated,
    Options.map((values) => {
      const items = values.flatMap((value) => value.split(",")).map((s) => s.trim()).filter((s) => s !== "")
      return items.length === 0 ? Option.none() : Option.some(items)
    }),
    Options.withDescription(description)
  )

const priorities = ["critical", "high", "normal", "low"] as const

/** @internal */
export const priority: Options.Options<Option.Option<typeof priorities[number]>> = Options.text("priority").pipe(
  Options.withPseudoName(priorities.join(" | ")),
  Options.filterMap(
    (text) =>
      (priorities as ReadonlyArray<string>).includes(text)
        ? Option.some(text as typeof priorities[number])
        : Option.none(),
    `--priority must be one of ${priorities.join(", ")}`
  ),
  Options.optional,
  Options.withDescription("critical, high, normal or low (default: the task's)")
)
