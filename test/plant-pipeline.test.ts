/**
 * Specs of examples/plant-pipeline, run small: drones → leaf detector → crops topics per area → five
 * disease graders (share groups over /^crops\./) → keyed predictions → aggregator, with stage
 * replicas in worker threads or child processes, a retrained rust grader (a new share group)
 * replaying the crops topics, and a replica killed midway. The checks read the
 * topics back from disk and recompute the expected grades from the synthetic ground truth
 * (leafTruth), not from the pipeline's own models. The example imports the BUILT package.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topic } from '../src/index.js'
import { ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const EXAMPLE = path.join(REPO, 'examples', 'plant-pipeline')
const SMALL = { days: 2, positions: 3, leaves: 4, replicas: 2, partitions: 4, sessionTimeoutMs: 1000, log: () => {} }
const PHOTOS = 2 * SMALL.positions * SMALL.days
const CROPS = PHOTOS * SMALL.leaves

type Truth = Record<string, { grade: number; mature: number }>

interface Row {
  disease: string
  model: string
  control: { mean: number; leaves: number }
  treated: { mean: number; leaves: number }
  difference: number
  verdict: string
}

interface StageSummary {
  name: string
  replicas: number
  killed: number
  processed: number
  written: number
  lag: number
}

interface Summary {
  photos: number
  crops: number
  stages: StageSummary[]
  predictions: { expected: number; unique: number; missing: number; records: number; duplicatesAbsorbed: number }
  table: Row[]
  firstPassTable: Row[]
  retrain: {
    disease: string
    version: number
    group: string
    processed: number
    before: Row
    after: Row
    otherStagesProcessed: Record<string, number>
    topicEndsBefore: Record<string, number[]>
    topicEndsAfter: Record<string, number[]>
  } | null
  killed: { stage: string; memberId: string; mode: string; processed: number; inputTopic: string; uncommitted: { topic: string; partition: number; offset: number }[] } | null
}

interface Prediction {
  key: string
  photoId: string
  area: string
  positionId: number
  day: number
  leafCropIdx: number
  diseaseType: string
  predictedGrade: number
  diseaseModelId: string
  diseaseModelVersion: number
}

let pipeline: { runPipeline(options: object): Promise<Summary> }
let synthetic: {
  AREAS: string[]
  DISEASES: string[]
  leafTruth(area: string, position: number, day: number, leaf: number): Truth
  expectedGrade(truth: Truth, disease: string, version: number): number
  photoIdOf(area: string, position: number, day: number): string
}
let report: { verdictOf(difference: number): string }

beforeAll(async () => {
  ensureBuilt()
  const load = (file: string) => import(pathToFileURL(path.join(EXAMPLE, file)).href) // computed: the .mjs files have no types
  pipeline = await load('pipeline.mjs')
  synthetic = await load('synthetic.mjs')
  report = await load('report.mjs')
})

/** Every leaf of every photo of the small field, with its ground truth. */
function* leaves(): Generator<{ area: string; position: number; day: number; leaf: number; truth: Truth }> {
  for (const area of synthetic.AREAS) {
    for (let position = 0; position < SMALL.positions; position++) {
      for (let day = 0; day < SMALL.days; day++) {
        for (let leaf = 0; leaf < SMALL.leaves; leaf++) yield { area, position, day, leaf, truth: synthetic.leafTruth(area, position, day, leaf) }
      }
    }
  }
}

/** `${key}@${version}` → the grade the ground truth says that model version must give. */
function expectedGrades(retrained: { disease: string; version: number } | null): Map<string, number> {
  const expected = new Map<string, number>()
  for (const { area, position, day, leaf, truth } of leaves()) {
    const cropId = `${synthetic.photoIdOf(area, position, day)}/leaf${String(leaf).padStart(2, '0')}`
    for (const disease of synthetic.DISEASES) expected.set(`${cropId}/${disease}@1`, synthetic.expectedGrade(truth, disease, 1))
    if (retrained) expected.set(`${cropId}/${retrained.disease}@${retrained.version}`, synthetic.expectedGrade(truth, retrained.disease, retrained.version))
  }
  return expected
}

/** The mean-grade row computed straight from the ground truth. */
function truthRow(disease: string, version: number): Omit<Row, 'model'> {
  const sums: Record<string, { total: number; count: number }> = { control: { total: 0, count: 0 }, treated: { total: 0, count: 0 } }
  for (const { area, truth } of leaves()) {
    sums[area]!.total += synthetic.expectedGrade(truth, disease, version)
    sums[area]!.count++
  }
  const control = sums.control!.total / sums.control!.count
  const treated = sums.treated!.total / sums.treated!.count
  return {
    disease,
    control: { mean: control, leaves: sums.control!.count },
    treated: { mean: treated, leaves: sums.treated!.count },
    difference: treated - control,
    verdict: report.verdictOf(treated - control),
  }
}

function expectRowToMatchTruth(row: Row | undefined, disease: string, version: number): void {
  const truth = truthRow(disease, version)
  expect(row).toBeDefined()
  expect(row!.model).toBe(`${disease}-grader@${version}`)
  expect(row!.control.leaves).toBe(truth.control.leaves)
  expect(row!.treated.leaves).toBe(truth.treated.leaves)
  expect(row!.control.mean).toBeCloseTo(truth.control.mean, 10)
  expect(row!.treated.mean).toBeCloseTo(truth.treated.mean, 10)
  expect(row!.verdict).toBe(truth.verdict)
}

/** Every record of the predictions topic in `dir`, read back from disk, with where it lies. */
async function readPredictions(dir: string): Promise<{ partition: number; offset: number; prediction: Prediction }[]> {
  const topic = await Topic.open(path.join(dir, 'predictions'))
  try {
    const found = []
    for (let p = 0; p < topic.partitionCount; p++) {
      for await (const record of topic.partition(p).records()) {
        const prediction = { key: new TextDecoder().decode(record.key!), ...JSON.parse(new TextDecoder().decode(record.value)) } as Prediction
        found.push({ partition: p, offset: record.offset, prediction })
      }
    }
    return found
  } finally {
    await topic.close()
  }
}

/** Keys of the records of `dir`/`topic`: all of them, or those at the given positions. */
async function keysIn(dir: string, topicName: string, at?: { partition: number; offset: number }[]): Promise<string[]> {
  const topic = await Topic.open(path.join(dir, topicName))
  const decode = (key: Uint8Array | null) => new TextDecoder().decode(key!)
  try {
    if (at) return at.map(({ partition, offset }) => decode(topic.partition(partition).read(offset).key))
    const keys = []
    for (let p = 0; p < topic.partitionCount; p++) for await (const record of topic.partition(p).records()) keys.push(decode(record.key))
    return keys
  } finally {
    await topic.close()
  }
}

/** Each expected (key, version) is in the topic, with the ground-truth grade in every copy, and nothing else is. */
async function expectEveryPredictionOnce(dir: string, summary: Summary, retrained: { disease: string; version: number } | null): Promise<void> {
  const expected = expectedGrades(retrained)
  const records = await readPredictions(dir)
  const copies = new Map<string, number>()
  for (const { prediction } of records) {
    const entry = `${prediction.key}@${prediction.diseaseModelVersion}`
    expect(prediction.key).toBe(`${prediction.photoId}/leaf${String(prediction.leafCropIdx).padStart(2, '0')}/${prediction.diseaseType}`)
    expect({ entry, grade: prediction.predictedGrade }).toEqual({ entry, grade: expected.get(entry) })
    copies.set(entry, (copies.get(entry) ?? 0) + 1)
  }
  expect([...copies.keys()].sort()).toEqual([...expected.keys()].sort())
  expect(summary.predictions).toMatchObject({ expected: expected.size, unique: expected.size, missing: 0, records: records.length })
  expect(summary.predictions.duplicatesAbsorbed).toBe(records.length - expected.size)
}

describe('examples/plant-pipeline', () => {
  describe('runPipeline, then a retrained rust grader', () => {
    let dir: string
    let summary: Summary

    beforeAll(async () => {
      fs.mkdirSync(path.join(REPO, '.test-tmp'), { recursive: true })
      dir = fs.mkdtempSync(path.join(REPO, '.test-tmp', 'plant-pipeline-'))
      summary = await pipeline.runPipeline({ ...SMALL, dir, retrain: 'rust' })
    })
    afterAll(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
    })

    it('stores every prediction (photos × leaves × 5 diseases, plus rust v2) exactly once, with the ground-truth grade', async () => {
      expect(summary.photos).toBe(PHOTOS)
      expect(summary.crops).toBe(CROPS)
      expect(summary.predictions.expected).toBe(CROPS * 5 + CROPS)
      await expectEveryPredictionOnce(dir, summary, { disease: 'rust', version: 2 })
    })

    it('prints a result table equal to the mean grades computed from the ground truth', () => {
      expect(summary.table.map((row) => row.disease)).toEqual(synthetic.DISEASES)
      for (const row of summary.table) expectRowToMatchTruth(row, row.disease, row.disease === 'rust' ? 2 : 1)
      for (const row of summary.firstPassTable) expectRowToMatchTruth(row, row.disease, 1)
      expectRowToMatchTruth(summary.retrain?.before, 'rust', 1)
      expectRowToMatchTruth(summary.retrain?.after, 'rust', 2)
    })

    it('replays the crops topics in the new share group grader.rust.v2 only, and runs no other stage again', async () => {
      const retrain = summary.retrain!
      expect(retrain).toMatchObject({ disease: 'rust', version: 2, group: 'grader.rust.v2' })
      expect(retrain.processed).toBeGreaterThanOrEqual(CROPS)
      expect(Object.values(retrain.otherStagesProcessed)).toEqual(new Array(6).fill(0))
      for (const [topic, ends] of Object.entries(retrain.topicEndsAfter)) {
        if (topic !== 'predictions') expect({ topic, ends }).toEqual({ topic, ends: retrain.topicEndsBefore[topic] })
      }
      // Everything written to predictions during the replay comes from the rust v2 grader.
      const written = (await readPredictions(dir)).filter(({ partition, offset }) => offset >= retrain.topicEndsBefore.predictions![partition]!)
      expect(written.length).toBeGreaterThanOrEqual(CROPS)
      expect(new Set(written.map(({ prediction }) => `${prediction.diseaseModelId}@${prediction.diseaseModelVersion}`))).toEqual(new Set(['rust-grader@2']))
    })

    it('leaves every stage group with no lag', () => {
      expect(summary.stages.map((stage) => stage.name)).toEqual([
        'leaf-detector',
        ...synthetic.DISEASES.map((disease) => `grader.${disease}.v1`),
        'grader.rust.v2',
        'aggregator',
      ])
      for (const stage of summary.stages) expect({ stage: stage.name, lag: stage.lag }).toEqual({ stage: stage.name, lag: 0 })
      expect(summary.killed).toBeNull()
    })
  })

  describe('runPipeline with a replica killed midway', () => {
    it.each([
      // The victim's uncommitted input records, and the output keys each must have produced.
      ['a worker thread', 'detector', false, 'leaf-detector', ['crops.control', 'crops.treated'], (photo: string, key: string) => key.startsWith(`${photo}/`)],
      ['a child process', 'mildew', true, 'grader.mildew.v1', ['predictions'], (crop: string, key: string) => key === `${crop}/mildew`],
    ])('ends with every prediction exactly once when %s of %s is killed', async (_, kill, processes, stage, outputTopics, producedBy) => {
      const dir = tempDir('plant-pipeline')
      const summary = await pipeline.runPipeline({ ...SMALL, dir, kill, processes, retrain: null })

      expect(summary.killed).toMatchObject({ stage, memberId: `${stage}#0`, mode: processes ? 'process' : 'thread' })
      expect(summary.stages.find((s) => s.name === stage)).toMatchObject({ replicas: 2, killed: 1, lag: 0 })
      await expectEveryPredictionOnce(dir, summary, null)

      // The victim wrote the outputs of its last batch but never committed (or acked) it: a survivor ran that batch again.
      const { uncommitted } = summary.killed!
      expect(uncommitted.length).toBeGreaterThan(0)
      const outputKeys = (await Promise.all(outputTopics.map((topic) => keysIn(dir, topic)))).flat()
      const inputKeys = (await Promise.all(uncommitted.map((at) => keysIn(dir, at.topic, [at])))).flat()
      for (const inputKey of inputKeys) {
        const copies = new Map<string, number>()
        for (const key of outputKeys.filter((key) => producedBy(inputKey, key))) copies.set(key, (copies.get(key) ?? 0) + 1)
        expect(copies.size).toBe(kill === 'detector' ? SMALL.leaves : 1)
        for (const [key, count] of copies) expect({ key, count: Math.min(count, 2) }).toEqual({ key, count: 2 })
      }
    })
  })
})
