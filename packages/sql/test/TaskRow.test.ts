import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy } from "@spindle/core"
import { Either, Schema } from "effect"
import { Fallback, makeFastDecode, makeTaskRowCodec } from "../src/internal/taskRow.js"

const encodeRetry = Schema.encodeSync(RetryPolicy.Schema)

/** A raw row as each driver returns it: SQLite (JSON as text, integers maybe bigint), Postgres (jsonb parsed, BIGINT as text). */
const baseRow = (mode: "text" | "native") => {
  const json = (value: unknown) => mode === "text" ? JSON.stringify(value) : value
  return {
    id: "01JTASK",
    name: "send-email",
    queue: "default",
    status: "running",
    priority: 2,
    payload: json({ to: "a@b.c", n: [1, 2, { x: null }] }),
    result: null,
    error: null,
    attempt: 1,
    max_attempts: 3,
    retry: null,
    timeout_ms: null,
    soft_timeout_ms: 5000,
    run_at: mode === "text" ? 1_767_268_800_000 : "1767268800000",
    created_at: mode === "text" ? 1_767_268_800_000n : "1767268800000",
    updated_at: 1_767_268_801_000,
    started_at: 1_767_268_801_000,
    finished_at: null,
    lease_owner: "w1",
    lease_expires_at: 1_767_268_831_000,
    cancel_requested: mode === "text" ? 0 : false,
    progress: 0.25,
    progress_message: null,
    idempotency_key: null,
    parent_id: null,
    tags: json(["a", "b"])
  } as Record<string, unknown>
}

const variants = (mode: "text" | "native"): ReadonlyArray<readonly [string, Record<string, unknown>]> => {
  const json = (value: unknown) => mode === "text" ? JSON.stringify(value) : value
  const base = baseRow(mode)
  const retry = encodeRetry(
    RetryPolicy.exponential({ initial: "100 millis", maxAttempts: 5, retryOn: ["Unavailable"] })
  )
  const error = { tag: "Boom", message: "boom", cause: "Error: boom", value: { _tag: "Boom", code: 7 } }
  return [
    ["a running row", base],
    ["a finished row", {
      ...base,
      status: "succeeded",
      result: json({ ok: true }),
      finished_at: 1_767_268_802_000,
      lease_owner: null,
      lease_expires_at: null
    }],
    ["a string result", { ...base, result: json("hi") }],
    ["a null JSON result", { ...base, result: json(null) }],
    ["an error and a retry policy", { ...base, status: "scheduled", error: json(error), retry: json(retry) }],
    ["the same retry policy again", { ...base, retry: json(retry), id: "other" }],
    ["an error without value", { ...base, error: json({ tag: "T", message: "m", cause: "" }) }],
    ["an error with extra keys", { ...base, error: json({ tag: "T", message: "m", cause: "", extra: 1 }) }],
    ["bigint and string integers", { ...base, attempt: 2n, max_attempts: "4", priority: "0", timeout_ms: 10n }],
    ["booleans as strings", { ...base, cancel_requested: "t" }],
    ["booleans as numbers", { ...base, cancel_requested: 1 }],
    ["every nullable filled", {
      ...base,
      idempotency_key: "k",
      parent_id: "p",
      progress_message: "half",
      timeout_ms: 1000,
      lease_owner: "w2"
    }],
    ["extra columns", { ...base, extra_column: 42 }],
    ["empty tags", { ...base, tags: json([]) }],
    // invalid rows: the fast decoder gives way, and the Schema reports them
    ["a missing column", (({ queue: _queue, ...rest }) => rest)(base)],
    ["an unknown status", { ...base, status: "sleeping" }],
    ["a non-numeric integer", { ...base, attempt: "many" }],
    ["an infinite integer", { ...base, run_at: Infinity }],
    ["a null required integer", { ...base, attempt: null }],
    ["a mistyped id", { ...base, id: 7 }],
    ["tags that are not strings", { ...base, tags: json([1]) }],
    ["tags that are not an array", { ...base, tags: json({}) }],
    ["an invalid error", { ...base, error: json({ tag: 1 }) }],
    ["an invalid retry policy", { ...base, retry: json({ _tag: "Nope" }) }],
    ["a boolean of another type", { ...base, cancel_requested: null }],
    ...(mode === "text"
      ? [
        ["malformed payload JSON", { ...base, payload: "{" }],
        ["a payload that is not text", { ...base, payload: { a: 1 } }],
        ["malformed tags JSON", { ...base, tags: "[" }]
      ] as const
      : [] as const)
  ]
}

describe("taskRow", () => {
  for (const mode of ["text", "native"] as const) {
    describe(`the fast decoder (${mode} JSON) agrees with the Schema`, () => {
      const codec = makeTaskRowCodec(mode)
      const fast = makeFastDecode(mode)
      for (const [label, raw] of variants(mode)) {
        it(label, () => {
          const expected = codec.decodeSchema(raw)
          const actual = codec.decode(raw)
          if (Either.isRight(expected)) {
            assert.isTrue(Either.isRight(actual))
            assert.deepStrictEqual(Either.getOrThrow(actual), expected.right)
            // the fast path itself accepted it (no fallback)
            const direct = fast(raw)
            assert.notStrictEqual(direct, Fallback)
            assert.deepStrictEqual(direct, expected.right)
          } else {
            assert.isTrue(Either.isLeft(actual))
            assert.strictEqual(fast(raw), Fallback)
            assert.strictEqual(Either.flip(actual).pipe(Either.getOrThrow).message, expected.left.message)
          }
        })
      }
      if (mode === "native") {
        it("a payload column present but undefined: left to the Schema, which accepts it", () => {
          const raw = { ...baseRow(mode), payload: undefined }
          assert.strictEqual(fast(raw), Fallback)
          assert.deepStrictEqual(codec.decode(raw), codec.decodeSchema(raw))
          assert.isTrue(Either.isRight(codec.decode(raw)))
        })
      }
    })
  }
})
