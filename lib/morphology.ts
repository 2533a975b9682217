// Classical morphometrics of each cell, measured on its own images at native resolution, to show which visible
// traits the TEM score tracks. Segmentation is Otsu's threshold (skimage.filters.threshold_otsu on integer
// images), then the largest 8-connected object (skimage.measure.label), then its holes filled
// (scipy.ndimage.binary_fill_holes): crops may hold pieces of neighbours, and an epithelial cell's cortical actin
// ring would otherwise leave its dim interior out of the mask. The measures themselves are lib/morphometrics.ts's.
// Checked against skimage/scipy/numpy by scripts/reference/morphology_reference.py.
import type { CellPair } from "./dataset";
import { pearson, spearman } from "./metrics";
import {
  type Mask, area, aspectRatio, circularity, orientationCoherence, perimeter, solidity, thresholdMask,
} from "./morphometrics";
import { type FigureOptions, type PlotlyFigure, bar, scatter } from "./plots";
import { type GreyImage, decodeGrey } from "./preprocess";

// ---------------------------------------------------------------------------------------------------------------
// Features

export const FEATURE_NAMES = [
  "cell_area", "cell_perimeter", "cell_aspect_ratio", "cell_circularity", "cell_solidity",
  "nucleus_area", "nucleus_aspect_ratio", "actin_coherence",
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Plain-language names for figures and text. */
export const FEATURE_LABELS: Readonly<Record<FeatureName, string>> = {
  cell_area: "cell area",
  cell_perimeter: "cell perimeter",
  cell_aspect_ratio: "cell aspect ratio",
  cell_circularity: "cell circularity",
  cell_solidity: "cell solidity",
  nucleus_area: "nucleus area",
  nucleus_aspect_ratio: "nucleus aspect ratio",
  actin_coherence: "actin orientation coherence",
};

/**
 * One cell's measures (areas and perimeter in pixels of its own image). A measure that cannot be taken (no
 * foreground after thresholding, a one-pixel-wide mask) is null and `reason` says why; it is never NaN.
 */
export type CellFeatures = { sample_id: string; condition: string; reason: string | null } &
  Record<FeatureName, number | null>;

type CellMeasures = Pick<CellFeatures, "cell_area" | "cell_perimeter" | "cell_aspect_ratio" | "cell_circularity" |
  "cell_solidity" | "actin_coherence">;
type NucleusMeasures = Pick<CellFeatures, "nucleus_area" | "nucleus_aspect_ratio">;

// ---------------------------------------------------------------------------------------------------------------
// Segmentation

function checkGreyLevels(pixels: ArrayLike<number>): void {
  if (pixels.length === 0) throw new Error("otsuThreshold: the image has no pixels");
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    if (!(Number.isInteger(v) && v >= 0 && v <= 65535)) {
      throw new Error(`otsuThreshold: pixel ${i} is ${v}; expected integer grey levels in 0..65535`);
    }
  }
}

/**
 * skimage.filters.threshold_otsu for integer images: one histogram bin per grey level from the image's minimum to
 * its maximum, the level maximising the between-class variance (the first on a tie); foreground is > threshold.
 * A flat image returns its one level, so its mask is empty. The arithmetic follows skimage's order (integer
 * cumulative sums, then one division and product each), so the chosen level is the same even on near-ties.
 */
export function otsuThreshold(pixels: ArrayLike<number>): number {
  checkGreyLevels(pixels);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pixels.length; i++) {
    min = Math.min(min, pixels[i]);
    max = Math.max(max, pixels[i]);
  }
  if (min === max) return min;
  const bins = max - min + 1;
  const counts = new Float64Array(bins);
  for (let i = 0; i < pixels.length; i++) counts[pixels[i] - min]++;
  // Class 1 = levels <= t, class 2 = levels > t; below/above[k] are the count and grey sum up to bin k / from bin k.
  const belowCount = new Float64Array(bins);
  const belowSum = new Float64Array(bins);
  const aboveCount = new Float64Array(bins);
  const aboveSum = new Float64Array(bins);
  for (let k = 0, n = 0, s = 0; k < bins; k++) {
    n += counts[k];
    s += counts[k] * (min + k);
    belowCount[k] = n;
    belowSum[k] = s;
  }
  for (let k = bins - 1, n = 0, s = 0; k >= 0; k--) {
    n += counts[k];
    s += counts[k] * (min + k);
    aboveCount[k] = n;
    aboveSum[k] = s;
  }
  let best = 0;
  let bestVariance = -Infinity;
  for (let k = 0; k < bins - 1; k++) {
    const meanGap = belowSum[k] / belowCount[k] - aboveSum[k + 1] / aboveCount[k + 1];
    const variance = belowCount[k] * aboveCount[k + 1] * meanGap ** 2;
    if (variance > bestVariance) {
      bestVariance = variance;
      best = k;
    }
  }
  return min + best;
}

const EIGHT_NEIGHBOURS: readonly (readonly [number, number])[] = [
  [-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1],
];
const FOUR_NEIGHBOURS: readonly (readonly [number, number])[] = [[0, -1], [-1, 0], [1, 0], [0, 1]];

/** Pixels reachable from `seeds` through pixels where `passable` holds, stepping to the given neighbours. */
function floodFill(
  width: number, height: number, seeds: Iterable<number>, passable: (index: number) => boolean,
  neighbours: readonly (readonly [number, number])[],
): Uint8Array {
  const reached = new Uint8Array(width * height);
  const stack: number[] = [];
  for (const seed of seeds) {
    if (!reached[seed] && passable(seed)) {
      reached[seed] = 1;
      stack.push(seed);
    }
  }
  while (stack.length > 0) {
    const index = stack.pop()!;
    const x = index % width;
    const y = (index - x) / width;
    for (const [dx, dy] of neighbours) {
      const nx = x + dx;
      const ny = y + dy;
      if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
      const next = ny * width + nx;
      if (!reached[next] && passable(next)) {
        reached[next] = 1;
        stack.push(next);
      }
    }
  }
  return reached;
}

/**
 * The largest 8-connected object of the mask (skimage.measure.label's default connectivity for 2-D); on a tie
 * the one met first in row-major order, as numpy.argmax over skimage's labels picks it. An empty mask stays empty.
 */
export function largestComponent(mask: Mask): Mask {
  const { width, height, data } = mask;
  const seen = new Uint8Array(data.length);
  let best: Uint8Array | null = null;
  let bestSize = 0;
  for (let start = 0; start < data.length; start++) {
    if (!data[start] || seen[start]) continue;
    const component = floodFill(width, height, [start], (i) => data[i] !== 0, EIGHT_NEIGHBOURS);
    let size = 0;
    for (let i = 0; i < component.length; i++) {
      if (!component[i]) continue;
      seen[i] = 1;
      size++;
    }
    if (size > bestSize) {
      best = component;
      bestSize = size;
    }
  }
  return { width, height, data: best ?? new Uint8Array(data.length) };
}

/**
 * scipy.ndimage.binary_fill_holes: background not 4-connected to the image border becomes foreground (the
 * 4-connected background is the complement that matches an 8-connected object).
 */
export function fillHoles(mask: Mask): Mask {
  const { width, height, data } = mask;
  const border: number[] = [];
  for (let x = 0; x < width; x++) border.push(x, (height - 1) * width + x);
  for (let y = 0; y < height; y++) border.push(y * width, y * width + width - 1);
  const outside = floodFill(width, height, border, (i) => data[i] === 0, FOUR_NEIGHBOURS);
  return { width, height, data: outside.map((o) => (o ? 0 : 1)) };
}

/** The object mask of one channel: Otsu threshold, largest object, holes filled. Empty when the image is flat. */
export function objectMask(image: Pick<GreyImage, "width" | "height" | "data">): Mask {
  const threshold = otsuThreshold(image.data);
  return fillHoles(largestComponent(thresholdMask(image.data, image.width, image.height, threshold)));
}

const isEmpty = (mask: Mask): boolean => !mask.data.some((v) => v !== 0);

// ---------------------------------------------------------------------------------------------------------------
// Measuring one cell

/** Major over minor moment axis, or null (and why) for a mask with no width. */
function measuredAspectRatio(mask: Mask, channel: string, reasons: string[]): number | null {
  const ratio = aspectRatio(mask);
  if (Number.isFinite(ratio)) return ratio;
  reasons.push(`${channel} mask is one pixel wide: aspect ratio undefined`);
  return null;
}

function measureActin(actin: GreyImage, reasons: string[]): CellMeasures {
  const mask = objectMask(actin);
  if (isEmpty(mask)) {
    reasons.push("actin image is flat: Otsu's threshold leaves no foreground");
    return {
      cell_area: null, cell_perimeter: null, cell_aspect_ratio: null, cell_circularity: null, cell_solidity: null,
      actin_coherence: null,
    };
  }
  return {
    cell_area: area(mask),
    cell_perimeter: perimeter(mask),
    cell_aspect_ratio: measuredAspectRatio(mask, "actin", reasons),
    cell_circularity: circularity(mask),
    cell_solidity: solidity(mask),
    actin_coherence: orientationCoherence(actin.data, actin.width, actin.height, mask),
  };
}

function measureNucleus(nucleus: GreyImage, reasons: string[]): NucleusMeasures {
  const mask = objectMask(nucleus);
  if (isEmpty(mask)) {
    reasons.push("nucleus image is flat: Otsu's threshold leaves no foreground");
    return { nucleus_area: null, nucleus_aspect_ratio: null };
  }
  return { nucleus_area: area(mask), nucleus_aspect_ratio: measuredAspectRatio(mask, "nucleus", reasons) };
}

/** Every feature of one cell from its decoded images; the two channels are segmented independently. */
export function measureCell(
  sample: { sample_id: string; condition: string }, actin: GreyImage, nucleus: GreyImage,
): CellFeatures {
  const reasons: string[] = [];
  const cell = measureActin(actin, reasons);
  const nuclear = measureNucleus(nucleus, reasons);
  return { sample_id: sample.sample_id, condition: sample.condition, ...cell, ...nuclear,
    reason: reasons.length > 0 ? reasons.join("; ") : null };
}

/** Every feature of one cell, read from its actin and nucleus files at native resolution. */
export async function cellMorphology(pair: CellPair): Promise<CellFeatures> {
  // decodeGrey names the file in its errors.
  const [actin, nucleus] = await Promise.all([decodeGrey(pair.actinPath), decodeGrey(pair.nucleusPath)]);
  return measureCell({ sample_id: pair.sampleId, condition: pair.condition }, actin, nucleus);
}

export interface MorphologyTableOptions {
  /** Cells decoded and measured at once (default 4): bounds memory on large sets. */
  concurrency?: number;
}

/** `task` over every item, at most `limit` in flight, results in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** cellMorphology for every pair, in the pairs' order. */
export async function morphologyTable(
  pairs: readonly CellPair[], options: MorphologyTableOptions = {},
): Promise<CellFeatures[]> {
  const concurrency = options.concurrency ?? 4;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new Error(`morphologyTable: concurrency must be a positive integer, got ${concurrency}`);
  }
  return mapLimited(pairs, concurrency, cellMorphology);
}

// ---------------------------------------------------------------------------------------------------------------
// Which features track the score

export interface FeatureCorrelation {
  feature: FeatureName;
  /** null when fewer than 3 cells have both values or either side is constant: no correlation is defined. */
  spearman: number | null;
  pearson: number | null;
  /** Cells with both a value of this feature and a score. */
  n: number;
}

/** Fewer points than this make any correlation +-1 or undefined. */
const MIN_CORRELATION_CELLS = 3;

const isConstant = (values: readonly number[]): boolean => values.every((v) => v === values[0]);

/**
 * Spearman and Pearson correlation of every feature with the score, matched by sample_id (cells without a score
 * or without the feature are left out, and `n` counts the rest), strongest |Spearman| first.
 */
export function featureScoreCorrelation(
  rows: readonly CellFeatures[], scores: ReadonlyMap<string, number>,
): FeatureCorrelation[] {
  for (const [sampleId, score] of scores) {
    if (!Number.isFinite(score)) throw new Error(`featureScoreCorrelation: sample ${sampleId} has score ${score}`);
  }
  const correlations = FEATURE_NAMES.map((feature): FeatureCorrelation => {
    const x: number[] = [];
    const y: number[] = [];
    for (const row of rows) {
      const value = row[feature];
      const score = scores.get(row.sample_id);
      if (value === null || score === undefined) continue;
      x.push(value);
      y.push(score);
    }
    const defined = x.length >= MIN_CORRELATION_CELLS && !isConstant(x) && !isConstant(y);
    return {
      feature,
      spearman: defined ? spearman(x, y) : null,
      pearson: defined ? pearson(x, y) : null,
      n: x.length,
    };
  });
  const strength = (c: FeatureCorrelation): number => (c.spearman === null ? -1 : Math.abs(c.spearman));
  return correlations.sort((a, b) => strength(b) - strength(a));
}

export interface MorphologyFigureOptions extends FigureOptions {
  /** The score's name in titles, e.g. "tem_fused". */
  scoreName?: string;
}

const POSITIVE_COLOUR = "#d62728";
const NEGATIVE_COLOUR = "#1f77b4";

/** Bars of Spearman's rho per feature (red: rises with the score, blue: falls), strongest first. */
export function morphologyFigure(
  correlations: readonly FeatureCorrelation[], options: MorphologyFigureOptions = {},
): PlotlyFigure {
  const scoreName = options.scoreName ?? "tem_fused";
  const defined = correlations.filter((c): c is FeatureCorrelation & { spearman: number } => c.spearman !== null);
  if (defined.length === 0) throw new Error("morphologyFigure: no feature has a defined correlation with the score");
  const fig = bar(defined.map((c) => FEATURE_LABELS[c.feature]), defined.map((c) => c.spearman), {
    title: options.title ?? `Morphology features vs ${scoreName} (Spearman's rho)`,
    warning: options.warning,
    yTitle: `Spearman's rho with ${scoreName}`,
    yRange: [-1.1, 1.1],
  });
  const [trace] = fig.data;
  const colours = defined.map((c) => (c.spearman >= 0 ? POSITIVE_COLOUR : NEGATIVE_COLOUR));
  return { ...fig, data: [{ ...trace, marker: { color: colours }, customdata: defined.map((c) => c.n),
    hovertemplate: "%{x}: rho %{y:.3f} (n=%{customdata})<extra></extra>" }] };
}

/** One feature against the score, a point per cell coloured by condition (cells lacking either are left out). */
export function featureScatter(
  rows: readonly CellFeatures[], scores: ReadonlyMap<string, number>, feature: FeatureName,
  options: MorphologyFigureOptions = {},
): PlotlyFigure {
  const scoreName = options.scoreName ?? "tem_fused";
  const points = rows.flatMap((row) => {
    const x = row[feature];
    const y = scores.get(row.sample_id);
    return x === null || y === undefined ? [] : [{ sample_id: row.sample_id, condition: row.condition, x, y }];
  });
  if (points.length === 0) throw new Error(`featureScatter: no cell has both ${feature} and a ${scoreName} score`);
  const fig = scatter(points, {
    title: options.title ?? `${FEATURE_LABELS[feature]} vs ${scoreName}`,
    warning: options.warning,
    xTitle: FEATURE_LABELS[feature],
    yTitle: scoreName,
  });
  // scatter() gives both axes the score's [0, 1] range; a feature has its own units, so let plotly fit x.
  const { range: _scoreRange, ...xaxis } = fig.layout.xaxis as Record<string, unknown>;
  return { ...fig, layout: { ...fig.layout, xaxis: { ...xaxis, autorange: true } } };
}

// ---------------------------------------------------------------------------------------------------------------
// In words

/** Conventional bands for |rho|, strongest first. */
const STRENGTH_BANDS: readonly { min: number; word: string }[] = [
  { min: 0.5, word: "strongly" },
  { min: 0.3, word: "moderately" },
  { min: 0.1, word: "weakly" },
];

function trackingSentence(c: FeatureCorrelation & { spearman: number }, scoreName: string): string {
  const rho = `rho = ${c.spearman >= 0 ? "+" : ""}${c.spearman.toFixed(2)}, n = ${c.n}`;
  const band = STRENGTH_BANDS.find((b) => Math.abs(c.spearman) >= b.min);
  if (!band) return `${FEATURE_LABELS[c.feature]} does not track ${scoreName} (${rho}).`;
  const direction = c.spearman > 0 ? `rises with ${scoreName}` : `falls as ${scoreName} rises`;
  return `${FEATURE_LABELS[c.feature]} ${band.word} ${direction} (${rho}).`;
}

/**
 * Which features track the score, in plain language: one line per feature with sign and strength
 * (|rho| >= 0.5 strong, 0.3-0.5 moderate, 0.1-0.3 weak, below 0.1 none), strongest first.
 */
export function describeTracking(correlations: readonly FeatureCorrelation[], scoreName = "tem_fused"): string {
  const defined = correlations
    .filter((c): c is FeatureCorrelation & { spearman: number } => c.spearman !== null)
    .sort((a, b) => Math.abs(b.spearman) - Math.abs(a.spearman));
  const undefinedOnes = correlations.filter((c) => c.spearman === null);
  const lines = [
    `How cell morphology tracks ${scoreName} (Spearman's rho; |rho| >= 0.5 strong, 0.3-0.5 moderate, ` +
    "0.1-0.3 weak, below 0.1 none):",
    ...defined.map((c) => `- ${trackingSentence(c, scoreName)}`),
  ];
  if (undefinedOnes.length > 0) {
    lines.push(`- Not computable (fewer than ${MIN_CORRELATION_CELLS} measured cells, or constant values): ` +
      `${undefinedOnes.map((c) => `${FEATURE_LABELS[c.feature]} (n = ${c.n})`).join(", ")}.`);
  }
  const strong = defined.filter((c) => Math.abs(c.spearman) >= STRENGTH_BANDS[0].min);
  lines.push(strong.length > 0
    ? `In short: ${scoreName} follows ${strong.map((c) => FEATURE_LABELS[c.feature]).join(", ")} most closely.`
    : `In short: no feature tracks ${scoreName} strongly; the score is not a proxy for any single one of them.`);
  return lines.join("\n");
}
