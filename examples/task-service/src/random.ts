/**
 * mulberry32: a small seeded generator of numbers in [0, 1), the same on every thread, so that
 * the fake provider's failures and the generated report data repeat run after run.
 *
 * @since 0.1.0
 */
export const seeded = (seed: number): () => number => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
