import { HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { allTasks, layer, send } from "./serverTestUtils.js"

// -----------------------------------------------------------------------------
// A seeded generator of bad requests
// -----------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so that a failure can be replayed. */
const prng = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Random = ReturnType<typeof prng>

const int = (random: Random, max: number) => Math.floor(random() * max)
const pick = <A>(random: Random, items: ReadonlyArray<A>): A => items[int(random, items.length)]!

const randomString = (random: Random, max = 12): string => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz-_@. \"\\/\u00e9\u4e2d\ud83d\ude00\n\t{}[],:0123456789"
  let out = ""
  const length = int(random, max)
  for (let i = 0; i < length; i++) out += alphabet[int(random, alphabet.length)]
  return out
}

const randomJson = (random: Random, depth = 0): unknown => {
  const kind = int(random, depth > 3 ? 5 : 7)
  switch (kind) {
    case 0:
      return null
    case 1:
      return random() < 0.5
    case 2:
      return pick(random, [0, -1, 1.5, 1e308, -1e-308, 42, Number.MAX_SAFE_INTEGER])
    case 3:
      return randomString(random)
    case 4:
      return pick(random, ["send-email", "report", "notify", "", " ", "SEND-EMAIL"])
    case 5:
      return Array.from({ length: int(random, 4) }, () => randomJson(random, depth + 1))
    default: {
      const out: Record<string, unknown> = {}
      const keys = ["name", "payload", "tasks", "priority", "queue", "runAt", "delayMs", "tags", "to", "__proto__"]
      for (let i = int(random, 5); i > 0; i--) out[pick(random, keys)] = randomJson(random, depth + 1)
      return out
    }
  }
}

/** A submission that is valid: used as the base of a batch with one bad item. */
const validItem = (random: Random) =>
  pick(random, [
    { name: "send-email", payload: { to: "a@b", subject: "s" } },
    { name: "report", payload: { day: "2026-01-02T00:00:00.000Z" } },
    { name: "notify", payload: { userId: randomString(random, 8), text: "t" } }
  ])

/** A submission that must be refused: a bad name, payload, or option. */
const badItem = (random: Random): Record<string, unknown> => {
  switch (int(random, 9)) {
    case 0:
      return { name: `${pick(random, ["send-email", "report", "notify"])}${randomString(random, 3)}x`, payload: {} }
    case 1:
      return { name: "send-email", payload: { to: randomJson(random), subject: 1 } }
    case 2:
      return { name: "send-email", payload: { to: "no-at-sign", subject: "s" } }
    case 3:
      return { name: "report", payload: { day: pick(random, ["yesterday", 12, null, "2026-13-45"]) } }
    case 4:
      return { name: "notify", payload: randomJson(random) === null ? null : [randomJson(random)] }
    case 5:
      return { ...validItem(random), priority: pick(random, ["urgent", 1, null, ""]) }
    case 6:
      return { ...validItem(random), delayMs: pick(random, [-1, 1.5, "10", null]) }
    case 7:
      return { ...validItem(random), runAt: new Date().toISOString(), delayMs: 10 }
    default:
      return { ...validItem(random), maxAttempts: pick(random, [0, -3, 2.5, "3"]) }
  }
}

interface BadRequest {
  readonly path: string
  readonly body: string
  readonly contentType: string
  readonly kind: string
}

const BODY_LIMIT = 64 * 1024

const generate = (random: Random, index: number): BadRequest => {
  const path = random() < 0.5 ? "/v1/tasks" : "/v1/tasks/batch"
  const wrap = (item: unknown) => path === "/v1/tasks" ? item : { tasks: [item] }
  const json = "application/json"
  switch (index % 10) {
    case 0: {
      // Random JSON values. A random value is never a valid submission: no random name matches
      // a definition with a valid payload (checked by the store staying empty).
      return { path, body: JSON.stringify(randomJson(random)) ?? "null", contentType: json, kind: "random" }
    }
    case 1: {
      const text = JSON.stringify(wrap(validItem(random)))
      return {
        path,
        body: text.slice(0, Math.max(1, int(random, text.length - 1))),
        contentType: json,
        kind: "truncated"
      }
    }
    case 2:
      return { path, body: JSON.stringify(wrap(badItem(random))), contentType: json, kind: "bad item" }
    case 3: {
      const items = Array.from({ length: 1 + int(random, 20) }, () => validItem(random))
      items.splice(int(random, items.length + 1), 0, badItem(random) as never)
      return {
        path: "/v1/tasks/batch",
        body: JSON.stringify({ tasks: items }),
        contentType: json,
        kind: "batch with a bad item"
      }
    }
    case 4: {
      const size = pick(random, [1_000, 30_000, BODY_LIMIT + 10, 100_000])
      const item = { ...badItem(random), huge: "x".repeat(size) }
      return { path, body: JSON.stringify(wrap(item)), contentType: json, kind: "huge string" }
    }
    case 5: {
      const depth = pick(random, [65, 200, 5_000])
      return {
        path,
        body: JSON.stringify(wrap({ ...validItem(random), payload: "@" })).replace(
          "\"@\"",
          "[".repeat(depth) + "]".repeat(depth)
        ),
        contentType: json,
        kind: "deep nesting"
      }
    }
    case 6:
      return {
        path,
        body: JSON.stringify(wrap(validItem(random))),
        contentType: pick(random, [
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data",
          "text/json"
        ]),
        kind: "wrong content type"
      }
    case 7:
      return {
        path,
        body: pick(random, [
          "",
          " ",
          "\n",
          "null",
          "true",
          "0",
          "\"\"",
          "[]",
          "{}",
          "{\"tasks\":[]}",
          "\u0000",
          "\ufeff{}"
        ]),
        contentType: json,
        kind: "empty or scalar"
      }
    case 8: {
      // Wrong types in the envelope.
      const item = {
        ...validItem(random),
        [pick(random, ["name", "tags", "queue", "parentId", "idempotencyKey"])]: pick(
          random,
          [1, {}, true, ["a", 1]]
        )
      }
      return {
        path,
        body: JSON.stringify(path === "/v1/tasks" ? item : { tasks: item }),
        contentType: json,
        kind: "wrong types"
      }
    }
    default: {
      // Valid JSON with a structural character inserted: never well-formed again.
      const text = JSON.stringify(wrap(validItem(random)))
      const at = 1 + int(random, text.length - 1)
      const corrupted = text.slice(0, at) + pick(random, ["{", "}", ",", ":", "\u0001", "]"]) + text.slice(at)
      return { path, body: isJson(corrupted) ? text.slice(0, -1) : corrupted, contentType: json, kind: "corrupted" }
    }
  }
}

const isJson = (text: string): boolean => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

// -----------------------------------------------------------------------------
// The fuzz run
// -----------------------------------------------------------------------------

const COUNT = 2_000
const SEED = 20261122

describe("Fuzz", () => {
  it.live(
    `${COUNT} malformed submissions are each answered with a 4xx JSON error; nothing is stored`,
    () =>
      Effect.gen(function*() {
        const random = prng(SEED)
        const requests = Array.from({ length: COUNT }, (_, index) => generate(random, index))
        const failures: Array<string> = []
        const statuses = new Map<number, number>()
        yield* Effect.forEach(
          requests,
          (request, index) =>
            Effect.gen(function*() {
              const answer = yield* send(
                HttpClientRequest.post(request.path).pipe(HttpClientRequest.bodyText(request.body, request.contentType))
              )
              statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
              const body = answer.json as { _tag?: unknown; message?: unknown } | undefined
              const ok = answer.status >= 400 && answer.status < 500 && typeof body === "object" && body !== null &&
                typeof body._tag === "string" && typeof body.message === "string" && body.message.length > 0
              if (!ok) {
                failures.push(
                  `#${index} (${request.kind}) ${request.path} ${request.contentType} ${
                    request.body.slice(0, 120)
                  } -> ${answer.status} ${answer.text.slice(0, 200)}`
                )
              }
            }),
          { concurrency: 8, discard: true }
        )
        assert.deepStrictEqual(failures, [])
        // Every kind of fault was met: 400, 404 (unknown names) and 413 (bodies over the limit).
        assert.isAbove(statuses.get(400) ?? 0, 0)
        assert.isAbove(statuses.get(404) ?? 0, 0)
        assert.isAbove(statuses.get(413) ?? 0, 0)
        const health = yield* send(HttpClientRequest.get("/healthz"))
        assert.strictEqual(health.status, 200)
        assert.deepStrictEqual(yield* allTasks, [])
      }).pipe(Effect.provide(layer({ bodyLimitBytes: BODY_LIMIT }, undefined, { keepAlive: true }))),
    60_000
  )
})
