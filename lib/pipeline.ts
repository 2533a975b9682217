// The main job, step by step: open a Celltool dataset, embed both channels, build the TEM axes, score, measure,
// and write the outputs. The CLI runs it in one call; the notebook calls the same steps one cell at a time.
import * as path from "node:path";
import { writeJsonAtomic } from "./atomic";
import { openCelltool, resolveCondition, type CelltoolDataset } from "./dataset";
import { embedPairs, type PairEmbeddings } from "./embedding";
import { weightsWarning, type Encoder } from "./encoder";
import { createEncoder, type EngineName } from "./engines";
import { scoreTem, type TemScores } from "./axis";
import { temMetrics, type TemMetrics } from "./metrics";
import { scoreRows, statsRows, toCsv, writeCsvAtomic, SCORE_COLUMNS, SCORE_STATS_COLUMNS, type ScoreRow } from "./frame";
import { projectRoot } from "./paths";
import { loadWeights } from "./weights";

type Log = (msg: string) => void;

export const DEFAULT_ANCHORS: readonly [string, string] = ["Ctrl", "TNFTGF"];
export const DEFAULT_FUSION: readonly [number, number] = [0.5, 0.5];

export interface EncoderOptions {
  engine?: EngineName;
  /** Folder holding resnet18.{json,bin} (default: <project>/weights). */
  weightsDir?: string;
  log?: Log;
}

export interface DualEncoders {
  actin: Encoder;
  nucleus: Encoder;
}

/**
 * Two independent encoders, one per channel, as the method prescribes. They start from the same pretrained weights;
 * keeping two instances keeps the channels apart (a fine-tuned encoder per channel slots in here).
 */
export async function openEncoders(options: EncoderOptions = {}): Promise<DualEncoders> {
  const weights = loadWeights(options.weightsDir);
  const make = () => createEncoder({ engine: options.engine ?? "auto", weights, log: options.log });
  const actin = await make();
  const nucleus = await make();
  return { actin, nucleus };
}

export async function closeEncoders(encoders: DualEncoders): Promise<void> {
  await encoders.actin.dispose();
  await encoders.nucleus.dispose();
}

export interface ScoreOptions extends EncoderOptions {
  anchors?: readonly [string, string];
  fusion?: readonly [number, number];
  batchSize?: number;
  /** Embedding cache folder; null disables the cache (default <project>/.cache/embeddings). */
  cacheDir?: string | null;
  progress?: boolean;
}

export interface ScoreRun {
  dataset: CelltoolDataset;
  /** Anchors as spelled in the dataset (e.g. "CTRL" when asked for "Ctrl"). */
  anchors: [string, string];
  encoders: { actin: Encoder["info"]; nucleus: Encoder["info"] };
  embeddings: PairEmbeddings;
  scores: TemScores;
  rows: ScoreRow[];
  metrics: TemMetrics;
  /** Non-null when the weights are not the verified ImageNet file: every output carries it. */
  warning: string | null;
}

export function defaultCacheDir(): string {
  return path.join(projectRoot(), ".cache", "embeddings");
}

/** Score every pair of an opened dataset with already opened encoders. */
export async function scorePairs(
  dataset: CelltoolDataset, encoders: DualEncoders, options: ScoreOptions = {},
): Promise<ScoreRun> {
  const anchors = (options.anchors ?? DEFAULT_ANCHORS).map((a) => resolveCondition(dataset, a)) as [string, string];
  const embeddings = await embedPairs(dataset.pairs, encoders, {
    batchSize: options.batchSize ?? 64,
    cacheDir: options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir,
    progress: options.progress,
  });
  const conditions = dataset.pairs.map((p) => p.condition);
  const scores = scoreTem({
    actin: { emb: embeddings.actin.vectors, n: embeddings.actin.n, d: embeddings.actin.dim },
    nucleus: { emb: embeddings.nucleus.vectors, n: embeddings.nucleus.n, d: embeddings.nucleus.dim },
    conditions,
    anchors,
    fusion: options.fusion ?? DEFAULT_FUSION,
  });
  const metrics = temMetrics({ scores, conditions, anchors, order: dataset.conditions });
  return {
    dataset,
    anchors,
    encoders: { actin: encoders.actin.info, nucleus: encoders.nucleus.info },
    embeddings,
    scores,
    rows: scoreRows(dataset.pairs.map((p) => p.sampleId), conditions, scores),
    metrics,
    warning: weightsWarning(encoders.actin.info.weights) ?? weightsWarning(encoders.nucleus.info.weights),
  };
}

/** The whole job from a zip or folder path. */
export async function scoreDataset(source: string, options: ScoreOptions = {}): Promise<ScoreRun> {
  const dataset = openCelltool(source);
  const encoders = await openEncoders(options);
  try {
    return await scorePairs(dataset, encoders, options);
  } finally {
    await closeEncoders(encoders);
  }
}

/** What metrics.json holds: the statistics plus everything needed to reproduce or reuse the axes. */
export function metricsDocument(run: ScoreRun): Record<string, unknown> {
  return {
    warning: run.warning,
    dataset: { source: run.dataset.source, root: run.dataset.root, pairs: run.dataset.pairs.length },
    encoders: run.encoders,
    fusion: run.scores.fusion,
    zero_embeddings: run.scores.zeroRows,
    ...run.metrics,
    axes: run.scores.axes,
  };
}

/** Write tem_scores.csv, stats_by_condition.csv, metrics.json and pairing_report.json, each atomically. */
export function writeScoreOutputs(run: ScoreRun, outDir: string): string[] {
  const files = {
    scores: path.join(outDir, "tem_scores.csv"),
    stats: path.join(outDir, "stats_by_condition.csv"),
    metrics: path.join(outDir, "metrics.json"),
    pairing: path.join(outDir, "pairing_report.json"),
  };
  // With unverified weights the CSVs open with a "# WARNING" comment line (pandas: read_csv(..., comment="#")).
  const preamble = run.warning ? [`# ${run.warning}`] : [];
  writeCsvAtomic(files.scores, toCsv(run.rows, SCORE_COLUMNS, preamble));
  writeCsvAtomic(files.stats, toCsv(statsRows(run.metrics), SCORE_STATS_COLUMNS, preamble));
  writeJsonAtomic(files.metrics, metricsDocument(run));
  writeJsonAtomic(files.pairing, { warning: run.warning, ...run.dataset.report });
  return Object.values(files);
}
