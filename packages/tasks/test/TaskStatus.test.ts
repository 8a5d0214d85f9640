import { assert, describe, it } from "@effect/vitest"
import * as TaskStatus from "@spindle/tasks/TaskStatus"
import { Either, Schema } from "effect"

type Status = TaskStatus.TaskStatus

/** Every allowed transition, written out by hand from docs/state-machine.md. */
const allowed: ReadonlyArray<readonly [Status, Status]> = [
  ["pending", "running"],
  ["pending", "scheduled"],
  ["pending", "cancelled"],
  ["scheduled", "pending"],
  ["scheduled", "running"],
  ["scheduled", "cancelled"],
  ["running", "succeeded"],
  ["running", "failed"],
  ["running", "dead"],
  ["running", "timed-out"],
  ["running", "scheduled"],
  ["running", "pending"],
  ["running", "cancelled"],
  ["failed", "pending"],
  ["dead", "pending"],
  ["cancelled", "pending"],
  ["timed-out", "pending"]
]

const isAllowed = (from: Status, to: Status) => allowed.some(([f, t]) => f === from && t === to)

describe("TaskStatus", () => {
  it("lists every status in lifecycle order", () => {
    assert.deepStrictEqual(TaskStatus.all, [
      "pending",
      "scheduled",
      "running",
      "succeeded",
      "failed",
      "dead",
      "cancelled",
      "timed-out"
    ])
  })

  it("decodes statuses and refuses unknown ones", () => {
    const decode = Schema.decodeUnknownEither(TaskStatus.TaskStatus)
    for (const status of TaskStatus.all) assert.deepStrictEqual(decode(status), Either.right(status))
    assert.isTrue(Either.isLeft(decode("retrying")))
    assert.isTrue(Either.isLeft(decode(1)))
  })

  it("allows exactly the transitions of the diagram", () => {
    let count = 0
    for (const from of TaskStatus.all) {
      for (const to of TaskStatus.all) {
        const expected = isAllowed(from, to)
        assert.strictEqual(TaskStatus.canTransition(from, to), expected, `${from} -> ${to}`)
        assert.strictEqual(TaskStatus.transitions[from].includes(to), expected, `${from} -> ${to}`)
        const result = TaskStatus.transition("t1", from, to)
        if (expected) {
          assert.deepStrictEqual(result, Either.right(to))
          count++
        } else {
          assert.isTrue(Either.isLeft(result), `${from} -> ${to}`)
        }
      }
    }
    assert.strictEqual(count, allowed.length)
  })

  it("refuses illegal transitions with a typed error", () => {
    const refused: ReadonlyArray<readonly [Status, Status]> = [
      ["succeeded", "pending"],
      ["succeeded", "running"],
      ["succeeded", "cancelled"],
      ["pending", "succeeded"],
      ["pending", "pending"],
      ["scheduled", "dead"],
      ["running", "running"],
      ["dead", "running"],
      ["failed", "succeeded"],
      ["cancelled", "cancelled"],
      ["timed-out", "running"]
    ]
    for (const [from, to] of refused) {
      const result = TaskStatus.transition("t1", from, to)
      assert.isTrue(Either.isLeft(result), `${from} -> ${to}`)
      if (Either.isLeft(result)) {
        const error = result.left
        assert.strictEqual(error._tag, "IllegalTransition")
        assert.deepStrictEqual(error, new TaskStatus.IllegalTransition({ taskId: "t1", from, to }))
        assert.strictEqual(error.message, `task t1 cannot go from ${from} to ${to}`)
      }
    }
  })

  it("IllegalTransition round-trips through its Schema", () => {
    const error = new TaskStatus.IllegalTransition({ taskId: "t9", from: "dead", to: "running" })
    const encoded = Schema.encodeSync(TaskStatus.IllegalTransition)(error)
    assert.deepStrictEqual(encoded, { _tag: "IllegalTransition", taskId: "t9", from: "dead", to: "running" })
    assert.deepStrictEqual(Schema.decodeUnknownSync(TaskStatus.IllegalTransition)(encoded), error)
  })

  it("isFinished, claimable and retryable", () => {
    const finished = TaskStatus.all.filter(TaskStatus.isFinished)
    assert.deepStrictEqual(finished, ["succeeded", "failed", "dead", "cancelled", "timed-out"])
    assert.deepStrictEqual(TaskStatus.claimable, ["pending", "scheduled"])
    assert.deepStrictEqual(TaskStatus.retryable, ["failed", "dead", "cancelled", "timed-out"])
    // finished tasks leave only by a retry by hand; succeeded never leaves
    for (const status of finished) {
      assert.deepStrictEqual(TaskStatus.transitions[status], status === "succeeded" ? [] : ["pending"])
    }
    // claimable statuses can be claimed; retryable ones are finished and can go back to pending
    for (const status of TaskStatus.claimable) {
      assert.isFalse(TaskStatus.isFinished(status))
      assert.isTrue(TaskStatus.canTransition(status, "running"))
    }
    for (const status of TaskStatus.retryable) {
      assert.isTrue(TaskStatus.isFinished(status))
      assert.isTrue(TaskStatus.canTransition(status, "pending"))
    }
    assert.isFalse(TaskStatus.isFinished("running"))
  })
})
