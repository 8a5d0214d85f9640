/**
 * Settings shared by the benchmark runners, read from the environment.
 *
 * @example
 * import { PG_URL } from "./env.js"
 *
 * console.log(`Postgres: ${PG_URL}`)
 *
 * @since 0.1.0
 */

/**
 * The PostgreSQL the Postgres runs use: `BENCH_PG_URL`, by default the local test database (the
 * peers' runners, plain JavaScript in `bench/peers`, read the same variable).
 *
 * @since 0.1.0
 */
export const PG_URL: string = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
