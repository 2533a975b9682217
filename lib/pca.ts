// Principal component analysis of an embedding matrix, for drawing cells (and the TEM axis) in two or three
// dimensions. PCA here = eigen-decomposition of the d x d sample covariance: d is at most a few hundred (512 for
// ResNet18), so an exact dense solver (Householder tridiagonalisation + implicit QR with Wilkinson shifts, Golub &
// Van Loan 8.3) is fast enough and, unlike power iteration, does not slow down when two eigenvalues are close.
//
// Sign convention: an eigenvector's sign is arbitrary, so each component is flipped to make its largest-|loading|
// entry positive (the first such entry on a tie). sklearn >= 1.5 does exactly this; older sklearn (1.2 here) makes
// the largest |score| positive instead, so the reference script re-applies this rule to sklearn's output.

/** A fitted PCA; matrices are row-major Float64Arrays. */
export interface Pca {
  /** Rows and columns of the fitted data. */
  n: number;
  d: number;
  /** Number of components kept. */
  k: number;
  /** Column means (length d), subtracted before projecting. */
  mean: Float64Array;
  /** k x d, orthonormal rows, by decreasing variance (sklearn's components_). */
  components: Float64Array;
  /** Variance along each component, ddof = 1 (sklearn's explained_variance_). */
  explainedVariance: Float64Array;
  /** explainedVariance / total variance (sklearn's explained_variance_ratio_). */
  explainedVarianceRatio: Float64Array;
  /** n x k coordinates of the fitted rows (sklearn's transform(X)). */
  scores: Float64Array;
}

/** Eigenvalues (descending) and the matching orthonormal eigenvectors, one per row of `vectors` (m x m). */
export interface SymmetricEigen {
  values: Float64Array;
  vectors: Float64Array;
}

function checkMatrix(x: ArrayLike<number>, n: number, d: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(d) || d < 1) {
    throw new Error(`${what}: n and d must be positive integers, got n=${n}, d=${d}`);
  }
  if (x.length !== n * d) throw new Error(`${what}: expected n*d = ${n}*${d} = ${n * d} values, got ${x.length}`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new Error(`${what}: non-finite value ${x[i]} at row ${Math.floor(i / d)}, column ${i % d}`);
    }
  }
}

/**
 * Reduce the symmetric m x m matrix `a` (overwritten) to tridiagonal T = U a U^T by Householder reflections.
 * Returns T's diagonal, its off-diagonal (off[i] = T[i+1][i]) and U (m x m, orthonormal rows).
 */
function tridiagonalize(a: Float64Array, m: number): { diag: Float64Array; off: Float64Array; basis: Float64Array } {
  const basis = new Float64Array(m * m);
  for (let i = 0; i < m; i++) basis[i * m + i] = 1;
  for (let k = 0; k + 2 < m; k++) {
    const start = k + 1;
    const len = m - start;
    const v = a.slice(k * m + start, k * m + m); // row k right of the diagonal = column k below it
    let norm = 0;
    for (let i = 0; i < len; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm === 0) continue; // column already reduced
    // Reflect x onto alpha*e1 with alpha of the opposite sign to x[0]: v = x - alpha*e1 then never cancels.
    const alpha = v[0] > 0 ? -norm : norm;
    v[0] -= alpha;
    let vv = 0;
    for (let i = 0; i < len; i++) vv += v[i] * v[i];
    const beta = 2 / vv;
    // Two-sided update of the trailing block: A <- A - v w^T - w v^T with p = beta A v, w = p - (beta p.v / 2) v.
    const p = new Float64Array(len);
    for (let i = 0; i < len; i++) {
      const row = (start + i) * m + start;
      let sum = 0;
      for (let j = 0; j < len; j++) sum += a[row + j] * v[j];
      p[i] = beta * sum;
    }
    let pv = 0;
    for (let i = 0; i < len; i++) pv += p[i] * v[i];
    const w = p.map((pi, i) => pi - (beta * pv / 2) * v[i]);
    for (let i = 0; i < len; i++) {
      const row = (start + i) * m + start;
      for (let j = 0; j < len; j++) a[row + j] -= v[i] * w[j] + w[i] * v[j];
    }
    for (let i = start; i < m; i++) a[k * m + i] = a[i * m + k] = 0;
    a[k * m + start] = a[start * m + k] = alpha;
    // U <- H U: only the rows start.. change.
    const t = new Float64Array(m);
    for (let i = 0; i < len; i++) {
      const row = (start + i) * m;
      for (let c = 0; c < m; c++) t[c] += v[i] * basis[row + c];
    }
    for (let i = 0; i < len; i++) {
      const row = (start + i) * m;
      const scale = beta * v[i];
      for (let c = 0; c < m; c++) basis[row + c] -= scale * t[c];
    }
  }
  const diag = Float64Array.from({ length: m }, (_, i) => a[i * m + i]);
  const off = Float64Array.from({ length: Math.max(0, m - 1) }, (_, i) => a[(i + 1) * m + i]);
  return { diag, off, basis };
}

/**
 * One implicit symmetric QR step with Wilkinson shift on the unreduced block p..q of the tridiagonal (diag, off),
 * chasing the bulge down with Givens rotations R and applying each to the basis (U <- R U).
 */
function wilkinsonStep(
  diag: Float64Array, off: Float64Array, p: number, q: number, basis: Float64Array, m: number,
): void {
  const half = (diag[q - 1] - diag[q]) / 2;
  const b = off[q - 1];
  const shift = diag[q] - (b * b) / (half + (half >= 0 ? 1 : -1) * Math.hypot(half, b));
  let x = diag[p] - shift;
  let z = off[p];
  for (let k = p; k < q; k++) {
    const r = Math.hypot(x, z);
    const c = r === 0 ? 1 : x / r;
    const s = r === 0 ? 0 : z / r;
    if (k > p) off[k - 1] = r; // the bulge below it is now zero
    const [ak, ak1, bk] = [diag[k], diag[k + 1], off[k]];
    diag[k] = c * c * ak + 2 * c * s * bk + s * s * ak1;
    diag[k + 1] = s * s * ak - 2 * c * s * bk + c * c * ak1;
    off[k] = c * s * (ak1 - ak) + (c * c - s * s) * bk;
    if (k + 1 < q) {
      x = off[k];
      z = s * off[k + 1]; // the new bulge, at T[k+2][k]
      off[k + 1] *= c;
    }
    const [rowK, rowK1] = [k * m, (k + 1) * m];
    for (let col = 0; col < m; col++) {
      const [u, w] = [basis[rowK + col], basis[rowK1 + col]];
      basis[rowK + col] = c * u + s * w;
      basis[rowK1 + col] = c * w - s * u;
    }
  }
}

/** All eigenpairs of a symmetric m x m matrix (row-major; only symmetry within rounding is assumed). */
export function symmetricEigen(matrix: ArrayLike<number>, m: number): SymmetricEigen {
  checkMatrix(matrix, m, m, "symmetricEigen");
  const a = Float64Array.from(matrix);
  const { diag, off, basis } = tridiagonalize(a, m);
  // Off-diagonals below eps * |T| are zeroed: a perturbation the size of rounding (backward stable, as LAPACK).
  let scale = 0;
  for (let i = 0; i < m; i++) scale = Math.max(scale, Math.abs(diag[i]) + (i > 0 ? Math.abs(off[i - 1]) : 0));
  const negligible = Number.EPSILON * scale;
  const maxSteps = 30 * m;
  let steps = 0;
  for (let q = m - 1; q > 0;) {
    for (let i = 0; i < q; i++) if (Math.abs(off[i]) <= negligible) off[i] = 0;
    if (off[q - 1] === 0) {
      q--;
      continue;
    }
    let p = q - 1;
    while (p > 0 && off[p - 1] !== 0) p--;
    wilkinsonStep(diag, off, p, q, basis, m);
    if (++steps > maxSteps) throw new Error(`symmetricEigen: QR iteration did not converge in ${maxSteps} steps`);
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((i, j) => diag[j] - diag[i]);
  const vectors = new Float64Array(m * m);
  order.forEach((from, to) => vectors.set(basis.subarray(from * m, from * m + m), to * m));
  return { values: Float64Array.from(order, (i) => diag[i]), vectors };
}

/** Flip v (in place) so that its largest-|entry| (the first one on a tie) is positive. */
function fixSign(v: Float64Array): void {
  let largest = 0;
  for (let j = 1; j < v.length; j++) if (Math.abs(v[j]) > Math.abs(v[largest])) largest = j;
  if (v[largest] < 0) for (let j = 0; j < v.length; j++) v[j] = -v[j];
}

/** Coordinates of the n x d rows x in the PCA's component space: (x - mean) . components^T, n x k. */
export function projectPoints(
  x: ArrayLike<number>, n: number, model: Pick<Pca, "d" | "k" | "mean" | "components">,
): Float64Array {
  checkMatrix(x, n, model.d, "projectPoints");
  const { d, k, mean, components } = model;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let sum = 0;
      for (let j = 0; j < d; j++) sum += (x[i * d + j] - mean[j]) * components[c * d + j];
      out[i * k + c] = sum;
    }
  }
  return out;
}

/**
 * Principal components of the n x d matrix x (rows = cells), centred on the column means, keeping k components.
 * The covariance uses ddof = 1, as sklearn's explained_variance_ does.
 */
export function pca(x: ArrayLike<number>, n: number, d: number, k = 2): Pca {
  checkMatrix(x, n, d, "pca");
  if (n < 2) throw new Error(`pca: needs at least 2 rows, got ${n}`);
  if (!Number.isInteger(k) || k < 1 || k > Math.min(n, d)) {
    throw new Error(`pca: k must be an integer in 1..min(n, d) = ${Math.min(n, d)}, got ${k}`);
  }
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const centred = Float64Array.from({ length: n * d }, (_, idx) => x[idx] - mean[idx % d]);
  const covariance = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let a = 0; a < d; a++) {
      const xa = centred[row + a];
      for (let b = a; b < d; b++) covariance[a * d + b] += xa * centred[row + b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) covariance[a * d + b] = covariance[b * d + a] = covariance[a * d + b] / (n - 1);
  }
  let totalVariance = 0;
  for (let a = 0; a < d; a++) totalVariance += covariance[a * d + a];
  if (totalVariance === 0) throw new Error("pca: every row is the same: there is no variance to explain");

  const { values, vectors } = symmetricEigen(covariance, d);
  const components = vectors.slice(0, k * d);
  for (let c = 0; c < k; c++) fixSign(components.subarray(c * d, (c + 1) * d));
  // Rounding can leave a zero eigenvalue at -1e-17: a variance is never negative.
  const explainedVariance = Float64Array.from(values.subarray(0, k), (value) => Math.max(0, value));
  return {
    n, d, k, mean, components, explainedVariance,
    explainedVarianceRatio: explainedVariance.map((value) => value / totalVariance),
    scores: projectPoints(x, n, { d, k, mean, components }),
  };
}

/**
 * The direction v (e.g. the TEM axis muM - muE, a difference of points, so no centring) in component space, and
 * the share of its length that the kept components capture (|components . v| / |v|, 1 = v lies in their span):
 * a short arrow on the plot means the axis mostly points out of the drawn plane.
 */
export function projectAxis(v: ArrayLike<number>, model: Pca): { direction: Float64Array; captured: number } {
  checkMatrix(v, 1, model.d, "projectAxis");
  const { d, k, components } = model;
  let vNorm = 0;
  for (let j = 0; j < d; j++) vNorm += v[j] * v[j];
  vNorm = Math.sqrt(vNorm);
  if (vNorm === 0) throw new Error("projectAxis: the axis vector is zero");
  const direction = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    for (let j = 0; j < d; j++) direction[c] += components[c * d + j] * v[j];
  }
  const inSpan = Math.sqrt(direction.reduce((sum, value) => sum + value * value, 0));
  return { direction, captured: inSpan / vNorm };
}
