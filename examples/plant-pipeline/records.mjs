// The pipeline's topics, groups and record layouts: what each stage reads and writes.
//
//   drone-images ─▶ leaf-detector ─▶ crops.<area> (one topic per area) ─▶ grader.<d>.v<n> (×5 share groups over /^crops\./) ─▶ predictions ─▶ aggregator
//
// Every record is keyed by what it describes, so a record written twice (at-least-once delivery
// after a crash) carries the same key and the aggregator can absorb the copy:
//   photo      `control/p03/d2`             value: the photo's pixels
//   crop       `control/p03/d2/leaf07`      value: the crop's pixels (in the topic of its area)
//   prediction `control/p03/d2/leaf07/rust` value: JSON, the prediction schema of the talk
import { AREAS } from './synthetic.mjs'

export const TOPICS = {
  photos: 'drone-images',
  crops: (area) => `crops.${area}`,
  predictions: 'predictions',
}
/** What the graders subscribe to: every crops topic, including those of areas added later. */
export const CROPS_PATTERN = /^crops\./
export const ALL_TOPICS = [TOPICS.photos, ...AREAS.map(TOPICS.crops), TOPICS.predictions]

/**
 * The detector and the aggregator are consumer groups. Each grader model version is a share group
 * over every crops topic: its replicas take crops from every partition at once (a slow one holds
 * only the crops it took), and a new version, a new share group, replays the topics from the start.
 */
export const GROUPS = {
  detector: 'leaf-detector',
  grader: (disease, version) => `grader.${disease}.v${version}`,
  aggregator: 'aggregator',
}

const decoder = new TextDecoder()
const text = (bytes) => decoder.decode(bytes)

export function photoRecord({ photoId, area, position, day, width, height, pixels }) {
  return { key: photoId, value: pixels, headers: { area, position: String(position), day: String(day), width: String(width), height: String(height) } }
}

export function decodePhoto(record) {
  const { headers } = record
  return {
    photoId: text(record.key),
    area: text(headers.area),
    position: Number(text(headers.position)),
    day: Number(text(headers.day)),
    width: Number(text(headers.width)),
    height: Number(text(headers.height)),
    pixels: record.value,
  }
}

export const cropIdOf = (photoId, leaf) => `${photoId}/leaf${String(leaf).padStart(2, '0')}`

export function cropRecord(photo, crop, detector) {
  return {
    key: cropIdOf(photo.photoId, crop.leaf),
    value: crop.pixels,
    headers: {
      photo: photo.photoId,
      area: photo.area,
      position: String(photo.position),
      day: String(photo.day),
      leaf: String(crop.leaf),
      box: `${crop.x},${crop.y},${crop.width},${crop.height}`,
      cropper: `${detector.id}@${detector.version}`,
    },
  }
}

export function decodeCrop(record) {
  const { headers } = record
  const [x, y, width, height] = text(headers.box).split(',').map(Number)
  const [cropperModelId, cropperModelVersion] = text(headers.cropper).split('@')
  return {
    cropId: text(record.key),
    photoId: text(headers.photo),
    area: text(headers.area),
    position: Number(text(headers.position)),
    day: Number(text(headers.day)),
    leaf: Number(text(headers.leaf)),
    box: { x, y, width, height },
    cropperModelId,
    cropperModelVersion: Number(cropperModelVersion),
    pixels: record.value,
  }
}

export const predictionKeyOf = (cropId, disease) => `${cropId}/${disease}`

/** The talk's prediction schema, plus the area and ids that make it self-describing. */
export function predictionRecord(crop, disease, model, result) {
  const prediction = {
    photoId: crop.photoId,
    area: crop.area,
    positionId: crop.position,
    day: crop.day,
    leafCropIdx: crop.leaf,
    diseaseType: disease,
    predictedGrade: result.grade,
    lesionPixels: result.lesionPixels,
    leafPixels: result.leafPixels,
    cropperModelId: crop.cropperModelId,
    cropperModelVersion: crop.cropperModelVersion,
    diseaseModelId: model.id,
    diseaseModelVersion: model.version,
  }
  return { key: predictionKeyOf(crop.cropId, disease), value: JSON.stringify(prediction), headers: { model: `${model.id}@${model.version}` } }
}

export function decodePrediction(record) {
  return { key: text(record.key), ...JSON.parse(text(record.value)) }
}
