// Drops what runners killed in the middle of a run (timeout, crash) left behind: Postgres schemas
// and Redis keys named `bench_peer_<system>_<pid>_<random>` whose process is gone. Runs that are
// still alive (another benchmark at the same time) are left alone.
//
//   node bench/peers/cleanup.mjs
//
// Prints one JSON line: { schemas: [...dropped], redisPrefixes: [...cleaned] }. A store that cannot
// be reached is skipped.
import { Redis } from "ioredis"
import { connectPg, NAME_PREFIX, REDIS_URL } from "./common.mjs"

const OWNED = /^bench_peer_[a-z]+_(\d+)_[a-z0-9]+/

const isAlive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === "EPERM"
  }
}

const orphaned = (name) => {
  const match = OWNED.exec(name)
  return match !== null && !isAlive(Number(match[1]))
}

const cleanPostgres = async () => {
  const client = await connectPg().catch(() => undefined)
  if (client === undefined) return []
  try {
    const { rows } = await client.query(
      "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
      [NAME_PREFIX]
    )
    const dropped = []
    for (const { nspname } of rows) {
      if (!orphaned(nspname)) continue
      await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`)
      dropped.push(nspname)
    }
    return dropped
  } finally {
    await client.end().catch(() => {})
  }
}

const cleanRedis = async () => {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3_000, retryStrategy: () => null })
  redis.on("error", () => {})
  try {
    await redis.connect()
  } catch {
    return []
  }
  try {
    const prefixes = new Set()
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${NAME_PREFIX}*`, "COUNT", 1000)
      cursor = next
      const doomed = keys.filter((key) => orphaned(key))
      for (const key of doomed) prefixes.add(OWNED.exec(key)[0])
      if (doomed.length > 0) await redis.del(...doomed)
    } while (cursor !== "0")
    return [...prefixes]
  } finally {
    redis.disconnect()
  }
}

const schemas = await cleanPostgres()
const redisPrefixes = await cleanRedis()
process.stdout.write(JSON.stringify({ schemas, redisPrefixes }) + "\n")
