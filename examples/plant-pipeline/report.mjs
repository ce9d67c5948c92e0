// The aggregator's state and everything the demo prints.
//
// The aggregator keeps the latest prediction per (prediction key, model version): a prediction
// written twice (a replica died after writing, before committing) lands on the same entry, so every
// prediction counts exactly once however often it was delivered. The result table answers the
// talk's question per disease: is the mean severity grade lower in the treated area than in the
// control area?
import { AREAS, DISEASES } from './synthetic.mjs'

/** |treated − control| below this is reported as "no effect". */
export const EFFECT_MIN = 0.25

export class PredictionStore {
  constructor() {
    this.byKey = new Map() // `${key}@${version}` → prediction
    this.records = 0
    this.duplicates = 0
    this.uniqueByModel = new Map() // `${diseaseModelId}@${version}` → count
  }

  /** Takes one prediction record; a later one for the same key and model version replaces the earlier. */
  absorb(prediction) {
    this.records++
    const entry = `${prediction.key}@${prediction.diseaseModelVersion}`
    if (this.byKey.has(entry)) this.duplicates++
    else {
      const model = `${prediction.diseaseModelId}@${prediction.diseaseModelVersion}`
      this.uniqueByModel.set(model, (this.uniqueByModel.get(model) ?? 0) + 1)
    }
    this.byKey.set(entry, prediction)
  }

  /** Distinct predictions of one disease by one model version. */
  count(disease, version) {
    let count = 0
    for (const [model, n] of this.uniqueByModel) if (model.startsWith(`${disease}-grader@`) && model.endsWith(`@${version}`)) count += n
    return count
  }

  /** The newest model version with predictions for `disease`, or undefined. */
  latestVersion(disease) {
    let latest
    for (const model of this.uniqueByModel.keys()) {
      const [id, version] = model.split('@')
      if (id === `${disease}-grader`) latest = Math.max(latest ?? 0, Number(version))
    }
    return latest
  }

  /** Predictions of `disease` by `version`. */
  *predictions(disease, version) {
    for (const prediction of this.byKey.values()) {
      if (prediction.diseaseType === disease && prediction.diseaseModelVersion === version) yield prediction
    }
  }

  /** One result row: mean grade per area for `disease` as graded by model `version`. */
  row(disease, version) {
    const sums = Object.fromEntries(AREAS.map((area) => [area, { total: 0, count: 0 }]))
    let modelId
    for (const prediction of this.predictions(disease, version)) {
      sums[prediction.area].total += prediction.predictedGrade
      sums[prediction.area].count++
      modelId = prediction.diseaseModelId
    }
    return resultRow(disease, modelId, version, sums.control, sums.treated)
  }

  /** The result table: each disease graded by its newest model version. */
  table() {
    return DISEASES.filter((disease) => this.latestVersion(disease) !== undefined).map((disease) => this.row(disease, this.latestVersion(disease)))
  }
}

/** A row from per-area { total, count } of grades. */
export function resultRow(disease, modelId, version, control, treated) {
  const mean = ({ total, count }) => (count === 0 ? NaN : total / count)
  const difference = mean(treated) - mean(control)
  return {
    disease,
    model: `${modelId}@${version}`,
    control: { mean: mean(control), leaves: control.count },
    treated: { mean: mean(treated), leaves: treated.count },
    difference,
    verdict: verdictOf(difference),
  }
}

export function verdictOf(difference) {
  if (difference <= -EFFECT_MIN) return 'lowers'
  if (difference >= EFFECT_MIN) return 'raises'
  return 'no effect'
}

// ---------------------------------------------------------------------------------------------
// Stage totals, from the replicas' last progress reports

/** Records processed by a stage's replicas so far (a killed replica counts up to its last report). */
export function processedBy(stage) {
  return stage.replicas.reduce((sum, replica) => sum + (replica.stats?.processed ?? 0), 0)
}

/** A stage's line in the summary; throughput is over the stage's active period (first batch start to last batch end). */
export function stageSummary(stage) {
  const stats = stage.replicas.map((replica) => replica.stats).filter(Boolean)
  const sum = (field) => stats.reduce((total, s) => total + s[field], 0)
  const firstAt = Math.min(...stats.map((s) => s.firstAt ?? Infinity))
  const lastAt = Math.max(...stats.map((s) => s.lastAt ?? -Infinity))
  const activeMs = Math.max(1, lastAt - firstAt)
  return {
    name: stage.name,
    replicas: stage.replicas.length,
    killed: stage.replicas.filter((replica) => replica.state === 'killed').length,
    processed: sum('processed'),
    written: sum('written'),
    fencedCommits: sum('fencedCommits'),
    busyMs: sum('busyMs'),
    throughputPerSec: Number.isFinite(firstAt) ? (sum('processed') * 1000) / activeMs : 0,
    lag: stage.lag,
  }
}

export const sumLag = (lags) => lags.reduce((total, partition) => total + partition.lag, 0)

// ---------------------------------------------------------------------------------------------
// Printing

const fixed = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-')
const signed = (value) => (value > 0 ? '+' : '') + fixed(value)
const seconds = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '-')
const rate = (perSec) => (Number.isFinite(perSec) ? Math.round(perSec) : '-')

/** One live progress line: records done and input lag per stage. */
export function progressLine(elapsedMs, { photosSent, photos }, stages, aggregated, expected) {
  const parts = [`photos ${photosSent}/${photos}`]
  for (const stage of stages) {
    const name = stage.name.replace(/^leaf-/, '').replace(/^grader\.(.*)\.v1$/, '$1').replace(/^grader\./, '')
    parts.push(`${name} ×${stage.live} ${stage.processed} lag ${stage.lag ?? '?'}`)
  }
  parts.push(`predictions ${aggregated}/${expected}`)
  return `[${fixed(elapsedMs / 1000, 1).padStart(5)} s] ${parts.join(' │ ')}`
}

const pad = (value, width) => String(value).padStart(width)

/** The final report, as lines. */
export function reportLines(summary) {
  const lines = []
  const modeName = summary.mode === 'process' ? 'child processes' : 'worker threads'
  lines.push('', `done in ${seconds(summary.elapsedMs)}: ${summary.photos} photos, ${summary.crops} leaf crops, stages as ${modeName}`, '')
  lines.push(`${'stage'.padEnd(20)} ${pad('replicas', 8)} ${pad('records', 8)} ${pad('written', 8)} ${pad('busy', 7)} ${pad('rec/s', 7)} ${pad('lag', 4)}`)
  for (const stage of summary.stages) {
    const replicas = stage.killed > 0 ? `${stage.replicas} (−${stage.killed})` : stage.replicas
    lines.push(
      `${stage.name.padEnd(20)} ${pad(replicas, 8)} ${pad(stage.processed, 8)} ${pad(stage.written, 8)} ${pad(seconds(stage.busyMs), 7)} ${pad(rate(stage.throughputPerSec), 7)} ${pad(stage.lag, 4)}`
    )
  }
  const p = summary.predictions
  lines.push('', `predictions: ${p.expected} expected, ${p.unique} present exactly once (${p.missing} missing), ${p.records} records read, ${p.duplicatesAbsorbed} duplicates absorbed`)
  if (summary.killed) {
    const k = summary.killed
    const how = k.mode === 'process' ? 'child process SIGKILLed' : 'worker thread terminated'
    const after = k.stage.startsWith('grader.') ? 'before acking them; the survivors were given its crops again' : 'before committing them; the survivors took over its partitions'
    lines.push(`killed: ${k.memberId} (${how}) after writing the outputs of ${k.processed} records and ${after}`)
  } else if (summary.options.kill) {
    lines.push(`kill requested for ${summary.options.kill}, but its replica never reached the crash point`)
  }
  lines.push('', `Does the medicine lower disease severity? Mean grade (0 healthy – 4 most severe), treated vs control area:`, '')
  lines.push(...tableLines(summary.table))
  if (summary.retrain) {
    const r = summary.retrain
    const others = Object.values(r.otherStagesProcessed).reduce((sum, n) => sum + n, 0)
    lines.push('', `retrain: ${r.group} replayed ${r.inputTopic} from the start (${r.processed} records); other stages processed ${others} records meanwhile`)
    lines.push(...tableLines([r.before, r.after]))
  }
  return lines
}

function tableLines(rows) {
  const lines = [`  ${'disease'.padEnd(10)} ${'model'.padEnd(18)} ${pad('control', 8)} ${pad('treated', 8)} ${pad('diff', 6)}  verdict`]
  for (const row of rows) {
    lines.push(`  ${row.disease.padEnd(10)} ${row.model.padEnd(18)} ${pad(fixed(row.control.mean), 8)} ${pad(fixed(row.treated.mean), 8)} ${pad(signed(row.difference), 6)}  ${row.verdict}`)
  }
  return lines
}
