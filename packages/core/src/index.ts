/**
 * @spindle/core — in-process structured concurrency on Effect.
 *
 * @since 0.1.0
 */
export {}
