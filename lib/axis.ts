// The TEM axis: from per-cell embeddings to a score in [0, 1].
// z = L2-normalised embedding; v = mean(mesenchymal anchor) - mean(epithelial anchor); s = (z - muE).v;
// the score is s robustly rescaled between its 1st and 99th percentile over all cells, then clipped.
// Everything here is pure and works in float64, whatever precision the encoder produced. No NaN or Infinity ever
// leaves this module: undefined cases (constant scores, identical anchors) throw an Error that says why.

/** A row-major n x d matrix of numbers, one embedding per row. */
export interface Embeddings {
  emb: Float32Array | Float64Array;
  n: number;
  d: number;
}

/** Rows of a matrix, given either as a boolean mask of length n or as a list of row indices. */
export type RowSelection = readonly boolean[] | readonly number[];

export interface Normalized {
  /** The L2-normalised rows, n x d. */
  unit: Float64Array;
  /**
   * Rows whose norm is 0 (e.g. an all-zero post-ReLU embedding of a blank image). They are left as zero vectors
   * rather than turned into NaN: they still project to a finite score, and callers can report them.
   */
  zeroRows: number[];
}

/** The axis between the two anchors' mean embeddings. */
export interface TemAxis {
  muE: Float64Array;
  muM: Float64Array;
  v: Float64Array;
  vNorm: number;
  nEpithelial: number;
  nMesenchymal: number;
}

/** Everything needed to score new cells on an existing axis; plain arrays so it can be saved as JSON. */
export interface AxisInfo {
  d: number;
  epithelial: string;
  mesenchymal: string;
  nEpithelial: number;
  nMesenchymal: number;
  muE: number[];
  muM: number[];
  v: number[];
  vNorm: number;
  /** The percentiles (in %) used for robust scaling, and their values on the cells that defined the axis. */
  q_lo: number;
  q_hi: number;
  p_lo: number;
  p_hi: number;
}

function checkMatrix(emb: ArrayLike<number>, n: number, d: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(d) || d < 1) {
    throw new Error(`${what}: n and d must be positive integers, got n=${n}, d=${d}`);
  }
  if (emb.length !== n * d) {
    throw new Error(`${what}: expected n*d = ${n}*${d} = ${n * d} values, got ${emb.length}`);
  }
  for (let i = 0; i < emb.length; i++) {
    if (!Number.isFinite(emb[i])) {
      throw new Error(`${what}: non-finite value ${emb[i]} at row ${Math.floor(i / d)}, column ${i % d}`);
    }
  }
}

function checkFinite(values: ArrayLike<number>, what: string): void {
  if (values.length === 0) throw new Error(`${what}: no values`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`${what}: non-finite value ${values[i]} at index ${i}`);
  }
}

/** Divide each row by its Euclidean norm (element-wise division, as numpy does). Zero rows stay zero. */
export function l2Normalize(emb: ArrayLike<number>, n: number, d: number): Normalized {
  checkMatrix(emb, n, d, "l2Normalize");
  const unit = new Float64Array(n * d);
  const zeroRows: number[] = [];
  for (let i = 0; i < n; i++) {
    let sumSq = 0;
    for (let j = 0; j < d; j++) sumSq += emb[i * d + j] * emb[i * d + j];
    const norm = Math.sqrt(sumSq);
    if (norm === 0) {
      zeroRows.push(i);
      continue;
    }
    for (let j = 0; j < d; j++) unit[i * d + j] = emb[i * d + j] / norm;
  }
  return { unit, zeroRows };
}

/** Turn a mask or an index list into sorted, distinct, in-range row indices. */
export function toRowIndices(selection: RowSelection, n: number, what: string): number[] {
  if (selection.length > 0 && typeof selection[0] === "boolean") {
    if (selection.length !== n) throw new Error(`${what}: mask has ${selection.length} entries for ${n} rows`);
    return (selection as readonly boolean[]).flatMap((selected, i) => (selected ? [i] : []));
  }
  const rows = [...new Set(selection as readonly number[])].sort((a, b) => a - b);
  for (const row of rows) {
    if (!Number.isInteger(row) || row < 0 || row >= n) throw new Error(`${what}: row ${row} is not in 0..${n - 1}`);
  }
  return rows;
}

function meanOfRows(z: ArrayLike<number>, d: number, rows: readonly number[]): Float64Array {
  const mean = new Float64Array(d);
  for (const row of rows) for (let j = 0; j < d; j++) mean[j] += z[row * d + j];
  for (let j = 0; j < d; j++) mean[j] /= rows.length;
  return mean;
}

function euclideanNorm(x: ArrayLike<number>): number {
  let sumSq = 0;
  for (let j = 0; j < x.length; j++) sumSq += x[j] * x[j];
  return Math.sqrt(sumSq);
}

/**
 * The axis from the epithelial anchor's mean embedding to the mesenchymal anchor's. z should be L2-normalised.
 * Throws when an anchor has fewer than 2 cells, when a cell is in both anchors, or when the means coincide.
 */
export function temAxis(
  z: ArrayLike<number>, n: number, d: number, epithelial: RowSelection, mesenchymal: RowSelection,
): TemAxis {
  checkMatrix(z, n, d, "temAxis");
  const epiRows = toRowIndices(epithelial, n, "temAxis epithelial anchor");
  const mesRows = toRowIndices(mesenchymal, n, "temAxis mesenchymal anchor");
  for (const [rows, name] of [[epiRows, "epithelial"], [mesRows, "mesenchymal"]] as const) {
    if (rows.length < 2) throw new Error(`temAxis: the ${name} anchor has ${rows.length} cell(s); it needs at least 2`);
  }
  const shared = epiRows.filter((row) => mesRows.includes(row));
  if (shared.length > 0) throw new Error(`temAxis: rows ${shared.join(", ")} are in both anchors`);

  const muE = meanOfRows(z, d, epiRows);
  const muM = meanOfRows(z, d, mesRows);
  const v = muM.map((m, j) => m - muE[j]);
  const vNorm = euclideanNorm(v);
  // Relative threshold: means of the same cells summed in another order differ by rounding, not by exactly 0.
  if (vNorm <= 1e-12 * Math.max(euclideanNorm(muE), euclideanNorm(muM))) {
    throw new Error("temAxis: the two anchors have identical mean embeddings: no axis");
  }
  return { muE, muM, v, vNorm, nEpithelial: epiRows.length, nMesenchymal: mesRows.length };
}

/** s_i = (z_i - muE) . v, with the plain (unnormalised) v: the robust scaling makes |v| irrelevant. */
export function project(
  z: ArrayLike<number>, n: number, d: number, axis: { muE: ArrayLike<number>; v: ArrayLike<number> },
): Float64Array {
  checkMatrix(z, n, d, "project");
  if (axis.muE.length !== d || axis.v.length !== d) {
    throw new Error(`project: the axis has dimension ${axis.v.length}, the embeddings ${d}`);
  }
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += (z[i * d + j] - axis.muE[j]) * axis.v[j];
    s[i] = dot;
  }
  return s;
}

/**
 * numpy.percentile(values, q) with its default 'linear' method, reproduced step by step (virtual index (n-1)*q/100,
 * and numpy's two-sided lerp) so that values landing exactly on p1 or p99 scale to exactly 0 or 1 as in numpy.
 * simple-statistics' quantileSorted uses the same interpolation but a one-sided lerp: equal only up to rounding.
 */
export function percentile(values: ArrayLike<number>, q: number): number {
  checkFinite(values, "percentile");
  if (!(q >= 0 && q <= 100)) throw new Error(`percentile: q must be in [0, 100], got ${q}`);
  const sorted = Float64Array.from(values).sort();
  const last = sorted.length - 1;
  const virtualIndex = last * (q / 100);
  if (virtualIndex >= last) return sorted[last];
  const below = Math.floor(virtualIndex);
  const gamma = virtualIndex - below;
  const a = sorted[below];
  const b = sorted[below + 1];
  const diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

/** Map p_lo -> 0 and p_hi -> 1, clipping outside. p_hi must exceed p_lo. */
export function scaleBetween(s: ArrayLike<number>, p_lo: number, p_hi: number): Float64Array {
  if (!(p_hi > p_lo)) throw new Error(`scaleBetween: need p_hi > p_lo, got p_lo=${p_lo}, p_hi=${p_hi}`);
  const range = p_hi - p_lo;
  return Float64Array.from(s, (x) => Math.min(1, Math.max(0, (x - p_lo) / range)));
}

/** clip((s - P_lo) / (P_hi - P_lo), 0, 1) with P the numpy percentiles of s itself. */
export function robustScale(s: ArrayLike<number>, lo = 1, hi = 99): { scaled: Float64Array; p_lo: number; p_hi: number } {
  if (!(lo >= 0 && lo < hi && hi <= 100)) throw new Error(`robustScale: need 0 <= lo < hi <= 100, got ${lo}, ${hi}`);
  const p_lo = percentile(s, lo);
  const p_hi = percentile(s, hi);
  if (p_hi === p_lo) {
    throw new Error(`robustScale: the ${lo}% and ${hi}% percentiles are equal (${p_lo}): the scores are constant ` +
      "over most cells, so they cannot be scaled to [0, 1]");
  }
  return { scaled: scaleBetween(s, p_lo, p_hi), p_lo, p_hi };
}

/** Weighted average of two per-cell scores; the weights are normalised to sum to 1. */
export function fuse(
  actin: ArrayLike<number>, nucleus: ArrayLike<number>, weights: readonly [number, number] = [0.5, 0.5],
): Float64Array {
  const [wa, wn] = weights;
  if (!Number.isFinite(wa) || !Number.isFinite(wn) || wa < 0 || wn < 0) {
    throw new Error(`fuse: weights must be finite and non-negative, got [${wa}, ${wn}]`);
  }
  if (wa + wn === 0) throw new Error("fuse: the weights are both 0");
  if (actin.length !== nucleus.length) {
    throw new Error(`fuse: ${actin.length} actin scores but ${nucleus.length} nucleus scores`);
  }
  const [fa, fn] = [wa / (wa + wn), wn / (wa + wn)];
  return Float64Array.from(actin, (a, i) => fa * a + fn * nucleus[i]);
}

/** Score cells on an axis built earlier: normalise, project, scale with the stored percentiles, clip. */
export function scoreWithAxis(z: Embeddings, axis: AxisInfo): { scores: Float64Array; zeroRows: number[] } {
  if (z.d !== axis.d) throw new Error(`scoreWithAxis: embeddings have ${z.d} dimensions, the axis ${axis.d}`);
  const { unit, zeroRows } = l2Normalize(z.emb, z.n, z.d);
  return { scores: scaleBetween(project(unit, z.n, z.d, axis), axis.p_lo, axis.p_hi), zeroRows };
}

/** Build one channel's axis from its own cells and score those cells on it. */
export function fitChannel(
  z: Embeddings, epithelial: RowSelection, mesenchymal: RowSelection, names: { epithelial: string; mesenchymal: string },
  percentiles: readonly [number, number] = [1, 99],
): { scores: Float64Array; axis: AxisInfo; zeroRows: number[] } {
  const { unit, zeroRows } = l2Normalize(z.emb, z.n, z.d);
  const axis = temAxis(unit, z.n, z.d, epithelial, mesenchymal);
  const [q_lo, q_hi] = percentiles;
  const { scaled, p_lo, p_hi } = robustScale(project(unit, z.n, z.d, axis), q_lo, q_hi);
  return {
    scores: scaled,
    zeroRows,
    axis: {
      d: z.d, ...names, nEpithelial: axis.nEpithelial, nMesenchymal: axis.nMesenchymal,
      muE: Array.from(axis.muE), muM: Array.from(axis.muM), v: Array.from(axis.v), vNorm: axis.vNorm,
      q_lo, q_hi, p_lo, p_hi,
    },
  };
}

export interface TemInput {
  actin: Embeddings;
  nucleus: Embeddings;
  /** One condition name per cell (row). */
  conditions: readonly string[];
  /** [epithelial anchor, mesenchymal anchor] condition names, e.g. ["Ctrl", "TNFTGF"]. */
  anchors: readonly [string, string];
  /** [actin, nucleus] fusion weights; normalised to sum 1. Default [0.5, 0.5]. */
  fusion?: readonly [number, number];
}

export interface TemScores {
  tem_actin: Float64Array;
  tem_nucleus: Float64Array;
  tem_fused: Float64Array;
  axes: { actin: AxisInfo; nucleus: AxisInfo };
  /** The fusion weights actually applied (normalised). */
  fusion: [number, number];
  /** Rows whose embedding was all zeros, per channel (see Normalized.zeroRows). */
  zeroRows: { actin: number[]; nucleus: number[] };
}

/** The whole method: one axis per channel from the anchor conditions, scores in [0, 1], and their fusion. */
export function scoreTem(input: TemInput): TemScores {
  const { actin, nucleus, conditions, anchors } = input;
  const fusion = input.fusion ?? [0.5, 0.5];
  if (actin.n !== nucleus.n) throw new Error(`scoreTem: ${actin.n} actin embeddings but ${nucleus.n} nucleus ones`);
  if (conditions.length !== actin.n) {
    throw new Error(`scoreTem: ${conditions.length} conditions for ${actin.n} cells`);
  }
  const [epithelial, mesenchymal] = anchors;
  if (epithelial === mesenchymal) throw new Error(`scoreTem: both anchors are "${epithelial}"`);
  const epiMask = conditions.map((c) => c === epithelial);
  const mesMask = conditions.map((c) => c === mesenchymal);
  for (const [name, mask] of [[epithelial, epiMask], [mesenchymal, mesMask]] as const) {
    const count = mask.filter(Boolean).length;
    if (count < 2) {
      const present = [...new Set(conditions)].join(", ");
      throw new Error(`scoreTem: anchor condition "${name}" has ${count} cell(s); it needs at least 2 ` +
        `(conditions present: ${present})`);
    }
  }
  const names = { epithelial, mesenchymal };
  // Which channel failed matters to the user: identical nucleus images say something else than identical actin ones.
  const fitNamed = (channel: string, z: Embeddings): ReturnType<typeof fitChannel> => {
    try {
      return fitChannel(z, epiMask, mesMask, names);
    } catch (err) {
      throw new Error(`scoreTem, ${channel} channel: ${(err as Error).message}`);
    }
  };
  const fitted = { actin: fitNamed("actin", actin), nucleus: fitNamed("nucleus", nucleus) };
  const tem_fused = fuse(fitted.actin.scores, fitted.nucleus.scores, fusion);
  const total = fusion[0] + fusion[1];
  return {
    tem_actin: fitted.actin.scores,
    tem_nucleus: fitted.nucleus.scores,
    tem_fused,
    axes: { actin: fitted.actin.axis, nucleus: fitted.nucleus.axis },
    fusion: [fusion[0] / total, fusion[1] / total],
    zeroRows: { actin: fitted.actin.zeroRows, nucleus: fitted.nucleus.zeroRows },
  };
}
