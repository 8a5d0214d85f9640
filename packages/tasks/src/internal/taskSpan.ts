/**
 * The span of one attempt (`spindle.task <name>`, kind consumer, a root span with the task's id,
 * name, queue and attempt as attributes).
 *
 * With a tracer of the user's (OpenTelemetry, say) the span is that tracer's. With Effect's own
 * tracer, which keeps spans in memory for whoever reads them and exports nothing, the span is a
 * `TaskSpan`: the same span to every reader (`Effect.currentSpan`, child spans, `span.attributes`)
 * made for a fraction of the cost. The native tracer draws 48 random hex digits a span and fills
 * an attribute map at once; a worker running short tasks made a span per task, and those spans
 * were a tenth of all it allocated.
 *
 * @internal
 */
import type { Exit } from "effect"
import { Context, Effect, Option, Tracer } from "effect"
import type { TaskRecord } from "../TaskRecord.js"

/** The tracer of a runtime left as Effect made it. */
const nativeTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** Ids unique in this process: a random prefix per process, then a counter. */
const processPrefix = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, "0")
let counter = 0
const nextId = (): string => processPrefix + (++counter).toString(16).padStart(8, "0")

const noLinks: ReadonlyArray<Tracer.SpanLink> = []

/**
 * A root span of an attempt, for the native tracer: ids from a counter, attributes made when
 * read (the task's four, then any set later).
 *
 * @internal
 */
export class TaskSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly parent: Option.Option<Tracer.AnySpan> = Option.none()
  readonly context: Context.Context<never> = Context.empty()
  readonly sampled = true
  readonly kind = "consumer"
  readonly spanId: string
  readonly traceId: string
  status: Tracer.SpanStatus
  links: ReadonlyArray<Tracer.SpanLink> = noLinks
  private recorded: Array<readonly [name: string, startTime: bigint, attributes: Record<string, unknown>]> | undefined =
    undefined
  private extra: Map<string, unknown> | undefined = undefined

  constructor(readonly name: string, private readonly record: TaskRecord, startTime: bigint) {
    this.spanId = nextId()
    this.traceId = this.spanId + this.spanId
    this.status = { _tag: "Started", startTime }
  }

  get attributes(): ReadonlyMap<string, unknown> {
    const attributes = new Map<string, unknown>([
      ["task.id", this.record.id],
      ["task.name", this.record.name],
      ["task.queue", this.record.queue],
      ["task.attempt", this.record.attempt]
    ])
    if (this.extra !== undefined) { for (const [key, value] of this.extra) attributes.set(key, value) }
    return attributes
  }

  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }

  attribute(key: string, value: unknown): void {
    ;(this.extra ??= new Map()).set(key, value)
  }

  /** The events recorded on the span, in order. */
  get events(): ReadonlyArray<readonly [name: string, startTime: bigint, attributes: Record<string, unknown>]> {
    return this.recorded ?? []
  }

  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    ;(this.recorded ??= []).push([name, startTime, attributes ?? {}])
  }

  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links = [...this.links, ...links]
  }
}

/**
 * The span of an attempt of `record`, started at `startTime`, from `tracer`.
 *
 * @internal
 */
export const attemptSpan = (tracer: Tracer.Tracer, record: TaskRecord, startTime: bigint): Tracer.Span => {
  const name = `spindle.task ${record.name}`
  if (tracer === nativeTracer) return new TaskSpan(name, record, startTime)
  const span = tracer.span(name, Option.none(), Context.empty(), [], startTime, "consumer")
  span.attribute("task.id", record.id)
  span.attribute("task.name", record.name)
  span.attribute("task.queue", record.queue)
  span.attribute("task.attempt", record.attempt)
  return span
}
