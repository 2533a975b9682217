// lib/validation.ts: out-of-fold scores and nested-CV fusion against an independent numpy implementation
// (scripts/reference/validation_reference.py -> test/fixtures/validation/), the no-leak properties, and the
// properties of the bootstrap and the permutation test (their numbers cannot match across random generators).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { scoreTem } from "../lib/axis";
import { Rng } from "../lib/synthDraw";
import {
  assignFolds, chooseActinWeight, crossValidate, NOT_IN_A_FOLD, outOfFoldScores, permutationTest,
  stratifiedBootstrap, validate, ValidationInput,
} from "../lib/validation";
import { FIXTURES } from "./paths";

// Both sides compute in float64 and differ only in summation order (BLAS dot products vs sequential loops):
// ~1e-15 relative on scores in [0, 1]. 1e-9 leaves room for that and still catches any formula slip (>= 1e-6).
const TOL = 1e-9;

interface FoldAxisReference { muE: number[]; muM: number[]; v: number[]; p_lo: number; p_hi: number }
interface ScoreReference {
  auc_in_sample: number; auc_out_of_fold: number; cohens_d_in_sample: number; cohens_d_out_of_fold: number;
  condition_means_out_of_fold: Record<string, number>; per_fold_auc: number[];
}
interface ValidationFixture {
  data: {
    n: number; d: number; conditions: string[]; anchors: [string, string]; k: number; folds: number[];
    actin_raw: number[]; nucleus_raw: number[];
  };
  out_of_fold: {
    columns: Record<"tem_actin_oof" | "tem_nucleus_oof" | "tem_fused_oof" | "tem_fused_tuned_oof", number[]>;
    fold_axes: { actin: FoldAxisReference[]; nucleus: FoldAxisReference[] };
    scores: Record<"tem_actin" | "tem_nucleus" | "tem_fused", ScoreReference>;
    tuned_fusion: {
      per_fold: { fold: number; actin_weight: number; inner_auc: number }[];
      auc_out_of_fold: number; deployed_actin_weight: number; deployed_inner_auc: number;
    };
  };
}

const fixture: ValidationFixture = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, "validation", "validation_reference.json"), "utf8"));
const { n, d, conditions, anchors, folds } = fixture.data;
const reference = fixture.out_of_fold;

function fixtureInput(): ValidationInput {
  return {
    actin: { emb: Float64Array.from(fixture.data.actin_raw), n, d },
    nucleus: { emb: Float64Array.from(fixture.data.nucleus_raw), n, d },
    conditions, anchors,
  };
}

function assertClose(actual: ArrayLike<number>, expected: readonly number[], what: string, tol = TOL): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs numpy ${expected[i]}`);
  }
}

/** Seeded anchors-and-others embeddings: the mesenchymal mean is `separation` away along the first dimensions. */
function syntheticInput(seed: number, perCondition: number, d: number, separation: number): ValidationInput {
  const rng = new Rng(seed);
  const names = ["Ctrl", "TNFTGF", "TGF"];
  const conditions = Array.from({ length: 3 * perCondition }, (_, i) => names[i % 3]);
  const shift = { Ctrl: 0, TNFTGF: separation, TGF: separation / 2 } as Record<string, number>;
  const channel = () => Float64Array.from({ length: conditions.length * d }, (_, idx) => {
    const [row, col] = [Math.floor(idx / d), idx % d];
    return Math.abs(2 + rng.normal() + (col < 4 ? shift[conditions[row]] : 0));
  });
  const n = conditions.length;
  return {
    actin: { emb: channel(), n, d }, nucleus: { emb: channel(), n, d }, conditions, anchors: ["Ctrl", "TNFTGF"],
  };
}

describe("validation: out-of-fold scores against numpy (fixed folds from the script)", () => {
  const quick = { foldOf: folds, bootstrap: 0, permutations: 0 };

  it("per-cell tem_*_oof columns, including the tuned fusion", () => {
    const { columns } = validate(fixtureInput(), quick);
    for (const name of ["tem_actin_oof", "tem_nucleus_oof", "tem_fused_oof", "tem_fused_tuned_oof"] as const) {
      assertClose(columns[name], reference.columns[name], name);
    }
    assert.deepEqual(Array.from(columns.oof_fold), folds);
  });

  it("each fold's axis (muE, muM, v, p1, p99) is numpy's", () => {
    const oof = outOfFoldScores(fixtureInput(), folds);
    for (const channel of ["actin", "nucleus"] as const) {
      reference.fold_axes[channel].forEach((expected, fold) => {
        const axis = oof.folds[fold].axes[channel];
        assertClose(axis.muE, expected.muE, `${channel} fold ${fold} muE`);
        assertClose(axis.muM, expected.muM, `${channel} fold ${fold} muM`);
        // v is a difference of means: bound its small components by the largest one, not by themselves.
        assertClose(axis.v, expected.v, `${channel} fold ${fold} v`, TOL * Math.max(...expected.v.map(Math.abs)));
        assertClose([axis.p_lo, axis.p_hi], [expected.p_lo, expected.p_hi], `${channel} fold ${fold} p1, p99`);
      });
    }
  });

  it("AUC, Cohen's d (in-sample and out-of-fold), per-fold AUC and condition means", () => {
    const { summary } = validate(fixtureInput(), quick);
    for (const name of ["tem_actin", "tem_nucleus", "tem_fused"] as const) {
      const got = summary.scores[name];
      const expected = reference.scores[name];
      assertClose([got.auc_in_sample, got.auc_out_of_fold], [expected.auc_in_sample, expected.auc_out_of_fold],
        `${name} AUC`);
      assertClose([got.cohens_d_in_sample, got.cohens_d_out_of_fold],
        [expected.cohens_d_in_sample, expected.cohens_d_out_of_fold], `${name} Cohen's d`);
      assertClose(summary.folds.map((f) => f.auc[name]), expected.per_fold_auc, `${name} per-fold AUC`);
      for (const { condition, mean } of got.condition_means_out_of_fold) {
        assertClose([mean], [expected.condition_means_out_of_fold[condition]], `${name} mean of ${condition}`);
      }
    }
  });

  it("nested-CV fusion: the same weight per fold, inner AUC, out-of-fold AUC and deployed weight", () => {
    const { summary } = validate(fixtureInput(), quick);
    const expected = reference.tuned_fusion;
    // Weights come from a grid: they must be identical, not close.
    assert.deepEqual(summary.tuned_fusion.actin_weights, expected.per_fold.map((f) => f.actin_weight));
    assertClose(summary.folds.map((f) => f.tuned_inner_auc), expected.per_fold.map((f) => f.inner_auc), "inner AUC");
    assertClose([summary.tuned_fusion.auc_out_of_fold], [expected.auc_out_of_fold], "tuned AUC");
    assert.equal(summary.tuned_fusion.deployed_actin_weight, expected.deployed_actin_weight);
    assertClose([summary.tuned_fusion.deployed_inner_auc], [expected.deployed_inner_auc], "deployed inner AUC");
  });

  it("in-sample scores are exactly scoreTem's (one method, two entry points)", () => {
    const oof = outOfFoldScores(fixtureInput(), folds);
    const tem = scoreTem(fixtureInput());
    assert.deepEqual(oof.inSample.actin.scores, tem.tem_actin);
    assert.deepEqual(oof.inSample.nucleus.scores, tem.tem_nucleus);
  });
});

describe("validation: no anchor cell's own label builds its axis", () => {
  const anchorRows = conditions.flatMap((c, i) => (anchors.includes(c) ? [i] : []));

  it("every anchor cell is held out exactly once, and never among the rows that built or scaled its axis", () => {
    const oof = outOfFoldScores(fixtureInput(), folds);
    const heldOutCount = new Map<number, number>();
    for (const fold of oof.folds) {
      const built = new Set([...fold.axisRows.epithelial, ...fold.axisRows.mesenchymal, ...fold.scalingRows]);
      for (const row of fold.heldOut) {
        assert.ok(!built.has(row), `fold ${fold.fold}: held-out row ${row} helped build its own axis`);
        heldOutCount.set(row, (heldOutCount.get(row) ?? 0) + 1);
      }
      // Everything else does build it: the axis is not starved either.
      assert.equal(fold.axisRows.epithelial.length + fold.axisRows.mesenchymal.length + fold.heldOut.length,
        anchorRows.length);
      assert.equal(fold.scalingRows.length + fold.heldOut.length, n);
    }
    assert.deepEqual([...heldOutCount.keys()].sort((a, b) => a - b), anchorRows);
    assert.ok([...heldOutCount.values()].every((count) => count === 1));
  });

  it("changing a held-out cell's embedding leaves its own fold's axes unchanged (and changes the others')", () => {
    const row = folds.indexOf(2);
    const before = outOfFoldScores(fixtureInput(), folds);
    const changed = fixtureInput();
    for (const channel of [changed.actin, changed.nucleus]) {
      for (let j = 0; j < d; j++) channel.emb[row * d + j] = j === 0 ? 10 : 0.01;
    }
    const after = outOfFoldScores(changed, folds);
    assert.deepEqual(after.folds[2].axes, before.folds[2].axes);
    assert.notDeepEqual(after.folds[0].axes.actin.muE.concat(after.folds[0].axes.actin.muM),
      before.folds[0].axes.actin.muE.concat(before.folds[0].axes.actin.muM));
    assert.notEqual(after.scores.actin[row], before.scores.actin[row]);
  });

  it("a fold's tuned fusion weight ignores that fold's cells entirely", () => {
    const fold = 3;
    const before = crossValidate(fixtureInput(), folds);
    const tuningRows = new Set(before.tuned.folds[fold].tuningRows);
    assert.ok(folds.every((f, row) => f !== fold || !tuningRows.has(row)));
    // Replace every cell of the fold by noise: the other folds' weights may move, this fold's may not.
    const changed = fixtureInput();
    const rng = new Rng(99);
    folds.forEach((f, row) => {
      if (f !== fold) return;
      for (const channel of [changed.actin, changed.nucleus]) {
        for (let j = 0; j < d; j++) channel.emb[row * d + j] = 0.1 + rng.next();
      }
    });
    const after = crossValidate(changed, folds);
    assert.equal(after.tuned.folds[fold].actinWeight, before.tuned.folds[fold].actinWeight);
    assert.equal(after.tuned.folds[fold].innerAuc, before.tuned.folds[fold].innerAuc);
    assert.notDeepEqual(after.oof.scores.actin, before.oof.scores.actin);
  });
});

describe("validation: folds", () => {
  it("assignFolds is stratified, balanced, seeded, and leaves non-anchor cells out", () => {
    const foldOf = assignFolds(conditions, anchors, 5, 7);
    for (const anchor of anchors) {
      const perFold = [0, 0, 0, 0, 0];
      conditions.forEach((c, row) => { if (c === anchor) perFold[foldOf[row]]++; });
      assert.ok(Math.max(...perFold) - Math.min(...perFold) <= 1, `${anchor}: ${perFold}`);
    }
    conditions.forEach((c, row) => assert.equal(foldOf[row] === NOT_IN_A_FOLD, !anchors.includes(c)));
    assert.deepEqual(assignFolds(conditions, anchors, 5, 7), foldOf);
    assert.notDeepEqual(assignFolds(conditions, anchors, 5, 8), foldOf);
  });

  it("an anchor condition without cells is named, with the conditions present", () => {
    const input = { ...fixtureInput(), anchors: ["Ctrl", "TGFB"] as [string, string] };
    assert.throws(() => validate(input), /anchor condition "TGFB" has no cells \(conditions present: .*TNFTGF/);
  });

  it("bad fold assignments are clear Errors", () => {
    const input = fixtureInput();
    const nonAnchor = folds.indexOf(NOT_IN_A_FOLD);
    assert.throws(() => outOfFoldScores(input, folds.map((f, i) => (i === nonAnchor ? 0 : f))),
      new RegExp(`row ${nonAnchor} is not an anchor cell but is in fold 0`));
    assert.throws(() => outOfFoldScores(input, folds.slice(1)), /59 folds given for 60 cells/);
    assert.throws(() => outOfFoldScores(input, folds.map((f) => (f >= 0 ? f % 2 : f))), /at least 3 folds/);
    // 6 Ctrl cells in folds 0, 0, 1, 1, 1, 2: without folds 0 and 1 a single Ctrl cell is left to build an axis.
    const small = syntheticInput(1, 6, 4, 1);
    const dealt = { Ctrl: [0, 0, 1, 1, 1, 2], TNFTGF: [0, 1, 2, 0, 1, 2] } as Record<string, number[]>;
    const unbalanced = small.conditions.map((c) => dealt[c]?.shift() ?? NOT_IN_A_FOLD);
    assert.throws(() => outOfFoldScores(small, unbalanced), /leaving two folds out keeps 1 "Ctrl" cell\(s\) of 6/);
    assert.throws(() => validate(input, { folds: 19, bootstrap: 0, permutations: 0 }),
      /fold 18 has no "Ctrl" cell \(18 cells for 19 folds\); use fewer folds/);
  });
});

describe("validation: fusion weight choice", () => {
  const rows = { epithelial: [0, 1, 2], mesenchymal: [3, 4, 5] };

  it("equal AUC everywhere: the weight closest to 0.5, then the smaller one", () => {
    const same = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    assert.equal(chooseActinWeight(same, same, rows).weight, 0.5);
    assert.equal(chooseActinWeight(same, same, rows, [0.6, 0.4, 0.9]).weight, 0.4);
  });

  it("a channel that separates the anchors wins over one that inverts them", () => {
    const separating = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
    const inverted = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
    // The first weight reaching AUC 1 is where w*0.3 + (1-w)*0.7 < w*0.7 + (1-w)*0.3, i.e. w > 0.5: 0.55.
    assert.deepEqual(chooseActinWeight(separating, inverted, rows), { weight: 0.55, auc: 1 });
    assert.deepEqual(chooseActinWeight(inverted, separating, rows), { weight: 0.45, auc: 1 });
  });

  it("rejects an empty grid or a weight outside [0, 1]", () => {
    assert.throws(() => chooseActinWeight([0], [0], rows, []), /grid is empty/);
    assert.throws(() => chooseActinWeight([0], [0], rows, [0.5, 1.5]), /1\.5 is not in \[0, 1\]/);
  });
});

describe("validation: bootstrap intervals (properties)", () => {
  const normalSample = (seed: number, size: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: size }, () => rng.normal());
  };
  const meanOf = (values: number[]) => (resample: readonly (readonly number[])[]) =>
    resample[0].reduce((sum, i) => sum + values[i], 0) / resample[0].length;

  it("the interval of a mean contains it and narrows like 1/sqrt(n)", () => {
    const width = (size: number) => {
      const values = normalSample(size, size);
      const rows = values.map((_, i) => i);
      const { ci } = stratifiedBootstrap([rows], { mean: meanOf(values) }, 1000, 0.95, 1).mean;
      assert.ok(ci !== null);
      const mean = meanOf(values)([rows]);
      assert.ok(ci[0] < mean && mean < ci[1], `${mean} outside [${ci}]`);
      return ci[1] - ci[0];
    };
    // 16x the cells: width / 4 in theory (3.92 / sqrt(n) for a unit normal); / 2.5 leaves room for sampling noise.
    const [small, large] = [width(30), width(480)];
    assert.ok(large < small / 2.5, `width ${large} with 480 cells vs ${small} with 30`);
    assert.ok(Math.abs(small - 3.92 / Math.sqrt(30)) < 0.3 * small, `width ${small} far from 1.96*2/sqrt(30)`);
  });

  it("the same seed gives the same interval, another seed another one", () => {
    const values = normalSample(3, 50);
    const rows = values.map((_, i) => i);
    const run = (seed: number) => stratifiedBootstrap([rows], { mean: meanOf(values) }, 200, 0.9, seed).mean.ci;
    assert.deepEqual(run(5), run(5));
    assert.notDeepEqual(run(5), run(6));
  });

  it("resamples where a statistic is undefined are counted, not used", () => {
    // Two strata of two distinct values: half the resamples of each are constant, and Cohen's d with two
    // constant groups throws. P(both constant) = 1/4.
    const scores = [0, 1, 2, 3];
    const d = (resample: readonly (readonly number[])[]) => {
      const [a, b] = resample.map((rows) => rows.map((i) => scores[i]));
      const spread = (v: number[]) => Math.max(...v) - Math.min(...v);
      if (spread(a) === 0 && spread(b) === 0) throw new Error("constant");
      return b[0] - a[0];
    };
    const { undefined_resamples, note } = stratifiedBootstrap([[0, 1], [2, 3]], { d }, 2000, 0.95, 2).d;
    // Binomial(2000, 1/4): SD ~ 0.0097 of the share; 0.04 is 4 SD, and the seed makes it deterministic anyway.
    assert.ok(Math.abs(undefined_resamples / 2000 - 0.25) < 0.04, `${undefined_resamples} of 2000 undefined`);
    assert.equal(note, "constant");
  });

  it("validate: each out-of-fold estimate lies inside its interval on a clear case", () => {
    const { summary } = validate(syntheticInput(11, 40, 8, 1.5), { bootstrap: 300, permutations: 0, seed: 4 });
    for (const [name, s] of Object.entries(summary.scores)) {
      const inside = (value: number, ci: [number, number] | null, what: string) => {
        assert.ok(ci !== null && ci[0] <= value && value <= ci[1], `${name} ${what}: ${value} outside [${ci}]`);
      };
      inside(s.auc_out_of_fold, s.auc_out_of_fold_ci, "AUC");
      inside(s.cohens_d_out_of_fold, s.cohens_d_out_of_fold_ci, "Cohen's d");
      for (const m of s.condition_means_out_of_fold) inside(m.mean, m.ci, `mean of ${m.condition}`);
    }
    const tunedCi = summary.tuned_fusion.auc_out_of_fold_ci;
    assert.ok(tunedCi !== null && 0 <= tunedCi[0] && tunedCi[0] <= tunedCi[1] && tunedCi[1] <= 1, `[${tunedCi}]`);
  });
});

describe("validation: permutation test (properties)", () => {
  it("separated anchors: p is the smallest possible, 1 / (1 + permutations)", () => {
    const input = syntheticInput(21, 30, 10, 2);
    const result = permutationTest(input, assignFolds(input.conditions, input.anchors, 5, 0), 199, 1);
    for (const p of Object.values(result.p)) assert.equal(p, 1 / 200);
    for (const mean of Object.values(result.null_mean)) assert.ok(Math.abs(mean - 0.5) < 0.05, `null mean ${mean}`);
  });

  it("anchors from one distribution: p is not small, and the observed statistic is the out-of-fold AUC", () => {
    const input = syntheticInput(31, 30, 10, 0);
    const foldOf = assignFolds(input.conditions, input.anchors, 5, 0);
    const result = permutationTest(input, foldOf, 199, 1);
    for (const [name, p] of Object.entries(result.p)) assert.ok(p > 0.05, `${name}: p = ${p} under the null`);
    // The test's fast Gram-matrix path and the axis path rank the same cells the same way.
    const { summary } = validate(input, { foldOf, bootstrap: 0, permutations: 0 });
    for (const [name, observed] of Object.entries(result.observed)) {
      assertClose([observed], [summary.scores[name as keyof typeof summary.scores].auc_out_of_fold], name, 1e-12);
    }
  });

  it("the same seed gives the same p-values", () => {
    const input = syntheticInput(41, 20, 6, 0.3);
    const foldOf = assignFolds(input.conditions, input.anchors, 5, 0);
    assert.deepEqual(permutationTest(input, foldOf, 99, 3), permutationTest(input, foldOf, 99, 3));
  });
});

describe("validation: validate() output", () => {
  it("is plain JSON (no NaN, no typed arrays) and has one column value per cell", () => {
    const input = syntheticInput(51, 20, 6, 1);
    const { summary, columns } = validate(input, { bootstrap: 100, permutations: 50 });
    assert.deepEqual(JSON.parse(JSON.stringify(summary)), summary);
    for (const column of Object.values(columns)) assert.equal(column.length, input.conditions.length);
    assert.equal(summary.settings.folds, 5);
    assert.equal(summary.permutation?.n_permutations, 50);
    assert.equal(summary.folds.length, 5);
  });

  it("negative or fractional resample counts are Errors", () => {
    const input = syntheticInput(53, 20, 6, 1);
    assert.throws(() => validate(input, { bootstrap: -1 }), /bootstrap must be an integer >= 0, got -1/);
    assert.throws(() => validate(input, { permutations: 2.5 }), /permutations must be an integer >= 0, got 2\.5/);
  });

  it("bootstrap 0 and permutations 0 skip them (null, not NaN)", () => {
    const { summary } = validate(syntheticInput(52, 20, 6, 1), { bootstrap: 0, permutations: 0 });
    assert.equal(summary.permutation, null);
    assert.equal(summary.scores.tem_fused.auc_out_of_fold_ci, null);
    assert.equal(summary.scores.tem_fused.permutation_p, null);
  });
});
