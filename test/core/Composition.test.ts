import { assert, it } from "@effect/vitest"
import { Effect } from "effect"

it.effect("placeholder replaced by cross-module integration tests", () => Effect.sync(() => assert.isTrue(true)))
