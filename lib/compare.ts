// Several encoders on the same cells: does the TEM score depend on the backbone? Each encoder goes through the
// score pipeline's own scorePairs (one scoring path for everything), then lib/validation.ts's out-of-fold
// validation; the encoders are compared by anchor AUC (in-sample and out-of-fold), condition means, agreement with
// the latent state when it is known (synthetic data), and the rank agreement of their fused scores.
import { resolveCondition, type CelltoolDataset } from "./dataset";
import { openBackbonePair, type BackboneOptions } from "./backbones";
import type { Encoder, EncoderInfo } from "./encoder";
import { pearson, SCORE_NAMES, spearman, type ScoreName } from "./metrics";
import { closeEncoders, DEFAULT_ANCHORS, DEFAULT_FUSION, scorePairs, type DualEncoders,
  type ScoreRun } from "./pipeline";
import { scatter, type PlotlyFigure } from "./plots";
import type { TruthRow } from "./synth";
import { validate } from "./validation";

type Log = (msg: string) => void;

export interface CompareOptions {
  dataset: CelltoolDataset;
  /** Encoder specs (see lib/backbones.ts); the same spec may appear twice (a determinism check). */
  specs: readonly string[];
  /** [epithelial, mesenchymal]; default Ctrl, TNFTGF. */
  anchors?: readonly [string, string];
  /** [actin, nucleus] weights of tem_fused; default 0.5, 0.5. */
  fusion?: readonly [number, number];
  /** Latent EMT state per sample_id (truthBySample(readTruth(...))); every pair of the dataset must have one. */
  truth?: ReadonlyMap<string, number>;
  /** Out-of-fold validation: folds (default 5) and the seed of the fold assignment (default 0). */
  folds?: number;
  seed?: number;
  /** Embedding cache folder; null disables it (then timings measure every image); default the pipeline's. */
  cacheDir?: string | null;
  batchSize?: number;
  /** Engine, weights folder, grey mode, TF.js backend: applied to every spec. */
  backbone?: Omit<BackboneOptions, "log">;
  progress?: boolean;
  log?: Log;
}

export type PerScore = Record<ScoreName, number>;

export interface ConditionMeans {
  condition: string;
  n: number;
  /** Mean tem_fused on the full (in-sample) axis, as the pipeline reports it. */
  mean_in_sample: number;
  /** Mean tem_fused out of fold (anchor cells scored on axes built without their fold). */
  mean_out_of_fold: number;
}

export interface EncoderTiming {
  /** Images that went through the encoder (cache hits excluded). */
  images_embedded: number;
  /** Time with at least one forward pass in flight (either channel): the network's share of the run. */
  busy_seconds: number;
  /** busy_seconds per embedded image, in ms; null when every embedding came from the cache. */
  ms_per_image: number | null;
  /** Wall time of the whole scoring call (decoding, embedding, axes, metrics). */
  wall_seconds: number;
}

export interface EncoderComparison {
  spec: string;
  /** Short name for tables: the backbone and its weights. */
  label: string;
  info: EncoderInfo;
  /** The unverified-weights sentence, or null for the method's verified ImageNet ResNet18. */
  warning: string | null;
  auc_in_sample: PerScore;
  auc_out_of_fold: PerScore;
  /** Out-of-fold AUC of tem_fused with the actin weight tuned by nested CV (lib/validation.ts). */
  auc_out_of_fold_tuned_fusion: number;
  /** Conditions in dataset order. */
  condition_means: ConditionMeans[];
  /** Conditions by increasing in-sample mean tem_fused. */
  condition_order: string[];
  /** Spearman's rho between each score and the latent state; null without truth. */
  spearman_latent: PerScore | null;
  /**
   * Spearman's rho of tem_fused with the latent state inside each condition: whether the score tracks the state
   * beyond telling conditions apart. null without truth; a condition's rho is null below 3 cells or when constant.
   */
  spearman_latent_within: { condition: string; n: number; spearman: number | null }[] | null;
  timing: EncoderTiming;
  /** tem_fused per cell, in the order of CompareResult.cells. */
  tem_fused: number[];
}

export interface EncoderAgreement {
  /** Indices into CompareResult.encoders. */
  a: number;
  b: number;
  /** Rank and linear correlation of the two encoders' tem_fused over all cells. */
  spearman: number;
  pearson: number;
}

export interface CompareResult {
  dataset: { source: string; root: string; pairs: number; conditions: string[] };
  anchors: [string, string];
  fusion: [number, number];
  folds: number;
  seed: number;
  /** The cells scored (every pair, unless the pipeline skipped unreadable images), in dataset order. */
  cells: { sample_id: string; condition: string }[];
  encoders: EncoderComparison[];
  /** Every pair of encoders, a < b. */
  agreement: EncoderAgreement[];
  /**
   * Spearman's rho with the latent state of a score that knows only each cell's condition (its condition's mean
   * latent state): the part of spearman_latent that separating conditions alone earns. null without truth.
   */
  latent_condition_only_spearman: number | null;
  /** tem_fused of encoders[0] against encoders[1]; null with a single encoder. */
  scatter: PlotlyFigure | null;
}

/** truth.csv rows (lib/synth.ts readTruth) as sample_id -> latent state; a repeated sample_id is an error. */
export function truthBySample(rows: readonly TruthRow[]): Map<string, number> {
  const truth = new Map<string, number>();
  for (const row of rows) {
    if (truth.has(row.sampleId)) throw new Error(`truth: sample_id "${row.sampleId}" appears twice`);
    truth.set(row.sampleId, row.emt);
  }
  return truth;
}

/** The latent state of every cell, in order; throws naming the cells the truth does not cover. */
function latentStates(sampleIds: readonly string[], truth: ReadonlyMap<string, number>): number[] {
  const missing = sampleIds.filter((id) => !truth.has(id));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(", ");
    throw new Error(`truth: no latent state for ${missing.length} of ${sampleIds.length} cells (${shown}` +
      `${missing.length > 5 ? ", ..." : ""})`);
  }
  return sampleIds.map((id) => truth.get(id)!);
}

/** Spearman's rho, or null where it says nothing (fewer than 3 values) or is undefined (a constant side). */
function spearmanOrNull(x: readonly number[], y: readonly number[]): number | null {
  const constant = (v: readonly number[]) => v.every((value) => value === v[0]);
  return x.length < 3 || constant(x) || constant(y) ? null : spearman(x, y);
}

/** Rows of each condition, in the given order. */
function rowsByCondition(conditions: readonly string[], order: readonly string[]): Map<string, number[]> {
  const rows = new Map(order.map((c): [string, number[]] => [c, []]));
  conditions.forEach((c, row) => rows.get(c)?.push(row));
  return rows;
}

/** The latent state replaced by its condition's mean: what knowing only the condition gives. */
function conditionMeanLatent(latent: readonly number[], conditions: readonly string[]): number[] {
  const rows = rowsByCondition(conditions, [...new Set(conditions)]);
  const meanOf = new Map([...rows].map(([c, r]) => [c, r.reduce((sum, row) => sum + latent[row], 0) / r.length]));
  return conditions.map((c) => meanOf.get(c)!);
}

/** "resnet18 · resnet18-torchvision-seed0.pth (UNVERIFIED)", "tfjs · Darknet Tiny (ImageNet, ml5) — ...". */
export function encoderLabel(info: EncoderInfo): string {
  return `${info.encoder === "resnet18" ? "resnet18" : "tfjs"} · ${info.weights.label}`;
}

/** One sentence for outputs mixing encoders: null only when every one is the method's verified ResNet18. */
export function comparisonWarning(infos: readonly EncoderInfo[]): string | null {
  const labels = [...new Set(infos.filter((i) => !i.weights.verified).map((i) => i.weights.label))];
  if (labels.length === 0) return null;
  return `WARNING: computed with ${labels.join("; ")}: NOT torchvision's verified ImageNet ResNet18 ` +
    "(IMAGENET1K_V1, sha256 f37072fd...). These are not the method's results.";
}

/**
 * Time during which at least one forward pass is in flight. The pipeline embeds both channels at once, so summing
 * each call's duration would count overlapping passes twice; the union of the intervals is the encoder's real
 * share of the run, and excludes the cache and any decoding done while no pass runs.
 */
class BusyMeter {
  private images = 0;
  private seconds = 0;
  private active = 0;
  private since = 0n;

  wrap(encoder: Encoder): Encoder {
    return {
      info: encoder.info,
      inputSize: encoder.inputSize,
      dim: encoder.dim,
      embed: async (batch, n) => {
        if (this.active++ === 0) this.since = process.hrtime.bigint();
        try {
          return await encoder.embed(batch, n);
        } finally {
          if (--this.active === 0) this.seconds += Number(process.hrtime.bigint() - this.since) / 1e9;
          this.images += n;
        }
      },
      dispose: () => encoder.dispose(),
    };
  }

  timing(wallSeconds: number): EncoderTiming {
    return {
      images_embedded: this.images,
      busy_seconds: this.seconds,
      ms_per_image: this.images > 0 ? (1000 * this.seconds) / this.images : null,
      wall_seconds: wallSeconds,
    };
  }
}

function perScore(f: (name: ScoreName) => number): PerScore {
  return Object.fromEntries(SCORE_NAMES.map((name) => [name, f(name)])) as PerScore;
}

interface Settings {
  anchors: readonly [string, string];
  fusion: readonly [number, number];
  folds: number;
  seed: number;
}

/** The pipeline's own scoring with these encoders; the encoders are released whatever happens. */
async function scoreThenClose(options: CompareOptions, encoders: DualEncoders, settings: Settings): Promise<ScoreRun> {
  try {
    return await scorePairs(options.dataset, encoders, {
      anchors: settings.anchors, fusion: settings.fusion, cacheDir: options.cacheDir, batchSize: options.batchSize,
      progress: options.progress,
    });
  } finally {
    await closeEncoders(encoders);
  }
}

/** Spearman's rho of a score with the latent state, over all cells and inside each condition. */
function latentAgreement(run: ScoreRun, latent: readonly number[], order: readonly string[]):
  Pick<EncoderComparison, "spearman_latent" | "spearman_latent_within"> {
  const conditions = run.rows.map((r) => r.condition);
  return {
    spearman_latent: perScore((name) => spearman(run.scores[name], latent)),
    spearman_latent_within: [...rowsByCondition(conditions, order)].map(([condition, rows]) => ({
      condition, n: rows.length,
      spearman: spearmanOrNull(rows.map((row) => run.scores.tem_fused[row]), rows.map((row) => latent[row])),
    })),
  };
}

/** One encoder through the pipeline's scoring and the out-of-fold validation, with the cells it scored. */
async function compareOne(spec: string, options: CompareOptions, settings: Settings):
  Promise<{ comparison: EncoderComparison; cells: CompareResult["cells"] }> {
  const meter = new BusyMeter();
  const opened = await openBackbonePair(spec, { ...options.backbone, log: options.log ?? (() => undefined) });
  const started = process.hrtime.bigint();
  const run = await scoreThenClose(options, { actin: meter.wrap(opened.actin), nucleus: meter.wrap(opened.nucleus) },
    settings);
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;

  // The cells the pipeline scored (run.rows), so every array below lines up with the scores whatever it scored.
  const cells = run.rows.map((r) => ({ sample_id: r.sample_id, condition: r.condition }));
  const { actin, nucleus } = run.embeddings;
  const validation = validate({
    actin: { emb: actin.vectors, n: actin.n, d: actin.dim },
    nucleus: { emb: nucleus.vectors, n: nucleus.n, d: nucleus.dim },
    conditions: cells.map((c) => c.condition), anchors: run.anchors, fusion: run.scores.fusion,
  }, { folds: settings.folds, seed: settings.seed, bootstrap: 0, permutations: 0 }).summary;

  const outOfFoldMeans = new Map(validation.scores.tem_fused.condition_means_out_of_fold
    .map((c) => [c.condition, c.mean]));
  const condition_means = run.metrics.scores.tem_fused.by_condition.map((c): ConditionMeans => ({
    condition: c.condition, n: c.n, mean_in_sample: c.mean, mean_out_of_fold: outOfFoldMeans.get(c.condition)!,
  }));
  const latent = options.truth ? latentStates(cells.map((c) => c.sample_id), options.truth) : null;
  const comparison: EncoderComparison = {
    spec,
    label: encoderLabel(run.encoders.actin),
    info: run.encoders.actin,
    warning: run.warning,
    auc_in_sample: perScore((name) => run.metrics.scores[name].auc),
    auc_out_of_fold: perScore((name) => validation.scores[name].auc_out_of_fold),
    auc_out_of_fold_tuned_fusion: validation.tuned_fusion.auc_out_of_fold,
    condition_means,
    condition_order: [...condition_means].sort((a, b) => a.mean_in_sample - b.mean_in_sample).map((c) => c.condition),
    ...(latent === null ? { spearman_latent: null, spearman_latent_within: null }
      : latentAgreement(run, latent, condition_means.map((c) => c.condition))),
    timing: meter.timing(wallSeconds),
    tem_fused: Array.from(run.scores.tem_fused),
  };
  return { comparison, cells };
}

/** Every encoder must have scored the same cells, or their scores cannot be set side by side. */
function sameCells(first: CompareResult["cells"], other: CompareResult["cells"], spec: string): void {
  const differs = other.length !== first.length || other.some((c, i) => c.sample_id !== first[i].sample_id);
  if (differs) {
    throw new Error(`compareEncoders: ${spec} scored ${other.length} cells, not the same ${first.length} cells as ` +
      "the first encoder (an image unreadable for one encoder only?)");
  }
}

/** tem_fused of encoder a against encoder b, one point per cell, hover = sample_id. */
export function comparisonScatter(result: CompareResult, a = 0, b = 1): PlotlyFigure {
  const [x, y] = [result.encoders[a], result.encoders[b]];
  if (x === undefined || y === undefined) {
    throw new Error(`comparisonScatter: encoders ${a} and ${b} requested; the comparison has ` +
      `${result.encoders.length}`);
  }
  const rho = spearman(x.tem_fused, y.tem_fused);
  return scatter(
    result.cells.map((cell, i) => ({ ...cell, x: x.tem_fused[i], y: y.tem_fused[i] })),
    {
      title: `tem_fused by two encoders (Spearman ${rho.toFixed(3)})`,
      xTitle: x.label, yTitle: y.label, conditionOrder: result.dataset.conditions,
      warning: comparisonWarning([x.info, y.info]),
    },
  );
}

/** Every encoder on the same cells; encoders run one after another (each is released before the next opens). */
export async function compareEncoders(options: CompareOptions): Promise<CompareResult> {
  const { dataset, specs } = options;
  if (specs.length === 0) throw new Error("compareEncoders: no encoder specs given");
  // Before any embedding: a truth file that does not cover the cells fails fast, not after minutes of work.
  if (options.truth) latentStates(dataset.pairs.map((p) => p.sampleId), options.truth);
  const requested = options.anchors ?? DEFAULT_ANCHORS;
  const settings: Settings = {
    // Spelled as in the dataset (e.g. "CTRL" for "Ctrl"), as scorePairs will: the result then names real folders.
    anchors: [resolveCondition(dataset, requested[0]), resolveCondition(dataset, requested[1])],
    fusion: options.fusion ?? DEFAULT_FUSION,
    folds: options.folds ?? 5,
    seed: options.seed ?? 0,
  };
  const encoders: EncoderComparison[] = [];
  let cells: CompareResult["cells"] = [];
  for (const spec of specs) {
    options.log?.(`compare: ${spec}`);
    const one = await compareOne(spec, options, settings);
    if (encoders.length === 0) cells = one.cells;
    else sameCells(cells, one.cells, spec);
    encoders.push(one.comparison);
  }
  const agreement: EncoderAgreement[] = [];
  for (let a = 0; a < encoders.length; a++) {
    for (let b = a + 1; b < encoders.length; b++) {
      const [x, y] = [encoders[a].tem_fused, encoders[b].tem_fused];
      agreement.push({ a, b, spearman: spearman(x, y), pearson: pearson(x, y) });
    }
  }
  const latent = options.truth ? latentStates(cells.map((c) => c.sample_id), options.truth) : null;
  const result: CompareResult = {
    dataset: {
      source: dataset.source, root: dataset.root, pairs: dataset.pairs.length, conditions: dataset.conditions,
    },
    anchors: [settings.anchors[0], settings.anchors[1]],
    fusion: [settings.fusion[0], settings.fusion[1]],
    folds: settings.folds,
    seed: settings.seed,
    cells,
    encoders,
    agreement,
    latent_condition_only_spearman: latent === null ? null
      : spearman(conditionMeanLatent(latent, cells.map((c) => c.condition)), latent),
    scatter: null,
  };
  result.scatter = encoders.length > 1 ? comparisonScatter(result) : null;
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// The comparison as text: a plain aligned table for the console, or Markdown for docs.

export interface FormatOptions {
  /** Markdown tables (for docs/results.md) instead of space-aligned columns. */
  markdown?: boolean;
}

function renderTable(header: readonly string[], rows: readonly (readonly string[])[], markdown: boolean): string {
  if (markdown) {
    const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
    return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: readonly string[]) => cells.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const fixed3 = (x: number) => x.toFixed(3);
const triple = (s: PerScore) => SCORE_NAMES.map((name) => fixed3(s[name])).join(" / ");

/** The comparison as tables: per-encoder metrics, condition means, and the encoders' agreement. */
export function formatComparison(result: CompareResult, options: FormatOptions = {}): string {
  const markdown = options.markdown ?? false;
  const { encoders } = result;
  const summary = renderTable(
    ["#", "encoder", "input", "engine (backend)", "ms/image", "AUC in-sample a / n / f", "AUC out-of-fold a / n / f",
      "AUC OOF tuned fusion", "Spearman latent a / n / f", "fused means, low to high"],
    encoders.map((e, i) => [
      String(i), e.label, e.info.input ?? "?", `${e.info.engine} (${e.info.backend})`,
      e.timing.ms_per_image === null ? "cached" : e.timing.ms_per_image.toFixed(1),
      triple(e.auc_in_sample), triple(e.auc_out_of_fold), fixed3(e.auc_out_of_fold_tuned_fusion),
      e.spearman_latent === null ? "-" : triple(e.spearman_latent), e.condition_order.join(" < "),
    ]),
    markdown,
  );
  const withTruth = result.latent_condition_only_spearman !== null;
  const perEncoderColumns = (e: EncoderComparison, row: number): string[] => {
    const { mean_in_sample, mean_out_of_fold } = e.condition_means[row];
    const within = e.spearman_latent_within?.[row].spearman;
    return [`${fixed3(mean_in_sample)} / ${fixed3(mean_out_of_fold)}`,
      ...(withTruth ? [within === null || within === undefined ? "-" : fixed3(within)] : [])];
  };
  const means = renderTable(
    ["condition", "n", ...encoders.flatMap((_, i) => [`#${i} mean fused in-sample / OOF`,
      ...(withTruth ? [`#${i} Spearman latent within`] : [])])],
    encoders[0].condition_means.map((c, row) => [
      c.condition, String(c.n), ...encoders.flatMap((e) => perEncoderColumns(e, row))]),
    markdown,
  );
  const conditionOnly = withTruth
    ? ["A score knowing only each cell's condition would reach Spearman " +
      `${fixed3(result.latent_condition_only_spearman!)} with the latent state.`]
    : [];
  const agreement = result.agreement.map((g) =>
    `#${g.a} vs #${g.b}: Spearman ${fixed3(g.spearman)}, Pearson ${fixed3(g.pearson)} ` +
    `(tem_fused, ${result.cells.length} cells)`);
  const warning = comparisonWarning(encoders.map((e) => e.info));
  return [
    `${result.dataset.pairs} cells from ${result.dataset.root}; anchors ${result.anchors.join(" vs ")}; fusion ` +
      `${result.fusion.join("/")}; out-of-fold: ${result.folds} folds, seed ${result.seed}; ` +
      "a / n / f = actin / nucleus / fused",
    "", summary, "", means, ...(conditionOnly.length > 0 ? ["", ...conditionOnly] : []),
    ...(agreement.length > 0
      ? ["", "Agreement between encoders:", ...agreement.map((line) => (markdown ? `- ${line}` : `  ${line}`))]
      : []),
    ...(warning ? ["", warning] : []),
  ].join("\n");
}
