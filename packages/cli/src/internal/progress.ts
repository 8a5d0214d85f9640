import type { Scope } from "effect"
import { Clock, Console, Context, Effect, Ref } from "effect"
import * as Format from "./format.js"

/**
 * Where progress goes: redrawn in place on a TTY, else plain lines (through `Console.error`)
 * at most every `intervalMs`.
 *
 * @internal
 */
export interface Sink {
  readonly isTTY: boolean
  readonly write: (text: string) => Effect.Effect<void>
  readonly columns: number
  readonly intervalMs: number
}

/** @internal */
export class ProgressSink extends Context.Reference<ProgressSink>()("@spindle/cli/ProgressSink", {
  defaultValue: (): Sink => ({
    isTTY: process.stderr.isTTY === true,
    write: (text) => Effect.sync(() => void process.stderr.write(text)),
    columns: process.stderr.columns ?? 80,
    intervalMs: 1000
  })
}) {}

/** @internal */
export interface Progress {
  readonly advance: (n: number) => Effect.Effect<void>
}

interface State {
  readonly done: number
  readonly total: number
  readonly lastDrawMs: number
}

/** @internal */
export const render = (
  label: string,
  done: number,
  total: number,
  elapsedMs: number,
  width: number
): string => {
  const ratio = total <= 0 ? 0 : Math.min(1, done / total)
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4)
  const counts = `${done}/${total}`
  const speed = Format.rate(done, elapsedMs)
  const fixed = `${label} [] ${percent} ${counts} ${speed}`
  const barWidth = Math.max(10, Math.min(40, width - fixed.length - 1))
  const filled = Math.round(ratio * barWidth)
  return `${label} [${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] ${percent} ${counts} ${speed}`
}

/**
 * A progress bar for `total` units of work; the final state is drawn when the scope closes.
 *
 * @internal
 */
export const make = (label: string, total: number): Effect.Effect<Progress, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sink = yield* ProgressSink
    const startMs = yield* Clock.currentTimeMillis
    const state = yield* Ref.make<State>({ done: 0, total, lastDrawMs: startMs })

    const draw = (current: State, nowMs: number, final: boolean): Effect.Effect<void> => {
      const line = render(label, current.done, current.total, nowMs - startMs, sink.columns)
      if (sink.isTTY) return sink.write(`\r\x1b[2K${line}${final ? "\n" : ""}`)
      return Console.error(line)
    }

    const maybeDraw = Effect.gen(function*() {
      const nowMs = yield* Clock.currentTimeMillis
      const interval = sink.isTTY ? 100 : sink.intervalMs
      const current = yield* Ref.get(state)
      if (nowMs - current.lastDrawMs < interval) return
      yield* Ref.set(state, { ...current, lastDrawMs: nowMs })
      yield* draw(current, nowMs, false)
    })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const nowMs = yield* Clock.currentTimeMillis
        const current = yield* Ref.get(state)
        yield* draw(current, nowMs, true)
      })
    )

    return {
      advance: (n) => Ref.update(state, (s) => ({ ...s, done: s.done + n })).pipe(Effect.zipRight(maybeDraw))
    }
  })
