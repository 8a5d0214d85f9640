import { HttpApiBuilder, HttpServer } from "@effect/platform"
import type { HttpApiGroup } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Api } from "@spindle/server"
import type { TaskEvent } from "@spindle/tasks"
import { MemoryStore, TaskStore } from "@spindle/tasks"
import {
  Chunk,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Schema,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import * as EventLog from "../src/internal/eventLog.js"
import * as Events from "../src/internal/events.js"
import { createHttpServer } from "../src/internal/taskService.js"
import * as Sse from "./sse.js"

// -----------------------------------------------------------------------------
// The log, without HTTP
// -----------------------------------------------------------------------------

const event = (taskId: string, type: TaskEvent.TaskEventType = "submitted"): TaskEvent.TaskEvent => ({
  sequence: 0,
  type,
  taskId,
  name: "t",
  queue: "default",
  status: "pending",
  attempt: 0,
  at: new Date(0)
})

const ids = (items: Iterable<EventLog.Item>) => Array.from(items, (item) => `${item._tag}:${item.id}`)

/**
 * Forks collecting `n` items of `stream` (or up to the one `n` accepts); returns once the stream
 * is live (its first item is out).
 */
const collect = (stream: Stream.Stream<EventLog.Item>, n: number | ((item: EventLog.Item) => boolean)) =>
  Effect.gen(function*() {
    const live = yield* Deferred.make<void>()
    const fiber = yield* stream.pipe(
      Stream.tap(() => Deferred.succeed(live, undefined)),
      typeof n === "number" ? Stream.take(n) : Stream.takeUntil(n),
      Stream.runCollect,
      Effect.map(Chunk.toReadonlyArray),
      Effect.fork
    )
    yield* Deferred.await(live)
    return fiber
  })

describe("RingBuffer", () => {
  it("numbers events consecutively after the base and holds the last `capacity`", () => {
    const ring = new EventLog.RingBuffer(3, 100)
    for (const id of ["a", "b", "c", "d", "e"]) ring.push(event(id))
    assert.strictEqual(ring.lastId, 105)
    assert.strictEqual(ring.size, 3)
    const replay = ring.after(102)
    assert.deepStrictEqual(
      replay._tag === "Replay" ? replay.events.map((logged) => [logged.id, logged.event.taskId]) : replay,
      [[103, "c"], [104, "d"], [105, "e"]]
    )
  })

  it("replays exactly the events after an id, nothing when it is the last", () => {
    const ring = new EventLog.RingBuffer(3, 0)
    for (const id of ["a", "b", "c", "d"]) ring.push(event(id))
    const replay = ring.after(3)
    assert.deepStrictEqual(replay._tag === "Replay" ? replay.events.map((logged) => logged.id) : replay, [4])
    assert.deepStrictEqual(ring.after(4), { _tag: "Replay", events: [] })
  })

  it("says `expired` when an event after the id is no longer held, `unknown` for an id never handed out", () => {
    const ring = new EventLog.RingBuffer(3, 0)
    for (const id of ["a", "b", "c", "d"]) ring.push(event(id))
    assert.deepStrictEqual(ring.after(0), { _tag: "Reset", reason: "expired" })
    assert.deepStrictEqual(ring.after(5), { _tag: "Reset", reason: "unknown" })
    assert.strictEqual(ring.after(1)._tag, "Replay")
  })

  it("with capacity 0 holds nothing and still numbers events", () => {
    const ring = new EventLog.RingBuffer(0, 0)
    ring.push(event("a"))
    ring.push(event("b"))
    assert.strictEqual(ring.lastId, 2)
    assert.deepStrictEqual(ring.after(2), { _tag: "Replay", events: [] })
    assert.deepStrictEqual(ring.after(1), { _tag: "Reset", reason: "expired" })
  })
})

describe("EventLog", () => {
  it.scoped("a stream starts with its position, then live events", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.make({ capacity: 10 })
      yield* log.append([event("a")])
      const fiber = yield* collect(log.stream(Option.none()), 3)
      yield* log.append([event("b"), event("c")])
      const items = yield* Fiber.join(fiber)
      assert.deepStrictEqual(ids(items), ["Position:1", "Event:2", "Event:3"])
    }))

  it.scoped("resuming replays the held events after the id, then goes live without a duplicate", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.make({ capacity: 10 })
      yield* log.append([event("a"), event("b"), event("c")])
      const fiber = yield* log.stream(Option.some(1)).pipe(Stream.take(5), Stream.runCollect, Effect.fork)
      // Appended while the stream subscribes and replays (or before): seen once, in order.
      yield* log.append([event("d")])
      yield* Effect.yieldNow()
      yield* log.append([event("e")])
      const items = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      assert.deepStrictEqual(ids(items), ["Position:1", "Event:2", "Event:3", "Event:4", "Event:5"])
    }))

  it.scoped("an id older than the buffer, or never handed out, gets a Reset and continues live", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.make({ capacity: 2 })
      yield* log.append([event("a"), event("b"), event("c"), event("d")])
      const expired = yield* collect(log.stream(Option.some(1)), 2)
      const unknown = yield* collect(log.stream(Option.some(99)), 2)
      yield* log.append([event("e")])
      assert.deepStrictEqual(yield* Fiber.join(expired), [
        { _tag: "Reset", id: 4, reason: "expired", after: 1 },
        { _tag: "Event", id: 5, event: event("e") }
      ])
      const items = yield* Fiber.join(unknown)
      assert.deepStrictEqual(items[0], { _tag: "Reset", id: 4, reason: "unknown", after: 99 })
      assert.deepStrictEqual(ids(items.slice(1)), ["Event:5"])
    }))

  it.scoped("a stream that falls behind its live capacity is told with a Reset", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.make({ capacity: 10, liveCapacity: 2 })
      const fiber = yield* collect(log.stream(Option.none()), (item) => item.id === 5)
      // Five events at once: the stream keeps the last two.
      yield* log.append([event("a"), event("b"), event("c"), event("d"), event("e")])
      const items = yield* Fiber.join(fiber)
      // Which events the PubSub kept depends on its hand-off; every gap is announced.
      assert.deepStrictEqual(items[0], { _tag: "Position", id: 0 })
      assert.deepStrictEqual(ids(items.slice(-1)), ["Event:5"])
      const resets = items.filter((item) => item._tag === "Reset")
      assert.strictEqual(resets.length, 1)
      let last = 0
      for (const item of items.slice(1)) {
        if (item._tag === "Reset") {
          assert.include(item, { reason: "lagged", after: last })
        } else {
          assert.strictEqual(item.id, last + 1)
        }
        last = item.id
      }
    }))

  it.effect("closing the log ends its streams; a stream opened after ends at once", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const log = yield* Scope.extend(EventLog.make({ capacity: 10 }), scope)
      const fiber = yield* collect(log.stream(Option.none()), 100)
      yield* log.append([event("a")])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(ids(yield* Fiber.join(fiber)), ["Position:0", "Event:1"])
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(log.stream(Option.none()))), 0)
    }))

  it.scoped("counts its open streams until they end or are interrupted", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.make({ capacity: 10 })
      const one = yield* collect(log.stream(Option.none()), 2)
      const two = yield* collect(log.stream(Option.none()), 100)
      assert.strictEqual(yield* SubscriptionRef.get(log.openStreams), 2)
      yield* log.append([event("a")])
      yield* Fiber.join(one)
      assert.strictEqual(yield* SubscriptionRef.get(log.openStreams), 1)
      yield* Fiber.interrupt(two)
      assert.strictEqual(yield* SubscriptionRef.get(log.openStreams), 0)
    }))

  it.effect("ids start above the start time in milliseconds times 1,000", () =>
    Effect.scoped(Effect.gen(function*() {
      const log = yield* EventLog.make({})
      assert.strictEqual(yield* log.lastId, 0) // TestClock starts at 0
      assert.strictEqual(log.capacity, EventLog.defaultCapacity)
    })))

  it.effect("dies on a bad capacity", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(EventLog.make({ capacity: -1 })))
      assert.isTrue(Exit.isFailure(exit) && Option.isSome(Exit.causeOption(exit)))
    }))

  it.scoped("layer logs the store's events from the moment it is built", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(EventLog.layer({ capacity: 10 }).pipe(Layer.provideMerge(MemoryStore.layer)))
      const store = Context.get(context, TaskStore.TaskStore)
      const log = Context.get(context, EventLog.EventLog)
      const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "t", payload: null }] })
      const items = yield* log.stream(Option.some(0)).pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(items).map((item) =>
          item._tag === "Event" ? [item.event.type, item.event.taskId] : item._tag
        ),
        ["Position", ["submitted", inserted!.task.id]]
      )
    }))
})

describe("formatItem", () => {
  it("writes id, event and data lines; a reset tells what was missed", () => {
    const all = () => true
    const text = Events.formatItem({ _tag: "Event", id: 7, event: event("a", "progress") }, all)
    const block = Sse.parseBlock(text.trimEnd())
    assert.strictEqual(block.id, "7")
    assert.strictEqual(block.event, "progress")
    assert.deepStrictEqual(JSON.parse(block.data!), {
      sequence: 0,
      type: "progress",
      taskId: "a",
      name: "t",
      queue: "default",
      status: "pending",
      attempt: 0,
      at: "1970-01-01T00:00:00.000Z"
    })
    assert.strictEqual(Events.formatItem({ _tag: "Position", id: 3 }, all), "id: 3\n\n")
    assert.strictEqual(Events.formatItem({ _tag: "Event", id: 7, event: event("a") }, () => false), "")
    const reset = Sse.parseBlock(
      Events.formatItem({ _tag: "Reset", id: 9, reason: "expired", after: 2 }, all).trimEnd()
    )
    assert.strictEqual(reset.event, "reset")
    assert.strictEqual(reset.id, "9")
    assert.include(JSON.parse(reset.data!), { reason: "expired", after: "2" })
  })

  it("filters by every list given", () => {
    const keep = Events.matches({ name: ["t"], type: ["succeeded", "failed"] })
    assert.isTrue(keep(event("a", "succeeded")))
    assert.isFalse(keep(event("a", "progress")))
    assert.isFalse(keep({ ...event("a", "succeeded"), name: "u" }))
  })
})

// -----------------------------------------------------------------------------
// Over HTTP
// -----------------------------------------------------------------------------

// The other groups are not under test here: they register no routes.
const OtherGroups = Layer.empty as Layer.Layer<
  | HttpApiGroup.ApiGroup<"spindle", "tasks">
  | HttpApiGroup.ApiGroup<"spindle", "queues">
  | HttpApiGroup.ApiGroup<"spindle", "system">
>

const AuthorizationLive = Layer.succeed(Api.Authorization, Api.Authorization.of({ bearer: () => Effect.void }))

const NodeServerLive = NodeHttpServer.layer(createHttpServer, { port: 0, host: "127.0.0.1" })

/** The events endpoint as the server composes it (`Events.layer`), over a memory store. */
const TestServer = (options: Events.Options) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api.SpindleApi)),
    Layer.provide([Events.layer(options), OtherGroups]),
    Layer.provide(AuthorizationLive),
    Layer.provideMerge(NodeServerLive),
    Layer.provideMerge(MemoryStore.layer)
  )

/** The same with the event log exposed to the test. */
const TestServerWithLog = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(Api.SpindleApi)),
  Layer.provide([Events.EventsLive, OtherGroups]),
  Layer.provide(AuthorizationLive),
  Layer.provideMerge(EventLog.layer()),
  Layer.provideMerge(NodeServerLive),
  Layer.provideMerge(MemoryStore.layer)
)

/** Serves the events endpoint over a memory store until `shutdown` (or the test's end). */
const start = <A, E>(layer: Layer.Layer<A | HttpServer.HttpServer | TaskStore.TaskStore, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const context = yield* Layer.buildWithScope(layer, scope)
    const server = Context.get(context, HttpServer.HttpServer)
    const address = server.address
    assert.strictEqual(address._tag, "TcpAddress")
    const port = address._tag === "TcpAddress" ? address.port : 0
    return {
      context,
      store: Context.get(context, TaskStore.TaskStore),
      url: `http://127.0.0.1:${port}/v1/events`,
      shutdown: Scope.close(scope, Exit.void)
    }
  })

/** Connects and waits until the stream is live (its first block after `retry`). */
const open = (url: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const connection = yield* Sse.connect(url, headers)
    assert.strictEqual(connection.status, 200)
    const retry = yield* Sse.nextBlock(connection)
    assert.deepStrictEqual(retry, Option.some({ retry: "2000" }))
    const first = yield* Sse.nextBlock(connection)
    assert.isTrue(Option.isSome(first))
    return { connection, first: Option.getOrThrow(first) }
  })

/** Drives one task through its lifecycle with the store: submitted, started, progress, succeeded. */
const lifecycle = (store: TaskStore.TaskStore["Type"], name: string, queue = "default", taskId?: string) =>
  Effect.gen(function*() {
    const [inserted] = yield* store.tasksInsert({ tasks: [{ id: taskId, name, queue, payload: { n: 1 } }] })
    const id = inserted!.task.id
    const claimed = yield* store.tasksClaim({ workerId: "w1", limit: 1, leaseMs: 30_000, names: [name] })
    assert.deepStrictEqual(claimed.map((task) => task.id), [id])
    yield* store.taskProgress({ id, workerId: "w1", progress: 0.5, message: "half" })
    yield* store.taskComplete({ id, workerId: "w1", result: { ok: true } })
    return id
  })

const decodeView = Schema.decodeUnknownSync(Schema.parseJson(Api.EventView))

describe("GET /v1/events", () => {
  it.scopedLive("streams a task's events in order with SSE headers, ids and EventView data", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start(TestServer({}))
      const { connection, first } = yield* open(url)
      assert.strictEqual(connection.headers.get("content-type"), "text/event-stream")
      assert.strictEqual(connection.headers.get("cache-control"), "no-cache")
      assert.strictEqual(connection.headers.get("x-accel-buffering"), "no")
      assert.isDefined(first.id)
      assert.isUndefined(first.event)
      const id = yield* lifecycle(store, "resize")
      const events = yield* Sse.takeEvents(connection, 4)
      assert.deepStrictEqual(events.map((block) => block.event), ["submitted", "started", "progress", "succeeded"])
      const views = events.map((block) => decodeView(block.data))
      assert.deepStrictEqual(views.map((view) => view.taskId), [id, id, id, id])
      assert.deepStrictEqual(views.map((view) => view.type), ["submitted", "started", "progress", "succeeded"])
      assert.strictEqual(views[2]!.progress, 0.5)
      assert.deepStrictEqual(views[3]!.result, { ok: true })
      assert.instanceOf(views[0]!.at, Date)
      const sseIds = events.map((block) => Number(block.id))
      assert.deepStrictEqual(sseIds, [1, 2, 3, 4].map((n) => Number(first.id) + n))
    }))

  it.scopedLive("filters by id, name, queue and type on the server", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start(TestServer({}))
      const byName = (yield* open(`${url}?name=b,c`)).connection
      const byQueue = (yield* open(`${url}?queue=q2`)).connection
      const byType = (yield* open(`${url}?type=started,succeeded&name=a`)).connection
      const byId = (yield* open(`${url}?id=task-a`)).connection
      yield* lifecycle(store, "a", "q1", "task-a")
      yield* lifecycle(store, "b", "q2")
      yield* lifecycle(store, "a", "q1", "task-a-2")
      yield* lifecycle(store, "c", "q1")
      const names = (blocks: ReadonlyArray<Sse.Block>) =>
        blocks.map((block) => `${decodeView(block.data).name}:${block.event}`)
      assert.deepStrictEqual(names(yield* Sse.takeEvents(byName, 8)), [
        "b:submitted",
        "b:started",
        "b:progress",
        "b:succeeded",
        "c:submitted",
        "c:started",
        "c:progress",
        "c:succeeded"
      ])
      assert.deepStrictEqual(names(yield* Sse.takeEvents(byQueue, 4)), [
        "b:submitted",
        "b:started",
        "b:progress",
        "b:succeeded"
      ])
      assert.deepStrictEqual(names(yield* Sse.takeEvents(byType, 2)), ["a:started", "a:succeeded"])
      const byIdEvents = yield* Sse.takeEvents(byId, 4)
      assert.deepStrictEqual(byIdEvents.map((block) => `${decodeView(block.data).taskId}:${block.event}`), [
        "task-a:submitted",
        "task-a:started",
        "task-a:progress",
        "task-a:succeeded"
      ])
      // Nothing else reached the filtered streams: the next event each gets is one sent after this.
      yield* store.tasksInsert({ tasks: [{ id: "task-b-3", name: "b", queue: "q2", payload: null }] })
      const [next] = yield* Sse.takeEvents(byQueue, 1)
      assert.strictEqual(decodeView(next!.data).taskId, "task-b-3")
    }))

  it.scopedLive("Last-Event-ID replays exactly the missed events, then continues live", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start(TestServer({}))
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const { connection } = yield* open(url)
        yield* lifecycle(store, "a")
        return yield* Sse.takeEvents(connection, 2)
      }))
      // Disconnected after `started`: two more of a, then all of b happen meanwhile.
      yield* lifecycle(store, "b")
      const resumed = yield* open(url, { "last-event-id": first[1]!.id! })
      assert.strictEqual(resumed.first.id, first[1]!.id)
      const replayed = yield* Sse.takeEvents(resumed.connection, 6)
      assert.deepStrictEqual(replayed.map((block) => `${decodeView(block.data).name}:${block.event}`), [
        "a:progress",
        "a:succeeded",
        "b:submitted",
        "b:started",
        "b:progress",
        "b:succeeded"
      ])
      const after = Number(first[1]!.id)
      assert.deepStrictEqual(replayed.map((block) => Number(block.id)), [1, 2, 3, 4, 5, 6].map((n) => after + n))
      yield* store.tasksInsert({ tasks: [{ name: "c", payload: null }] })
      const [live] = yield* Sse.takeEvents(resumed.connection, 1)
      assert.strictEqual(Number(live!.id), after + 7)
      assert.strictEqual(live!.event, "submitted")
      // The query parameter works too (EventSource cannot set headers on its first connection).
      const viaQuery = yield* open(`${url}?lastEventId=${after + 5}`)
      const [sixth] = yield* Sse.takeEvents(viaQuery.connection, 1)
      assert.strictEqual(Number(sixth!.id), after + 6)
    }))

  it.scopedLive("an id older than the buffer gets a reset event, then live events", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start(TestServer({ eventsBuffer: 2 }))
      const { first } = yield* open(url)
      const start_ = Number(first.id)
      yield* lifecycle(store, "a")
      const { connection, first: reset } = yield* open(url, { "last-event-id": String(start_ + 1) })
      assert.strictEqual(reset.event, "reset")
      assert.strictEqual(reset.id, String(start_ + 4))
      assert.include(JSON.parse(reset.data!), { reason: "expired", after: String(start_ + 1) })
      yield* store.tasksInsert({ tasks: [{ name: "b", payload: null }] })
      const [live] = yield* Sse.takeEvents(connection, 1)
      assert.strictEqual(live!.id, String(start_ + 5))
      // Still held: replayed.
      const held = yield* open(url, { "last-event-id": String(start_ + 3) })
      assert.strictEqual(held.first.id, String(start_ + 3))
      assert.deepStrictEqual((yield* Sse.takeEvents(held.connection, 2)).map((block) => block.id), [
        String(start_ + 4),
        String(start_ + 5)
      ])
    }))

  it.scopedLive("a malformed Last-Event-ID is a 400 BadRequest pointing at the header", () =>
    Effect.gen(function*() {
      const { url } = yield* start(TestServer({}))
      const connection = yield* Sse.connect(url, { "last-event-id": "abc" })
      assert.strictEqual(connection.status, 400)
      const body = JSON.parse(Option.getOrThrow(connection.text))
      assert.strictEqual(body._tag, "BadRequest")
      assert.deepStrictEqual(body.issues[0].path, ["headers", "last-event-id"])
      const viaQuery = yield* Sse.connect(`${url}?lastEventId=-1`)
      assert.strictEqual(viaQuery.status, 400)
      assert.deepStrictEqual(JSON.parse(Option.getOrThrow(viaQuery.text)).issues[0].path, ["query", "lastEventId"])
    }))

  it.scopedLive("sends heartbeat comments while idle", () =>
    Effect.gen(function*() {
      const { url } = yield* start(TestServer({ heartbeatInterval: "20 millis" }))
      const { connection } = yield* open(url)
      const block = yield* connection.next
      assert.deepStrictEqual(block, Option.some({ comment: "keep-alive" }))
    }))

  it.scopedLive("streams end when the server shuts down, and the shutdown does not wait for them", () =>
    Effect.gen(function*() {
      const { shutdown, store, url } = yield* start(TestServer({}))
      const one = yield* open(url)
      const two = yield* open(`${url}?type=succeeded`)
      yield* store.tasksInsert({ tasks: [{ name: "a", payload: null }] })
      yield* shutdown
      assert.deepStrictEqual((yield* Sse.untilEnd(one.connection)).map((block) => block.event), ["submitted"])
      assert.deepStrictEqual(yield* Sse.untilEnd(two.connection), [])
    }))

  it.scopedLive("a client going away ends its stream on the server", () =>
    Effect.gen(function*() {
      const { context, url } = yield* start(TestServerWithLog)
      const log = Context.get(context, EventLog.EventLog)
      const { connection } = yield* open(url)
      assert.strictEqual(yield* SubscriptionRef.get(log.openStreams), 1)
      yield* connection.abort
      yield* log.openStreams.changes.pipe(Stream.takeUntil((n) => n === 0), Stream.runDrain)
    }))
})
