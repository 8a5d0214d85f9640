/**
 * Small helpers shared by the core modules: option validation and time conversions.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * A safe integer of at least 1: the check behind every "must be a positive integer" option.
 *
 * @internal
 */
export const isPositiveInteger = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 1

/**
 * Dies with an `IllegalArgumentException`: how constructors reject invalid options.
 *
 * @internal
 */
export const illegalArgument = (message: string): Effect.Effect<never> =>
  Effect.die(new Cause.IllegalArgumentException(message))

/**
 * A `Duration` from a (possibly fractional) number of nanoseconds, as measured with
 * `Clock.unsafeCurrentTimeNanos` or `perf_hooks` histograms.
 *
 * @internal
 */
export const nanosToDuration = (nanos: number): Duration.Duration => Duration.nanos(BigInt(Math.round(nanos)))

/**
 * A node of an intrusive doubly linked FIFO: the waiter objects of `Limiter` and `RateLimiter`
 * carry their own links, so queueing allocates nothing more and leaving the queue is O(1).
 *
 * @internal
 */
export interface Linked<T> {
  prev: T | undefined
  next: T | undefined
}

/**
 * The ends of an intrusive FIFO of `Linked` nodes.
 *
 * @internal
 */
export interface LinkedQueue<T extends Linked<T>> {
  head: T | undefined
  tail: T | undefined
}

/**
 * Appends `node` at the tail of `queue`.
 *
 * @internal
 */
export const append = <T extends Linked<T>>(queue: LinkedQueue<T>, node: T): void => {
  const tail = queue.tail
  if (tail === undefined) {
    queue.head = node
  } else {
    tail.next = node
    node.prev = tail
  }
  queue.tail = node
}

/**
 * Removes `node` (which must be in `queue`) and clears its links.
 *
 * @internal
 */
export const unlink = <T extends Linked<T>>(queue: LinkedQueue<T>, node: T): void => {
  const prev = node.prev
  const next = node.next
  if (prev === undefined) queue.head = next
  else prev.next = next
  if (next === undefined) queue.tail = prev
  else next.prev = prev
  node.prev = undefined
  node.next = undefined
}
