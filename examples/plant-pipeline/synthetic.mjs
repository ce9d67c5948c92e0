// The field, the drone photos and the models of the plant-disease case study, all synthetic and
// deterministic: no downloads, every number derives from a seeded PRNG keyed by what it describes.
//
// - The field: two areas (`control`, `treated`), numbered positions in each, photographed once a day.
//   Each photo shows `leaves` leaves; each leaf has, for each of five diseases, a severity grade 0–4.
//   Ground truth (`leafTruth`) is a baseline per leaf plus a per-disease daily drift that differs
//   between the areas: the medicine truly lowers rust and mildew, does nothing to blight and leaf
//   spot, and raises mosaic (a side effect). Lesions that appeared after day 0 are "early" (faint).
// - A photo (`renderPhoto`) is a W×H pixel buffer with 6 channels per pixel: channel 0 is leaf tissue,
//   channel 1 + d is lesion signal for disease d. A leaf with grade g for disease d has exactly
//   g × floor(leafPixels / 5) lesion pixels in that channel: mature ones bright, early ones faint.
// - The leaf detector (`detectLeaves`) runs a 3×3 convolution over the whole photo to score
//   "leafness", finds the connected leaves and crops them, in reading order.
// - A disease grader (`gradeLeaf`) runs a per-pixel 3×3 convolution + hidden layer over a crop, counts
//   the pixels it calls lesion and turns the count into a grade. Rust v1 has its lesion threshold
//   set too high: it misses early lesions. Rust v2 (the retrained model) sees them.
//
// The models' random weights only ever add a bounded term smaller than the margin between pixel
// classes, so their decisions are exact: a grade in the pipeline equals the ground truth computed
// by `expectedGrade` (the test relies on this), while the arithmetic stays real CPU work.

export const AREAS = ['control', 'treated']
export const DISEASES = ['rust', 'blight', 'mildew', 'leaf-spot', 'mosaic']
export const LEAVES_MAX = 20
export const CHANNELS = 6
export const GRADE_MAX = 4

const SLOT_PIXELS = 24 // each leaf lies inside its own 24×24 slot of a 5×4 grid
const SLOT_COLUMNS = 5
const SLOT_ROWS = 4
export const PHOTO_WIDTH = SLOT_PIXELS * SLOT_COLUMNS
export const PHOTO_HEIGHT = SLOT_PIXELS * SLOT_ROWS

// Daily drift of the true severity per disease and area, from day 0 (treatment starts) on.
const DRIFT_PER_DAY = {
  rust: { control: 0.4, treated: 0 }, // the medicine stops rust from spreading
  blight: { control: 0.25, treated: 0.25 },
  mildew: { control: 0.3, treated: -0.1 }, // ... and heals mildew
  'leaf-spot': { control: 0.1, treated: 0.1 },
  mosaic: { control: 0.05, treated: 0.3 }, // a side effect
}
const BASELINE_WEIGHTS = [0.35, 0.4, 0.25] // P(baseline grade = 0, 1, 2)

// Pixel value bands (of 255). The gaps between them are the models' decision margins.
const TISSUE = [200, 255]
const BACKGROUND = [0, 40]
const CLEAN = [0, 60] // lesion channel where there is no lesion
const EARLY = [115, 150]
const MATURE = [190, 255]

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** A 32-bit seed from any list of strings and numbers (FNV-1a over their text). */
export function seedOf(...parts) {
  let hash = 0x811c9dc5
  for (const char of parts.join('|')) {
    hash ^= char.charCodeAt(0)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** mulberry32: a uniform float in [0, 1) per call. */
export function prng(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const between = (random, [low, high]) => low + Math.floor(random() * (high - low + 1))

// ---------------------------------------------------------------------------------------------
// Ground truth

/** The photo id of one drone photo: `control/p03/d2`. */
export function photoIdOf(area, position, day) {
  return `${area}/p${String(position).padStart(2, '0')}/d${day}`
}

/**
 * The true state of leaf `leaf` of the photo at (area, position, day): per disease, its severity
 * `grade` (0–4) and how many of its lesion units are `mature` (present since day 0; the rest are early).
 */
export function leafTruth(area, position, day, leaf) {
  const truth = {}
  for (const disease of DISEASES) {
    const baselineDraw = prng(seedOf('baseline', area, position, leaf, disease))()
    const baseline = baselineDraw < BASELINE_WEIGHTS[0] ? 0 : baselineDraw < BASELINE_WEIGHTS[0] + BASELINE_WEIGHTS[1] ? 1 : 2
    const jitter = prng(seedOf('jitter', area, position, day, leaf, disease))() - 0.5
    const grade = Math.min(GRADE_MAX, Math.max(0, Math.round(baseline + DRIFT_PER_DAY[disease][area] * day + jitter)))
    truth[disease] = { grade, mature: Math.min(grade, baseline) }
  }
  return truth
}

/** The grade a model version must give a leaf: what it can see of the true lesions. */
export function expectedGrade(truth, disease, version) {
  const { grade, mature } = truth[disease]
  return MODELS[disease].versions[version].seesEarlyLesions ? grade : mature
}

// ---------------------------------------------------------------------------------------------
// Photos

/** The leaf shapes of one position: the greenhouse plants do not move, so the shape is fixed per position. */
function leafShape(area, position, leaf) {
  const random = prng(seedOf('shape', area, position, leaf))
  const column = leaf % SLOT_COLUMNS
  const row = Math.floor(leaf / SLOT_COLUMNS)
  return {
    centerX: column * SLOT_PIXELS + 12 + between(random, [-2, 2]),
    centerY: row * SLOT_PIXELS + 12 + between(random, [-2, 2]),
    radiusX: between(random, [6, 9]),
    radiusY: between(random, [6, 9]),
  }
}

/** The pixel indexes (y × W + x) covered by an ellipse, in raster order. */
function ellipsePixels({ centerX, centerY, radiusX, radiusY }) {
  const pixels = []
  for (let y = centerY - radiusY; y <= centerY + radiusY; y++) {
    for (let x = centerX - radiusX; x <= centerX + radiusX; x++) {
      if (((x - centerX) / radiusX) ** 2 + ((y - centerY) / radiusY) ** 2 <= 1) pixels.push(y * PHOTO_WIDTH + x)
    }
  }
  return pixels
}

/** The drone photo of (area, position, day) with its first `leaves` leaf slots occupied. */
export function renderPhoto(area, position, day, leaves) {
  if (!(leaves >= 1 && leaves <= LEAVES_MAX)) throw new RangeError(`leaves must be 1..${LEAVES_MAX}`)
  const photo = new Uint8Array(PHOTO_WIDTH * PHOTO_HEIGHT * CHANNELS)
  const noise = prng(seedOf('noise', area, position, day))
  for (let pixel = 0; pixel < PHOTO_WIDTH * PHOTO_HEIGHT; pixel++) {
    photo[pixel * CHANNELS] = between(noise, BACKGROUND)
    for (let c = 1; c < CHANNELS; c++) photo[pixel * CHANNELS + c] = between(noise, CLEAN)
  }
  for (let leaf = 0; leaf < leaves; leaf++) {
    const pixels = ellipsePixels(leafShape(area, position, leaf))
    for (const pixel of pixels) photo[pixel * CHANNELS] = between(noise, TISSUE)
    const unitPixels = Math.floor(pixels.length / 5)
    const truth = leafTruth(area, position, day, leaf)
    DISEASES.forEach((disease, d) => {
      const { grade, mature } = truth[disease]
      const order = shuffled(pixels, prng(seedOf('lesions', area, position, day, leaf, disease)))
      for (let i = 0; i < grade * unitPixels; i++) {
        photo[order[i] * CHANNELS + 1 + d] = between(noise, i < mature * unitPixels ? MATURE : EARLY)
      }
    })
  }
  return photo
}

function shuffled(items, random) {
  const copy = items.slice()
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy
}

// ---------------------------------------------------------------------------------------------
// Models

/**
 * The model registry. `threshold` is the lesion channel level (0–1) above which a pixel counts as
 * lesion; early lesions sit at 0.45–0.59, mature ones at 0.75–1, clean tissue below 0.24.
 */
export const DETECTOR = { id: 'leaf-detector', version: 1 }
export const MODELS = Object.fromEntries(
  DISEASES.map((disease) => [
    disease,
    {
      id: `${disease}-grader`,
      versions:
        disease === 'rust'
          ? { 1: { threshold: 0.67, seesEarlyLesions: false }, 2: { threshold: 0.34, seesEarlyLesions: true } }
          : { 1: { threshold: 0.34, seesEarlyLesions: true } },
    },
  ])
)

/** The newest version of a disease's grader. */
export const latestVersion = (disease) => Math.max(...Object.keys(MODELS[disease].versions).map(Number))

const KERNEL_INPUTS = 9 * CHANNELS // a 3×3 neighbourhood of 6 channels
const weightCache = new Map()

/**
 * A conv layer (3×3 × 6 channels → `hidden` features, ReLU) and a readout whose weights are random
 * but scaled so the readout's total stays within ±`bound`, below the decision margin.
 */
function convWeights(name, hidden, bound) {
  const cacheKey = `${name}|${hidden}|${bound}`
  let weights = weightCache.get(cacheKey)
  if (weights) return weights
  const random = prng(seedOf('weights', name))
  const kernels = Float64Array.from({ length: hidden * KERNEL_INPUTS }, () => (2 * random() - 1) / Math.sqrt(KERNEL_INPUTS))
  const biases = Float64Array.from({ length: hidden }, () => 2 * random() - 1)
  let activationMax = 0 // inputs are in [0, 1]: a feature is at most Σ|kernel| + |bias|
  for (let k = 0; k < hidden; k++) {
    let sum = Math.abs(biases[k])
    for (let i = 0; i < KERNEL_INPUTS; i++) sum += Math.abs(kernels[k * KERNEL_INPUTS + i])
    activationMax = Math.max(activationMax, sum)
  }
  const readout = Float64Array.from({ length: hidden }, () => ((2 * random() - 1) * bound) / (hidden * activationMax))
  weights = { kernels, biases, readout, hidden }
  weightCache.set(cacheKey, weights)
  return weights
}

/** The conv features of pixel (x, y) of an image, read out to one bounded number. */
function convReadout(image, width, height, x, y, { kernels, biases, readout, hidden }, input) {
  let i = 0
  for (let dy = -1; dy <= 1; dy++) {
    const yy = Math.min(height - 1, Math.max(0, y + dy))
    for (let dx = -1; dx <= 1; dx++) {
      const base = (yy * width + Math.min(width - 1, Math.max(0, x + dx))) * CHANNELS
      for (let c = 0; c < CHANNELS; c++) input[i++] = image[base + c] / 255
    }
  }
  let out = 0
  for (let k = 0; k < hidden; k++) {
    let sum = biases[k]
    const row = k * KERNEL_INPUTS
    for (let j = 0; j < KERNEL_INPUTS; j++) sum += kernels[row + j] * input[j]
    if (sum > 0) out += readout[k] * sum
  }
  return out
}

/**
 * The leaf detector: scores each pixel's leafness (tissue level plus conv features), labels the
 * connected leaf regions and crops each one's bounding box. Crops come in reading order of their
 * centres (slot rows top to bottom, left to right), so crop `leaf` i is leaf slot i.
 */
export function detectLeaves(photo, width = PHOTO_WIDTH, height = PHOTO_HEIGHT) {
  const weights = convWeights(`${DETECTOR.id}@${DETECTOR.version}`, 12, 1)
  const input = new Float64Array(KERNEL_INPUTS)
  const isLeaf = new Uint8Array(width * height)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const tissue = photo[(y * width + x) * CHANNELS] / 255 // tissue ≥ 0.78, background ≤ 0.16
      isLeaf[y * width + x] = 10 * (tissue - 0.47) + convReadout(photo, width, height, x, y, weights, input) > 0 ? 1 : 0
    }
  }
  const boxes = connectedBoxes(isLeaf, width, height)
  boxes.sort((a, b) => Math.floor(a.centerY / SLOT_PIXELS) - Math.floor(b.centerY / SLOT_PIXELS) || a.centerX - b.centerX)
  return boxes.map((box, leaf) => ({ leaf, ...box, pixels: cropPixels(photo, width, box) }))
}

/** Bounding boxes of the 4-connected regions of `mask` with at least 20 pixels. */
function connectedBoxes(mask, width, height) {
  const seen = new Uint8Array(mask.length)
  const stack = new Int32Array(mask.length)
  const boxes = []
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue
    let top = 0
    let area = 0
    let [x0, y0, x1, y1] = [width, height, -1, -1]
    stack[top++] = start
    seen[start] = 1
    while (top > 0) {
      const pixel = stack[--top]
      const x = pixel % width
      const y = (pixel - x) / width
      area++
      ;[x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)]
      for (const next of [x > 0 ? pixel - 1 : -1, x < width - 1 ? pixel + 1 : -1, pixel - width, pixel + width]) {
        if (next >= 0 && next < mask.length && mask[next] && !seen[next]) {
          seen[next] = 1
          stack[top++] = next
        }
      }
    }
    if (area >= 20) boxes.push({ x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, centerX: (x0 + x1) / 2, centerY: (y0 + y1) / 2 })
  }
  return boxes
}

function cropPixels(photo, photoWidth, { x, y, width, height }) {
  const crop = new Uint8Array(width * height * CHANNELS)
  for (let row = 0; row < height; row++) {
    const from = ((y + row) * photoWidth + x) * CHANNELS
    crop.set(photo.subarray(from, from + width * CHANNELS), row * width * CHANNELS)
  }
  return crop
}

/**
 * Grades one leaf crop for `disease` with model `version`: per leaf pixel, a lesion score (the
 * disease channel against the version's threshold, plus conv features), then
 * grade = round(lesion pixels / floor(leaf pixels / 5)), at most 4.
 */
export function gradeLeaf(crop, width, height, disease, version) {
  const model = MODELS[disease]
  const { threshold } = model.versions[version]
  const weights = convWeights(`${model.id}@${version}`, 32, 1)
  const channel = 1 + DISEASES.indexOf(disease)
  const input = new Float64Array(KERNEL_INPUTS)
  let leafPixels = 0
  let lesionPixels = 0
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const base = (y * width + x) * CHANNELS
      if (crop[base] < 128) continue // background
      leafPixels++
      const score = 20 * (crop[base + channel] / 255 - threshold) + convReadout(crop, width, height, x, y, weights, input)
      if (score > 0) lesionPixels++
    }
  }
  const unitPixels = Math.floor(leafPixels / 5)
  const grade = unitPixels === 0 ? 0 : Math.min(GRADE_MAX, Math.round(lesionPixels / unitPixels))
  return { grade, leafPixels, lesionPixels }
}
