/**
 * The event log behind `GET /v1/events`: one subscription to the store's lifecycle events for
 * the whole server, the last N of them held in a ring buffer for `Last-Event-ID` resumption,
 * and a PubSub fanning them out to the open streams.
 *
 * Ids: every event entering the log gets the log's own id, one more than the previous. The
 * store's `sequence` cannot serve: it is a per-process counter (SQLite, memory, Postgres
 * NOTIFY), so it restarts with the process and does not order other processes' events. The
 * first id is `base + 1`, where `base` is the log's start time in milliseconds times 1,000: a
 * restarted server's ids are above any id its predecessor handed out (unless that one averaged
 * over a thousand events per millisecond), so an id from before a restart reads as "older
 * than the buffer" and gets a reset instead of a silently wrong replay.
 *
 * Resumption without a gap or a duplicate: a stream subscribes to the PubSub first, then reads
 * the held events after the client's id, then goes live, dropping live events it already
 * replayed (ids are consecutive, so `id <= last` is a duplicate and `id > last + 1` a gap).
 *
 * A live subscriber that falls more than `liveCapacity` events behind loses the oldest ones
 * (a sliding PubSub: a slow client never slows the log); it notices the jump in ids and is
 * told with a `Reset` item.
 *
 * @internal
 */
import type { TaskEvent } from "@spindle/tasks"
import { TaskStore } from "@spindle/tasks"
import type { Queue, Scope } from "effect"
import { Cause, Chunk, Clock, Context, Effect, Layer, Metric, Option, PubSub, Stream, SubscriptionRef } from "effect"

/** @internal */
export const defaultCapacity = 10_000

/**
 * Event streams open now (SSE clients of `GET /v1/events`).
 *
 * @internal
 */
export const openStreamsGauge: Metric.Metric.Gauge<number> = Metric.gauge("spindle_server_event_streams", {
  description: "Event streams (SSE clients of GET /v1/events) open now"
})

/** @internal */
export interface LoggedEvent {
  readonly id: number
  readonly event: TaskEvent.TaskEvent
}

/**
 * What a log stream emits. It starts, once subscribed, with a `Position` (or a `Reset`), so the
 * first item also says the stream is live:
 * - `Position`: where the stream starts: the id asked for, or the last id when none was (so a
 *   client that reconnects before any event resumes from there).
 * - `Event`: an event and its log id.
 * - `Reset`: events were missed and cannot be replayed (`expired`: the requested id is older
 *   than the buffer; `unknown`: the id was not handed out by this log, e.g. before a restart;
 *   `lagged`: the stream fell too far behind). `id` is the last id accounted for: the stream
 *   continues after it.
 *
 * @internal
 */
export type Item =
  | { readonly _tag: "Position"; readonly id: number }
  | { readonly _tag: "Event"; readonly id: number; readonly event: TaskEvent.TaskEvent }
  | { readonly _tag: "Reset"; readonly id: number; readonly reason: ResetReason; readonly after: number }

/** @internal */
export type ResetReason = "expired" | "unknown" | "lagged"

/**
 * A ring buffer of the last `capacity` logged events, with consecutive ids ending at `lastId`.
 *
 * @internal
 */
export class RingBuffer {
  private readonly slots: Array<LoggedEvent | undefined>
  private next = 0
  private count = 0
  lastId: number

  constructor(readonly capacity: number, base: number) {
    this.slots = new Array(capacity)
    this.lastId = base
  }

  get size(): number {
    return this.count
  }

  /** Logs `event` with the next id and returns it. */
  push(event: TaskEvent.TaskEvent): LoggedEvent {
    const logged: LoggedEvent = { id: ++this.lastId, event }
    if (this.capacity === 0) return logged
    this.slots[this.next] = logged
    this.next = (this.next + 1) % this.capacity
    if (this.count < this.capacity) this.count++
    return logged
  }

  /**
   * The held events with an id above `after`, oldest first; `expired` when some of those are no
   * longer held, `unknown` when `after` is beyond the last id.
   */
  after(after: number): { readonly _tag: "Replay"; readonly events: Array<LoggedEvent> } | {
    readonly _tag: "Reset"
    readonly reason: "expired" | "unknown"
  } {
    if (after > this.lastId) return { _tag: "Reset", reason: "unknown" }
    const wanted = this.lastId - after
    if (wanted > this.count) return { _tag: "Reset", reason: "expired" }
    const events: Array<LoggedEvent> = new Array(wanted)
    const first = (this.next - wanted + this.capacity) % Math.max(this.capacity, 1)
    for (let i = 0; i < wanted; i++) events[i] = this.slots[(first + i) % this.capacity]!
    return { _tag: "Replay", events }
  }
}

/** @internal */
export interface Options {
  /** Events held for resumption. Default 10,000; 0 holds none. */
  readonly capacity?: number | undefined
  /** How far a live stream may fall behind before it loses events. Default `max(capacity, 1024)`. */
  readonly liveCapacity?: number | undefined
}

/** @internal */
export interface Service {
  readonly capacity: number
  /** The id of the newest event logged (`base` before any). */
  readonly lastId: Effect.Effect<number>
  /** How many streams of this log are open. */
  readonly openStreams: SubscriptionRef.SubscriptionRef<number>
  /** Logs events (in order) and publishes them to the open streams. */
  readonly append: (events: Iterable<TaskEvent.TaskEvent>) => Effect.Effect<void>
  /**
   * A `Position`, the held events after `after` (or a `Reset` when some are no longer held),
   * then live ones; without `after`, the `Position` of the last id then live events. Ends when
   * the log closes.
   */
  readonly stream: (after: Option.Option<number>) => Stream.Stream<Item>
}

/** @internal */
export class EventLog extends Context.Tag("@spindle/server/EventLog")<EventLog, Service>() {}

const validCount = (name: string, value: number, min: number): number => {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Cause.IllegalArgumentException(`EventLog: ${name} must be an integer >= ${min}, got ${value}`)
  }
  return value
}

/**
 * A log that events are appended to by hand (`append`); `layer` feeds one from the store.
 * Closing the scope ends every open stream. Dies with `IllegalArgumentException` on a bad
 * capacity.
 *
 * @internal
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    // A bad count throws: a defect.
    const capacity = yield* Effect.sync(() => validCount("capacity", options.capacity ?? defaultCapacity, 0))
    const liveCapacity = yield* Effect.sync(() =>
      validCount("liveCapacity", options.liveCapacity ?? Math.max(capacity, 1024), 1)
    )
    const base = (yield* Clock.currentTimeMillis) * 1000
    const ring = new RingBuffer(capacity, base)
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<LoggedEvent>(liveCapacity), PubSub.shutdown)
    const openStreams = yield* SubscriptionRef.make(0)

    const append = (events: Iterable<TaskEvent.TaskEvent>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const logged: Array<LoggedEvent> = []
        for (const event of events) logged.push(ring.push(event))
        return logged.length === 0 ? Effect.void : PubSub.publishAll(pubsub, logged)
      })

    /** Live events after `last`, de-duplicated, with a `Reset` where the subscription lost some. */
    const live = (dequeue: Queue.Dequeue<LoggedEvent>, last: number): Stream.Stream<Item> => {
      let seen = last
      return Stream.fromQueue(dequeue).pipe(
        Stream.mapChunks((chunk) => {
          const out: Array<Item> = []
          for (const logged of chunk) {
            if (logged.id <= seen) continue
            if (logged.id > seen + 1) out.push({ _tag: "Reset", id: logged.id - 1, reason: "lagged", after: seen })
            seen = logged.id
            out.push({ _tag: "Event", id: logged.id, event: logged.event })
          }
          return Chunk.unsafeFromArray(out)
        })
      )
    }

    const countStream = (delta: number) =>
      Effect.zipRight(
        SubscriptionRef.update(openStreams, (n) => n + delta),
        Metric.incrementBy(openStreamsGauge, delta)
      )

    const head = (after: Option.Option<number>): Array<Item> => {
      if (Option.isNone(after)) return [{ _tag: "Position", id: ring.lastId }]
      const replay = ring.after(after.value)
      if (replay._tag === "Reset") {
        return [{ _tag: "Reset", id: ring.lastId, reason: replay.reason, after: after.value }]
      }
      const items: Array<Item> = [{ _tag: "Position", id: after.value }]
      for (const logged of replay.events) items.push({ _tag: "Event", id: logged.id, event: logged.event })
      return items
    }

    const stream = (after: Option.Option<number>): Stream.Stream<Item> =>
      Stream.unwrapScoped(
        // Subscribe before reading the buffer: an event logged in between is seen twice (and
        // dropped once), never missed. A closed log has nothing more to say.
        Effect.flatMap(PubSub.isShutdown(pubsub), (closed) =>
          closed ? Effect.succeed(Stream.empty) : Effect.gen(function*() {
            yield* Effect.acquireRelease(countStream(1), () => countStream(-1))
            const dequeue = yield* PubSub.subscribe(pubsub)
            const last = ring.lastId
            return Stream.concat(Stream.fromIterable(head(after)), live(dequeue, last))
          }))
      )

    return {
      capacity,
      lastId: Effect.sync(() => ring.lastId),
      openStreams,
      append,
      stream
    }
  })

/** The most scheduler turns given to the store subscription to become live. */
const MAX_SUBSCRIBE_TURNS = 16

/**
 * The log fed by the store's events: subscribes once (and waits until the subscription is
 * live, so an event published after the layer is built is logged), unsubscribes when the
 * scope closes, then ends every open stream.
 *
 * @internal
 */
export const layer = (options: Options = {}): Layer.Layer<EventLog, never, TaskStore.TaskStore> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const store = yield* TaskStore.TaskStore
      const log = yield* make(options)
      const consumer = yield* store.events.pipe(
        Stream.runForEachChunk(log.append),
        Effect.forkScoped
      )
      // A Stream subscribes when it starts running, a few scheduler turns after the fork: wait
      // until the consumer has suspended (for a PubSub-backed stream: subscribed and waiting).
      for (let turn = 0; turn < MAX_SUBSCRIBE_TURNS; turn++) {
        yield* Effect.yieldNow()
        const status = yield* consumer.status
        if (status._tag !== "Running") break
      }
      return log
    })
  )
