// The benchmark's measurements, one function per stage of a `score` run, so each can be timed alone and the whole
// run compared with the sum of its parts. Wall time is what a user waits; CPU time (all threads of the process) is
// the work done, and tells a busy machine (wall >> cpu / cores) from a slow program.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { scoreTem } from "../lib/axis";
import type { CellPair } from "../lib/dataset";
import { embedPairs, type PairEmbedOptions } from "../lib/embedding";
import { loadCell } from "../lib/preprocess";
import type { Encoder } from "../lib/encoder";
import { temMetrics } from "../lib/metrics";
import { scoreDataset, type ScoreOptions, type ScoreRun } from "../lib/pipeline";
import { decodeGrey, resizeBilinear, type GreyImage } from "../lib/preprocess";
import { validate } from "../lib/validation";

/** One stage timed `samples.length` times. */
export interface Timing {
  /** Items processed per sample (images, or cells for scoring). */
  items: number;
  /** Median wall seconds. */
  seconds: number;
  itemsPerSecond: number;
  /** Median CPU seconds of the whole process (user + system, every thread) over the same interval. */
  cpuSeconds: number;
  /** Every sample's wall seconds, in order. */
  samples: number[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` `repeat` times; returns the timing and the last result. */
export async function timed<T>(items: number, repeat: number, fn: () => Promise<T> | T):
  Promise<{ timing: Timing; result: T }> {
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`repeat must be a positive integer, got ${repeat}`);
  const wall: number[] = [];
  const cpu: number[] = [];
  let result!: T;
  for (let r = 0; r < repeat; r++) {
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    result = await fn();
    wall.push(Number(process.hrtime.bigint() - start) / 1e9);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1e6);
  }
  const seconds = median(wall);
  const timing = { items, seconds, itemsPerSecond: items / seconds, cpuSeconds: median(cpu), samples: wall };
  return { timing, result };
}

/** `fn` over `items` in groups of `size`, each group concurrently: how embedding.ts decodes a batch. */
async function inGroups<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    out.push(...await Promise.all(items.slice(start, start + size).map(fn)));
  }
  return out;
}

export interface PreprocessTimings {
  /** Read + sharp decode + PIL's grey conversion (decodeGrey), 64 images at a time. */
  decode: Timing;
  /** PIL-exact bilinear resize to inputSize + scaling to [0, 1] (resizeBilinear), on the main thread. */
  resize: Timing;
  /** Both, as the extraction runs them (loadCell), 64 at a time. */
  decodeAndResize: Timing;
  /** Reading and sha256-hashing every file: what the embedding cache costs before any lookup. */
  hash: Timing;
}

export async function measurePreprocess(files: string[], inputSize: number, repeat = 1, group = 64):
  Promise<PreprocessTimings> {
  const decoded = await timed(files.length, repeat, () => inGroups(files, group, (f) => decodeGrey(f)));
  const images: GreyImage[] = decoded.result;
  const resize = await timed(files.length, repeat,
    () => images.map((img) => resizeBilinear(img, inputSize, inputSize)));
  const both = await timed(files.length, repeat, () => inGroups(files, group, (f) => loadCell(f, { size: inputSize })));
  const hash = await timed(files.length, repeat, () =>
    files.map((f) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex")));
  return { decode: decoded.timing, resize: resize.timing, decodeAndResize: both.timing, hash: hash.timing };
}

/** The first `n` files prepared for the encoders, as one n x inputSize x inputSize array. */
export async function prepareInputs(files: string[], n: number, inputSize: number): Promise<Float32Array> {
  if (n > files.length) throw new Error(`asked for ${n} images, the dataset has ${files.length}`);
  const pixels = inputSize * inputSize;
  const out = new Float32Array(n * pixels);
  const images = await inGroups(files.slice(0, n), 64, (f) => loadCell(f, { size: inputSize }));
  images.forEach((img, k) => out.set(img, k * pixels));
  return out;
}

/**
 * Inference alone on prepared inputs: one untimed warm-up batch (kernel selection, memory arenas), then all n
 * images in batches of `batchSize`.
 */
export async function measureInference(encoder: Encoder, inputs: Float32Array, n: number, batchSize: number,
  repeat = 1): Promise<Timing & { batchSize: number }> {
  const pixels = encoder.inputSize * encoder.inputSize;
  if (inputs.length !== n * pixels) throw new Error(`inputs hold ${inputs.length / pixels} images, not ${n}`);
  const batch = (start: number) => inputs.subarray(start * pixels, Math.min(n, start + batchSize) * pixels);
  await encoder.embed(batch(0), Math.min(n, batchSize));
  const { timing } = await timed(n, repeat, async () => {
    for (let start = 0; start < n; start += batchSize) {
      await encoder.embed(batch(start), Math.min(batchSize, n - start));
    }
  });
  return { ...timing, batchSize };
}

/** The whole `score` run (dataset, weights, two encoders, both channels, axes, metrics) as the CLI makes it. */
export async function measureWholeRun(source: string, options: ScoreOptions, images: number, repeat = 1):
  Promise<{ timing: Timing; run: ScoreRun }> {
  const { timing, result } = await timed(images, repeat, () => scoreDataset(source, options));
  return { timing, run: result };
}

/** What follows extraction in a `score` run, on a finished run's embeddings. */
export interface ScoringTimings {
  /** Axes, percentiles, fusion and the metrics (scoreTem + temMetrics). */
  scoring: Timing;
  /**
   * Out-of-fold scores, bootstrap intervals and the permutation test (lib/validation.ts, on by default), or why it
   * cannot run (too few anchor cells for its folds: the pipeline then records the reason and goes on).
   */
  validation: Timing | { skipped: string };
}

export async function measureScoring(run: ScoreRun, repeat = 1): Promise<ScoringTimings> {
  const conditions = run.scored.map((p) => p.condition);
  const { actin, nucleus } = run.embeddings;
  const input = {
    actin: { emb: actin.vectors, n: actin.n, d: actin.dim },
    nucleus: { emb: nucleus.vectors, n: nucleus.n, d: nucleus.dim },
    conditions,
    anchors: run.anchors,
    fusion: run.scores.fusion,
  };
  const scoring = await timed(conditions.length, repeat, () => {
    const scores = scoreTem(input);
    return temMetrics({ scores, conditions, anchors: run.anchors, order: run.dataset.conditions });
  });
  try {
    const validation = await timed(conditions.length, repeat, () => validate(input));
    return { scoring: scoring.timing, validation: validation.timing };
  } catch (err) {
    return { scoring: scoring.timing, validation: { skipped: (err as Error).message } };
  }
}

/** Extraction alone (embedPairs, no cache) with already opened encoders: how the variants are compared. */
export async function measureExtraction(pairs: CellPair[], encoders: { actin: Encoder; nucleus: Encoder },
  options: Pick<PairEmbedOptions, "channels" | "batchSize">, repeat = 1): Promise<Timing> {
  const { timing } = await timed(2 * pairs.length, repeat, () =>
    embedPairs(pairs, encoders, { ...options, cacheDir: null, progress: false }));
  return timing;
}

/** Peak resident memory of this process so far, in MiB (the kernel's high-water mark; it never goes down). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}
