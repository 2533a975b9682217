// lib/axis.ts against numpy (scripts/reference/metrics_reference.py -> test/fixtures/metrics/), plus closed forms.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  AxisInfo, fuse, l2Normalize, percentile, project, robustScale, scoreTem, scoreWithAxis, temAxis,
} from "../lib/axis";
import { FIXTURES } from "./paths";

// Both sides compute in float64 and differ only in summation order (numpy's pairwise sums and BLAS dot products vs
// sequential loops): ~1e-15 relative. 1e-9 leaves room for that and still catches any formula slip (>= 1e-6).
const REL = 1e-9;

interface ChannelReference {
  l2: number[]; muE: number[]; muM: number[]; v: number[]; vNorm: number; projection: number[];
  percentiles: Record<string, number>; p_lo: number; p_hi: number; scaled: number[];
}
interface AxisFixture {
  embeddings: {
    n: number; d: number; conditions: string[]; anchors: [string, string];
    actin_raw: number[]; nucleus_raw: number[]; actin: ChannelReference; nucleus: ChannelReference;
    tem_fused: number[]; "tem_fused_weights_0.3_0.9": number[];
  };
  percentiles: { qs: number[]; arrays: Record<string, number[]>; expected: Record<string, number[]> };
}

const fixture: AxisFixture = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, "metrics", "metrics_reference.json"), "utf8"));

/** |actual - expected| <= max(rel * |expected|, abs) elementwise; abs is for values that can be ~0. */
function assertAllClose(actual: ArrayLike<number>, expected: readonly number[], what: string, abs = 0): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tolerance = Math.max(REL * Math.abs(expected[i]), abs);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance,
      `${what}[${i}]: ${actual[i]} vs numpy ${expected[i]} (tolerance ${tolerance})`);
  }
}

const maxAbs = (values: readonly number[]) => Math.max(...values.map(Math.abs));

describe("axis: TEM axis against numpy", () => {
  const { n, d, conditions, anchors } = fixture.embeddings;
  const epithelial = conditions.map((c) => c === anchors[0]);
  const mesenchymal = conditions.map((c) => c === anchors[1]);

  for (const channel of ["actin", "nucleus"] as const) {
    const raw = fixture.embeddings[`${channel}_raw`];
    const expected = fixture.embeddings[channel];

    it(`${channel}: l2Normalize, temAxis, project, robustScale step by step`, () => {
      const { unit, zeroRows } = l2Normalize(Float64Array.from(raw), n, d);
      assert.deepEqual(zeroRows, []);
      assertAllClose(unit, expected.l2, "l2");
      const axis = temAxis(unit, n, d, epithelial, mesenchymal);
      assertAllClose(axis.muE, expected.muE, "muE");
      assertAllClose(axis.muM, expected.muM, "muM");
      // v is a difference of means: its small components lose digits to cancellation, so bound them by |v|.
      assertAllClose(axis.v, expected.v, "v", REL * expected.vNorm);
      assertAllClose([axis.vNorm], [expected.vNorm], "|v|");
      const s = project(unit, n, d, axis);
      // Projections straddle 0; scale the absolute tolerance to the largest one.
      assertAllClose(s, expected.projection, "projection", REL * maxAbs(expected.projection));
      const { scaled, p_lo, p_hi } = robustScale(s);
      assertAllClose([p_lo, p_hi], [expected.p_lo, expected.p_hi], "p1, p99", REL * maxAbs(expected.projection));
      assertAllClose(scaled, expected.scaled, "scaled", REL);
    });

    it(`${channel}: index lists select the same anchors as boolean masks`, () => {
      const { unit } = l2Normalize(raw, n, d);
      const rowsOf = (mask: boolean[]) => mask.flatMap((on, i) => (on ? [i] : []));
      const fromMasks = temAxis(unit, n, d, epithelial, mesenchymal);
      const fromRows = temAxis(unit, n, d, rowsOf(epithelial), rowsOf(mesenchymal));
      assert.deepEqual(fromRows, fromMasks);
    });
  }

  it("scoreTem gives tem_actin, tem_nucleus and the 0.5/0.5 fusion of numpy", () => {
    const result = scoreTem({
      actin: { emb: Float64Array.from(fixture.embeddings.actin_raw), n, d },
      nucleus: { emb: Float64Array.from(fixture.embeddings.nucleus_raw), n, d },
      conditions, anchors,
    });
    assertAllClose(result.tem_actin, fixture.embeddings.actin.scaled, "tem_actin", REL);
    assertAllClose(result.tem_nucleus, fixture.embeddings.nucleus.scaled, "tem_nucleus", REL);
    assertAllClose(result.tem_fused, fixture.embeddings.tem_fused, "tem_fused", REL);
    assert.deepEqual(result.fusion, [0.5, 0.5]);
    assert.equal(result.axes.actin.nEpithelial, epithelial.filter(Boolean).length);
    assertAllClose([result.axes.nucleus.p_lo, result.axes.nucleus.p_hi],
      [fixture.embeddings.nucleus.p_lo, fixture.embeddings.nucleus.p_hi], "nucleus p1, p99",
      REL * maxAbs(fixture.embeddings.nucleus.projection));
  });

  it("fusion weights are normalised: [0.3, 0.9] is numpy's 0.25/0.75", () => {
    const fused = fuse(fixture.embeddings.actin.scaled, fixture.embeddings.nucleus.scaled, [0.3, 0.9]);
    assertAllClose(fused, fixture.embeddings["tem_fused_weights_0.3_0.9"], "weighted fusion", REL);
  });

  it("scoreWithAxis on a saved (JSON round-tripped) axis reproduces the scores of the cells that built it", () => {
    const actin = { emb: Float32Array.from(fixture.embeddings.actin_raw), n, d };
    const nucleus = { emb: Float32Array.from(fixture.embeddings.nucleus_raw), n, d };
    const result = scoreTem({ actin, nucleus, conditions, anchors });
    const saved: AxisInfo = JSON.parse(JSON.stringify(result.axes.actin));
    // Same numbers through the same code path: equality is exact, not approximate.
    assert.deepEqual(scoreWithAxis(actin, saved).scores, result.tem_actin);
  });
});

describe("axis: percentile matches numpy.percentile (linear)", () => {
  for (const [name, values] of Object.entries(fixture.percentiles.arrays)) {
    it(`${name} value(s), q = ${fixture.percentiles.qs.join(", ")}`, () => {
      const got = fixture.percentiles.qs.map((q) => percentile(values, q));
      assertAllClose(got, fixture.percentiles.expected[name], name, REL * maxAbs(values));
    });
  }

  it("closed forms: median of 1..4 is 2.5; q=0 and q=100 are min and max", () => {
    assert.equal(percentile([4, 1, 3, 2], 50), 2.5);
    assert.equal(percentile([4, 1, 3, 2], 0), 1);
    assert.equal(percentile([4, 1, 3, 2], 100), 4);
  });

  it("rejects empty input, NaN and q outside [0, 100]", () => {
    assert.throws(() => percentile([], 50), /no values/);
    assert.throws(() => percentile([1, NaN], 50), /non-finite value NaN at index 1/);
    assert.throws(() => percentile([1, 2], 101), /q must be in \[0, 100\]/);
  });
});

describe("axis: closed-form and edge cases", () => {
  it("robustScale of 0..100 maps 1 -> 0 and 99 -> 1 and clips the ends", () => {
    const s = Array.from({ length: 101 }, (_, i) => i);
    const { scaled, p_lo, p_hi } = robustScale(s);
    assert.equal(p_lo, 1);
    assert.equal(p_hi, 99);
    assert.equal(scaled[0], 0);
    assert.equal(scaled[50], 49 / 98);
    assert.equal(scaled[100], 1);
  });

  it("constant scores are an Error, not NaN", () => {
    assert.throws(() => robustScale([0.3, 0.3, 0.3, 0.3]), /percentiles are equal \(0\.3\): the scores are constant/);
  });

  it("identical anchor means are an Error", () => {
    // Rows 0,1 and rows 2,3 are the same two vectors in another order: equal means.
    const z = [1, 0, 0, 1, 0, 1, 1, 0];
    assert.throws(() => temAxis(z, 4, 2, [0, 1], [2, 3]), /identical mean embeddings: no axis/);
  });

  it("an anchor needs 2 cells, and a cell cannot be in both", () => {
    const z = [1, 0, 0, 1, 1, 1];
    assert.throws(() => temAxis(z, 3, 2, [0], [1, 2]), /epithelial anchor has 1 cell\(s\); it needs at least 2/);
    assert.throws(() => temAxis(z, 3, 2, [0, 1], [1, 2]), /rows 1 are in both anchors/);
    assert.throws(() => temAxis(z, 3, 2, [0, 1], [2, 3]), /row 3 is not in 0\.\.2/);
  });

  it("scoreTem names a missing anchor condition", () => {
    const emb = { emb: Float64Array.from([1, 0, 0, 1, 1, 1, 2, 1]), n: 4, d: 2 };
    assert.throws(() => scoreTem({ actin: emb, nucleus: emb, conditions: ["Ctrl", "Ctrl", "TNF", "TNF"],
      anchors: ["Ctrl", "TNFTGF"] }), /anchor condition "TNFTGF" has 0 cell\(s\).*present: Ctrl, TNF/);
  });

  it("a zero row stays zero and is reported; a Float32Array 3-4-5 row normalises exactly", () => {
    const { unit, zeroRows } = l2Normalize(Float32Array.from([3, 4, 0, 0]), 2, 2);
    assert.deepEqual(Array.from(unit), [0.6, 0.8, 0, 0]);
    assert.deepEqual(zeroRows, [1]);
  });

  it("bad matrices are rejected with the position of the problem", () => {
    assert.throws(() => l2Normalize([1, 2, 3], 2, 2), /expected n\*d = 2\*2 = 4 values, got 3/);
    assert.throws(() => l2Normalize([1, 2, Infinity, 3], 2, 2), /non-finite value Infinity at row 1, column 0/);
  });

  it("fusion [1, 0] is the actin score; negative or all-zero weights are Errors", () => {
    const actin = [0.1, 0.5, 0.9];
    const nucleus = [0.7, 0.2, 0.4];
    assert.deepEqual(Array.from(fuse(actin, nucleus, [1, 0])), actin);
    assert.deepEqual(Array.from(fuse(actin, nucleus, [0, 3])), nucleus);
    assert.throws(() => fuse(actin, nucleus, [-1, 2]), /finite and non-negative/);
    assert.throws(() => fuse(actin, nucleus, [0, 0]), /both 0/);
    assert.throws(() => fuse(actin, [0.1], [1, 1]), /3 actin scores but 1 nucleus/);
  });

  it("scoreWithAxis refuses embeddings of another dimension", () => {
    const axis: AxisInfo = {
      d: 3, epithelial: "Ctrl", mesenchymal: "TNFTGF", nEpithelial: 2, nMesenchymal: 2,
      muE: [0, 0, 0], muM: [1, 0, 0], v: [1, 0, 0], vNorm: 1, q_lo: 1, q_hi: 99, p_lo: 0, p_hi: 1,
    };
    assert.throws(() => scoreWithAxis({ emb: new Float32Array(4), n: 2, d: 2 }, axis), /2 dimensions, the axis 3/);
  });
});
