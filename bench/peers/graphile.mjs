// graphile-worker 0.18 runner for the durable benchmark (see common.mjs for the protocol).
//
//   node bench/peers/graphile.mjs <enqueue|drain|latency|probe> <jobs> <concurrency>
//
// Fastest documented configuration (worker.graphile.org/docs/performance#batching): a local
// queue of 500 jobs and batched completions (completeJobBatchDelay 0), pool of
// max(10, concurrency + 2) connections as the docs recommend. Bulk enqueue with
// `workerUtils.addJobs`; drain is done when the jobs table of the fresh schema is empty.
import { Logger, makeWorkerUtils, run } from "graphile-worker"
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

const SYSTEM = "graphile-worker"
const TASK = "noop"

// Only warnings and errors, on stderr: stdout carries the result line.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`[graphile-worker] ${level}: ${message}\n`)
})

const withSchema = async (body) => {
  const schema = freshName("graphile")
  await withPg(async () => {}) // Unavailable when PostgreSQL cannot be reached
  const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger })
  try {
    await utils.migrate()
    return await body({ schema, utils })
  } finally {
    await utils.release().catch(() => {})
    await dropSchema(schema).catch((error) => process.stderr.write(`cleanup of ${schema}: ${error}\n`))
  }
}

const enqueue = async (utils, n) => {
  for (const size of chunkSizes(n)) {
    await utils.addJobs(Array.from({ length: size }, () => ({ identifier: TASK, payload: {} })))
  }
}

const startRunner = (schema, concurrency, onJob) =>
  run({
    connectionString: PG_URL,
    schema,
    concurrency,
    maxPoolSize: Math.max(10, concurrency + 2),
    noHandleSignals: true,
    logger,
    taskList: { [TASK]: async (payload) => onJob(payload) },
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } }
  })

const jobsTableEmpty = (utils, schema) => async () =>
  utils.withPgClient(async (client) => {
    const { rows } = await client.query(`SELECT NOT EXISTS (SELECT 1 FROM "${schema}"._private_jobs) AS empty`)
    return rows[0].empty === true
  })

/**
 * Starts a worker, waits until `n` jobs were handled and the jobs table is empty, then stops it.
 * Returns the time from worker start to the store's confirmation (stopping excluded).
 */
const drainWith = async ({ schema, utils }, n, concurrency) => {
  const handled = makeCounter()
  let runner
  try {
    return await timed(n, async () => {
      runner = await startRunner(schema, concurrency, () => handled.add())
      await handled.reached(n)
      await waitUntil("graphile-worker's jobs table to empty", jobsTableEmpty(utils, schema))
    })
  } finally {
    await runner?.stop()
  }
}

await main(SYSTEM, {
  probe: async () => withSchema(async () => ({ ok: true })),

  enqueue: async ({ jobs }) =>
    withSchema(async ({ utils }) => {
      await enqueue(utils, WARMUP_JOBS)
      return timed(jobs, () => enqueue(utils, jobs))
    }),

  drain: async ({ jobs, concurrency }) =>
    withSchema(async (ctx) => {
      await enqueue(ctx.utils, WARMUP_JOBS)
      await drainWith(ctx, WARMUP_JOBS, concurrency)
      await enqueue(ctx.utils, jobs)
      // from worker start until the store confirms every job done
      return drainWith(ctx, jobs, concurrency)
    }),

  latency: async ({ jobs: samples, concurrency }) =>
    withSchema(async ({ schema, utils }) => {
      const probe = makeLatencyProbe()
      const handled = makeCounter()
      const runner = await startRunner(schema, concurrency, (payload) => {
        probe.started(payload?.sample)
        handled.add()
      })
      try {
        await enqueue(utils, WARMUP_JOBS)
        await handled.reached(WARMUP_JOBS)
        await waitUntil("graphile-worker's jobs table to empty", jobsTableEmpty(utils, schema))
        const samplesMs = await probe.measure(samples, (sample) => utils.addJob(TASK, { sample }))
        return { samplesMs }
      } finally {
        await runner.stop()
      }
    })
})
