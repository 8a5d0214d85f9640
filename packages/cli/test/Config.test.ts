import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as Cli from "./cliTestUtils.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const resolved = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const result = yield* Cli.run([...args, "--dry-run", "--json"]).pipe(withEnv(env))
    assert.strictEqual(result.exitCode, 0, result.stderr)
    return JSON.parse(result.stdout) as Record<string, unknown>
  })

describe("configuration", () => {
  it.live("defaults when neither flag nor environment says", () =>
    Effect.gen(function*() {
      const config = yield* resolved(["serve"])
      assert.deepStrictEqual(config, {
        command: "serve",
        db: "./spindle.db",
        host: "127.0.0.1",
        port: 7400,
        token: null,
        cors: [],
        worker: false,
        concurrency: 10,
        tasks: null,
        handlers: [],
        definitions: []
      })
    }))

  it.live("the environment wins over the defaults", () =>
    Effect.gen(function*() {
      const config = yield* resolved(["serve"], {
        SPINDLE_DB: "postgres://spindle:s3cret@db.internal:5432/tasks",
        SPINDLE_PORT: "9000",
        SPINDLE_HOST: "0.0.0.0",
        SPINDLE_CONCURRENCY: "32",
        SPINDLE_TOKEN: "t0ken"
      })
      assert.strictEqual(config.db, "postgres://spindle:***@db.internal:5432/tasks")
      assert.strictEqual(config.port, 9000)
      assert.strictEqual(config.host, "0.0.0.0")
      assert.strictEqual(config.concurrency, 32)
      assert.strictEqual(config.token, "<redacted>")
    }))

  it.live("flags win over the environment", () =>
    Effect.gen(function*() {
      const config = yield* resolved(
        [
          "serve",
          "--db",
          "/tmp/x.db",
          "--port",
          "0",
          "--host",
          "::1",
          "--concurrency",
          "3",
          "--cors",
          "https://a.test, https://b.test"
        ],
        { SPINDLE_DB: "./env.db", SPINDLE_PORT: "9000", SPINDLE_HOST: "0.0.0.0", SPINDLE_CONCURRENCY: "32" }
      )
      assert.strictEqual(config.db, "/tmp/x.db")
      assert.strictEqual(config.port, 0)
      assert.strictEqual(config.host, "::1")
      assert.strictEqual(config.concurrency, 3)
      assert.deepStrictEqual(config.cors, ["https://a.test", "https://b.test"])
    }))

  it.live("worker reads the same variables", () =>
    Effect.gen(function*() {
      const config = yield* resolved(["worker", "--concurrency", "4"], {
        SPINDLE_DB: "./env.db",
        SPINDLE_CONCURRENCY: "32",
        SPINDLE_TASKS: Cli.fixture("tasks.mjs")
      })
      assert.strictEqual(config.db, "./env.db")
      assert.strictEqual(config.concurrency, 4)
      assert.strictEqual(config.tasks, Cli.fixture("tasks.mjs"))
      assert.deepStrictEqual(config.handlers, ["boom", "greet", "noop"])
    }))

  it.live("an empty token is no token", () =>
    Effect.gen(function*() {
      const env = yield* resolved(["serve"], { SPINDLE_TOKEN: "" })
      assert.strictEqual(env.token, null)
      const flag = yield* resolved(["serve", "--token", ""], { SPINDLE_TOKEN: "t0ken" })
      assert.strictEqual(flag.token, null)
    }))

  it.live("a bad environment value is an error naming the variable", () =>
    Effect.gen(function*() {
      const port = yield* Cli.run(["serve", "--dry-run"]).pipe(withEnv({ SPINDLE_PORT: "abc" }))
      assert.strictEqual(port.exitCode, 1)
      assert.include(port.stderr, "SPINDLE_PORT")
      assert.strictEqual(port.error?.reason, "Usage")
      assert.strictEqual(port.stdout, "")

      const range = yield* Cli.run(["serve", "--dry-run"]).pipe(withEnv({ SPINDLE_PORT: "70000" }))
      assert.strictEqual(range.exitCode, 1)
      assert.include(range.stderr, "SPINDLE_PORT must be an integer in 0..65535")

      const concurrency = yield* Cli.run(["worker", "--dry-run"]).pipe(withEnv({ SPINDLE_CONCURRENCY: "0" }))
      assert.strictEqual(concurrency.exitCode, 1)
      assert.include(concurrency.stderr, "SPINDLE_CONCURRENCY must be an integer in 1..100000")

      const url = yield* Cli.run(["stats"]).pipe(withEnv({ SPINDLE_URL: "localhost:7400" }))
      assert.strictEqual(url.exitCode, 1)
      assert.include(url.stderr, "SPINDLE_URL must be an http:// or https:// URL")
    }))

  it.live("a bad flag value is an error naming the flag, even when the environment is fine", () =>
    Effect.gen(function*() {
      const port = yield* Cli.run(["serve", "--port", "abc", "--dry-run"]).pipe(withEnv({ SPINDLE_PORT: "9000" }))
      assert.strictEqual(port.exitCode, 1)
      assert.include(port.stderr, "--port must be an integer in 0..65535")

      const concurrency = yield* Cli.run(["serve", "--concurrency", "0", "--dry-run"])
      assert.strictEqual(concurrency.exitCode, 1)
      assert.include(concurrency.stderr, "--concurrency must be an integer in 1..100000")

      const limit = yield* Cli.run(["list", "--limit", "5000"])
      assert.strictEqual(limit.exitCode, 1)
      assert.include(limit.stderr, "--limit must be an integer in 1..1000")

      const delay = yield* Cli.run(["submit", "--delay", "soon", "greet"])
      assert.strictEqual(delay.exitCode, 1)
      assert.include(delay.stderr, "--delay must be a duration")
    }))

  it.live("the client's URL: flag over SPINDLE_URL over the default", () =>
    Effect.gen(function*() {
      // nothing listens on these ports: the error names the URL that was used
      const fromEnv = yield* Cli.run(["stats"]).pipe(withEnv({ SPINDLE_URL: "http://127.0.0.1:59998" }))
      assert.strictEqual(fromEnv.exitCode, 1)
      assert.include(fromEnv.stderr, "cannot reach the spindle service at http://127.0.0.1:59998: connection refused")
      assert.strictEqual(fromEnv.error?.reason, "Connection")

      const fromFlag = yield* Cli.run(["stats", "--url", "http://127.0.0.1:59997"]).pipe(
        withEnv({ SPINDLE_URL: "http://127.0.0.1:59998" })
      )
      assert.include(fromFlag.stderr, "http://127.0.0.1:59997")
      assert.notInclude(fromFlag.stderr, "59998")
    }))
})
