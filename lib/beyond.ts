// What the notebook's "Beyond the reference" sections need on top of the library: the honest validation as a
// table, a figure and sentences; the choice of encoder for those sections (the method's ResNet18 when its ImageNet
// weights are here, else the shared ImageNet-trained Darknet Tiny) scored through the pipeline's own scorePairs;
// the backbone comparison as a table and sentences; and small adapters from a ScoreRun to the embedding map, the
// gallery and the latent-state scatter. Each notebook cell stays a few lines long and calls these tested functions.
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "./atomic";
import { l2Normalize } from "./axis";
import { RESNET18_SPEC, openBackbonePair, type DefaultBackbone } from "./backbones";
import { encoderLabel, formatComparison, truthBySample, type CompareResult, type EncoderComparison } from "./compare";
import type { CelltoolDataset } from "./dataset";
import type { NotebookDisplay } from "./display";
import { embeddingMap } from "./embeddingMap";
import type { ScoreRow } from "./frame";
import { scoreGallery, type Gallery, type GalleryOptions } from "./gallery";
import { SCORE_NAMES, spearman, type ScoreName, type TemMetrics } from "./metrics";
import { FEATURE_NAMES, type FeatureCorrelation, type FeatureName } from "./morphology";
import { formatP, tableHtml, tableText, type TableOutput } from "./notebook";
import { closeEncoders, scorePairs, type ScoreOptions, type ScoreRun, type ValidationOutcome } from "./pipeline";
import { bar, saveFigure, scatter, type FigureOptions, type PlotlyFigure, type PlotlyTrace } from "./plots";
import { readTruth } from "./synth";
import type { Interval, ValidationSummary } from "./validation";

// ---------------------------------------------------------------------------------------------------------------
// Shared

const fixed3 = (x: number): string => x.toFixed(3);

/** "0.812 to 0.973", or why there is no interval. */
export function formatInterval(ci: Interval | null): string {
  return ci === null ? "not computed" : `${fixed3(ci[0])} to ${fixed3(ci[1])}`;
}

function table(columns: readonly string[], rows: readonly (readonly unknown[])[], caption: string): TableOutput {
  return { html: tableHtml(columns, rows, caption), text: `${caption}\n${tableText(columns, rows)}` };
}

/** Shows a figure inline and writes it to `<outDir>/<name>.html` (+ .png with a browser); returns the files. */
export async function showAndSaveFigure(
  show: Pick<NotebookDisplay, "showFigure">, fig: PlotlyFigure, outDir: string, name: string,
): Promise<string[]> {
  show.showFigure(fig);
  const saved = await saveFigure(fig, outDir, name);
  return [saved.html, ...(saved.png ? [saved.png] : [])];
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Honest validation

/** The validation of a run; an Error saying why when it could not be computed (e.g. too few anchor cells). */
export function validationSummary(outcome: ValidationOutcome): ValidationSummary {
  // `"reason" in` narrows under tslab's non-strict compiler too, where `outcome.ok` would not.
  if ("reason" in outcome) throw new Error(`the honest validation did not run: ${outcome.reason}`);
  return outcome.result.summary;
}

export const VALIDATION_COLUMNS = [
  "score", "AUC in-sample", "AUC out-of-fold", "AUC out-of-fold, 95 % CI", "Cohen's d in-sample",
  "Cohen's d out-of-fold", "Cohen's d out-of-fold, 95 % CI", "permutation p",
] as const;

/** Label of the nested-CV fusion in tables and figures. */
export const TUNED_FUSION_LABEL = "tem_fused, tuned fusion";

/** In-sample and out-of-fold AUC and Cohen's d per score, their intervals and permutation p; then the tuned fusion. */
export function validationTable(summary: ValidationSummary, caption: string): TableOutput {
  const rows: unknown[][] = SCORE_NAMES.map((name) => {
    const s = summary.scores[name];
    return [name, s.auc_in_sample, s.auc_out_of_fold, formatInterval(s.auc_out_of_fold_ci), s.cohens_d_in_sample,
      s.cohens_d_out_of_fold, formatInterval(s.cohens_d_out_of_fold_ci),
      s.permutation_p === null ? "not run" : formatP(s.permutation_p)];
  });
  const tuned = summary.tuned_fusion;
  // The tuned fusion exists only out of fold: its weights are chosen on training folds, never in-sample.
  rows.push([TUNED_FUSION_LABEL, "", tuned.auc_out_of_fold, formatInterval(tuned.auc_out_of_fold_ci), "", "", "", ""]);
  return table(VALIDATION_COLUMNS, rows, caption);
}

export const CONDITION_MEANS_COLUMNS = [
  "condition", "role", "n", "mean in-sample", "mean out-of-fold", "out-of-fold 95 % CI",
] as const;

/** Mean score per condition, in-sample (the metrics) and out of fold (with its bootstrap interval). */
export function conditionMeansTable(
  summary: ValidationSummary, metrics: TemMetrics, caption: string, score: ScoreName = "tem_fused",
): TableOutput {
  const inSample = new Map(metrics.scores[score].by_condition.map((c) => [c.condition, c.mean]));
  const { epithelial, mesenchymal } = summary.anchors;
  const role = (c: string) => (c === epithelial ? "epithelial anchor" : c === mesenchymal ? "mesenchymal anchor"
    : "not an anchor (same axis both ways)");
  const rows = summary.scores[score].condition_means_out_of_fold.map((c) => {
    const mean = inSample.get(c.condition);
    if (mean === undefined) throw new Error(`conditionMeansTable: condition "${c.condition}" has no in-sample ${score} mean`);
    return [c.condition, role(c.condition), c.n, mean, c.mean, formatInterval(c.ci)];
  });
  return table(CONDITION_MEANS_COLUMNS, rows, caption);
}

const IN_SAMPLE_COLOUR = "#9e9e9e";
const OUT_OF_FOLD_COLOUR = "#4c72b0";

/** Plotly's asymmetric error bars from intervals around the values (none where the interval is missing). */
function intervalErrors(values: readonly number[], cis: readonly (Interval | null)[]): Record<string, unknown> {
  return {
    type: "data", symmetric: false, visible: true, color: "#222222", thickness: 1.5,
    array: values.map((v, i) => (cis[i] === null ? 0 : cis[i]![1] - v)),
    arrayminus: values.map((v, i) => (cis[i] === null ? 0 : v - cis[i]![0])),
  };
}

/**
 * Anchor AUC per score: in-sample (grey) beside out-of-fold with its 95 % bootstrap interval (blue), and the
 * tuned fusion out of fold.
 */
export function validationFigure(summary: ValidationSummary, options: FigureOptions = {}): PlotlyFigure {
  const s = summary.scores;
  const tuned = summary.tuned_fusion;
  const categories = [...SCORE_NAMES, TUNED_FUSION_LABEL];
  const outOfFold = [...SCORE_NAMES.map((name) => s[name].auc_out_of_fold), tuned.auc_out_of_fold];
  const cis = [...SCORE_NAMES.map((name) => s[name].auc_out_of_fold_ci), tuned.auc_out_of_fold_ci];
  const { epithelial, mesenchymal } = summary.anchors;
  const base = bar(categories, outOfFold, {
    title: options.title ?? `Anchor ROC-AUC (${mesenchymal} vs ${epithelial}): in-sample vs out-of-fold, 95 % CI`,
    warning: options.warning,
    yTitle: "ROC-AUC (0.5 = chance, 1 = perfect)",
    yRange: [0, 1.15],
  });
  const inSample = bar([...SCORE_NAMES], SCORE_NAMES.map((name) => s[name].auc_in_sample)).data[0];
  const traces: PlotlyTrace[] = [
    { ...inSample, name: "in-sample (optimistic)", marker: { color: IN_SAMPLE_COLOUR } },
    { ...base.data[0], name: "out-of-fold", marker: { color: OUT_OF_FOLD_COLOUR }, error_y: intervalErrors(outOfFold, cis),
      textposition: "inside", insidetextanchor: "start" },
  ];
  return {
    data: traces,
    layout: {
      ...base.layout,
      barmode: "group",
      showlegend: true,
      legend: { orientation: "h", x: 0, y: -0.15 },
      xaxis: { categoryorder: "array", categoryarray: categories },
    },
  };
}

function optimismSentence(inSample: number, outOfFold: number): string {
  const drop = inSample - outOfFold;
  // AUCs are printed to 3 decimals: a change below 0.005 would not even show.
  if (Math.abs(drop) < 0.005) return "the in-sample number holds up on held-out cells";
  return drop > 0 ? `the in-sample number was optimistic by ${fixed3(drop)}`
    : `held-out cells even score ${fixed3(-drop)} better (chance, on this many cells)`;
}

function permutationSentence(summary: ValidationSummary): string {
  const perm = summary.permutation;
  if (perm === null) return "The permutation test was not run.";
  const { epithelial: E, mesenchymal: M } = summary.anchors;
  const p = perm.p.tem_fused;
  const floor = 1 / (perm.n_permutations + 1);
  const verdict = p <= floor ? `the smallest p ${perm.n_permutations} permutations can give: the separation is not chance`
    : p < 0.05 ? "the separation is unlikely to be chance" : "the separation could well be chance";
  return `Permutation test: the ${E}/${M} labels were shuffled ${perm.n_permutations} times and the whole ` +
    `cross-validation rebuilt each time. The shuffled out-of-fold AUC of tem_fused averaged ` +
    `${fixed3(perm.null_mean.tem_fused)} and reached the real ${fixed3(perm.observed.tem_fused)} with p = ${formatP(p)} ` +
    `(${verdict}).`;
}

function tunedFusionSentence(summary: ValidationSummary): string {
  const tuned = summary.tuned_fusion;
  const fixed = summary.scores.tem_fused.auc_out_of_fold;
  const [wa, wn] = summary.settings.fusion;
  const gain = tuned.auc_out_of_fold - fixed;
  const verdict = Math.abs(gain) < 0.005 ? "tuning changes nothing that matters"
    : gain > 0 ? `tuning gains ${fixed3(gain)}`
    : `tuning loses ${fixed3(-gain)} (weights chosen on fewer cells are noisier)`;
  const deployed = tuned.deployed_actin_weight;
  return `Fusion tuned on the training folds only: actin weight ${tuned.actin_weights.join(", ")} (one per fold). ` +
    `Out-of-fold AUC ${fixed3(tuned.auc_out_of_fold)} with tuned weights vs ${fixed3(fixed)} with the fixed ` +
    `${wa}/${wn}: ${verdict}. Chosen on every anchor's out-of-fold scores, the weights to use on new data would be ` +
    `actin ${deployed}, nucleus ${Math.round((1 - deployed) * 100) / 100}.`;
}

/** The validation in plain sentences: optimism of the in-sample AUC, Cohen's d, channels, permutation, fusion. */
export function explainValidation(summary: ValidationSummary): string[] {
  const { epithelial: E, mesenchymal: M, n_epithelial, n_mesenchymal } = summary.anchors;
  const f = summary.scores.tem_fused;
  const channels = (["tem_actin", "tem_nucleus"] as const)
    .map((name) => `${name} ${fixed3(summary.scores[name].auc_out_of_fold)} (in-sample ${fixed3(summary.scores[name].auc_in_sample)})`);
  return [
    `${summary.settings.folds}-fold cross-validation over the ${n_epithelial} ${E} and ${n_mesenchymal} ${M} cells: ` +
      "each anchor cell was scored on an axis built without it.",
    `Out of fold, tem_fused separates ${E} from ${M} with AUC ${fixed3(f.auc_out_of_fold)} (95 % CI ` +
      `${formatInterval(f.auc_out_of_fold_ci)}), against ${fixed3(f.auc_in_sample)} in-sample: ` +
      `${optimismSentence(f.auc_in_sample, f.auc_out_of_fold)}.`,
    `Cohen's d of tem_fused: ${fixed3(f.cohens_d_in_sample)} in-sample, ${fixed3(f.cohens_d_out_of_fold)} out of fold ` +
      `(95 % CI ${formatInterval(f.cohens_d_out_of_fold_ci)}).`,
    `Per channel, out-of-fold AUC: ${channels.join(", ")}.`,
    permutationSentence(summary),
    tunedFusionSentence(summary),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Which encoder

/** The scores the sections after "Which encoder" use, and where they come from. */
export interface BeyondRun {
  run: ScoreRun;
  /** Encoder spec (lib/backbones.ts) of the run. */
  spec: string;
  /** True when no second encoder was needed: the main run's scores are reused as they are. */
  reusedMainRun: boolean;
  /** Why this encoder (lib/backbones.ts defaultBackboneForValidation's reason). */
  reason: string;
}

/**
 * Scores the main run's cells with the chosen encoder through the pipeline's scorePairs, with the main run's
 * anchors and fusion unless `options` says otherwise. When the choice is resnet18 (the method's weights, or the
 * fallback with whatever weights there are) the main run already holds those scores and is returned as it is.
 */
export async function scoreBeyondRun(
  mainRun: ScoreRun, choice: DefaultBackbone, options: ScoreOptions = {},
): Promise<BeyondRun> {
  if (choice.spec === RESNET18_SPEC) return { run: mainRun, spec: choice.spec, reusedMainRun: true, reason: choice.reason };
  // The backbone opens with its own engine: a TF.js model runs on tfjs whatever engine the main run used.
  const encoders = await openBackbonePair(choice.spec, { log: options.log });
  try {
    const run = await scorePairs(mainRun.dataset, encoders, {
      ...options, anchors: options.anchors ?? mainRun.anchors, fusion: options.fusion ?? mainRun.scores.fusion,
    });
    return { run, spec: choice.spec, reusedMainRun: false, reason: choice.reason };
  } finally {
    await closeEncoders(encoders);
  }
}

/** Which encoder the following sections use, why, and whether anything was embedded again. */
export function describeBeyondRun(beyond: BeyondRun): string {
  const { run } = beyond;
  const info = run.encoders.actin;
  const { n, dim, cached } = run.embeddings.actin;
  const method = info.weights.verified ? "This IS the method's encoder." :
    "This is NOT the method's ResNet18 with ImageNet weights: every output below names it and carries the warning.";
  const fromCache = cached > 0 ? ` (${cached} of ${n} per channel read from the embedding cache of an earlier run)` : "";
  const embedded = beyond.reusedMainRun
    ? "Nothing was embedded again: the sections below reuse the scores of sections 8-15."
    : `Both channels of the ${n} cells were embedded with it${fromCache}, then scored by the same scorePairs as the main run.`;
  return [
    `Encoder for the sections below: ${encoderLabel(info)}`,
    `  spec ${beyond.spec}; ${dim} numbers per image; input ${info.input ?? "as the engine feeds it"}`,
    `Why: ${beyond.reason}.`,
    method,
    embedded,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Backbone comparison

/** The method's resnet18 (as the main run scored it) and, when it differs, the encoder of the beyond run. */
export function comparisonSpecs(beyond: Pick<BeyondRun, "spec">): string[] {
  return beyond.spec === RESNET18_SPEC ? [RESNET18_SPEC] : [RESNET18_SPEC, beyond.spec];
}

/** What is compared, or why only one encoder could be run. */
export function describeComparisonScope(beyond: Pick<BeyondRun, "spec" | "reason">): string {
  return beyond.spec === RESNET18_SPEC
    ? `One encoder only, so there is nothing to compare it with: ${beyond.reason}.`
    : `resnet18 (the main run's weights) against ${beyond.spec}: ${beyond.reason}.`;
}

const triple = (values: Record<ScoreName, number>): string => SCORE_NAMES.map((name) => fixed3(values[name])).join(" / ");

/** One metric per row, one encoder per column (two columns read better than two ten-column rows). */
export function comparisonTable(result: CompareResult): TableOutput {
  const { encoders } = result;
  const columns = ["", ...encoders.map((e, i) => `#${i} ${e.label}`)];
  const row = (what: string, cell: (e: EncoderComparison) => string): string[] => [what, ...encoders.map(cell)];
  const meanRows = encoders[0].condition_means.map((c, k) => row(`mean tem_fused, ${c.condition} (n=${c.n}): in-sample / out-of-fold`,
    (e) => `${fixed3(e.condition_means[k].mean_in_sample)} / ${fixed3(e.condition_means[k].mean_out_of_fold)}`));
  const rows = [
    row("engine (backend); input", (e) => `${e.info.engine} (${e.info.backend}); ${e.info.input ?? "?"}`),
    row("AUC in-sample: actin / nucleus / fused", (e) => triple(e.auc_in_sample)),
    row("AUC out-of-fold: actin / nucleus / fused", (e) => triple(e.auc_out_of_fold)),
    row("AUC out-of-fold, tuned fusion", (e) => fixed3(e.auc_out_of_fold_tuned_fusion)),
    ...meanRows,
    row("conditions by mean tem_fused, low to high", (e) => e.condition_order.join(" < ")),
    ...(result.latent_condition_only_spearman === null ? []
      : [row("Spearman with the latent state: actin / nucleus / fused", (e) => triple(e.spearman_latent!))]),
    row("images embedded for this comparison (0: all from the cache)", (e) => String(e.timing.images_embedded)),
  ];
  const caption = `The same ${result.cells.length} cells by each encoder (anchors ${result.anchors.join(" vs ")}, ` +
    `fusion ${result.fusion.join("/")}, ${result.folds}-fold out-of-fold)`;
  // Without HTML, the comparison's own text tables say the same.
  return { html: tableHtml(columns, rows, caption), text: formatComparison(result) };
}

/** The comparison in sentences: agreement between encoders, condition order, AUC, latent state, cache use. */
export function explainComparison(result: CompareResult): string[] {
  const { encoders } = result;
  const agreement = result.agreement.map((g) => `${encoders[g.a].label} and ${encoders[g.b].label} rank the cells ` +
    `with Spearman ${fixed3(g.spearman)} (1 = the same order, 0 = unrelated; Pearson ${fixed3(g.pearson)}).`);
  const orders = new Set(encoders.map((e) => e.condition_order.join(" < ")));
  const order = orders.size === 1
    ? `${encoders.length > 1 ? "Every encoder puts" : "It puts"} the conditions in the order ${[...orders][0]} (mean tem_fused).`
    : `The encoders order the conditions differently: ${encoders.map((e) => `#${encoders.indexOf(e)} ${e.condition_order.join(" < ")}`).join("; ")}.`;
  const auc = `Out-of-fold AUC of tem_fused: ${encoders.map((e, i) => `#${i} ${fixed3(e.auc_out_of_fold.tem_fused)}`).join(", ")}.`;
  const baseline = result.latent_condition_only_spearman;
  const latent = baseline === null ? [] : [
    `Spearman of tem_fused with the known latent EMT state: ${encoders.map((e, i) => `#${i} ${fixed3(e.spearman_latent!.tem_fused)}`).join(", ")}; ` +
    `a score that knew only each cell's condition would reach ${fixed3(baseline)}. Above that, a score sees ` +
    "differences between cells of the same condition.",
  ];
  const embedded = encoders.reduce((sum, e) => sum + e.timing.images_embedded, 0);
  const cache = embedded === 0
    ? "No image was embedded for this comparison: every embedding came from the cache the runs above filled."
    : `${embedded} images were embedded for this comparison (the others came from the cache).`;
  return [...agreement, order, auc, ...latent, cache];
}

/** Where an encoder sits in a comparison; an Error listing the specs when it is not there. */
export function encoderIndex(result: CompareResult, spec: string): number {
  const index = result.encoders.findIndex((e) => e.spec === spec);
  if (index < 0) throw new Error(`encoder ${spec} is not in the comparison (${result.encoders.map((e) => e.spec).join(", ")})`);
  return index;
}

// ---------------------------------------------------------------------------------------------------------------
// 4.-6. Morphometrics, embedding map, gallery

/** sample_id -> one score of a run, as lib/morphology.ts takes it. */
export function scoresBySample(rows: readonly ScoreRow[], score: ScoreName = "tem_fused"): Map<string, number> {
  return new Map(rows.map((row) => [row.sample_id, row[score]]));
}

/** The feature with the strongest defined correlation (featureScoreCorrelation lists the strongest first). */
export function strongestFeature(correlations: readonly FeatureCorrelation[]): FeatureName {
  const strongest = correlations.find((c) => c.spearman !== null);
  if (!strongest) {
    throw new Error(`no morphology feature has a defined correlation with the score (${FEATURE_NAMES.join(", ")})`);
  }
  return strongest.feature;
}

/** One channel's PCA map of a run: its L2-normalised embeddings, its TEM axis, its score on hover. */
export function runEmbeddingMap(run: ScoreRun, channel: "actin" | "nucleus"): PlotlyFigure {
  const { vectors, n, dim } = run.embeddings[channel];
  const scoreName: ScoreName = channel === "actin" ? "tem_actin" : "tem_nucleus";
  return embeddingMap({
    // The axis was fitted on L2-normalised embeddings: the map must show the same points.
    unitEmbeddings: l2Normalize(vectors, n, dim).unit,
    n, d: dim,
    conditions: run.rows.map((r) => r.condition),
    sampleIds: run.rows.map((r) => r.sample_id),
    scores: run.scores[scoreName],
    axis: run.scores.axes[channel],
  }, { channel, scoreName, warning: run.warning, conditionOrder: run.dataset.conditions });
}

export const GALLERY_FILE = "gallery.png";

/** scoreGallery of a run (20 cells by default), written atomically to `<outDir>/gallery.png`. */
export async function saveGallery(
  run: Pick<ScoreRun, "rows" | "scored">, outDir: string, options: GalleryOptions = {},
): Promise<{ file: string; gallery: Gallery }> {
  const gallery = await scoreGallery(run.rows, run.scored, { n: 20, ...options });
  const file = path.join(outDir, GALLERY_FILE);
  writeFileAtomic(file, gallery.png);
  return { file, gallery };
}

// ---------------------------------------------------------------------------------------------------------------
// 7. The latent state of synthetic data

export const TRUTH_FILE = "truth.csv";

/** The latent EMT state per cell from truth.csv beside the data (the synthetic set writes it), or null. */
export function datasetTruth(dataset: Pick<CelltoolDataset, "root" | "source">): { file: string; truth: Map<string, number> } | null {
  const folders = [dataset.root, dataset.source].filter((f) => fs.existsSync(f) && fs.statSync(f).isDirectory());
  const file = folders.map((f) => path.join(f, TRUTH_FILE)).find((f) => fs.existsSync(f));
  return file === undefined ? null : { file, truth: truthBySample(readTruth(file)) };
}

/** Each cell's latent state; an Error naming the first cells truth.csv does not cover. */
function latentOf(rows: readonly ScoreRow[], truth: ReadonlyMap<string, number>): number[] {
  const missing = rows.filter((r) => !truth.has(r.sample_id)).map((r) => r.sample_id);
  if (missing.length > 0) {
    throw new Error(`${TRUTH_FILE} has no latent state for ${missing.length} scored cell(s): ${missing.slice(0, 5).join(", ")}`);
  }
  return rows.map((r) => truth.get(r.sample_id)!);
}

/** tem_fused against the latent EMT state, one point per cell coloured by condition. */
export function latentScatter(run: ScoreRun, truth: ReadonlyMap<string, number>): PlotlyFigure {
  const latent = latentOf(run.rows, truth);
  const rho = spearman(run.rows.map((r) => r.tem_fused), latent);
  return scatter(run.rows.map((r, i) => ({ sample_id: r.sample_id, condition: r.condition, x: latent[i], y: r.tem_fused })), {
    title: `tem_fused against the latent EMT state the cells were drawn from (Spearman ${fixed3(rho)})`,
    warning: run.warning,
    xTitle: "latent EMT state (truth.csv)",
    yTitle: "tem_fused",
    conditionOrder: run.dataset.conditions,
  });
}

export const LATENT_COLUMNS = ["score", "cells", "Spearman with the latent state"] as const;

/** One encoder's agreement with the latent state: each score, the condition-only baseline, and within conditions. */
export function latentTable(result: CompareResult, index: number): TableOutput {
  const e = result.encoders[index];
  if (e === undefined || e.spearman_latent === null || e.spearman_latent_within === null || result.latent_condition_only_spearman === null) {
    throw new Error(`latentTable: encoder ${index} of the comparison has no latent-state agreement (was truth given?)`);
  }
  const n = result.cells.length;
  const rows: unknown[][] = [
    ...SCORE_NAMES.map((name) => [name, n, e.spearman_latent![name]]),
    ["baseline: only the cell's condition", n, result.latent_condition_only_spearman],
    ...e.spearman_latent_within.map((w) => [`tem_fused within ${w.condition}`, w.n, w.spearman ?? "undefined (< 3 cells or constant)"]),
  ];
  return table(LATENT_COLUMNS, rows, `Agreement with the latent EMT state: ${e.label}`);
}

/** latentTable's numbers in words: the score against the condition-only baseline, then within conditions. */
export function explainLatent(result: CompareResult, index: number): string[] {
  const e = result.encoders[index];
  const baseline = result.latent_condition_only_spearman;
  if (e === undefined || e.spearman_latent === null || e.spearman_latent_within === null || baseline === null) {
    throw new Error(`explainLatent: encoder ${index} of the comparison has no latent-state agreement (was truth given?)`);
  }
  const rho = e.spearman_latent.tem_fused;
  const versus = rho > baseline
    ? "above it, so the score also orders cells within a condition"
    : "not above it, so the score does no better than telling the conditions apart";
  const defined = e.spearman_latent_within.filter((w): w is { condition: string; n: number; spearman: number } => w.spearman !== null);
  const within = defined.length === 0 ? "No condition has enough cells for a correlation within it."
    : `Within each condition: ${defined.map((w) => `${w.condition} ${fixed3(w.spearman)} (n=${w.n})`).join(", ")}; ` +
      "0 would mean that, inside a condition, the score is unrelated to how far each cell went.";
  return [
    `tem_fused ranks the cells like their latent EMT state with Spearman ${fixed3(rho)}; knowing only each cell's ` +
      `condition gives ${fixed3(baseline)}: ${versus}.`,
    within,
  ];
}
