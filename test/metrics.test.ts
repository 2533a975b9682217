// lib/metrics.ts against scipy/sklearn/pandas (scripts/reference/metrics_reference.py), plus closed forms.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ConditionStats, SCORE_NAMES, cohensD, describeByCondition, intermediatesBetweenAnchors, midranks, overlap,
  pairwiseWelch, pearson, rocAuc, spearman, temMetrics, welchTTest,
} from "../lib/metrics";
import { FIXTURES } from "./paths";

// Float64 on both sides; only summation order differs (~1e-15 relative). 1e-9 catches any formula slip.
const REL = 1e-9;
// The brief's bounds for scipy's Welch test: t to 1e-10, p to 1e-8 relative (p comes from an incomplete-beta
// implementation other than scipy's cephes one; they agree to ~1e-14 here, but only ~1e-9 is promised near tiny p).
const REL_T = 1e-10;
const REL_P = 1e-8;

interface Welch { t: number; df: number; p: number }
interface ScoreReference {
  auc: number; cohens_d: number; welch_anchor: Welch; overlap: number; overlap_20_bins: number;
  by_condition: (Omit<ConditionStats, "std"> & { std: number | null })[];
  pairwise_welch: { a: string; b: string; welch: Welch | null }[];
}
interface Correlation { pearson: { r: number }; spearman: { rho: number } }
interface MetricsFixture {
  embeddings: {
    conditions: string[]; order: string[]; anchors: [string, string];
    actin: { scaled: number[] }; nucleus: { scaled: number[] }; tem_fused: number[];
  };
  metrics: Record<(typeof SCORE_NAMES)[number], ScoreReference> & {
    correlation_actin_nucleus: Correlation;
    intermediate_means: Record<string, Record<string, number>>;
  };
  ties: {
    scores: number[]; labels: number[]; other: number[]; auc: number; correlation: Correlation;
    describe: ScoreReference["by_condition"]; overlap: number; overlap_10_bins: number;
  };
  tiny_p: { a: number[]; b: number[]; welch: Welch; cohens_d: number };
  histogram_edges: { a: number[]; b: number[]; overlap: number; overlap_7_bins: number };
}

const fixture: MetricsFixture = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, "metrics", "metrics_reference.json"), "utf8"));

function assertClose(actual: number, expected: number, what: string, rel = REL, abs = 0): void {
  const tolerance = Math.max(rel * Math.abs(expected), abs);
  assert.ok(Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} vs reference ${expected} (tolerance ${tolerance})`);
}

function assertWelch(actual: Welch, expected: Welch, what: string): void {
  assertClose(actual.t, expected.t, `${what} t`, REL_T);
  assertClose(actual.df, expected.df, `${what} df`, REL_T);
  assertClose(actual.p, expected.p, `${what} p`, REL_P);
}

function assertStats(actual: ConditionStats[], expected: ScoreReference["by_condition"], what: string): void {
  assert.deepEqual(actual.map((s) => [s.condition, s.n]), expected.map((s) => [s.condition, s.n]), what);
  actual.forEach((s, i) => {
    const e = expected[i];
    for (const key of ["mean", "median", "q25", "q75", "min", "max"] as const) {
      assertClose(s[key], e[key], `${what} ${s.condition} ${key}`);
    }
    if (e.std === null) assert.equal(s.std, null, `${what} ${s.condition} std of one cell`);
    else assertClose(s.std ?? NaN, e.std, `${what} ${s.condition} std`);
  });
}

const { conditions, order, anchors } = fixture.embeddings;
const scores = {
  tem_actin: fixture.embeddings.actin.scaled,
  tem_nucleus: fixture.embeddings.nucleus.scaled,
  tem_fused: fixture.embeddings.tem_fused,
};
const select = (values: number[], condition: string) => values.filter((_, i) => conditions[i] === condition);

describe("metrics: per-score statistics against scipy/sklearn/pandas", () => {
  for (const name of SCORE_NAMES) {
    const expected = fixture.metrics[name];
    const epi = select(scores[name], anchors[0]);
    const mes = select(scores[name], anchors[1]);

    it(`${name}: AUC, Cohen's d, Welch (mesenchymal vs epithelial), overlap`, () => {
      assertClose(rocAuc([...epi, ...mes], [...epi.map(() => 0), ...mes.map(() => 1)]), expected.auc, "auc");
      assertClose(cohensD(epi, mes), expected.cohens_d, "cohens_d");
      assertWelch(welchTTest(mes, epi), expected.welch_anchor, "welch_anchor");
      // The overlap is a sum of a few bin-sized terms (multiples of 1/(n_a n_b width) * width): 1e-12 absolute.
      assertClose(overlap(epi, mes), expected.overlap, "overlap 200 bins", REL, 1e-12);
      assertClose(overlap(epi, mes, 20), expected.overlap_20_bins, "overlap 20 bins", REL, 1e-12);
    });

    it(`${name}: describe per condition (size 20, 17, 2 and 1)`, () => {
      assertStats(describeByCondition(scores[name], conditions, order), expected.by_condition, name);
    });

    it(`${name}: Welch for every pair; pairs with the one-cell condition are null with a note`, () => {
      const pairs = pairwiseWelch(scores[name], conditions, order);
      assert.deepEqual(pairs.map((p) => [p.a, p.b]), expected.pairwise_welch.map((p) => [p.a, p.b]));
      pairs.forEach((pair, i) => {
        const reference = expected.pairwise_welch[i].welch;
        if (reference === null) {
          assert.deepEqual([pair.t, pair.df, pair.p], [null, null, null]);
          assert.match(pair.note ?? "", /at least 2 values/);
        } else {
          assertWelch({ t: pair.t ?? NaN, df: pair.df ?? NaN, p: pair.p ?? NaN }, reference, `${pair.a}-${pair.b}`);
        }
      });
    });

    it(`${name}: intermediates between anchors follows the reference means`, () => {
      const means = fixture.metrics.intermediate_means[name];
      const [low, high] = [Math.min(means[anchors[0]], means[anchors[1]]), Math.max(means[anchors[0]], means[anchors[1]])];
      const expectedBetween = order.filter((c) => !anchors.includes(c)).map((c) => means[c] > low && means[c] < high);
      const result = intermediatesBetweenAnchors(describeByCondition(scores[name], conditions, order), anchors);
      assert.deepEqual(result.details.map((d) => d.between), expectedBetween);
      assert.equal(result.ok, expectedBetween.every(Boolean));
    });
  }

  it("correlation actin-nucleus: Pearson and Spearman", () => {
    const expected = fixture.metrics.correlation_actin_nucleus;
    assertClose(pearson(scores.tem_actin, scores.tem_nucleus), expected.pearson.r, "pearson");
    assertClose(spearman(scores.tem_actin, scores.tem_nucleus), expected.spearman.rho, "spearman");
  });

  it("temMetrics assembles the same numbers into a JSON-able object", () => {
    const metrics = temMetrics({ scores, conditions, anchors, order });
    assert.deepEqual(JSON.parse(JSON.stringify(metrics)), metrics, "no NaN, undefined or typed arrays inside");
    assert.equal(metrics.n_cells, conditions.length);
    assert.deepEqual(metrics.conditions, order);
    for (const name of SCORE_NAMES) {
      const [got, expected] = [metrics.scores[name], fixture.metrics[name]];
      assertClose(got.auc, expected.auc, `${name} auc`);
      assertClose(got.cohens_d, expected.cohens_d, `${name} cohens_d`);
      assertWelch(got.welch_anchor, expected.welch_anchor, `${name} welch_anchor`);
      assertClose(got.overlap, expected.overlap, `${name} overlap`, REL, 1e-12);
      assertStats(got.by_condition, expected.by_condition, name);
      assert.equal(got.pairwise_welch.length, (order.length * (order.length - 1)) / 2);
    }
    assertClose(metrics.correlation_actin_nucleus.pearson, fixture.metrics.correlation_actin_nucleus.pearson.r, "r");
  });
});

describe("metrics: ties, tiny p-values and histogram edges", () => {
  const { ties } = fixture;

  it("AUC with many tied scores equals sklearn's", () => {
    assertClose(rocAuc(ties.scores, ties.labels), ties.auc, "auc");
  });

  it("Spearman with ties (average ranks) and Pearson equal scipy's", () => {
    assertClose(spearman(ties.scores, ties.other), ties.correlation.spearman.rho, "spearman");
    assertClose(pearson(ties.scores, ties.other), ties.correlation.pearson.r, "pearson");
  });

  it("describe with ties equals pandas", () => {
    assertStats(describeByCondition(ties.scores, ties.labels.map(String), ["0", "1"]), ties.describe, "ties");
  });

  it("overlap of tied values sitting on bin edges equals numpy.histogram's", () => {
    const zeros = ties.scores.filter((_, i) => ties.labels[i] === 0);
    const ones = ties.scores.filter((_, i) => ties.labels[i] === 1);
    assertClose(overlap(zeros, ones), ties.overlap, "200 bins");
    assertClose(overlap(zeros, ones, 10), ties.overlap_10_bins, "10 bins");
  });

  it("overlap with values at 0, 1, exact edges and outside [0, 1] equals numpy.histogram's", () => {
    const { a, b } = fixture.histogram_edges;
    assertClose(overlap(a, b), fixture.histogram_edges.overlap, "200 bins");
    assertClose(overlap(a, b, 7), fixture.histogram_edges.overlap_7_bins, "7 bins");
  });

  it("Welch p far below 1e-16 keeps its relative precision", () => {
    const { a, b, welch } = fixture.tiny_p;
    assert.ok(welch.p < 1e-20, "the fixture really has a tiny p");
    assertWelch(welchTTest(a, b), welch, "tiny p");
    assertClose(cohensD(a, b), fixture.tiny_p.cohens_d, "cohens_d");
  });
});

describe("metrics: closed forms and bad input", () => {
  it("AUC: perfectly separated = 1, reversed = 0, all tied = 0.5", () => {
    assert.equal(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
    assert.equal(rocAuc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]), 0);
    assert.equal(rocAuc([0.5, 0.5, 0.5], [0, 1, 1]), 0.5);
  });

  it("AUC needs both classes and 0/1 labels", () => {
    assert.throws(() => rocAuc([0.1, 0.2], [1, 1]), /needs both classes, got 2 positive, 0 negative/);
    assert.throws(() => rocAuc([0.1, 0.2], [0, 2]), /label 2 at index 1 is not 0 or 1/);
  });

  it("midranks average tied positions", () => {
    assert.deepEqual(Array.from(midranks([30, 10, 20, 20])), [4, 1, 2.5, 2.5]);
  });

  it("Cohen's d of [0, 2] vs [4, 6] is 4 / sqrt(2), positive because b is higher", () => {
    assertClose(cohensD([0, 2], [4, 6]), 4 / Math.SQRT2, "d", 1e-15);
    assert.throws(() => cohensD([1, 1], [1, 1]), /pooled SD is 0/);
  });

  it("Welch: t = -3 / sqrt(2/3), df = 4 for [0, 1, 2] vs [3, 4, 5]; undefined cases are Errors", () => {
    const result = welchTTest([0, 1, 2], [3, 4, 5]);
    assertClose(result.t, -3 / Math.sqrt(2 / 3), "t", 1e-14);
    assertClose(result.df, 4, "df", 1e-14);
    assert.throws(() => welchTTest([1], [2, 3]), /at least 2 values, got 1 and 2/);
    assert.throws(() => welchTTest([1, 1], [2, 2]), /both groups are constant/);
  });

  it("overlap: identical samples = 1, disjoint = 0, nothing in range = Error", () => {
    assertClose(overlap([0.1, 0.5, 1], [0.1, 0.5, 1]), 1, "identical", 1e-12);
    assert.equal(overlap([0.1, 0.2], [0.8, 0.9]), 0);
    assert.throws(() => overlap([2, 3], [0.5]), /no value lies in the range \[0, 1\]/);
  });

  it("Pearson: exact line = 1; constant input is an Error", () => {
    assertClose(pearson([1, 2, 3, 4], [3, 5, 7, 9]), 1, "r", 1e-15);
    assert.throws(() => pearson([1, 1, 1], [1, 2, 3]), /constant/);
  });

  it("describe: one-cell std is null; an unlisted condition is an Error; a listed one without cells is left out", () => {
    const stats = describeByCondition([0.2, 0.4, 0.9], ["A", "A", "B"]);
    assert.equal(stats[1].std, null);
    assertClose(stats[0].std ?? NaN, Math.sqrt(0.02), "std", 1e-15);
    assert.throws(() => describeByCondition([0.2, 0.4], ["A", "C"], ["A", "B"]), /"C" is not in the order \[A, B\]/);
    assert.deepEqual(describeByCondition([0.2], ["A"], ["B", "A"]).map((c) => c.condition), ["A"]);
  });

  it("between anchors: strict inequality, either direction, and false with no intermediates", () => {
    const stat = (condition: string, mean: number): ConditionStats =>
      ({ condition, n: 2, mean, std: 0, median: mean, q25: mean, q75: mean, min: mean, max: mean });
    const anchorsHighLow: [string, string] = ["E", "M"];
    assert.equal(intermediatesBetweenAnchors([stat("E", 0.9), stat("M", 0.1), stat("X", 0.5)], anchorsHighLow).ok, true);
    assert.equal(intermediatesBetweenAnchors([stat("E", 0.1), stat("M", 0.9), stat("X", 0.9)], anchorsHighLow).ok, false);
    assert.equal(intermediatesBetweenAnchors([stat("E", 0.1), stat("M", 0.9)], anchorsHighLow).ok, false);
    assert.throws(() => intermediatesBetweenAnchors([stat("E", 0.1)], anchorsHighLow), /anchor "M" is not among/);
  });
});
