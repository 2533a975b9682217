// Honest validation of the TEM scores, beyond the reference's in-sample numbers:
//  - out-of-fold (OOF) scores: each anchor cell is scored on an axis (anchor means AND scaling percentiles) built
//    without its fold; non-anchor cells, which never define the axis, keep the full axis;
//  - fusion weights tuned by nested cross-validation, never on the cells they are evaluated on;
//  - stratified bootstrap confidence intervals and a permutation p-value that rebuilds the axis every time.
// The building blocks of lib/axis.ts and lib/metrics.ts do the arithmetic; this module only decides which cells
// feed which step. Randomness comes from one seeded Rng per procedure, so a seed reproduces every number.
import {
  AxisInfo, Embeddings, fuse, l2Normalize, percentile, project, robustScale, scaleBetween, temAxis, TemInput,
} from "./axis";
import { cohensD, conditionOrder, rocAuc, SCORE_NAMES, ScoreName } from "./metrics";
import { resampled, shuffled } from "./random";
import { Rng } from "./synthDraw";

export const CHANNELS = ["actin", "nucleus"] as const;
export type Channel = (typeof CHANNELS)[number];

/** The actin weights tried when tuning the fusion: 0, 0.05, ..., 1 (i / 20 exactly, so other tools match). */
export const DEFAULT_WEIGHT_GRID: readonly number[] = Array.from({ length: 21 }, (_, i) => i / 20);

/** Fold of a cell that belongs to neither anchor: it is never held out and never excluded. */
export const NOT_IN_A_FOLD = -1;

/** What scoreTem takes (embeddings, conditions, anchors, fusion), plus the robust-scaling percentiles. */
export interface ValidationInput extends TemInput {
  /** Robust-scaling percentiles; default [1, 99]. */
  percentiles?: readonly [number, number];
}

export interface ValidationOptions {
  /** Number of folds (>= 3: the nested tuning needs two folds left out at once); default 5. */
  folds?: number;
  /** An explicit fold per cell (NOT_IN_A_FOLD for non-anchor cells) instead of a seeded stratified assignment. */
  foldOf?: ArrayLike<number>;
  /** Seed of the fold shuffle, the bootstrap and the permutations; default 0. */
  seed?: number;
  /** Bootstrap resamples; default 1000. 0 skips the intervals. */
  bootstrap?: number;
  /** Label permutations; default 1000. 0 skips the test. */
  permutations?: number;
  /** Confidence level of the intervals; default 0.95. */
  confidence?: number;
  /** Actin weights tried when tuning the fusion; default DEFAULT_WEIGHT_GRID. */
  weightGrid?: readonly number[];
}

/** Anchor rows by class: the cells of the epithelial and of the mesenchymal condition. */
export interface AnchorRows {
  epithelial: number[];
  mesenchymal: number[];
}

/** One channel's L2-normalised embeddings, normalised once and shared by every axis built from them. */
interface UnitChannel {
  unit: Float64Array;
  n: number;
  d: number;
}

/** Everything the procedures share: validated once in prepare(). */
interface Prepared {
  channels: Record<Channel, UnitChannel>;
  conditions: readonly string[];
  names: { epithelial: string; mesenchymal: string };
  anchorRows: AnchorRows;
  fusion: [number, number];
  percentiles: [number, number];
}

/** An axis built from some cells, and every cell's score on it. */
interface ScoredAxis {
  axis: AxisInfo;
  scores: Float64Array;
}

/** Which cells built the axes that scored one fold's held-out anchors. */
export interface FoldAxes {
  fold: number;
  /** Anchor rows of this fold: scored by these axes, and used by none of them. */
  heldOut: number[];
  /** Anchor rows whose mean embeddings define the axes. */
  axisRows: AnchorRows;
  /** Rows (anchors of the other folds and every non-anchor cell) whose projections set p_lo and p_hi. */
  scalingRows: number[];
  axes: Record<Channel, AxisInfo>;
}

export interface OutOfFold {
  /** Fold per cell; NOT_IN_A_FOLD for non-anchor cells. */
  foldOf: Int32Array;
  k: number;
  /** Scores and axes from all anchors (what scoreTem computes). */
  inSample: Record<Channel, ScoredAxis>;
  /** Anchor cells: their fold's axis; other cells: the full axis. */
  scores: Record<Channel, Float64Array>;
  folds: FoldAxes[];
}

export interface TunedFold {
  fold: number;
  /** Actin weight chosen on the other folds, applied to this fold. */
  actinWeight: number;
  /** AUC of that weight on the inner out-of-fold scores of the other folds. */
  innerAuc: number;
  /** Anchor rows whose inner scores chose the weight: never this fold's. */
  tuningRows: number[];
}

export interface TunedFusion {
  folds: TunedFold[];
  /** Anchor cells: fused with their fold's tuned weight; other cells: full-axis scores with the deployed weight. */
  scores: Float64Array;
  /** The weight chosen on every anchor's out-of-fold scores: the one to use on new data. */
  deployedWeight: number;
  deployedInnerAuc: number;
}

export type Interval = [number, number];

export interface BootstrapInterval {
  ci: Interval | null;
  /** Resamples where the statistic was undefined (e.g. a resampled group with no spread for Cohen's d). */
  undefined_resamples: number;
  /** Why, from the first such resample. */
  note?: string;
}

export interface PermutationResult {
  n_permutations: number;
  observed: Record<ScoreName, number>;
  p: Record<ScoreName, number>;
  null_mean: Record<ScoreName, number>;
}

export interface ConditionMean {
  condition: string;
  n: number;
  mean: number;
  ci: Interval | null;
}

export interface ScoreValidation {
  auc_in_sample: number;
  auc_out_of_fold: number;
  auc_out_of_fold_ci: Interval | null;
  cohens_d_in_sample: number;
  cohens_d_out_of_fold: number;
  cohens_d_out_of_fold_ci: Interval | null;
  /** Permutation p-value of the out-of-fold AUC, the cross-validation rerun for every permutation; null if skipped. */
  permutation_p: number | null;
  /** Means of the out-of-fold scores per condition, with bootstrap intervals. */
  condition_means_out_of_fold: ConditionMean[];
}

export interface ValidationSummary {
  conventions: Record<string, string>;
  settings: {
    folds: number; seed: number; bootstrap: number; permutations: number; confidence: number;
    fusion: [number, number]; percentiles: [number, number]; weight_grid: number[];
  };
  n_cells: number;
  anchors: { epithelial: string; mesenchymal: string; n_epithelial: number; n_mesenchymal: number };
  folds: {
    fold: number; n_epithelial: number; n_mesenchymal: number;
    auc: Record<ScoreName, number>; tuned_actin_weight: number; tuned_inner_auc: number;
  }[];
  scores: Record<ScoreName, ScoreValidation>;
  tuned_fusion: {
    actin_weights: number[];
    auc_out_of_fold: number;
    auc_out_of_fold_ci: Interval | null;
    deployed_actin_weight: number;
    deployed_inner_auc: number;
  };
  permutation: PermutationResult | null;
}

export interface OutOfFoldColumns {
  tem_actin_oof: Float64Array;
  tem_nucleus_oof: Float64Array;
  tem_fused_oof: Float64Array;
  tem_fused_tuned_oof: Float64Array;
  /** The fold of each anchor cell, NOT_IN_A_FOLD (-1) for the others. */
  oof_fold: Int32Array;
}

export interface Validation {
  /** JSON-able: metrics.json's "validation" key. */
  summary: ValidationSummary;
  /** One value per cell, for the scores table. */
  columns: OutOfFoldColumns;
}

// --- input checks and shared preparation ------------------------------------------------------------------------

function anchorRowsOf(conditions: readonly string[], anchors: readonly [string, string]): AnchorRows {
  const [epithelial, mesenchymal] = anchors;
  if (epithelial === mesenchymal) throw new Error(`validation: both anchors are "${epithelial}"`);
  const rowsOf = (name: string) => conditions.flatMap((c, i) => (c === name ? [i] : []));
  return { epithelial: rowsOf(epithelial), mesenchymal: rowsOf(mesenchymal) };
}

function prepare(input: ValidationInput): Prepared {
  const { actin, nucleus, conditions, anchors } = input;
  if (actin.n !== nucleus.n) throw new Error(`validation: ${actin.n} actin embeddings but ${nucleus.n} nucleus ones`);
  if (conditions.length !== actin.n) {
    throw new Error(`validation: ${conditions.length} conditions for ${actin.n} cells`);
  }
  const unitOf = (e: Embeddings): UnitChannel => ({ unit: l2Normalize(e.emb, e.n, e.d).unit, n: e.n, d: e.d });
  const anchorRows = anchorRowsOf(conditions, anchors);
  for (const [name, rows] of [[anchors[0], anchorRows.epithelial], [anchors[1], anchorRows.mesenchymal]] as const) {
    if (rows.length === 0) {
      throw new Error(`validation: anchor condition "${name}" has no cells ` +
        `(conditions present: ${conditionOrder(conditions).join(", ")})`);
    }
  }
  const fusion = input.fusion ?? [0.5, 0.5];
  const percentiles = input.percentiles ?? [1, 99];
  return {
    channels: { actin: unitOf(actin), nucleus: unitOf(nucleus) },
    conditions,
    names: { epithelial: anchors[0], mesenchymal: anchors[1] },
    anchorRows,
    fusion: [fusion[0], fusion[1]],
    percentiles: [percentiles[0], percentiles[1]],
  };
}

/**
 * Stratified k-fold assignment of the anchor cells: each anchor's rows are shuffled (seeded) and dealt round-robin,
 * one counter running across both anchors, so every fold gets floor or ceil of each anchor's share and the folds'
 * sizes differ by at most one. Non-anchor cells get NOT_IN_A_FOLD.
 */
export function assignFolds(
  conditions: readonly string[], anchors: readonly [string, string], k = 5, seed = 0,
): Int32Array {
  if (!Number.isInteger(k) || k < 2) throw new Error(`assignFolds: k must be an integer >= 2, got ${k}`);
  return dealFolds(anchorRowsOf(conditions, anchors), conditions.length, k, new Rng(seed));
}

function dealFolds(rows: AnchorRows, n: number, k: number, rng: Rng): Int32Array {
  const foldOf = new Int32Array(n).fill(NOT_IN_A_FOLD);
  let dealt = 0;
  for (const anchorRows of [rows.epithelial, rows.mesenchymal]) {
    for (const row of shuffled(anchorRows, rng)) foldOf[row] = dealt++ % k;
  }
  return foldOf;
}

/**
 * Check a fold assignment and count its folds. Every fold must hold both anchors (its AUC exists), and leaving
 * any two folds out must keep 2 cells of each anchor (the nested tuning builds axes from the remaining folds).
 */
function checkedFolds(foldOf: ArrayLike<number>, prep: Prepared): { foldOf: Int32Array; k: number } {
  const { anchorRows, names } = prep;
  const n = foldOf.length;
  if (n !== prep.conditions.length) throw new Error(`folds: ${n} folds given for ${prep.conditions.length} cells`);
  const isAnchor = new Uint8Array(n);
  for (const row of [...anchorRows.epithelial, ...anchorRows.mesenchymal]) isAnchor[row] = 1;
  let k = 0;
  for (let row = 0; row < n; row++) {
    const fold = foldOf[row];
    if (!isAnchor[row]) {
      if (fold !== NOT_IN_A_FOLD) throw new Error(`folds: row ${row} is not an anchor cell but is in fold ${fold}`);
    } else if (!Number.isInteger(fold) || fold < 0) {
      throw new Error(`folds: anchor row ${row} has fold ${fold}; anchor cells need a fold 0, 1, ...`);
    } else {
      k = Math.max(k, fold + 1);
    }
  }
  if (k < 3) throw new Error(`folds: need at least 3 folds (nested tuning leaves 2 out at once), got ${k}`);
  const anchors = [[names.epithelial, anchorRows.epithelial], [names.mesenchymal, anchorRows.mesenchymal]] as const;
  for (const [name, rows] of anchors) {
    const perFold = new Array<number>(k).fill(0);
    for (const row of rows) perFold[foldOf[row]]++;
    const empty = perFold.indexOf(0);
    if (empty >= 0) {
      throw new Error(`folds: fold ${empty} has no "${name}" cell (${rows.length} cells for ${k} folds); ` +
        "use fewer folds");
    }
    const [largest, second] = [...perFold].sort((a, b) => b - a);
    if (rows.length - largest - second < 2) {
      throw new Error(`folds: leaving two folds out keeps ${rows.length - largest - second} "${name}" cell(s) of ` +
        `${rows.length}; an axis needs 2. Use fewer folds or more cells`);
    }
  }
  return { foldOf: Int32Array.from(foldOf), k };
}

// --- axes built from a subset of the cells ----------------------------------------------------------------------

/**
 * One channel's axis from the anchor cells outside the excluded folds, its scaling percentiles from every cell
 * outside them, and every cell's score on it. With no fold excluded this is exactly scoreTem's axis.
 */
function axisWithout(
  channel: UnitChannel, prep: Prepared, foldOf: ArrayLike<number>, excluded: readonly number[],
): ScoredAxis & { axisRows: AnchorRows; scalingRows: number[] } {
  const { unit, n, d } = channel;
  const kept = (row: number) => !excluded.includes(foldOf[row]);
  const axisRows: AnchorRows = {
    epithelial: prep.anchorRows.epithelial.filter(kept),
    mesenchymal: prep.anchorRows.mesenchymal.filter(kept),
  };
  const scalingRows = Array.from({ length: n }, (_, row) => row).filter(kept);
  const axis = temAxis(unit, n, d, axisRows.epithelial, axisRows.mesenchymal);
  const projection = project(unit, n, d, axis);
  const [q_lo, q_hi] = prep.percentiles;
  const scalingValues = scalingRows.map((row) => projection[row]);
  const [p_lo, p_hi] = [percentile(scalingValues, q_lo), percentile(scalingValues, q_hi)];
  if (!(p_hi > p_lo)) {
    const cells = excluded.length === 0 ? "all cells" : `the cells outside fold(s) ${excluded.join(" and ")}`;
    throw new Error(`validation: the ${q_lo}th and ${q_hi}th percentiles of the projections of ${cells} are equal ` +
      `(${p_lo}): no scale`);
  }
  return {
    axis: {
      d, ...prep.names, nEpithelial: axis.nEpithelial, nMesenchymal: axis.nMesenchymal,
      muE: Array.from(axis.muE), muM: Array.from(axis.muM), v: Array.from(axis.v), vNorm: axis.vNorm,
      q_lo, q_hi, p_lo, p_hi,
    },
    scores: scaleBetween(projection, p_lo, p_hi),
    axisRows,
    scalingRows,
  };
}

function foldRows(foldOf: ArrayLike<number>, fold: number): number[] {
  return Array.from(foldOf).flatMap((f, row) => (f === fold ? [row] : []));
}

/** ROC-AUC of the mesenchymal rows (positive) against the epithelial rows, on the given scores. */
function anchorAuc(scores: ArrayLike<number>, rows: AnchorRows): number {
  const values = [...rows.epithelial, ...rows.mesenchymal].map((row) => scores[row]);
  return rocAuc(values, [...rows.epithelial.map(() => 0), ...rows.mesenchymal.map(() => 1)]);
}

function anchorCohensD(scores: ArrayLike<number>, rows: AnchorRows): number {
  return cohensD(rows.epithelial.map((row) => scores[row]), rows.mesenchymal.map((row) => scores[row]));
}

function restrict(rows: AnchorRows, keep: (row: number) => boolean): AnchorRows {
  return { epithelial: rows.epithelial.filter(keep), mesenchymal: rows.mesenchymal.filter(keep) };
}

function outOfFoldFrom(prep: Prepared, { foldOf, k }: { foldOf: Int32Array; k: number }): OutOfFold {
  const inSample = {
    actin: axisWithout(prep.channels.actin, prep, foldOf, []),
    nucleus: axisWithout(prep.channels.nucleus, prep, foldOf, []),
  };
  const scores = {
    actin: Float64Array.from(inSample.actin.scores),
    nucleus: Float64Array.from(inSample.nucleus.scores),
  };
  const folds = Array.from({ length: k }, (_, fold): FoldAxes => {
    const heldOut = foldRows(foldOf, fold);
    const built = {
      actin: axisWithout(prep.channels.actin, prep, foldOf, [fold]),
      nucleus: axisWithout(prep.channels.nucleus, prep, foldOf, [fold]),
    };
    for (const channel of CHANNELS) for (const row of heldOut) scores[channel][row] = built[channel].scores[row];
    return {
      fold, heldOut, axisRows: built.actin.axisRows, scalingRows: built.actin.scalingRows,
      axes: { actin: built.actin.axis, nucleus: built.nucleus.axis },
    };
  });
  return { foldOf, k, inSample, scores, folds };
}

/**
 * Out-of-fold scores for both channels. foldOf: one fold per cell (NOT_IN_A_FOLD for non-anchors), e.g. from
 * assignFolds; the returned folds list which rows built each fold's axes, so the no-leak property can be checked.
 */
export function outOfFoldScores(input: ValidationInput, foldOf: ArrayLike<number>): OutOfFold {
  const prep = prepare(input);
  return outOfFoldFrom(prep, checkedFolds(foldOf, prep));
}

// --- fusion weights chosen without peeking ----------------------------------------------------------------------

/**
 * The actin weight w of the grid whose fusion w*actin + (1-w)*nucleus has the highest anchor AUC on these rows.
 * Ties (common: AUC moves in steps of 1/(nE*nM)) go to the weight closest to 0.5, the untuned default, then to
 * the smaller weight, so the choice never depends on the grid's order.
 */
export function chooseActinWeight(
  actin: ArrayLike<number>, nucleus: ArrayLike<number>, rows: AnchorRows, grid: readonly number[] = DEFAULT_WEIGHT_GRID,
): { weight: number; auc: number } {
  checkGrid(grid);
  let best: { weight: number; auc: number } | null = null;
  for (const weight of grid) {
    const auc = anchorAuc(fuse(actin, nucleus, [weight, 1 - weight]), rows);
    const closerToEven = best !== null && (Math.abs(weight - 0.5) < Math.abs(best.weight - 0.5) ||
      (Math.abs(weight - 0.5) === Math.abs(best.weight - 0.5) && weight < best.weight));
    if (best === null || auc > best.auc || (auc === best.auc && closerToEven)) best = { weight, auc };
  }
  return best as { weight: number; auc: number };
}

function checkGrid(grid: readonly number[]): void {
  if (grid.length === 0) throw new Error("fusion weight grid is empty");
  for (const w of grid) {
    if (!(w >= 0 && w <= 1)) throw new Error(`fusion weight grid: ${w} is not in [0, 1]`);
  }
}

/**
 * Nested cross-validation of the fusion weight. For outer fold f, every other fold g is scored on axes built
 * without f and g (inner out-of-fold scores: in-sample scores on the training folds would reward whichever channel
 * overfits its 512 dimensions more); the weight that maximises their AUC is applied to fold f's outer scores.
 */
function tuneFusion(prep: Prepared, oof: OutOfFold, grid: readonly number[]): TunedFusion {
  const { foldOf, k } = oof;
  const folds = Array.from({ length: k }, (_, f): TunedFold => {
    const inner = { actin: new Float64Array(foldOf.length), nucleus: new Float64Array(foldOf.length) };
    for (let g = 0; g < k; g++) {
      if (g === f) continue;
      const rowsOfG = foldRows(foldOf, g);
      for (const channel of CHANNELS) {
        const { scores } = axisWithout(prep.channels[channel], prep, foldOf, [f, g]);
        for (const row of rowsOfG) inner[channel][row] = scores[row];
      }
    }
    const tuning = restrict(prep.anchorRows, (row) => foldOf[row] !== f);
    const { weight, auc } = chooseActinWeight(inner.actin, inner.nucleus, tuning, grid);
    return { fold: f, actinWeight: weight, innerAuc: auc, tuningRows: [...tuning.epithelial, ...tuning.mesenchymal] };
  });
  const deployed = chooseActinWeight(oof.scores.actin, oof.scores.nucleus, prep.anchorRows, grid);
  const scores = fuse(oof.scores.actin, oof.scores.nucleus, [deployed.weight, 1 - deployed.weight]);
  for (const { fold, actinWeight } of folds) {
    const fused = fuse(oof.scores.actin, oof.scores.nucleus, [actinWeight, 1 - actinWeight]);
    for (const row of foldRows(foldOf, fold)) scores[row] = fused[row];
  }
  return { folds, scores, deployedWeight: deployed.weight, deployedInnerAuc: deployed.auc };
}

/** Out-of-fold scores plus the nested-CV fusion: what validate() reports, without the resampling. */
export function crossValidate(
  input: ValidationInput, foldOf: ArrayLike<number>, grid: readonly number[] = DEFAULT_WEIGHT_GRID,
): { oof: OutOfFold; tuned: TunedFusion } {
  const prep = prepare(input);
  const oof = outOfFoldFrom(prep, checkedFolds(foldOf, prep));
  return { oof, tuned: tuneFusion(prep, oof, grid) };
}

// --- uncertainty --------------------------------------------------------------------------------------------------

/**
 * Percentile-method bootstrap intervals. Each resample draws, within every stratum (condition), as many rows as it
 * has, with replacement; each statistic maps the resampled strata to a number, or throws when it is undefined
 * there (the resample is then counted, not used).
 */
export function stratifiedBootstrap(
  strata: readonly (readonly number[])[],
  statistics: Record<string, (resample: readonly (readonly number[])[]) => number>,
  resamples: number, confidence: number, seed: number,
): Record<string, BootstrapInterval> {
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new Error(`bootstrap: resamples must be an integer >= 1, got ${resamples}`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new Error(`bootstrap: confidence must be in (0, 1), got ${confidence}`);
  }
  const rng = new Rng(seed);
  const names = Object.keys(statistics);
  const values: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  const notes: Record<string, string> = {};
  for (let r = 0; r < resamples; r++) {
    const resample = strata.map((rows) => resampled(rows, rng));
    for (const name of names) {
      try {
        values[name].push(statistics[name](resample));
      } catch (err) {
        notes[name] ??= (err as Error).message; // undefined on this resample: counted, and the reason kept
      }
    }
  }
  const tail = (100 * (1 - confidence)) / 2;
  return Object.fromEntries(names.map((name): [string, BootstrapInterval] => {
    const got = values[name];
    const ci: Interval | null = got.length === 0 ? null : [percentile(got, tail), percentile(got, 100 - tail)];
    const undefinedResamples = resamples - got.length;
    const interval: BootstrapInterval = { ci, undefined_resamples: undefinedResamples };
    if (undefinedResamples > 0) interval.note = notes[name];
    return [name, interval];
  }));
}

/**
 * Dot products of every cell with every anchor cell (n x nAnchors, row-major), for one channel. Computed once, they
 * turn each permuted axis's projections into sums of precomputed numbers instead of n x d dot products:
 * (z_i - muE).(muM - muE) = t_i - mean_{e in E} t_e, with t_i = mean_{a in M} G[i][a] - mean_{e in E} G[i][e].
 */
function anchorGram(channel: UnitChannel, anchorRows: readonly number[]): Float64Array {
  const { unit, n, d } = channel;
  const nA = anchorRows.length;
  const gram = new Float64Array(n * nA);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < nA; a++) {
      const [rowI, rowA] = [i * d, anchorRows[a] * d];
      let dot = 0;
      for (let j = 0; j < d; j++) dot += unit[rowI + j] * unit[rowA + j];
      gram[i * nA + a] = dot;
    }
  }
  return gram;
}

/** Per row i, the sum of G[i][a] over the anchor columns cols. */
function columnSums(gram: Float64Array, n: number, nA: number, cols: readonly number[]): Float64Array {
  const sums = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (const a of cols) sum += gram[i * nA + a];
    sums[i] = sum;
  }
  return sums;
}

/**
 * The out-of-fold anchor AUCs for a labelling of the anchor cells (label 1 = mesenchymal) and a fold per anchor
 * cell, from the Gram matrices: the same algorithm as outOfFoldFrom, reordered for speed. A fold's training sums
 * are the labelling's totals minus its held-out columns (a fifth of the work of summing the training columns).
 */
function gramOutOfFoldAuc(
  grams: Record<Channel, Float64Array>, prep: Prepared, anchorRows: readonly number[],
  labels: ArrayLike<number>, anchorFold: ArrayLike<number>, k: number,
): Record<ScoreName, number> {
  const n = prep.conditions.length;
  const nA = anchorRows.length;
  const cols = Array.from({ length: nA }, (_, a) => a);
  const [epiAll, mesAll] = [cols.filter((a) => labels[a] === 0), cols.filter((a) => labels[a] === 1)];
  const totals = Object.fromEntries(CHANNELS.map((channel) => [channel, {
    epi: columnSums(grams[channel], n, nA, epiAll), mes: columnSums(grams[channel], n, nA, mesAll),
  }])) as Record<Channel, { epi: Float64Array; mes: Float64Array }>;
  const oof = { actin: new Float64Array(nA), nucleus: new Float64Array(nA) };
  const heldOutRow = new Uint8Array(n);
  const [q_lo, q_hi] = prep.percentiles;
  for (let fold = 0; fold < k; fold++) {
    const heldOut = cols.filter((a) => anchorFold[a] === fold);
    const [heldEpi, heldMes] = [heldOut.filter((a) => labels[a] === 0), heldOut.filter((a) => labels[a] === 1)];
    const [nEpi, nMes] = [epiAll.length - heldEpi.length, mesAll.length - heldMes.length];
    heldOutRow.fill(0);
    for (const a of heldOut) heldOutRow[anchorRows[a]] = 1;
    for (const channel of CHANNELS) {
      const gram = grams[channel];
      const [outEpi, outMes] = [columnSums(gram, n, nA, heldEpi), columnSums(gram, n, nA, heldMes)];
      // t_i = z_i.v; the projection (z_i - muE).v is t_i - muE.v, and muE.v is the mean of t over E's rows.
      const t = totals[channel].mes.map((m, i) => (m - outMes[i]) / nMes - (totals[channel].epi[i] - outEpi[i]) / nEpi);
      let shift = 0;
      for (const a of epiAll) if (anchorFold[a] !== fold) shift += t[anchorRows[a]];
      shift /= nEpi;
      const scaling: number[] = [];
      for (let row = 0; row < n; row++) if (!heldOutRow[row]) scaling.push(t[row] - shift);
      const [p_lo, p_hi] = [percentile(scaling, q_lo), percentile(scaling, q_hi)];
      const scaled = scaleBetween(heldOut.map((a) => t[anchorRows[a]] - shift), p_lo, p_hi);
      heldOut.forEach((a, i) => { oof[channel][a] = scaled[i]; });
    }
  }
  const labelList = Array.from(labels);
  return {
    tem_actin: rocAuc(oof.actin, labelList),
    tem_nucleus: rocAuc(oof.nucleus, labelList),
    tem_fused: rocAuc(fuse(oof.actin, oof.nucleus, prep.fusion), labelList),
  };
}

/**
 * Permutation test of the anchor separation. The statistic is the out-of-fold AUC (an axis fitted to its own cells
 * separates even random labels in 512 dimensions, so the in-sample AUC would test nothing). Each permutation
 * shuffles the anchor labels among the anchor cells, deals new stratified folds for them and reruns the whole
 * cross-validation: axis means, scaling percentiles, fusion with the fixed weights.
 * p = (1 + #{permuted AUC >= observed}) / (1 + permutations), one-sided: the axis points towards the mesenchymal
 * anchor, so only a high AUC is evidence.
 */
export function permutationTest(
  input: ValidationInput, foldOf: ArrayLike<number>, permutations: number, seed: number,
): PermutationResult {
  const prep = prepare(input);
  return permutationFrom(prep, checkedFolds(foldOf, prep), permutations, seed);
}

function permutationFrom(
  prep: Prepared, { foldOf, k }: { foldOf: Int32Array; k: number }, permutations: number, seed: number,
): PermutationResult {
  if (!Number.isInteger(permutations) || permutations < 1) {
    throw new Error(`permutationTest: permutations must be >= 1, got ${permutations}`);
  }
  const anchorCells = [...prep.anchorRows.epithelial, ...prep.anchorRows.mesenchymal];
  const labels = [...prep.anchorRows.epithelial.map(() => 0), ...prep.anchorRows.mesenchymal.map(() => 1)];
  const grams = {
    actin: anchorGram(prep.channels.actin, anchorCells),
    nucleus: anchorGram(prep.channels.nucleus, anchorCells),
  };
  const observed = gramOutOfFoldAuc(grams, prep, anchorCells, labels, anchorCells.map((row) => foldOf[row]), k);
  const atLeast = { tem_actin: 0, tem_nucleus: 0, tem_fused: 0 };
  const nullSum = { tem_actin: 0, tem_nucleus: 0, tem_fused: 0 };
  const rng = new Rng(seed);
  const columns = anchorCells.map((_, a) => a);
  for (let i = 0; i < permutations; i++) {
    const permuted = shuffled(labels, rng);
    // Folds dealt over anchor columns (not cell rows): stratified by the permuted labels, as assignFolds would.
    const folds = dealFolds({
      epithelial: columns.filter((a) => permuted[a] === 0),
      mesenchymal: columns.filter((a) => permuted[a] === 1),
    }, columns.length, k, rng);
    const auc = gramOutOfFoldAuc(grams, prep, anchorCells, permuted, folds, k);
    for (const name of SCORE_NAMES) {
      if (auc[name] >= observed[name]) atLeast[name]++;
      nullSum[name] += auc[name];
    }
  }
  const perScore = (f: (name: ScoreName) => number) =>
    Object.fromEntries(SCORE_NAMES.map((name) => [name, f(name)])) as Record<ScoreName, number>;
  return {
    n_permutations: permutations,
    observed,
    p: perScore((name) => (1 + atLeast[name]) / (1 + permutations)),
    null_mean: perScore((name) => nullSum[name] / permutations),
  };
}

// --- the entry point ----------------------------------------------------------------------------------------------

/** Interval statistics of one score column: anchor AUC, Cohen's d and every condition's mean. */
function columnStatistics(
  name: string, scores: Float64Array, strata: readonly string[], epiIndex: number, mesIndex: number,
): Record<string, (resample: readonly (readonly number[])[]) => number> {
  const anchorsOf = (resample: readonly (readonly number[])[]): AnchorRows =>
    ({ epithelial: [...resample[epiIndex]], mesenchymal: [...resample[mesIndex]] });
  const mean = (rows: readonly number[]) => rows.reduce((sum, row) => sum + scores[row], 0) / rows.length;
  return {
    [`${name}/auc`]: (resample) => anchorAuc(scores, anchorsOf(resample)),
    [`${name}/cohens_d`]: (resample) => anchorCohensD(scores, anchorsOf(resample)),
    ...Object.fromEntries(strata.map((condition, i) => [`${name}/mean/${condition}`,
      (resample: readonly (readonly number[])[]) => mean(resample[i])])),
  };
}

/**
 * The whole validation: out-of-fold scores, nested-CV fusion, bootstrap intervals of the out-of-fold statistics
 * and the permutation test. Returns a JSON-able summary and the per-cell out-of-fold columns.
 */
export function validate(input: ValidationInput, options: ValidationOptions = {}): Validation {
  const seed = options.seed ?? 0;
  const bootstrap = options.bootstrap ?? 1000;
  const permutations = options.permutations ?? 1000;
  const confidence = options.confidence ?? 0.95;
  const grid = options.weightGrid ?? DEFAULT_WEIGHT_GRID;
  for (const [name, count] of [["bootstrap", bootstrap], ["permutations", permutations]] as const) {
    if (!Number.isInteger(count) || count < 0) {
      throw new Error(`validate: ${name} must be an integer >= 0, got ${count}`);
    }
  }
  const prep = prepare(input);
  const foldOf = options.foldOf ?? assignFolds(prep.conditions, [prep.names.epithelial, prep.names.mesenchymal],
    options.folds ?? 5, seed);
  const folds = checkedFolds(foldOf, prep);
  const oof = outOfFoldFrom(prep, folds);
  const tuned = tuneFusion(prep, oof, grid);

  const inSample: Record<ScoreName, Float64Array> = {
    tem_actin: oof.inSample.actin.scores,
    tem_nucleus: oof.inSample.nucleus.scores,
    tem_fused: fuse(oof.inSample.actin.scores, oof.inSample.nucleus.scores, prep.fusion),
  };
  const outOfFold: Record<ScoreName, Float64Array> = {
    tem_actin: oof.scores.actin,
    tem_nucleus: oof.scores.nucleus,
    tem_fused: fuse(oof.scores.actin, oof.scores.nucleus, prep.fusion),
  };

  const order = conditionOrder(prep.conditions);
  const strata = order.map((condition) => prep.conditions.flatMap((c, row) => (c === condition ? [row] : [])));
  const [epiIndex, mesIndex] = [order.indexOf(prep.names.epithelial), order.indexOf(prep.names.mesenchymal)];
  const columns: [string, Float64Array][] = [...SCORE_NAMES.map((name): [string, Float64Array] =>
    [name, outOfFold[name]]), ["tuned", tuned.scores]];
  const intervals = bootstrap > 0
    ? stratifiedBootstrap(strata, Object.assign({}, ...columns.map(([name, scores]) =>
      columnStatistics(name, scores, order, epiIndex, mesIndex))), bootstrap, confidence, seed)
    : {};
  const ciOf = (key: string) => intervals[key]?.ci ?? null;
  const permutation = permutations > 0 ? permutationFrom(prep, folds, permutations, seed) : null;

  const scores = Object.fromEntries(SCORE_NAMES.map((name): [ScoreName, ScoreValidation] => [name, {
    auc_in_sample: anchorAuc(inSample[name], prep.anchorRows),
    auc_out_of_fold: anchorAuc(outOfFold[name], prep.anchorRows),
    auc_out_of_fold_ci: ciOf(`${name}/auc`),
    cohens_d_in_sample: anchorCohensD(inSample[name], prep.anchorRows),
    cohens_d_out_of_fold: anchorCohensD(outOfFold[name], prep.anchorRows),
    cohens_d_out_of_fold_ci: ciOf(`${name}/cohens_d`),
    permutation_p: permutation ? permutation.p[name] : null,
    condition_means_out_of_fold: order.map((condition, i) => ({
      condition,
      n: strata[i].length,
      mean: strata[i].reduce((sum, row) => sum + outOfFold[name][row], 0) / strata[i].length,
      ci: ciOf(`${name}/mean/${condition}`),
    })),
  }])) as Record<ScoreName, ScoreValidation>;

  const { epithelial, mesenchymal } = prep.names;
  const summary: ValidationSummary = {
    conventions: {
      out_of_fold: `stratified ${oof.k}-fold over the anchor cells (${epithelial}, ${mesenchymal}); each anchor cell ` +
        `is scored on an axis whose anchor means and ${prep.percentiles.join("-")} % scaling percentiles come from ` +
        "the cells outside its fold (the percentiles over every non-held-out cell, anchors and others); non-anchor " +
        "cells use the full axis",
      in_sample: "the reference's numbers: the axis is built from the same cells it scores (optimistic)",
      tuned_fusion: "nested CV: for each outer fold, the actin weight in the grid maximising the AUC of the inner " +
        "out-of-fold scores of the other folds (axes built without the outer and the inner fold) is applied to the " +
        "outer fold; ties go to the weight closest to 0.5, then the smaller. deployed_actin_weight is chosen on all " +
        "anchors' out-of-fold scores and used for non-anchor cells in tem_fused_tuned_oof",
      intervals: `${Math.round(confidence * 1000) / 10} % percentile bootstrap, cells resampled within each ` +
        "condition, on the fixed out-of-fold scores (the axes are not refitted per resample, so axis-estimation " +
        "noise beyond the cross-validation is not included)",
      permutation: "statistic: the out-of-fold AUC. Anchor labels shuffled among the anchor cells, new stratified " +
        "folds dealt, axes, scaling and the fixed-weight fusion rebuilt for every permutation; " +
        "p = (1 + #{permuted AUC >= observed}) / (1 + permutations), one-sided",
      auc: `ROC-AUC of ${mesenchymal} (positive) vs ${epithelial}`,
      cohens_d: `(mean ${mesenchymal} - mean ${epithelial}) / pooled SD (ddof=1)`,
    },
    settings: {
      folds: oof.k, seed, bootstrap, permutations, confidence, fusion: prep.fusion, percentiles: prep.percentiles,
      weight_grid: [...grid],
    },
    n_cells: prep.conditions.length,
    anchors: {
      epithelial, mesenchymal,
      n_epithelial: prep.anchorRows.epithelial.length, n_mesenchymal: prep.anchorRows.mesenchymal.length,
    },
    folds: oof.folds.map(({ fold }) => {
      const rows = restrict(prep.anchorRows, (row) => oof.foldOf[row] === fold);
      const tunedFold = tuned.folds[fold];
      return {
        fold,
        n_epithelial: rows.epithelial.length,
        n_mesenchymal: rows.mesenchymal.length,
        auc: Object.fromEntries(SCORE_NAMES.map((name) => [name, anchorAuc(outOfFold[name], rows)])) as
          Record<ScoreName, number>,
        tuned_actin_weight: tunedFold.actinWeight,
        tuned_inner_auc: tunedFold.innerAuc,
      };
    }),
    scores,
    tuned_fusion: {
      actin_weights: tuned.folds.map((f) => f.actinWeight),
      auc_out_of_fold: anchorAuc(tuned.scores, prep.anchorRows),
      auc_out_of_fold_ci: ciOf("tuned/auc"),
      deployed_actin_weight: tuned.deployedWeight,
      deployed_inner_auc: tuned.deployedInnerAuc,
    },
    permutation,
  };
  return {
    summary,
    columns: {
      tem_actin_oof: outOfFold.tem_actin,
      tem_nucleus_oof: outOfFold.tem_nucleus,
      tem_fused_oof: outOfFold.tem_fused,
      tem_fused_tuned_oof: tuned.scores,
      oof_fold: oof.foldOf,
    },
  };
}
