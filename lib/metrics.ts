// Validation statistics for TEM scores: do the anchors separate, and where do the other conditions fall?
// Each function reproduces the numpy/scipy/sklearn/pandas definition named in its comment (checked against them in
// test/metrics.test.ts). Results are JSON-able: a statistic that is undefined (std of one cell, a t-test with a
// one-cell group) is null with a note, never NaN; invalid input throws an Error saying what is wrong.
import * as ss from "simple-statistics";
import ttest2 from "@stdlib/stats-ttest2";
import { percentile } from "./axis";

export const SCORE_NAMES = ["tem_actin", "tem_nucleus", "tem_fused"] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];

/** pandas Series.describe() for one condition. std uses ddof=1 and is null for a single cell (pandas: NaN). */
export interface ConditionStats {
  condition: string;
  n: number;
  mean: number;
  std: number | null;
  median: number;
  q25: number;
  q75: number;
  min: number;
  max: number;
}

export interface WelchResult {
  t: number;
  df: number;
  p: number;
}

/** One Welch test between two conditions; t > 0 when a scores higher. Null statistics come with a note. */
export interface PairwiseWelch {
  a: string;
  b: string;
  n_a: number;
  n_b: number;
  t: number | null;
  df: number | null;
  p: number | null;
  note?: string;
}

export interface BetweenAnchors {
  /** True when there is at least one intermediate condition and every one lies strictly between the anchors. */
  ok: boolean;
  details: { condition: string; mean: number; between: boolean }[];
}

export interface ScoreMetrics {
  auc: number;
  cohens_d: number;
  welch_anchor: WelchResult;
  overlap: number;
  by_condition: ConditionStats[];
  pairwise_welch: PairwiseWelch[];
  between_anchors: BetweenAnchors;
}

export interface TemMetrics {
  n_cells: number;
  anchors: { epithelial: string; mesenchymal: string };
  conditions: string[];
  conventions: Record<string, string>;
  scores: Record<ScoreName, ScoreMetrics>;
  correlation_actin_nucleus: { pearson: number; spearman: number };
}

function finiteArray(values: ArrayLike<number>, what: string): number[] {
  const out = Array.from(values);
  out.forEach((x, i) => {
    if (!Number.isFinite(x)) throw new Error(`${what}: non-finite value ${x} at index ${i}`);
  });
  return out;
}

function sameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} values vs ${b.length}`);
}

/** Distinct conditions in order of first appearance. */
export function conditionOrder(conditions: readonly string[]): string[] {
  return [...new Set(conditions)];
}

/**
 * Scores grouped by condition, in the given order (default: first appearance). Every condition with cells must be in
 * the order; conditions of the order without cells (e.g. an empty folder) are left out: no statistic exists for them.
 */
export function groupByCondition(
  scores: ArrayLike<number>, conditions: readonly string[], order: readonly string[] = conditionOrder(conditions),
): Map<string, number[]> {
  sameLength(scores, conditions, "groupByCondition (scores vs conditions)");
  const values = finiteArray(scores, "groupByCondition");
  const groups = new Map<string, number[]>(order.map((c) => [c, []]));
  conditions.forEach((c, i) => {
    const group = groups.get(c);
    if (!group) throw new Error(`groupByCondition: condition "${c}" is not in the order [${order.join(", ")}]`);
    group.push(values[i]);
  });
  return new Map([...groups].filter(([, group]) => group.length > 0));
}

function describe(condition: string, values: number[]): ConditionStats {
  return {
    condition,
    n: values.length,
    mean: ss.mean(values),
    std: values.length > 1 ? Math.sqrt(ss.sampleVariance(values)) : null,
    median: percentile(values, 50),
    q25: percentile(values, 25),
    q75: percentile(values, 75),
    min: ss.min(values),
    max: ss.max(values),
  };
}

/** pandas groupby(condition).describe(): count, mean, std (ddof=1), quartiles (numpy 'linear'), min, max. */
export function describeByCondition(
  scores: ArrayLike<number>, conditions: readonly string[], order?: readonly string[],
): ConditionStats[] {
  return [...groupByCondition(scores, conditions, order)].map(([c, values]) => describe(c, values));
}

/** Average ranks (1-based), ties sharing the mean of their positions: scipy.stats.rankdata(method='average'). */
export function midranks(values: readonly number[]): Float64Array {
  const order = values.map((_, i) => i).sort((i, j) => values[i] - values[j]);
  const ranks = new Float64Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    const rank = (start + 1 + end) / 2; // mean of positions start+1 .. end
    for (let k = start; k < end; k++) ranks[order[k]] = rank;
    start = end;
  }
  return ranks;
}

/**
 * sklearn.metrics.roc_auc_score(labels01, scores): the Mann-Whitney U of the positives over n1*n0, ties counted
 * half through midranks (the same area as sklearn's trapezoidal ROC curve).
 */
export function rocAuc(scores: ArrayLike<number>, labels01: ArrayLike<number>): number {
  sameLength(scores, labels01, "rocAuc (scores vs labels)");
  const values = finiteArray(scores, "rocAuc");
  const labels = Array.from(labels01);
  labels.forEach((y, i) => {
    if (y !== 0 && y !== 1) throw new Error(`rocAuc: label ${y} at index ${i} is not 0 or 1`);
  });
  const nPos = labels.filter((y) => y === 1).length;
  const nNeg = labels.length - nPos;
  if (nPos === 0 || nNeg === 0) throw new Error(`rocAuc: needs both classes, got ${nPos} positive, ${nNeg} negative`);
  const ranks = midranks(values);
  const positiveRankSum = labels.reduce((sum, y, i) => sum + (y === 1 ? ranks[i] : 0), 0);
  return (positiveRankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * Two-sided Welch t-test, scipy.stats.ttest_ind(a, b, equal_var=False); t > 0 when mean(a) > mean(b).
 * Computed by @stdlib/stats-ttest2 (Welch by default; p from the regularised incomplete beta, accurate for tiny p).
 */
export function welchTTest(a: ArrayLike<number>, b: ArrayLike<number>): WelchResult {
  const x = finiteArray(a, "welchTTest (a)");
  const y = finiteArray(b, "welchTTest (b)");
  if (x.length < 2 || y.length < 2) {
    throw new Error(`welchTTest: each group needs at least 2 values, got ${x.length} and ${y.length}`);
  }
  if (ss.sampleVariance(x) === 0 && ss.sampleVariance(y) === 0) {
    throw new Error("welchTTest: both groups are constant: the t statistic is undefined");
  }
  const result = ttest2(x, y);
  return { t: result.statistic, df: result.df, p: result.pValue };
}

/** Welch tests for every pair of conditions (i < j in the order); undefined pairs get null and a note. */
export function pairwiseWelch(
  scores: ArrayLike<number>, conditions: readonly string[], order?: readonly string[],
): PairwiseWelch[] {
  return welchPairs(groupByCondition(scores, conditions, order));
}

function welchPairs(groups: ReadonlyMap<string, number[]>): PairwiseWelch[] {
  const entries = [...groups];
  return entries.flatMap(([a, x], i) => entries.slice(i + 1).map(([b, y]): PairwiseWelch => {
    const base = { a, b, n_a: x.length, n_b: y.length };
    try {
      return { ...base, ...welchTTest(x, y) };
    } catch (err) {
      return { ...base, t: null, df: null, p: null, note: (err as Error).message };
    }
  }));
}

/** Cohen's d = (mean(b) - mean(a)) / pooled SD (ddof=1): positive when b scores higher. */
export function cohensD(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = finiteArray(a, "cohensD (a)");
  const y = finiteArray(b, "cohensD (b)");
  if (x.length === 0 || y.length === 0 || x.length + y.length < 3) {
    throw new Error(`cohensD: needs a non-empty group each and 3 values in all, got ${x.length} and ${y.length}`);
  }
  const sumSquares = (v: number[]) => ss.sumNthPowerDeviations(v, 2);
  const pooled = Math.sqrt((sumSquares(x) + sumSquares(y)) / (x.length + y.length - 2));
  if (pooled === 0) throw new Error("cohensD: both groups are constant: the pooled SD is 0");
  return (ss.mean(y) - ss.mean(x)) / pooled;
}

/** Bin edges of numpy.histogram(bins, range): numpy.linspace, i.e. i * step + lo, with the last edge exactly hi. */
function histogramEdges(bins: number, lo: number, hi: number): Float64Array {
  const step = (hi - lo) / bins;
  const edges = Float64Array.from({ length: bins + 1 }, (_, i) => i * step + lo);
  edges[bins] = hi;
  return edges;
}

export interface Histogram {
  /** bins + 1 edges, numpy.linspace(lo, hi, bins + 1). */
  edges: number[];
  counts: number[];
  /** count / bin width / number of values in range, as numpy.histogram(density=True). */
  density: number[];
}

/**
 * numpy.histogram(values, bins, range, density=True), reproducing numpy's bin assignment exactly: values outside the
 * range are dropped, the last bin is closed, and the index is corrected against the edges within 1 ulp. (Plotly's
 * own binning drops values equal to the last edge, so figures use this too: every score clipped at 1 is counted.)
 */
export function histogram(
  values: ArrayLike<number>, bins: number, range: readonly [number, number] = [0, 1],
): Histogram {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`histogram: bins must be a positive integer, got ${bins}`);
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) throw new Error(`histogram: bad range [${lo}, ${hi}]`);
  const edges = histogramEdges(bins, lo, hi);
  const norm = bins / (hi - lo);
  const counts = new Array<number>(bins).fill(0);
  let total = 0;
  for (const x of finiteArray(values, "histogram")) {
    if (x < lo || x > hi) continue;
    let index = Math.trunc((x - lo) * norm);
    if (index === bins) index -= 1;
    if (x < edges[index]) index -= 1;
    if (x >= edges[index + 1] && index !== bins - 1) index += 1;
    counts[index] += 1;
    total += 1;
  }
  if (total === 0) throw new Error(`histogram: no value lies in the range [${lo}, ${hi}]`);
  return {
    edges: Array.from(edges),
    counts,
    density: counts.map((count, i) => count / (edges[i + 1] - edges[i]) / total),
  };
}

/**
 * Overlap of two distributions: sum over bins of min(density_a, density_b) * bin width, with numpy.histogram
 * densities. 1 = identical histograms, 0 = disjoint. Values outside the range are ignored, as numpy does.
 */
export function overlap(
  a: ArrayLike<number>, b: ArrayLike<number>, bins = 200, range: readonly [number, number] = [0, 1],
): number {
  const ha = histogram(a, bins, range);
  const hb = histogram(b, bins, range);
  let sum = 0;
  for (let i = 0; i < bins; i++) sum += Math.min(ha.density[i], hb.density[i]) * (ha.edges[i + 1] - ha.edges[i]);
  return sum;
}

/** Pearson's r as scipy.stats.pearsonr computes it: dot of the centred, unit-normalised vectors, clipped to [-1, 1]. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  sameLength(x, y, "pearson (x vs y)");
  const xs = finiteArray(x, "pearson (x)");
  const ys = finiteArray(y, "pearson (y)");
  if (xs.length < 2) throw new Error(`pearson: needs at least 2 pairs, got ${xs.length}`);
  const centred = (v: number[]) => {
    const m = ss.mean(v);
    return v.map((value) => value - m);
  };
  const [xm, ym] = [centred(xs), centred(ys)];
  const norm = (v: number[]) => Math.sqrt(v.reduce((sum, value) => sum + value * value, 0));
  const [nx, ny] = [norm(xm), norm(ym)];
  if (nx === 0 || ny === 0) throw new Error("pearson: an input is constant: the correlation is undefined");
  const r = xm.reduce((sum, value, i) => sum + (value / nx) * (ym[i] / ny), 0);
  return Math.max(-1, Math.min(1, r));
}

/** Spearman's rho = Pearson's r of the average ranks (scipy.stats.spearmanr). */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  sameLength(x, y, "spearman (x vs y)");
  return pearson(midranks(finiteArray(x, "spearman (x)")), midranks(finiteArray(y, "spearman (y)")));
}

/** Does every non-anchor condition's mean lie strictly between the two anchors' means (in either direction)? */
export function intermediatesBetweenAnchors(
  stats: readonly ConditionStats[], anchors: readonly [string, string],
): BetweenAnchors {
  const meanOf = (name: string) => {
    const found = stats.find((s) => s.condition === name);
    if (!found) throw new Error(`intermediatesBetweenAnchors: anchor "${name}" is not among the conditions`);
    return found.mean;
  };
  const [e, m] = anchors.map(meanOf);
  const [low, high] = [Math.min(e, m), Math.max(e, m)];
  const details = stats
    .filter((s) => !anchors.includes(s.condition))
    .map((s) => ({ condition: s.condition, mean: s.mean, between: s.mean > low && s.mean < high }));
  return { ok: details.length > 0 && details.every((d) => d.between), details };
}

export interface TemMetricsInput {
  scores: Record<ScoreName, ArrayLike<number>>;
  /** One condition name per cell. */
  conditions: readonly string[];
  /** [epithelial, mesenchymal] anchor condition names. */
  anchors: readonly [string, string];
  /** Condition order for tables and pairwise tests (default: first appearance); conditions without cells are left out. */
  order?: readonly string[];
  overlapBins?: number;
}

function scoreMetrics(
  scores: ArrayLike<number>, conditions: readonly string[], anchors: readonly [string, string],
  order: readonly string[], overlapBins: number,
): ScoreMetrics {
  const groups = groupByCondition(scores, conditions, order);
  const [epi, mes] = anchors.map((name) => {
    const group = groups.get(name);
    if (!group) throw new Error(`temMetrics: anchor condition "${name}" has no cells`);
    return group;
  });
  const by_condition = [...groups].map(([c, values]) => describe(c, values));
  return {
    auc: rocAuc([...epi, ...mes], [...epi.map(() => 0), ...mes.map(() => 1)]),
    cohens_d: cohensD(epi, mes),
    welch_anchor: welchTTest(mes, epi),
    overlap: overlap(epi, mes, overlapBins),
    by_condition,
    pairwise_welch: welchPairs(groups),
    between_anchors: intermediatesBetweenAnchors(by_condition, anchors),
  };
}

/** Everything metrics.json holds, for the three TEM scores. */
export function temMetrics(input: TemMetricsInput): TemMetrics {
  const { scores, conditions, anchors } = input;
  const present = new Set(conditions);
  const order = (input.order ?? conditionOrder(conditions)).filter((c) => present.has(c));
  const overlapBins = input.overlapBins ?? 200;
  const [epithelial, mesenchymal] = anchors;
  const perScore = Object.fromEntries(SCORE_NAMES.map((name) => {
    if (!scores[name]) throw new Error(`temMetrics: missing scores "${name}"`);
    return [name, scoreMetrics(scores[name], conditions, anchors, order, overlapBins)];
  })) as Record<ScoreName, ScoreMetrics>;
  return {
    n_cells: conditions.length,
    anchors: { epithelial, mesenchymal },
    conditions: order,
    conventions: {
      auc: `ROC-AUC of ${mesenchymal} (positive) vs ${epithelial}; 1 = mesenchymal cells always score higher`,
      cohens_d: `(mean ${mesenchymal} - mean ${epithelial}) / pooled SD (ddof=1)`,
      welch_anchor: `Welch t-test ${mesenchymal} vs ${epithelial}, two-sided; t > 0 when ${mesenchymal} is higher`,
      overlap: `sum of min(density) * bin width over ${overlapBins} bins on [0, 1] (numpy.histogram density)`,
      pairwise_welch: "t > 0 when condition a scores higher than b; null with a note when undefined",
      std: "sample SD (ddof=1); null for a one-cell condition",
    },
    scores: perScore,
    correlation_actin_nucleus: {
      pearson: pearson(scores.tem_actin, scores.tem_nucleus),
      spearman: spearman(scores.tem_actin, scores.tem_nucleus),
    },
  };
}
