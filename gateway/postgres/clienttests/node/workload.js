// The cross-language workload, with node-postgres.
//
// Connects with the settings in PAMTRAIL_WORKLOAD_* and prints one JSON
// document of what the client saw, so a run through pamtrail can be
// compared with a direct one. Wire texts match the other languages'.
'use strict'
const crypto = require('crypto')
const { pipeline } = require('stream/promises')
const { Readable, Writable } = require('stream')
const pg = require('pg')
const copyStreams = require('pg-copy-streams')

const config = {
  host: process.env.PAMTRAIL_WORKLOAD_HOST,
  port: Number(process.env.PAMTRAIL_WORKLOAD_PORT),
  user: process.env.PAMTRAIL_WORKLOAD_USER,
  password: process.env.PAMTRAIL_WORKLOAD_PASSWORD,
  database: process.env.PAMTRAIL_WORKLOAD_DBNAME,
}
const INSERT = 'insert into w values ($1, $2, $3, $4, $5, $6)'
const ROWS = [
  [1, 'one', '1.50', new Date('2024-01-02T03:04:05Z'), true, Buffer.from([0, 1])],
  [2, "it's", '-2.25', new Date('2024-02-29T23:59:59Z'), false, Buffer.from([255])],
  [3, null, null, null, null, null],
]

const show = (v) => (v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('hex') : String(v))
const rowsOf = (res) => res.rows.map((r) => Object.values(r).map(show))

async function expectError(p) {
  try {
    await p
    return 'no error'
  } catch (e) {
    return { error: e.code }
  }
}

async function main() {
  const out = []
  const c = new pg.Client(config)
  await c.connect()

  out.push({ step: 'simple', rows: rowsOf(await c.query('select 1 as one, \'two\' as two')) })

  await c.query('create temp table w(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)')
  for (const r of ROWS) await c.query(INSERT, r)
  out.push({ step: 'prepared', rows: rowsOf(await c.query({ name: 'by_id', text: 'select id, name, amount, at, ok, data from w where id = $1', values: [2] })) })

  // node-postgres pipelines only on a client in pipeline mode.
  const p = new pg.Client({ ...config, pipeline: true })
  await p.connect()
  await p.query('create temp table wb(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)')
  await Promise.all([0, 1, 2].map((i) => p.query('insert into wb values ($1, $2, $3, $4, $5, $6)', [10 + i, `batch ${i}`, String(i), null, i % 2 === 0, null])))
  out.push({ step: 'pipeline', count: Number((await p.query('select count(*) from wb')).rows[0].count) })
  await p.end()

  const lines = []
  for (let i = 1000; i < 2000; i++) lines.push(`${i}\tcopied ${i}\n`)
  await pipeline(Readable.from(lines), c.query(copyStreams.from('copy w (id, name) from stdin')))
  const chunks = []
  await pipeline(c.query(copyStreams.to('copy (select id, name from w order by id) to stdout')),
    new Writable({ write(chunk, _, cb) { chunks.push(chunk); cb() } }))
  const data = Buffer.concat(chunks)
  out.push({ step: 'copy', bytes: data.length, md5: crypto.createHash('md5').update(data).digest('hex') })

  const tx = []
  await c.query('begin')
  await c.query("insert into w (id, name) values (20, 'tx')")
  tx.push(await expectError(c.query("insert into w (id, name) values (20, 'dup')")))
  await c.query('rollback')
  tx.push(Number((await c.query('select count(*) from w where id = 20')).rows[0].count))
  out.push({ step: 'transaction', result: tx })

  const big = await c.query({ text: 'select g, md5(g::text) from generate_series(1, 100000) g', rowMode: 'array' })
  const h = crypto.createHash('md5')
  for (const [g, m] of big.rows) h.update(`${g} ${m}\n`)
  out.push({ step: 'large', rows: big.rows.length, md5: h.digest('hex') })

  // Cancelling needs the Query object itself, not the promise.
  const sleeping = new pg.Query('select pg_sleep(30)')
  const done = new Promise((resolve, reject) => sleeping.on('end', resolve).on('error', reject))
  c.query(sleeping)
  const start = Date.now()
  setTimeout(() => new pg.Client(config).cancel(c, sleeping), 300)
  out.push({ step: 'cancel', result: await expectError(done), quick: Date.now() - start < 10000 })

  out.push({ step: 'final', count: Number((await c.query('select count(*) from w')).rows[0].count) })
  await c.end()
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
