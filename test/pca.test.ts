// lib/pca.ts against sklearn.decomposition.PCA (scripts/reference/validation_reference.py ->
// test/fixtures/validation/), plus closed forms and the invariants of an eigen-decomposition.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { l2Normalize } from "../lib/axis";
import { pca, projectAxis, projectPoints, symmetricEigen } from "../lib/pca";
import { Rng } from "../lib/synthDraw";
import { FIXTURES } from "./paths";

// float64 on both sides; LAPACK's SVD and this covariance eigen-solver agree to ~1e-15 times 1 / (relative gap of
// the eigenvalues), and the fixture's three leading eigenvalues are >= 7 % apart. 1e-9 still catches any slip.
const TOL = 1e-9;

interface PcaFixture {
  data: { n: number; d: number; actin_raw: number[] };
  pca: {
    k: number; mean: number[]; components: number[]; explained_variance: number[];
    explained_variance_ratio: number[]; scores: number[]; flipped_from_sklearn: boolean[];
    axis: { v: number[]; direction: number[]; captured: number };
  };
}

const fixture: PcaFixture = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, "validation", "validation_reference.json"), "utf8"));

function assertClose(actual: ArrayLike<number>, expected: readonly number[], what: string, tol = TOL): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function randomSymmetric(m: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const a = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = i; j < m; j++) a[i * m + j] = a[j * m + i] = rng.normal();
  return a;
}

/** max |A u - lambda u| over all eigenpairs, and max |U U^T - I|. */
function eigenErrors(a: Float64Array, m: number, values: Float64Array, vectors: Float64Array): [number, number] {
  let residual = 0;
  let orthogonality = 0;
  for (let e = 0; e < m; e++) {
    for (let i = 0; i < m; i++) {
      let au = 0;
      for (let j = 0; j < m; j++) au += a[i * m + j] * vectors[e * m + j];
      residual = Math.max(residual, Math.abs(au - values[e] * vectors[e * m + i]));
    }
    for (let f = 0; f < m; f++) {
      let dot = 0;
      for (let j = 0; j < m; j++) dot += vectors[e * m + j] * vectors[f * m + j];
      orthogonality = Math.max(orthogonality, Math.abs(dot - (e === f ? 1 : 0)));
    }
  }
  return [residual, orthogonality];
}

describe("pca: against sklearn PCA on L2-normalised embeddings", () => {
  const { n, d } = fixture.data;
  const x = l2Normalize(fixture.data.actin_raw, n, d).unit;
  const expected = fixture.pca;

  it("mean, components (largest |loading| positive), explained variance and its ratio, scores", () => {
    // The fixture flips at least one of sklearn 1.2's components: the convention is really exercised.
    assert.ok(expected.flipped_from_sklearn.includes(true));
    const model = pca(x, n, d, expected.k);
    assertClose(model.mean, expected.mean, "mean");
    assertClose(model.components, expected.components, "components");
    assertClose(model.explainedVariance, expected.explained_variance, "explained_variance");
    assertClose(model.explainedVarianceRatio, expected.explained_variance_ratio, "explained_variance_ratio");
    assertClose(model.scores, expected.scores, "scores");
  });

  it("projectAxis gives the TEM axis direction in component space and the share of it the plot shows", () => {
    const model = pca(x, n, d, expected.k);
    const { direction, captured } = projectAxis(expected.axis.v, model);
    assertClose(direction, expected.axis.direction, "direction");
    assertClose([captured], [expected.axis.captured], "captured");
  });

  it("projectPoints of the fitted rows are its scores", () => {
    const model = pca(x, n, d, 2);
    assert.deepEqual(projectPoints(x, n, model), model.scores);
  });
});

describe("pca: closed forms and invariants", () => {
  it("symmetricEigen of a diagonal and of [[2, 1], [1, 2]]", () => {
    const diagonal = symmetricEigen([1, 0, 0, 0, 3, 0, 0, 0, 2], 3);
    assert.deepEqual(Array.from(diagonal.values), [3, 2, 1]);
    assert.deepEqual(Array.from(diagonal.vectors, Math.abs), [0, 1, 0, 0, 0, 1, 1, 0, 0]);
    const pair = symmetricEigen([2, 1, 1, 2], 2);
    assertClose(pair.values, [3, 1], "eigenvalues", 1e-15);
    const s = Math.SQRT1_2;
    // Up to sign: compare |components| and the sign pattern within each vector.
    assertClose(Array.from(pair.vectors, Math.abs), [s, s, s, s], "|eigenvectors|", 1e-15);
    assert.ok(pair.vectors[0] * pair.vectors[1] > 0 && pair.vectors[2] * pair.vectors[3] < 0);
  });

  it("random symmetric 120 x 120: A u = lambda u and orthonormal vectors to rounding, trace preserved", () => {
    const m = 120;
    const a = randomSymmetric(m, 5);
    const { values, vectors } = symmetricEigen(a, m);
    const [residual, orthogonality] = eigenErrors(a, m, values, vectors);
    // |A| ~ 2 sqrt(m) ~ 22 for unit normal entries; a backward-stable solver leaves ~m * eps * |A| ~ 1e-12.
    assert.ok(residual < 1e-11, `residual ${residual}`);
    assert.ok(orthogonality < 1e-12, `orthogonality ${orthogonality}`);
    let trace = 0;
    for (let i = 0; i < m; i++) trace += a[i * m + i];
    assertClose([values.reduce((sum, v) => sum + v, 0)], [trace], "trace", 1e-12);
    for (let i = 1; i < m; i++) assert.ok(values[i - 1] >= values[i], "eigenvalues in decreasing order");
  });

  it("repeated eigenvalues (3, 3, 1, 1, 1 in a rotated basis) converge to them", () => {
    // Q diag(3, 3, 1, 1, 1) Q^T = I + 2 (q1 q1^T + q2 q2^T) for orthonormal q1, q2.
    const q1 = [1, 1, 1, 1, 0].map((v) => v / 2);
    const q2 = [1, -1, 1, -1, 0].map((v) => v / 2);
    const a = Array.from({ length: 25 }, (_, idx) => {
      const [i, j] = [Math.floor(idx / 5), idx % 5];
      return (i === j ? 1 : 0) + 2 * (q1[i] * q1[j] + q2[i] * q2[j]);
    });
    const { values, vectors } = symmetricEigen(a, 5);
    assertClose(values, [3, 3, 1, 1, 1], "eigenvalues", 1e-14);
    const [residual, orthogonality] = eigenErrors(Float64Array.from(a), 5, values, vectors);
    assert.ok(residual < 1e-14 && orthogonality < 1e-14, `residual ${residual}, orthogonality ${orthogonality}`);
  });

  it("the sign convention is a property of the data's span: negating the data keeps the components", () => {
    const rng = new Rng(8);
    const [n, d] = [30, 6];
    const x = Float64Array.from({ length: n * d }, (_, i) => rng.normal() * (1 + (i % d)));
    const model = pca(x, n, d, 3);
    const negated = pca(x.map((v) => -v), n, d, 3);
    assertClose(negated.components, Array.from(model.components), "components", 1e-12);
    assertClose(negated.scores, Array.from(model.scores, (v) => -v), "scores", 1e-12);
    for (let c = 0; c < 3; c++) {
      const row = Array.from(model.components.subarray(c * d, (c + 1) * d));
      const largest = row.reduce((best, v, j) => (Math.abs(v) > Math.abs(row[best]) ? j : best), 0);
      assert.ok(row[largest] > 0, `component ${c}: largest loading ${row[largest]}`);
    }
  });

  it("an axis inside the kept components is captured whole; one orthogonal to them not at all", () => {
    const rng = new Rng(9);
    const [n, d] = [40, 5];
    const x = Float64Array.from({ length: n * d }, (_, i) => rng.normal() * (5 - (i % d)));
    const model = pca(x, n, d, 2);
    const first = model.components.subarray(0, d);
    assertClose([projectAxis(first, model).captured], [1], "captured", 1e-12);
    // The third eigenvector is orthogonal to the two kept ones.
    const third = pca(x, n, d, 3).components.subarray(2 * d, 3 * d);
    assert.ok(projectAxis(third, model).captured < 1e-12);
  });

  it("bad input is a clear Error", () => {
    assert.throws(() => pca([1, 2, 3, 4], 2, 2, 3), /k must be an integer in 1\.\.min\(n, d\) = 2, got 3/);
    assert.throws(() => pca([1, 2, 1, 2], 2, 2), /every row is the same/);
    assert.throws(() => pca([1, 2, NaN, 4], 2, 2), /non-finite value NaN at row 1, column 0/);
    assert.throws(() => pca([1, 2], 1, 2, 1), /at least 2 rows/);
    assert.throws(() => projectAxis([0, 0], pca([1, 2, 3, 5], 2, 2, 1)), /axis vector is zero/);
    assert.throws(() => symmetricEigen([1, 2, 3], 2), /expected n\*d = 2\*2 = 4 values, got 3/);
  });
});
