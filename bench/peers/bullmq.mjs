// BullMQ 6.7 (Redis, ioredis 6) runner for the durable benchmark (see common.mjs for the protocol).
//
//   node bench/peers/bullmq.mjs <enqueue|drain|latency|probe> <jobs> <concurrency>
//
// Fastest documented configuration (docs.bullmq.io/guide/workers/concurrency): one Worker with
// `concurrency`, `removeOnComplete` on the jobs and the worker. Bulk enqueue with `addBulk`;
// drain is done when the worker has seen a `completed` event (emitted once Redis has moved the
// job to completed) for every job. Each run uses a fresh key prefix, obliterated afterwards.
import { Queue, Worker } from "bullmq"
import { Redis } from "ioredis"
import {
  chunkSizes,
  freshName,
  main,
  makeCounter,
  makeLatencyProbe,
  REDIS_URL,
  timed,
  Unavailable,
  WARMUP_JOBS
} from "./common.mjs"

const SYSTEM = "bullmq"
const QUEUE = "noop"
const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: true }

const redisOptions = { maxRetriesPerRequest: null, enableOfflineQueue: true }

const probeRedis = async () => {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null
  })
  redis.on("error", () => {})
  try {
    await redis.connect()
    await redis.ping()
  } catch (error) {
    throw new Unavailable(`Redis at ${REDIS_URL} is not reachable: ${error?.message ?? error}`)
  } finally {
    redis.disconnect()
  }
}

/** Deletes every key under `prefix` (what obliterate may leave: meta, events, ids). */
const deletePrefix = async (prefix) => {
  const redis = new Redis(REDIS_URL, redisOptions)
  try {
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== "0")
  } finally {
    redis.disconnect()
  }
}

const withQueue = async (body) => {
  await probeRedis()
  const prefix = freshName("bullmq")
  const connection = new Redis(REDIS_URL, redisOptions)
  connection.on("error", (error) => process.stderr.write(`[bullmq] redis: ${error}\n`))
  const queue = new Queue(QUEUE, { connection, prefix, defaultJobOptions: JOB_OPTIONS })
  queue.on("error", (error) => process.stderr.write(`[bullmq] queue: ${error}\n`))
  try {
    await queue.waitUntilReady()
    return await body({ prefix, queue })
  } finally {
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close().catch(() => {})
    connection.disconnect()
    await deletePrefix(prefix).catch((error) => process.stderr.write(`cleanup of ${prefix}: ${error}\n`))
  }
}

const enqueue = async (queue, n) => {
  for (const size of chunkSizes(n)) {
    await queue.addBulk(Array.from({ length: size }, () => ({ name: QUEUE, data: {}, opts: JOB_OPTIONS })))
  }
}

/** A worker counting `completed` events in `completed`; `onJob` runs on the handler's first line. */
const startWorker = (prefix, concurrency, completed, onJob = () => {}) => {
  const connection = new Redis(REDIS_URL, redisOptions)
  connection.on("error", (error) => process.stderr.write(`[bullmq] redis: ${error}\n`))
  const worker = new Worker(QUEUE, async (job) => onJob(job), {
    connection,
    prefix,
    concurrency,
    removeOnComplete: true,
    removeOnFail: true
  })
  worker.on("completed", () => completed.add())
  worker.on("error", (error) => process.stderr.write(`[bullmq] worker: ${error}\n`))
  return {
    close: async () => {
      await worker.close().catch(() => {})
      connection.disconnect() // a connection passed in is not closed by the worker
    }
  }
}

/**
 * Starts a worker and waits until `n` jobs are completed in Redis, then stops it. Returns the time
 * from worker start to the last `completed` event (stopping excluded).
 */
const drainWith = async (prefix, n, concurrency) => {
  const completed = makeCounter()
  let worker
  try {
    return await timed(n, async () => {
      worker = startWorker(prefix, concurrency, completed)
      await completed.reached(n)
    })
  } finally {
    if (worker !== undefined) await worker.close()
  }
}

await main(SYSTEM, {
  probe: async () => withQueue(async () => ({ ok: true })),

  enqueue: async ({ jobs }) =>
    withQueue(async ({ queue }) => {
      await enqueue(queue, WARMUP_JOBS)
      return timed(jobs, () => enqueue(queue, jobs))
    }),

  drain: async ({ jobs, concurrency }) =>
    withQueue(async ({ prefix, queue }) => {
      await enqueue(queue, WARMUP_JOBS)
      await drainWith(prefix, WARMUP_JOBS, concurrency)
      await enqueue(queue, jobs)
      // from worker start until the store confirms every job done
      return drainWith(prefix, jobs, concurrency)
    }),

  latency: async ({ jobs: samples, concurrency }) =>
    withQueue(async ({ prefix, queue }) => {
      const probe = makeLatencyProbe()
      const completed = makeCounter()
      const worker = startWorker(prefix, concurrency, completed, (job) => probe.started(job.data?.sample))
      try {
        await enqueue(queue, WARMUP_JOBS)
        await completed.reached(WARMUP_JOBS)
        const samplesMs = await probe.measure(samples, (sample) => queue.add(QUEUE, { sample }))
        return { samplesMs }
      } finally {
        await worker.close()
      }
    })
})
