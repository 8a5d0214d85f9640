// pg-boss 12.38 runner for the durable benchmark (see common.mjs for the protocol).
//
//   node bench/peers/pgboss.mjs <enqueue|drain|latency|probe> <jobs> <concurrency>
//
// Fastest documented configuration (pgboss.io/api/workers): one `work()` with
// batchSize = concurrency and `burstWhenBatchFull` (fetch again at once while batches come back
// full), polling at the 0.5 s minimum, LISTEN/NOTIFY on (`useListenNotify` and a `notify`
// queue) so an idle worker wakes on insert. Bulk enqueue with `insert`; drain is done when the
// job table of the fresh schema holds every job as completed.
import { PgBoss } from "pg-boss"
import {
  chunkSizes,
  dropSchema,
  freshName,
  main,
  makeCounter,
  makeLatencyProbe,
  PG_URL,
  timed,
  waitUntil,
  WARMUP_JOBS,
  withPg
} from "./common.mjs"

const SYSTEM = "pg-boss"
const QUEUE = "noop"

const withBoss = async (body) => {
  await withPg(async () => {}) // Unavailable when PostgreSQL cannot be reached
  const schema = freshName("pgboss")
  const boss = new PgBoss({ connectionString: PG_URL, schema, useListenNotify: true, schedule: false })
  boss.on("error", (error) => process.stderr.write(`[pg-boss] error: ${error?.stack ?? error}\n`))
  try {
    await boss.start()
    await boss.createQueue(QUEUE, { notify: true })
    return await withPg((client) => body({ schema, boss, client }))
  } finally {
    await boss.stop({ graceful: false, close: true, timeout: 5_000 }).catch(() => {})
    await dropSchema(schema).catch((error) => process.stderr.write(`cleanup of ${schema}: ${error}\n`))
  }
}

const enqueue = async (boss, n) => {
  for (const size of chunkSizes(n)) {
    await boss.insert(QUEUE, Array.from({ length: size }, () => ({ data: {} })))
  }
}

const work = (boss, concurrency, onJob) =>
  boss.work(
    QUEUE,
    { batchSize: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      for (const job of jobs) onJob(job)
    }
  )

const completedCount = (client, schema) => async () => {
  const { rows } = await client.query(
    `SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state = 'completed'`,
    [QUEUE]
  )
  return rows[0].n
}

/**
 * Starts a worker, waits until `n` more jobs were handled and `total` are completed rows, then
 * stops it. Returns the time from worker start to the store's confirmation (stopping excluded).
 */
const drainWith = async ({ schema, boss, client }, n, total, concurrency) => {
  const handled = makeCounter()
  let id
  try {
    return await timed(n, async () => {
      id = await work(boss, concurrency, () => handled.add())
      await handled.reached(n)
      const completed = completedCount(client, schema)
      await waitUntil("pg-boss's completed rows", async () => (await completed()) >= total)
    })
  } finally {
    if (id !== undefined) await boss.offWork(QUEUE, { id, wait: true })
  }
}

await main(SYSTEM, {
  probe: async () => withBoss(async () => ({ ok: true })),

  enqueue: async ({ jobs }) =>
    withBoss(async ({ boss }) => {
      await enqueue(boss, WARMUP_JOBS)
      return timed(jobs, () => enqueue(boss, jobs))
    }),

  drain: async ({ jobs, concurrency }) =>
    withBoss(async (ctx) => {
      await enqueue(ctx.boss, WARMUP_JOBS)
      await drainWith(ctx, WARMUP_JOBS, WARMUP_JOBS, concurrency)
      await enqueue(ctx.boss, jobs)
      // from worker start until the store confirms every job done
      return drainWith(ctx, jobs, WARMUP_JOBS + jobs, concurrency)
    }),

  latency: async ({ jobs: samples, concurrency }) =>
    withBoss(async ({ schema, boss, client }) => {
      const probe = makeLatencyProbe()
      const handled = makeCounter()
      await work(boss, concurrency, (job) => {
        probe.started(job.data?.sample)
        handled.add()
      })
      await enqueue(boss, WARMUP_JOBS)
      await handled.reached(WARMUP_JOBS)
      const completed = completedCount(client, schema)
      await waitUntil("pg-boss's completed rows", async () => (await completed()) >= WARMUP_JOBS)
      const samplesMs = await probe.measure(samples, (sample) => boss.send(QUEUE, { sample }))
      return { samplesMs }
    })
})
