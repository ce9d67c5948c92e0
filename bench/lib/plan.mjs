/**
 * What runs, in which order, and which row each figure is compared with. A group shares one
 * fixture (built, optionally sealed, and deleted afterwards); every job is one fresh child process.
 * `baseline` names the job whose median the row's median is divided by.
 */
import { appendRoundRecords } from './layout.mjs'

const KiB = 1024

export function buildPlan({ quick, rounds: roundsOverride, passes: passesOverride }) {
  const rounds = roundsOverride ?? (quick ? 3 : 5)
  // Full mode runs every block of jobs twice, interleaved (A B C A B C), each time in a fresh child:
  // a burst of load from other processes then lands on baseline and system alike.
  const passes = passesOverride ?? (quick ? 1 : 2)
  const sizes = {
    // One default segment's worth + 1 record per round (1,083,000 at 100 B, 129,000 at 1 KiB): each
    // round starts on an empty log and rolls exactly once, as a long-running writer does per segment.
    appendOpsPerRound: { 100: appendRoundRecords(100), [KiB]: appendRoundRecords(KiB) },
    syncRoundMs: quick ? 300 : 1000,
    readsPerRound: quick ? 500_000 : 1_000_000,
    scanRecordsPerRound: 1_000_000,
    readLogRecords: 1_000_000,
    // 10^4 is context for the peers' growth curves; seglog's flatness target runs from 10^5.
    growthRecords: quick ? [10_000, 100_000, 1_000_000] : [10_000, 100_000, 1_000_000, 10_000_000],
    growthBaseRecords: 100_000,
    growthAppendOpsPerRound: appendRoundRecords(100), // same as b), so rows compare
    queueProduceOpsPerRound: appendRoundRecords(100), // same as b): each round starts on an empty topic
    queueDrainRecords: 1_000_000,
    queueDrainMaxRecords: 1_000,
    scaleConsumeRecords: quick ? 20_000 : 50_000,
    scaleProduceBatches: quick ? 200 : 400,
    shareDrainRecords: quick ? 100_000 : 200_000,
    shareDrainMaxRecords: 500,
    httpProduceRecords: quick ? 200_000 : 400_000,
    httpSseEvents: quick ? 1_000 : 2_000,
    // Peers (workloads/peers.mjs). SQLite point reads run at about 0.2 M/s: 200,000 reads per round
    // keep its rounds near 1 s; rates are per read either way.
    peerReadsPerRound: 200_000,
    peerGrowthAppendOpsPerRound: 100_000,
    openRecords: quick ? 200_000 : 1_000_000,
    openSegments: 200,
  }
  const groups = []
  let order = 0
  const job = (spec) => ({ order: order++, section: sectionOf(spec.id), rounds, ...spec })

  for (const recordBytes of [100, KiB]) {
    const workload = `append ${sizeLabel(recordBytes)}`
    const opsPerRound = sizes.appendOpsPerRound[recordBytes]
    const key = `append-${recordBytes}`
    const common = { workload, records: opsPerRound, recordBytes, opsPerRound, params: { recordBytes, opsPerRound } }
    groups.push({
      name: key,
      steps: [
        job({ ...common, id: `${key}/naive`, system: 'a) naive loop: len+CRC32C+payload, 256 KiB writeSync [baseline]', kind: 'naiveAppend' }),
        job({ ...common, id: `${key}/batch`, system: 'b) seglog appendBatch(1,000), sync=never', kind: 'seglogAppendBatch', baseline: `${key}/naive` }),
        job({
          ...common,
          id: `${key}/inflight`,
          system: 'c) seglog append(), 1,000 in flight, sync=never',
          kind: 'seglogAppendInFlight',
          params: { ...common.params, inFlight: 1_000 },
          baseline: `${key}/naive`,
        }),
        // Peers: the same records in batches of 1,000, each round on a fresh, empty store; ratio = peer ÷ seglog b).
        // Quick mode keeps only each peer's fastest configuration at 1 KiB.
        ...PEER_APPENDS.filter((peer) => !(quick && recordBytes === KiB && peer.slowerVariant)).map(({ id, system, mode, label }) =>
          job({ ...common, id: `${key}/${id}`, system: label, kind: 'peerAppend', params: { ...common.params, system, mode }, baseline: `${key}/batch` }),
        ),
      ].map((j) => ({ job: j })),
    })
  }

  {
    const workload = 'd) sync=always append 100 B'
    const params = { recordBytes: 100, roundMs: sizes.syncRoundMs }
    const common = { workload, records: null, recordBytes: 100, opsPerRound: null }
    const steps = [job({ ...common, id: 'sync/raw', system: 'raw writeSync + fdatasync, 1 writer [baseline]', kind: 'rawWriteFdatasync', params })]
    for (const writers of [1, 100, 1000]) {
      steps.push(
        job({ ...common, id: `sync/w${writers}`, system: `seglog, ${writers} concurrent writer${writers > 1 ? 's' : ''}`, kind: 'seglogSyncAlways', params: { ...params, writers }, baseline: 'sync/raw' }),
      )
    }
    // Peers' durable modes, same writer loops; ratio = peer ÷ seglog with the same writers.
    for (const writers of [1, 100, 1000]) {
      steps.push(
        job({ ...common, id: `sync/lmdb-w${writers}`, system: `LMDB default (overlappingSync), await put().flushed, ${writers} writer(s)`, kind: 'peerDurable', params: { ...params, writers, system: 'lmdb', mode: 'durable' }, baseline: `sync/w${writers}` }),
        job({ ...common, id: `sync/sqlite-full-w${writers}`, system: `SQLite WAL synchronous=FULL, 1 autocommit INSERT per call, ${writers} writer(s)`, kind: 'peerDurable', params: { ...params, writers, system: 'sqlite', mode: 'full' }, baseline: `sync/w${writers}` }),
      )
    }
    groups.push({ name: 'sync', steps: steps.map((j) => ({ job: j })) })
  }

  // One fixture of readLogRecords records serves e (random reads), g (scans) and f at that size.
  const readGroup = (records) => {
    const n = exponent(records)
    const readCommon = { records, recordBytes: 100, opsPerRound: sizes.readsPerRound, params: { readsPerRound: sizes.readsPerRound } }
    const steps = [{ fixtureOp: 'build' }]
    const isMain = records === sizes.readLogRecords
    const eWorkload = `e) random read, N=${n}`
    if (isMain) {
      steps.push({
        job: job({ ...readCommon, workload: eWorkload, id: 'read/seglog-active', system: 'seglog read, records still in the ACTIVE segment (defaults)', kind: 'seglogRandomRead', params: { ...readCommon.params, mmap: 'always' }, baseline: 'read/raw-pread' }),
      })
    }
    steps.push({ fixtureOp: 'seal' })
    if (isMain) {
      steps.push(
        { job: job({ ...readCommon, workload: eWorkload, id: 'read/raw-memory', system: 'raw Buffer.subarray of one in-memory Buffer [baseline]', kind: 'rawMemoryRead' }) },
        { job: job({ ...readCommon, workload: eWorkload, id: 'read/raw-pread', system: 'raw fs.readSync 100 B pread of the store files [baseline]', kind: 'rawPreadRead', baseline: 'read/raw-memory' }) },
        { job: job({ ...readCommon, workload: eWorkload, id: 'read/raw-mmap-indexed', system: 'raw mmap index entry → store frame + CRC32C [design floor]', kind: 'rawMmapIndexedRead', baseline: 'read/raw-memory' }) },
        { job: job({ ...readCommon, workload: eWorkload, id: 'read/seglog-mmap', system: "seglog read, mmap: 'always' (sealed segments)", kind: 'seglogRandomRead', params: { ...readCommon.params, mmap: 'always' }, baseline: 'read/raw-mmap-indexed' }) },
        { job: job({ ...readCommon, workload: eWorkload, id: 'read/seglog-mmap-nocrc', system: "seglog read, mmap: 'always', verifyChecksums: false", kind: 'seglogRandomRead', params: { ...readCommon.params, mmap: 'always', verifyChecksums: false }, baseline: 'read/raw-mmap-indexed' }) },
        { job: job({ ...readCommon, workload: eWorkload, id: 'read/seglog-pread', system: "seglog read, mmap: 'never' (pread)", kind: 'seglogRandomRead', params: { ...readCommon.params, mmap: 'never' }, baseline: 'read/raw-pread' }) },
      )
      const scanCommon = { workload: `g) sequential scan, N=${n}`, records, recordBytes: 100, opsPerRound: sizes.scanRecordsPerRound, params: { recordsPerRound: sizes.scanRecordsPerRound } }
      steps.push(
        { job: job({ ...scanCommon, id: 'scan/raw', system: 'raw 1 MiB readSync chunks, frame walk + CRC32C [baseline]', kind: 'rawScan' }) },
        { job: job({ ...scanCommon, id: 'scan/records', system: 'seglog records() (for await)', kind: 'seglogScanRecords', baseline: 'scan/raw' }) },
        { job: job({ ...scanCommon, id: 'scan/read-loop', system: 'seglog read(offset) loop', kind: 'seglogScanRead', baseline: 'scan/raw' }) },
        { job: job({ ...scanCommon, id: 'scan/batches', system: 'seglog recordBatches() (for await per batch)', kind: 'seglogScanBatches', baseline: 'scan/raw' }) },
      )
    }
    const base = exponent(sizes.growthBaseRecords)
    if (sizes.growthRecords.includes(records)) {
      steps.push(
        { job: job({ ...readCommon, workload: `f) growth: random read, N=${n}`, id: `growth/read-${n}`, system: "seglog read, mmap: 'auto' (defaults)", kind: 'seglogRandomRead', params: { ...readCommon.params, mmap: 'auto' }, baseline: `growth/read-${base}` }) },
        { job: job({ ...readCommon, workload: `f) growth: random read, N=${n}`, id: `growth/raw-mmap-${n}`, system: 'raw mmap index → store + CRC32C [design floor]', kind: 'rawMmapIndexedRead', baseline: `growth/raw-mmap-${base}` }) },
        // The machine's own curve: the lightest random access there is (a slice of one in-memory Buffer,
        // one byte touched), no files, no checksum. What it loses from 10^5 to 10^7 no store can win back.
        { job: job({ ...readCommon, workload: `f) growth: random read, N=${n}`, id: `growth/raw-memory-${n}`, system: 'raw in-memory Buffer.subarray [machine ceiling]', kind: 'rawMemoryRead', baseline: `growth/raw-memory-${base}` }) },
        // Last: it appends to the fixture.
        {
          job: job({
            workload: `f) growth: appendBatch onto N=${n}`,
            id: `growth/append-${n}`,
            system: 'seglog appendBatch(1,000), sync=never',
            kind: 'seglogAppendBatch',
            records,
            recordBytes: 100,
            opsPerRound: sizes.growthAppendOpsPerRound,
            params: { recordBytes: 100, opsPerRound: sizes.growthAppendOpsPerRound, onFixture: true },
            baseline: `growth/append-${base}`,
            once: true, // appends to the fixture: run once, after the interleaved passes of its block
          }),
        },
      )
    }
    return { name: `log-${n}`, fixture: { records, recordBytes: 100 }, steps }
  }
  const fixtureSizes = [...new Set([sizes.readLogRecords, ...sizes.growthRecords])].sort((a, b) => a - b)
  for (const records of fixtureSizes) groups.push(readGroup(records))
  groups.push(queueProduceGroup(job, sizes), queueDrainGroup(job, sizes), scaleConsumeGroup(job, sizes), scaleProduceGroup(job, sizes), shareDrainGroup(job, sizes), httpGroup(job, sizes))
  for (const system of ['lmdb', 'sqlite', 'btree']) {
    for (const records of sizes.growthRecords) groups.push(peerReadGroup(job, sizes, system, records))
  }
  groups.push(...mixedReadGroups(job, sizes))
  groups.push(openGroup(job, sizes))
  return { rounds, passes, sizes, groups }
}

/** Appends without fsync by the peers (rows next to seglog's b). */
const PEER_APPENDS = [
  { id: 'lmdb-nosync', system: 'lmdb', mode: 'nosync', label: 'LMDB noSync + noMemInit, transactionSync per batch of 1,000 (append puts)' },
  { id: 'lmdb-default', system: 'lmdb', mode: 'default', slowerVariant: true, label: 'LMDB default (overlappingSync), 1,000 async puts, await the last commit' },
  { id: 'sqlite-off', system: 'sqlite', mode: 'off', label: 'SQLite WAL synchronous=OFF, 1 transaction of 1,000 prepared INSERTs' },
  { id: 'sqlite-normal', system: 'sqlite', mode: 'normal', slowerVariant: true, label: 'SQLite WAL synchronous=NORMAL, 1 transaction of 1,000 prepared INSERTs' },
  { id: 'btree', system: 'btree', mode: undefined, label: 'in-memory B+tree (sorted-btree) set() × 1,000, no I/O' },
]

const PEER_READS = {
  lmdb: [
    { id: 'lmdb', mode: 'default', fast: true, label: 'LMDB getBinaryFast(key) (uint32 keys)' },
    { id: 'lmdb-get', mode: 'default', fast: false, label: 'LMDB get(key) (copies the value)' },
  ],
  sqlite: [{ id: 'sqlite', mode: 'normal', fast: false, label: 'SQLite prepared SELECT value WHERE id = ? (.pluck)' }],
  btree: [{ id: 'btree', mode: undefined, fast: false, label: 'in-memory B+tree get(key)' }],
}
const PEER_SCANS = {
  lmdb: 'LMDB getRange({ start, end }) (values)',
  sqlite: 'SQLite SELECT value WHERE id >= ? AND id < ? ORDER BY id, .iterate() (.pluck)',
  btree: 'in-memory B+tree forRange',
}
const PEER_FAST_APPEND = { lmdb: 'nosync', sqlite: 'off', btree: undefined }

/**
 * One peer store of N records (built untimed by a child; the B+tree is rebuilt inside each child):
 * f) growth rows (random reads, appends onto N), and at the main N the e) and g) rows. Ratios are
 * peer ÷ seglog's row at the same N.
 */
function peerReadGroup(job, sizes, system, records) {
  const n = exponent(records)
  const readParams = { readsPerRound: sizes.peerReadsPerRound }
  const common = { records, recordBytes: 100, opsPerRound: sizes.peerReadsPerRound }
  const [fastest] = PEER_READS[system]
  const steps = [
    job({ ...common, workload: `f) growth: random read, N=${n}`, id: `growth/${system}-read-${n}`, system: fastest.label, kind: 'peerRandomRead', params: { ...readParams, mode: fastest.mode, fast: fastest.fast }, baseline: `growth/read-${n}` }),
  ]
  if (records === sizes.readLogRecords) {
    for (const read of PEER_READS[system]) {
      steps.push(job({ ...common, workload: `e) random read, N=${n}`, id: `read/${read.id}`, system: read.label, kind: 'peerRandomRead', params: { ...readParams, mode: read.mode, fast: read.fast }, baseline: 'read/seglog-mmap' }))
    }
    steps.push(
      job({ workload: `g) sequential scan, N=${n}`, records, recordBytes: 100, opsPerRound: sizes.scanRecordsPerRound, id: `scan/${system}`, system: PEER_SCANS[system], kind: 'peerScan', params: { recordsPerRound: sizes.scanRecordsPerRound, mode: PEER_READS[system][0].mode }, baseline: 'scan/records' }),
    )
  }
  const opsPerRound = sizes.peerGrowthAppendOpsPerRound
  steps.push(
    job({
      workload: `f) growth: appendBatch onto N=${n}`,
      id: `growth/${system}-append-${n}`,
      system: `${PEER_APPENDS.find((a) => a.system === system && a.mode === PEER_FAST_APPEND[system]).label}; ${opsPerRound.toLocaleString('en-US')} per round`,
      kind: 'peerAppend',
      records,
      recordBytes: 100,
      opsPerRound,
      params: { recordBytes: 100, opsPerRound, system, mode: PEER_FAST_APPEND[system], onFixture: true },
      baseline: `growth/append-${n}`,
      once: true, // appends to the fixture (cut back to N before each round)
    }),
  )
  return { name: `peer-${system}-${n}`, fixture: { kind: 'peer', system, records, recordBytes: 100 }, steps: [{ fixtureOp: 'build' }, ...steps.map((j) => ({ job: j }))] }
}

/**
 * e) random reads of records of mixed sizes (50–150 B, mean 100): every frame is found through its
 * index entry (the one-size shortcut cannot apply), in seglog and in the peers, which hold the same
 * payloads at the same keys. Ratios: seglog's pread row and the peers ÷ seglog's mapped row.
 */
function mixedReadGroups(job, sizes) {
  const records = sizes.readLogRecords
  const n = exponent(records)
  const workload = `e) random read, records of mixed sizes (50–150 B), N=${n}`
  const common = { workload, records, recordBytes: 100, opsPerRound: sizes.readsPerRound, params: { readsPerRound: sizes.readsPerRound } }
  const fixture = { records, recordBytes: 100, mixedSizes: true }
  const baseline = 'read/seglog-mmap-mixed'
  const seglog = {
    name: `log-mixed-${n}`,
    fixture,
    steps: [
      { fixtureOp: 'build' },
      { fixtureOp: 'seal' },
      { job: job({ ...common, id: baseline, system: "seglog read, mmap: 'always' (sealed segments), through the index", kind: 'seglogRandomRead', params: { ...common.params, mmap: 'always' } }) },
      { job: job({ ...common, id: 'read/seglog-pread-mixed', system: "seglog read, mmap: 'never' (pread), through the index", kind: 'seglogRandomRead', params: { ...common.params, mmap: 'never' }, baseline }) },
    ],
  }
  const peers = ['lmdb', 'sqlite'].map((system) => {
    const [fastest] = PEER_READS[system]
    const peerCommon = { ...common, opsPerRound: sizes.peerReadsPerRound, params: { readsPerRound: sizes.peerReadsPerRound } }
    return {
      name: `peer-${system}-mixed-${n}`,
      fixture: { kind: 'peer', system, ...fixture },
      steps: [{ fixtureOp: 'build' }, { job: job({ ...peerCommon, id: `read/${system}-mixed`, system: fastest.label, kind: 'peerRandomRead', params: { ...peerCommon.params, mode: fastest.mode, fast: fastest.fast }, baseline }) }],
    }
  })
  return [seglog, ...peers]
}

/** j) open after a clean close and k) recovery after a crash, N records (seglog: in 200 segments). */
function openGroup(job, sizes) {
  const records = sizes.openRecords
  const segments = sizes.openSegments
  const steps = []
  const systems = [
    { system: 'seglog', mode: 'never', label: `seglog, ${segments} segments of ${(records / segments).toLocaleString('en-US')} records` },
    { system: 'lmdb', mode: 'default', label: 'LMDB (one file)' },
    { system: 'sqlite', mode: 'normal', label: 'SQLite WAL' },
  ]
  for (const crash of [false, true]) {
    const what = crash ? 'crash' : 'clean'
    for (const { system, mode, label } of systems) {
      steps.push(
        job({
          workload: crash ? `k) recovery after a crash: open + 1 read, N=${exponent(records)}` : `j) open after a clean close + 1 read, N=${exponent(records)}`,
          id: `open/${system}-${what}`,
          system: label,
          kind: 'peerOpen',
          records,
          recordBytes: 100,
          opsPerRound: 1,
          params: { system, mode, records, recordBytes: 100, segments, crash },
          baseline: system === 'seglog' ? undefined : `open/seglog-${what}`,
        }),
      )
    }
  }
  return { name: 'open', steps: steps.map((j) => ({ job: j })) }
}

/**
 * h) Topic.sendBatch of 1,000 records (16-byte string key, 2 headers, 100 B value) on 1 and 3
 * partitions, against SegmentedLog.appendBatch of 1,000 100 B values (the b) workload, run again
 * here so the ratio compares children of one block).
 */
function queueProduceGroup(job, sizes) {
  const opsPerRound = sizes.queueProduceOpsPerRound
  const common = { workload: 'h) queue produce, batches of 1,000, 100 B values', records: opsPerRound, recordBytes: 100, opsPerRound }
  const baseline = 'queue-produce/raw-appendBatch'
  const steps = [
    job({ ...common, id: baseline, system: 'SegmentedLog appendBatch(1,000 × 100 B), sync=never [baseline]', kind: 'seglogAppendBatch', params: { recordBytes: 100, opsPerRound } }),
  ]
  for (const partitions of [1, 3]) {
    steps.push(
      job({
        ...common,
        id: `queue-produce/sendBatch-p${partitions}`,
        system: `Topic sendBatch(1,000), ${partitions} partition${partitions > 1 ? 's' : ''}, 16 B key + 2 headers, sync=never`,
        kind: 'topicSendBatch',
        params: { recordBytes: 100, opsPerRound, partitions },
        baseline,
      }),
    )
  }
  steps.push(
    job({
      ...common,
      id: 'queue-produce/sendBatch-value-only',
      system: 'Topic sendBatch(1,000), 1 partition, value only (no key, no headers), sync=never [diagnostic]',
      kind: 'topicSendBatch',
      params: { recordBytes: 100, opsPerRound, partitions: 1, valueOnly: true },
      baseline,
    }),
    job({
      ...common,
      id: 'queue-produce/encode-only-p1',
      system: 'the encoder alone: check, place and encode 1,000 records (16 B key + 2 headers), 1 partition, no log [diagnostic]',
      kind: 'producerEncode',
      params: { recordBytes: 100, opsPerRound, partitions: 1 },
      baseline,
    }),
    job({
      ...common,
      id: 'queue-produce/bare-copy-loop',
      system: 'a bare JS loop copying the same fields (value, key, header names and values), no checks [diagnostic]',
      kind: 'bareCopyLoop',
      params: { recordBytes: 100, opsPerRound },
      baseline,
    }),
    job({
      ...common,
      id: 'queue-produce/encoded-appendBatch',
      system: 'SegmentedLog appendBatch(1,000) of the encoded envelopes sendBatch writes, sync=never [diagnostic]',
      kind: 'encodedAppendBatch',
      params: { recordBytes: 100, opsPerRound },
      baseline,
    }),
  )
  return { name: 'queue-produce', steps: steps.map((j) => ({ job: j })) }
}

/**
 * i) Draining a 1-partition topic of N records (built with the h) records) from offset 0 by one
 * consumer group member, against SegmentedLog.records() over the partition's own log.
 */
function queueDrainGroup(job, sizes) {
  const records = sizes.queueDrainRecords
  const maxRecords = sizes.queueDrainMaxRecords
  const common = { workload: `i) queue drain, 1 partition, N=${exponent(records)}`, records, recordBytes: 100, opsPerRound: records, params: { recordsPerRound: records } }
  const baseline = 'queue-drain/raw-records'
  const jobs = [
    job({ ...common, id: baseline, system: "SegmentedLog records() of the partition's log (for await) [baseline]", kind: 'partitionLogRecords' }),
    job({ ...common, id: 'queue-drain/poll-commit', system: `consumer poll({ maxRecords: ${maxRecords.toLocaleString('en-US')} }) + commit() per poll`, kind: 'consumerPollCommit', params: { ...common.params, maxRecords }, baseline }),
    job({ ...common, id: 'queue-drain/for-await', system: 'consumer for await (batches of 500, commit per batch)', kind: 'consumerForAwait', baseline }),
    job({ ...common, id: 'queue-drain/poll-nocommit', system: `consumer poll({ maxRecords: ${maxRecords.toLocaleString('en-US')} }), no commit [diagnostic]`, kind: 'consumerPollCommit', params: { ...common.params, maxRecords, commit: false }, baseline }),
  ]
  return { name: 'queue-drain', fixture: { kind: 'topic', records, recordBytes: 100, partitions: 1 }, steps: [{ fixtureOp: 'build' }, ...jobs.map((j) => ({ job: j }))] }
}

/** CPU-bound work per record in the scale rows: 20,000 xorshift steps (about 30 µs here). */
const SCALE_WORK_ITERATIONS = 20_000

/**
 * j) A CPU-bound stage scaled across worker threads: 1 and 2 replicas (consumer-group members in
 * worker threads, forwarding to the main thread, which owns the topic) draining a 4-partition topic.
 */
function scaleConsumeGroup(job, sizes) {
  const records = sizes.scaleConsumeRecords
  const common = { workload: `j) CPU-bound stage in worker threads, 4 partitions, ${records.toLocaleString('en-US')} records`, records, recordBytes: 100, opsPerRound: records, kind: 'scaleConsume' }
  const baseline = 'scale/consume-1'
  const jobs = [1, 2].map((replicas) =>
    job({
      ...common,
      id: `scale/consume-${replicas}`,
      system: `${replicas} replica${replicas > 1 ? 's' : ''} in worker threads, ~30 µs of CPU per record, poll(200) + commit()${replicas === 1 ? ' [baseline]' : ''}`,
      params: { replicas, workIterations: SCALE_WORK_ITERATIONS },
      baseline: replicas === 1 ? undefined : baseline,
    }),
  )
  return { name: 'scale-consume', fixture: { kind: 'topic', records, recordBytes: 100, partitions: 4 }, steps: [{ fixtureOp: 'build' }, ...jobs.map((j) => ({ job: j }))] }
}

/** k) sendBatch from 4 worker threads at once (forwarded to the owner) against the owner thread alone. */
function scaleProduceGroup(job, sizes) {
  const batchesPerRound = sizes.scaleProduceBatches
  const opsPerRound = batchesPerRound * 1000
  const common = { workload: `k) produce from threads, 1 partition, batches of 1,000 (16 B key + 2 headers, 100 B value)`, records: opsPerRound, recordBytes: 100, opsPerRound, kind: 'scaleProduce' }
  const baseline = 'scale/produce-owner'
  const jobs = [
    job({ ...common, id: baseline, system: 'Topic sendBatch in the owner thread, sync=never [baseline]', params: { threads: 0, batchesPerRound } }),
    job({ ...common, id: 'scale/produce-4-threads', system: '4 worker threads sendBatch at once (forwarded to the owner), sync=never', params: { threads: 4, batchesPerRound }, baseline }),
  ]
  return { name: 'scale-produce', steps: jobs.map((j) => ({ job: j })) }
}

/**
 * l) Queue semantics against a consumer group: 4 members in one process drain a 4-partition topic
 * of 100 B records with a no-op handler; the share group's members acknowledge out of order.
 */
/**
 * m) seglog/http: produce over HTTP (JSON base64, JSON utf8 and binary batches of 100, 8 keep-alive connections from a client
 * process, raw sockets; binary once more from a node:http client) against in-process sendBatch(100), and SSE delivery latency (workloads/http.mjs).
 */
function httpGroup(job, sizes) {
  const records = sizes.httpProduceRecords
  const params = { recordsPerRound: records, batch: 100, valueBytes: 100 }
  const common = { workload: `m) HTTP broker, batches of 100 (8 B key, 100 B value), ${records.toLocaleString('en-US')} records`, records, recordBytes: 100, opsPerRound: records, params }
  const baseline = 'http/sendBatch-100'
  const jobs = [
    job({ ...common, id: baseline, system: 'in-process Topic sendBatch(100), sync=never [baseline]', kind: 'httpInProcessSendBatch' }),
    job({ ...common, id: 'http/produce-100', system: 'POST /topics/t/records, JSON base64 batches of 100, 8 keep-alive raw-socket connections from a client process', kind: 'httpProduce', params: { ...params, connections: 8, transport: 'raw' }, baseline }),
    job({ ...common, id: 'http/produce-utf8-100', system: 'POST /topics/t/records, JSON batches of 100 with encoding utf8, 8 keep-alive raw-socket connections from a client process', kind: 'httpProduce', params: { ...params, connections: 8, format: 'utf8', transport: 'raw' }, baseline }),
    job({ ...common, id: 'http/produce-binary-100', system: 'POST /topics/t/records, application/vnd.seglog.batch batches of 100, 8 keep-alive raw-socket connections from a client process', kind: 'httpProduce', params: { ...params, connections: 8, format: 'binary', transport: 'raw' }, baseline }),
    job({ ...common, id: 'http/produce-binary-100-nodeclient', system: 'as produce-binary-100, the client on node:http (agent + response parser) [diagnostic: what a heavier client leaves the server]', kind: 'httpProduce', params: { ...params, connections: 8, format: 'binary', transport: 'node' }, baseline }),
    job({ ...common, id: 'http/floor-json', system: 'bare node:http server that only JSON.parses the body (no seglog), same raw-socket client [diagnostic: the ceiling of node:http]', kind: 'httpFloor', params: { ...params, connections: 8, transport: 'raw' }, baseline }),
    job({ workload: 'm) HTTP broker, SSE delivery', records: sizes.httpSseEvents, recordBytes: 100, opsPerRound: sizes.httpSseEvents, id: 'http/sse-latency', system: 'topic.send → SSE event received on /follow (one record at a time; latency is the figure)', kind: 'httpSseLatency', params: { eventsPerRound: sizes.httpSseEvents, valueBytes: 100 } }),
  ]
  return { name: 'http', steps: jobs.map((j) => ({ job: j })) }
}

function shareDrainGroup(job, sizes) {
  const records = sizes.shareDrainRecords
  const maxRecords = sizes.shareDrainMaxRecords
  const common = { workload: `l) 4 members drain 4 partitions, ${records.toLocaleString('en-US')} records`, records, recordBytes: 100, opsPerRound: records, params: { recordsPerRound: records, maxRecords } }
  const baseline = 'share/consumer-group-4'
  const jobs = [
    job({ ...common, id: baseline, system: `consumer group, poll(${maxRecords}) + commit() per poll [baseline]`, kind: 'consumerGroupDrain' }),
    job({ ...common, id: 'share/share-group-4', system: `share group, poll(${maxRecords}) + one ack() per record in shuffled order`, kind: 'shareGroupDrain', baseline }),
  ]
  return { name: 'share', fixture: { kind: 'topic', records, recordBytes: 100, partitions: 4 }, steps: [{ fixtureOp: 'build' }, ...jobs.map((j) => ({ job: j }))] }
}

/** Display order of the result table: a–c (with peers), d, e, f (seglog, then each peer), g, j/k, h, i. */
const SECTIONS = ['append-100/', 'append-1024/', 'sync/', 'read/', 'growth/r', 'growth/lmdb-r', 'growth/sqlite-r', 'growth/btree-r', 'growth/append', 'growth/lmdb-a', 'growth/sqlite-a', 'growth/btree-a', 'scan/', 'open/', 'queue-produce/', 'queue-drain/', 'scale/consume', 'scale/produce', 'share/', 'http/']
function sectionOf(id) {
  const section = SECTIONS.findIndex((prefix) => id.startsWith(prefix))
  return section === -1 ? SECTIONS.length : section
}

export function sizeLabel(bytes) {
  return bytes >= KiB ? `${bytes / KiB} KiB` : `${bytes} B`
}

function exponent(records) {
  const e = Math.log10(records)
  return Number.isInteger(e) ? `10^${e}` : String(records)
}
