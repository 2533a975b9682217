// The main job, step by step: open a Celltool dataset, embed both channels, build the TEM axes, score, measure,
// and write the outputs. The CLI runs it in one call; the notebook calls the same steps one cell at a time.
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "./atomic";
import { canonicalCondition, openCelltool, type CellPair, type CelltoolDataset } from "./dataset";
import { embedPairs, type PairEmbeddings } from "./embedding";
import { weightsWarning, type Encoder } from "./encoder";
import type { EngineName } from "./engines";
import { openBackbonePair, RESNET18_SPEC } from "./backbones";
import type { GreyMode } from "./tfjsModel";
import { scoreTem, type TemScores } from "./axis";
import { temMetrics, type TemMetrics } from "./metrics";
import { validate, type Validation, type ValidationOptions } from "./validation";
import { scoreRows, statsRows, toCsv, SCORE_COLUMNS, SCORE_STATS_COLUMNS, type ScoreRow } from "./frame";
import { projectRoot } from "./paths";

type Log = (msg: string) => void;

export const DEFAULT_ANCHORS: readonly [string, string] = ["Ctrl", "TNFTGF"];
export const DEFAULT_FUSION: readonly [number, number] = [0.5, 0.5];

export interface EncoderOptions {
  /** "resnet18" (the method, default) or "tfjs:<path/model.json>[#layer]" (lib/backbones.ts). */
  encoder?: string;
  /** How one grey channel feeds a 3-channel TF.js model (ResNet18 always averages its conv1 weights). */
  grey?: GreyMode;
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
  return openBackbonePair(options.encoder ?? RESNET18_SPEC, options);
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
  /**
   * A cell whose actin or nucleus image cannot be read or decoded: "fail" (default) stops with that file's Error;
   * "skip" leaves the cell out and lists it in ScoreRun.unreadable (the CLI's default; --strict is "fail").
   */
  onUnreadable?: "skip" | "fail";
  /** scoreDataset only: where a zip is extracted (default: see openCelltool). */
  extractDir?: string;
  /**
   * Out-of-fold scores, bootstrap intervals and the permutation test (lib/validation.ts); default on with its
   * defaults, false to skip. Too few anchor cells for the folds records the reason instead of failing the run.
   */
  validation?: ValidationOptions | false;
}

/**
 * The honest-validation results, or why they were not computed. Tell them apart with `"reason" in outcome`: that
 * narrows under tslab's non-strict compiler too, where a boolean discriminant would not.
 */
export type ValidationOutcome = { result: Validation } | { reason: string };

/** One image that could not be read or decoded, and the cell it belongs to (left out of the scores). */
export interface UnreadableImageReport {
  sample_id: string;
  condition: string;
  channel: "actin" | "nucleus";
  file: string;
  reason: string;
}

export interface ScoreRun {
  dataset: CelltoolDataset;
  /** Anchors as spelled in the dataset (e.g. "CTRL" when asked for "Ctrl"). */
  anchors: [string, string];
  /** The pairs scored, in dataset order: all of dataset.pairs but the cells left out as unreadable. */
  scored: CellPair[];
  /** Images that could not be decoded (onUnreadable: "skip"), in pair order; their cells are not in `scored`. */
  unreadable: UnreadableImageReport[];
  encoders: { actin: Encoder["info"]; nucleus: Encoder["info"] };
  embeddings: PairEmbeddings;
  scores: TemScores;
  rows: ScoreRow[];
  metrics: TemMetrics;
  validation: ValidationOutcome;
  /** Non-null when the weights are not the verified ImageNet file: every output carries it. */
  warning: string | null;
}

export function defaultCacheDir(): string {
  return path.join(projectRoot(), ".cache", "embeddings");
}

/** An axis needs each anchor's mean, and the statistics its spread: two cells at the very least. */
export const MIN_ANCHOR_CELLS = 2;

/** Unreadable images named in one message or console block; the files hold them all. */
const LIST_LIMIT = 10;

/**
 * The anchors as spelled in the dataset (e.g. "CTRL" when asked for "Ctrl"). Throws, listing every condition found
 * with its number of usable pairs, when an anchor is absent, both name the same condition, or one has fewer than
 * MIN_ANCHOR_CELLS usable pairs. `pairs` are the usable ones; `note` says why some are missing (e.g. unreadable).
 */
export function resolveAnchors(
  dataset: CelltoolDataset, requested: readonly [string, string], pairs: readonly CellPair[] = dataset.pairs, note = "",
): [string, string] {
  const counts = new Map(dataset.conditions.map((c) => [c, 0]));
  for (const p of pairs) counts.set(p.condition, (counts.get(p.condition) ?? 0) + 1);
  const found = `conditions found (usable pairs): ${[...counts].map(([c, n]) => `${c} ${n}`).join(", ") || "none"}`;
  const anchors = requested.map((name) => {
    const match = canonicalCondition(name, dataset.conditions);
    if (match === undefined) throw new Error(`anchor condition "${name}" not found in ${dataset.root}; ${found}`);
    return match;
  }) as [string, string];
  if (anchors[0] === anchors[1]) {
    throw new Error(`the two anchors must be different conditions, both are "${anchors[0]}"; ${found}`);
  }
  for (const anchor of anchors) {
    const n = counts.get(anchor) ?? 0;
    if (n < MIN_ANCHOR_CELLS) {
      throw new Error(`anchor condition "${anchor}" has ${n} usable pair(s), at least ${MIN_ANCHOR_CELLS} are needed` +
        `${note ? ` (${note})` : ""}; ${found}`);
    }
  }
  return anchors;
}

/** Which cell and channel each skipped image belongs to. */
function unreadableReports(pairs: readonly CellPair[], embeddings: PairEmbeddings): UnreadableImageReport[] {
  const byFile = new Map(embeddings.unreadable.map((u) => [u.file, u.reason]));
  return pairs.flatMap((p) => (["actin", "nucleus"] as const).flatMap((channel) => {
    const file = channel === "actin" ? p.actinPath : p.nucleusPath;
    const reason = byFile.get(file);
    return reason === undefined ? [] : [{ sample_id: p.sampleId, condition: p.condition, channel, file, reason }];
  }));
}

/** Score every pair of an opened dataset with already opened encoders. */
export async function scorePairs(
  dataset: CelltoolDataset, encoders: DualEncoders, options: ScoreOptions = {},
): Promise<ScoreRun> {
  resolveAnchors(dataset, options.anchors ?? DEFAULT_ANCHORS); // before embedding: a typo should not cost a run
  const embeddings = await embedPairs(dataset.pairs, encoders, {
    batchSize: options.batchSize ?? 64,
    cacheDir: options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir,
    progress: options.progress,
    onUnreadable: options.onUnreadable ?? "fail",
  });
  const scored = embeddings.rows.map((i) => dataset.pairs[i]);
  const unreadable = unreadableReports(dataset.pairs, embeddings);
  const skipped = dataset.pairs.length - scored.length;
  // When the skipped cells are what leaves an anchor short, the error must say which files to fix.
  const skippedNote = skipped === 0 ? "" : `${skipped} cell(s) left out as unreadable: ` +
    unreadable.slice(0, LIST_LIMIT).map((u) => `${u.file} (${u.reason})`).join(", ") +
    (unreadable.length > LIST_LIMIT ? `, ... and ${unreadable.length - LIST_LIMIT} more` : "");
  const anchors = resolveAnchors(dataset, options.anchors ?? DEFAULT_ANCHORS, scored, skippedNote);
  const conditions = scored.map((p) => p.condition);
  let scores: TemScores;
  try {
    scores = scoreTem({
      actin: { emb: embeddings.actin.vectors, n: embeddings.actin.n, d: embeddings.actin.dim },
      nucleus: { emb: embeddings.nucleus.vectors, n: embeddings.nucleus.n, d: embeddings.nucleus.dim },
      conditions,
      anchors,
      fusion: options.fusion ?? DEFAULT_FUSION,
    });
  } catch (err) {
    throw new Error(`cannot score ${dataset.root} (anchors ${anchors.join(" vs ")}): ${(err as Error).message}`);
  }
  const metrics = temMetrics({ scores, conditions, anchors, order: dataset.conditions });
  const validation = validateRun(embeddings, conditions, anchors, options);
  return {
    dataset,
    anchors,
    scored,
    unreadable,
    encoders: { actin: encoders.actin.info, nucleus: encoders.nucleus.info },
    embeddings,
    scores,
    rows: scoreRows(scored.map((p) => p.sampleId), conditions, scores),
    metrics,
    validation,
    warning: weightsWarning(encoders.actin.info.weights) ?? weightsWarning(encoders.nucleus.info.weights),
  };
}

function validateRun(
  embeddings: PairEmbeddings, conditions: string[], anchors: [string, string], options: ScoreOptions,
): ValidationOutcome {
  if (options.validation === false) return { reason: "not requested" };
  try {
    const result = validate({
      actin: { emb: embeddings.actin.vectors, n: embeddings.actin.n, d: embeddings.actin.dim },
      nucleus: { emb: embeddings.nucleus.vectors, n: embeddings.nucleus.n, d: embeddings.nucleus.dim },
      conditions,
      anchors,
      fusion: options.fusion ?? DEFAULT_FUSION,
    }, options.validation ?? {});
    return { result };
  } catch (err) {
    // Cross-validation needs several anchor cells per fold; a tiny dataset still gets its in-sample scores.
    return { reason: (err as Error).message };
  }
}

/** The whole job from a zip or folder path. */
export async function scoreDataset(source: string, options: ScoreOptions = {}): Promise<ScoreRun> {
  const dataset = openCelltool(source, { extractDir: options.extractDir });
  resolveAnchors(dataset, options.anchors ?? DEFAULT_ANCHORS); // before the encoders load: fail in milliseconds
  const encoders = await openEncoders(options);
  try {
    return await scorePairs(dataset, encoders, options);
  } finally {
    await closeEncoders(encoders);
  }
}

/** The skipped cells and their images, as metrics.json and pairing_report.json both report them. */
function unreadableSection(run: ScoreRun): { cells_skipped: number; images: UnreadableImageReport[] } {
  return { cells_skipped: run.dataset.pairs.length - run.scored.length, images: run.unreadable };
}

/** What metrics.json holds: the statistics plus everything needed to reproduce or reuse the axes. */
export function metricsDocument(run: ScoreRun): Record<string, unknown> {
  return {
    warning: run.warning,
    dataset: {
      source: run.dataset.source, root: run.dataset.root, pairs: run.dataset.pairs.length, scored: run.scored.length,
    },
    unreadable: unreadableSection(run),
    encoders: run.encoders,
    fusion: run.scores.fusion,
    zero_embeddings: run.scores.zeroRows,
    ...run.metrics,
    validation: "reason" in run.validation ? { skipped: run.validation.reason } : run.validation.result.summary,
    axes: run.scores.axes,
  };
}

/** What pairing_report.json holds: how the files paired, and which pairs could not be decoded. */
export function pairingDocument(run: ScoreRun): Record<string, unknown> {
  return { warning: run.warning, ...run.dataset.report, unreadable: unreadableSection(run) };
}

/** Console lines about the skipped cells (empty when none): a count, then the first images and why. */
export function formatUnreadable(run: ScoreRun): string[] {
  const { cells_skipped, images } = unreadableSection(run);
  if (cells_skipped === 0) return [];
  const lines = [`${cells_skipped} cell(s) skipped: ${images.length} image(s) could not be decoded ` +
    "(all listed in metrics.json and pairing_report.json; --strict stops at the first instead)"];
  for (const u of images.slice(0, LIST_LIMIT)) lines.push(`  ${u.sample_id} (${u.channel}): ${u.file}: ${u.reason}`);
  if (images.length > LIST_LIMIT) lines.push(`  ... and ${images.length - LIST_LIMIT} more`);
  return lines;
}

/** JSON text, refusing NaN and Infinity (JSON.stringify would silently write them as null). */
function jsonText(value: unknown, file: string): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`${file}: "${key}" is ${v}; outputs take finite numbers only`);
    return v;
  }, 2) + "\n";
}

/**
 * Throws a clear Error when outputs cannot go to `outDir`: it, or its nearest existing ancestor, is a file or is
 * not writable. Creates nothing, so the CLI can check before minutes of embedding.
 */
export function checkOutputDir(outDir: string): void {
  const target = path.resolve(outDir);
  let existing = target;
  while (!fs.existsSync(existing)) existing = path.dirname(existing); // the filesystem root always exists
  const where = existing === target ? "it" : existing;
  if (!fs.statSync(existing).isDirectory()) {
    throw new Error(`cannot write outputs to ${target}: ${where} is a file, not a folder`);
  }
  try {
    fs.accessSync(existing, fs.constants.W_OK);
  } catch (err) {
    throw new Error(`cannot write outputs to ${target}: ${where} is not writable ` +
      `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Writes one file completely or throws (default: lib/atomic.ts's temp-then-rename); tests inject faults here. */
export type FileWriter = (file: string, text: string) => void;

/**
 * The outputs belong together: each is written completely into a hidden staging folder inside `outDir`, and only
 * when all are there are they renamed over the previous ones. A failed write (disk full, ...) leaves the previous
 * outputs as they were and no temporary file behind.
 */
function writeAllOrNothing(outDir: string, outputs: readonly (readonly [string, string])[], writeFile: FileWriter): void {
  checkOutputDir(outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(outDir, ".cellmorpho-staging-"));
  try {
    for (const [name, text] of outputs) {
      try {
        writeFile(path.join(staging, name), text);
      } catch (err) {
        throw new Error(`could not write ${name} to ${outDir} (${(err as Error).message}); ` +
          "the previous outputs there are unchanged");
      }
    }
    for (const [name] of outputs) fs.renameSync(path.join(staging, name), path.join(outDir, name));
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** The method's columns, plus the out-of-fold ones when asked for and computed. */
function scoresCsv(run: ScoreRun, withOutOfFold: boolean, preamble: string[]): string {
  if (!withOutOfFold) return toCsv(run.rows, SCORE_COLUMNS, preamble);
  if ("reason" in run.validation) {
    throw new Error(`out-of-fold columns asked for, but validation did not run: ${run.validation.reason}`);
  }
  const { columns } = run.validation.result;
  const rows = run.rows.map((row, i) => ({
    ...row,
    tem_actin_oof: columns.tem_actin_oof[i],
    tem_nucleus_oof: columns.tem_nucleus_oof[i],
    tem_fused_oof: columns.tem_fused_oof[i],
  }));
  return toCsv(rows, [...SCORE_COLUMNS, "tem_actin_oof", "tem_nucleus_oof", "tem_fused_oof"], preamble);
}

export interface WriteOptions {
  /** Add tem_actin_oof, tem_nucleus_oof, tem_fused_oof to tem_scores.csv. */
  outOfFoldColumns?: boolean;
  /** Writes one file completely or throws (tests inject faults here). */
  writeFile?: FileWriter;
}

/** Write tem_scores.csv, stats_by_condition.csv, metrics.json and pairing_report.json, all or none. */
export function writeScoreOutputs(run: ScoreRun, outDir: string, options: WriteOptions = {}): string[] {
  const dir = path.resolve(outDir);
  // With unverified weights the CSVs open with a "# WARNING" comment line (pandas: read_csv(..., comment="#")).
  const preamble = run.warning ? [`# ${run.warning}`] : [];
  const outputs = [
    ["tem_scores.csv", scoresCsv(run, options.outOfFoldColumns ?? false, preamble)],
    ["stats_by_condition.csv", toCsv(statsRows(run.metrics), SCORE_STATS_COLUMNS, preamble)],
    ["metrics.json", jsonText(metricsDocument(run), "metrics.json")],
    ["pairing_report.json", jsonText(pairingDocument(run), "pairing_report.json")],
  ] as const;
  writeAllOrNothing(dir, outputs, options.writeFile ?? writeFileAtomic);
  return outputs.map(([name]) => path.join(dir, name));
}
