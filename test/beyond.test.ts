// lib/beyond.ts: the notebook's "Beyond the reference" glue. Tables, figures and sentences are checked on hand-made
// validation summaries and comparisons (every expected number is written out here), the run adapters on a small
// synthetic set scored by scorePairs with a closed-form encoder, and the encoder choice with the shared Darknet Tiny.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { RESNET18_SPEC } from "../lib/backbones";
import {
  comparisonSpecs, comparisonTable, conditionMeansTable, datasetTruth, describeBeyondRun, describeComparisonScope,
  encoderIndex, explainComparison, explainLatent, explainValidation, formatInterval, GALLERY_FILE, latentScatter,
  latentTable, runEmbeddingMap, saveGallery, scoreBeyondRun, scoresBySample, showAndSaveFigure, strongestFeature,
  validationFigure, validationSummary, validationTable,
} from "../lib/beyond";
import { formatComparison, truthBySample, type CompareResult, type EncoderComparison } from "../lib/compare";
import { openCelltool, type CelltoolDataset } from "../lib/dataset";
import { createNotebookDisplay, type MimeBundle } from "../lib/display";
import type { Encoder, EncoderInfo } from "../lib/encoder";
import { montageLayout } from "../lib/composite";
import { l2Normalize } from "../lib/axis";
import { temMetrics } from "../lib/metrics";
import type { FeatureCorrelation } from "../lib/morphology";
import { scorePairs, type DualEncoders, type ScoreRun } from "../lib/pipeline";
import { generateSynthetic, readTruth } from "../lib/synth";
import type { ValidationSummary } from "../lib/validation";
import { DARKNET_TINY, requireFile } from "./paths";

const quiet = (): void => undefined;

// ---------------------------------------------------------------------------------------------------------------
// Hand-made inputs

/** A validation summary with round numbers, so every cell of the table and every sentence can be written out. */
function summaryFixture(): ValidationSummary {
  const score = (aucIn: number, aucOof: number, ci: [number, number] | null, p: number | null) => ({
    auc_in_sample: aucIn, auc_out_of_fold: aucOof, auc_out_of_fold_ci: ci,
    cohens_d_in_sample: 2.5, cohens_d_out_of_fold: 2.0, cohens_d_out_of_fold_ci: [1.5, 2.5] as [number, number],
    permutation_p: p,
    condition_means_out_of_fold: [
      { condition: "Ctrl", n: 10, mean: 0.3, ci: [0.25, 0.35] as [number, number] },
      { condition: "TGF", n: 4, mean: 0.5, ci: null },
      { condition: "TNFTGF", n: 12, mean: 0.7, ci: [0.65, 0.75] as [number, number] },
    ],
  });
  return {
    conventions: {},
    settings: { folds: 5, seed: 0, bootstrap: 1000, permutations: 1000, confidence: 0.95, fusion: [0.5, 0.5],
      percentiles: [1, 99], weight_grid: [0, 0.5, 1] },
    n_cells: 26,
    anchors: { epithelial: "Ctrl", mesenchymal: "TNFTGF", n_epithelial: 10, n_mesenchymal: 12 },
    folds: [],
    scores: {
      tem_actin: score(0.9, 0.8, [0.7, 0.9], 0.002),
      tem_nucleus: score(0.7, 0.6, null, 0.2),
      tem_fused: score(0.95, 0.9, [0.85, 0.97], 1 / 1001),
    },
    tuned_fusion: { actin_weights: [0.5, 0.55, 0.5, 0.45, 0.5], auc_out_of_fold: 0.875, auc_out_of_fold_ci: [0.8, 0.95],
      deployed_actin_weight: 0.55, deployed_inner_auc: 0.91 },
    permutation: { n_permutations: 1000, observed: { tem_actin: 0.8, tem_nucleus: 0.6, tem_fused: 0.9 },
      p: { tem_actin: 0.002, tem_nucleus: 0.2, tem_fused: 1 / 1001 }, null_mean: { tem_actin: 0.5, tem_nucleus: 0.5, tem_fused: 0.502 } },
  };
}

function encoderInfo(encoder: string, label: string, verified = false): EncoderInfo {
  return { encoder, engine: "onnx", backend: "cpu", device: "cpu", weights: { label, sha256: "0".repeat(64), verified },
    input: "grey/3 x3, [0,1]" };
}

function encoderFixture(spec: string, label: string, aucOof: number, order: string[], embedded: number): EncoderComparison {
  return {
    spec, label, info: encoderInfo(spec, label), warning: "WARNING: fixture",
    auc_in_sample: { tem_actin: 0.9, tem_nucleus: 0.8, tem_fused: 0.95 },
    auc_out_of_fold: { tem_actin: 0.85, tem_nucleus: 0.75, tem_fused: aucOof },
    auc_out_of_fold_tuned_fusion: 0.88,
    condition_means: [
      { condition: "Ctrl", n: 2, mean_in_sample: 0.1, mean_out_of_fold: 0.12 },
      { condition: "TNFTGF", n: 2, mean_in_sample: 0.9, mean_out_of_fold: 0.85 },
    ],
    condition_order: order,
    spearman_latent: { tem_actin: 0.5, tem_nucleus: 0.4, tem_fused: 0.6 },
    spearman_latent_within: [{ condition: "Ctrl", n: 2, spearman: null }, { condition: "TNFTGF", n: 2, spearman: 0.25 }],
    timing: { images_embedded: embedded, busy_seconds: 0, ms_per_image: null, wall_seconds: 1 },
    tem_fused: [0.1, 0.2, 0.8, 0.9],
  };
}

function comparisonFixture(embedded = [0, 0], orders = [["Ctrl", "TNFTGF"], ["Ctrl", "TNFTGF"]]): CompareResult {
  return {
    dataset: { source: "/data", root: "/data", pairs: 4, conditions: ["Ctrl", "TNFTGF"] },
    anchors: ["Ctrl", "TNFTGF"], fusion: [0.5, 0.5], folds: 5, seed: 0,
    cells: ["Ctrl/1.png", "Ctrl/2.png", "TNFTGF/1.png", "TNFTGF/2.png"].map((id) => ({ sample_id: id, condition: id.split("/")[0] })),
    encoders: [encoderFixture("resnet18", "resnet18 · seed0 (UNVERIFIED)", 0.9, orders[0], embedded[0]),
      encoderFixture("tfjs:/m/model.json", "tfjs · Darknet Tiny — not the method's ResNet18", 0.8, orders[1], embedded[1])],
    agreement: [{ a: 0, b: 1, spearman: 0.7, pearson: 0.65 }],
    latent_condition_only_spearman: 0.55,
    scatter: null,
  };
}

/** An HTML table's rows as arrays of cell texts. */
function htmlRows(html: string): string[][] {
  return [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) => [...m[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/g)].map((c) => c[1]));
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Honest validation

describe("beyond: the honest validation as a table, a figure and sentences", () => {
  const summary = summaryFixture();

  it("validationSummary returns the summary, or an Error with the reason it was not computed", () => {
    assert.equal(validationSummary({ result: { summary, columns: {} as never } }), summary);
    assert.throws(() => validationSummary({ reason: "anchor Ctrl has 2 cells for 5 folds" }),
      /^Error: the honest validation did not run: anchor Ctrl has 2 cells for 5 folds$/);
  });

  it("formatInterval writes both ends with 3 decimals, or says it was not computed", () => {
    assert.deepEqual([formatInterval([0.1234, 1]), formatInterval(null)], ["0.123 to 1.000", "not computed"]);
  });

  it("validationTable: one row per score, then the tuned fusion (out of fold only)", () => {
    const t = validationTable(summary, "caption <main>");
    assert.match(t.html, /<caption[^>]*>caption &lt;main&gt;<\/caption>/);
    assert.deepEqual(htmlRows(t.html), [
      ["score", "AUC in-sample", "AUC out-of-fold", "AUC out-of-fold, 95 % CI", "Cohen's d in-sample",
        "Cohen's d out-of-fold", "Cohen's d out-of-fold, 95 % CI", "permutation p"],
      ["tem_actin", "0.9000", "0.8000", "0.700 to 0.900", "2.500", "2", "1.500 to 2.500", "0.0020"],
      ["tem_nucleus", "0.7000", "0.6000", "not computed", "2.500", "2", "1.500 to 2.500", "0.20"],
      ["tem_fused", "0.9500", "0.9000", "0.850 to 0.970", "2.500", "2", "1.500 to 2.500", "0.0010"],
      ["tem_fused, tuned fusion", "", "0.8750", "0.800 to 0.950", "", "", "", ""],
    ]);
    assert.match(t.text, /^caption <main>\nscore +AUC in-sample/);
  });

  it("conditionMeansTable: in-sample mean from the metrics beside the out-of-fold mean and its interval", () => {
    // In-sample means: Ctrl (0 + 0.5) / 2 = 0.25, TGF 0.5, TNFTGF (0.5 + 1) / 2 = 0.75.
    const metrics = temMetrics({
      scores: { tem_actin: [0, 0.5, 0.5, 0.5, 1], tem_nucleus: [0, 0.5, 0.5, 0.5, 1], tem_fused: [0, 0.5, 0.5, 0.5, 1] },
      conditions: ["Ctrl", "Ctrl", "TGF", "TNFTGF", "TNFTGF"], anchors: ["Ctrl", "TNFTGF"],
    });
    assert.deepEqual(htmlRows(conditionMeansTable(summary, metrics, "means").html).slice(1), [
      ["Ctrl", "epithelial anchor", "10", "0.2500", "0.3000", "0.250 to 0.350"],
      ["TGF", "not an anchor (same axis both ways)", "4", "0.5000", "0.5000", "not computed"],
      ["TNFTGF", "mesenchymal anchor", "12", "0.7500", "0.7000", "0.650 to 0.750"],
    ]);
    const withoutTgf = temMetrics({
      scores: { tem_actin: [0, 0.5, 0.5, 1], tem_nucleus: [0, 0.5, 0.5, 1], tem_fused: [0, 0.5, 0.5, 1] },
      conditions: ["Ctrl", "Ctrl", "TNFTGF", "TNFTGF"], anchors: ["Ctrl", "TNFTGF"],
    });
    assert.throws(() => conditionMeansTable(summary, withoutTgf, "means"), /condition "TGF" has no in-sample tem_fused mean/);
  });

  it("validationFigure: grey in-sample bars, blue out-of-fold bars with asymmetric CI error bars, warning in the title", () => {
    const fig = validationFigure(summary, { warning: "WARNING: fixture weights" });
    const [inSample, outOfFold] = fig.data;
    assert.deepEqual([inSample.name, inSample.x, inSample.y], ["in-sample (optimistic)", ["tem_actin", "tem_nucleus", "tem_fused"], [0.9, 0.7, 0.95]]);
    assert.deepEqual([outOfFold.name, outOfFold.x, outOfFold.y],
      ["out-of-fold", ["tem_actin", "tem_nucleus", "tem_fused", "tem_fused, tuned fusion"], [0.8, 0.6, 0.9, 0.875]]);
    const errors = outOfFold.error_y as { symmetric: boolean; array: number[]; arrayminus: number[] };
    assert.equal(errors.symmetric, false);
    // hi - value and value - lo: (0.9 - 0.8, 0 (no interval), 0.97 - 0.9, 0.95 - 0.875) and (0.8 - 0.7, 0, 0.9 - 0.85, 0.875 - 0.8)
    const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-12, `${a} vs ${b}`));
    close(errors.array, [0.1, 0, 0.07, 0.075]);
    close(errors.arrayminus, [0.1, 0, 0.05, 0.075]);
    assert.equal(fig.layout.barmode, "group");
    assert.match(fig.layout.title.text, /^Anchor ROC-AUC \(TNFTGF vs Ctrl\): in-sample vs out-of-fold, 95 % CI<br>.*WARNING: fixture weights/);
  });

  it("explainValidation: optimism, Cohen's d, channels, the permutation floor, and the tuned fusion", () => {
    const lines = explainValidation(summary);
    assert.deepEqual(lines, [
      "5-fold cross-validation over the 10 Ctrl and 12 TNFTGF cells: each anchor cell was scored on an axis built without it.",
      "Out of fold, tem_fused separates Ctrl from TNFTGF with AUC 0.900 (95 % CI 0.850 to 0.970), against 0.950 in-sample: " +
        "the in-sample number was optimistic by 0.050.",
      "Cohen's d of tem_fused: 2.500 in-sample, 2.000 out of fold (95 % CI 1.500 to 2.500).",
      "Per channel, out-of-fold AUC: tem_actin 0.800 (in-sample 0.900), tem_nucleus 0.600 (in-sample 0.700).",
      "Permutation test: the Ctrl/TNFTGF labels were shuffled 1000 times and the whole cross-validation rebuilt each time. " +
        "The shuffled out-of-fold AUC of tem_fused averaged 0.502 and reached the real 0.900 with p = 0.0010 (the smallest p " +
        "1000 permutations can give: the separation is not chance).",
      "Fusion tuned on the training folds only: actin weight 0.5, 0.55, 0.5, 0.45, 0.5 (one per fold). Out-of-fold AUC 0.875 " +
        "with tuned weights vs 0.900 with the fixed 0.5/0.5: tuning loses 0.025 (weights chosen on fewer cells are noisier). " +
        "Chosen on every anchor's out-of-fold scores, the weights to use on new data would be actin 0.55, nucleus 0.45.",
    ]);
    const held = { ...summary, scores: { ...summary.scores, tem_fused: { ...summary.scores.tem_fused, auc_in_sample: 0.902 } },
      permutation: null };
    const heldLines = explainValidation(held);
    assert.match(heldLines[1], /against 0\.902 in-sample: the in-sample number holds up on held-out cells\.$/);
    assert.equal(heldLines[4], "The permutation test was not run.");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. and 7. The comparison and the latent state

describe("beyond: the backbone comparison as a table and sentences", () => {
  it("comparisonSpecs and describeComparisonScope: resnet18, plus the beyond encoder when it is another one", () => {
    assert.deepEqual(comparisonSpecs({ spec: RESNET18_SPEC }), ["resnet18"]);
    assert.deepEqual(comparisonSpecs({ spec: "tfjs:/m/model.json" }), ["resnet18", "tfjs:/m/model.json"]);
    assert.equal(describeComparisonScope({ spec: RESNET18_SPEC, reason: "no Darknet Tiny at /x" }),
      "One encoder only, so there is nothing to compare it with: no Darknet Tiny at /x.");
    assert.equal(describeComparisonScope({ spec: "tfjs:/m", reason: "Darknet, NOT the method's" }),
      "resnet18 (the main run's weights) against tfjs:/m: Darknet, NOT the method's.");
  });

  it("comparisonTable: one column per encoder, one row per metric; text fallback = formatComparison", () => {
    const result = comparisonFixture([0, 44]);
    const t = comparisonTable(result);
    const rows = htmlRows(t.html);
    assert.deepEqual(rows[0], ["", "#0 resnet18 · seed0 (UNVERIFIED)", "#1 tfjs · Darknet Tiny — not the method's ResNet18"]);
    const byName = new Map(rows.slice(1).map((r) => [r[0], r.slice(1)]));
    assert.deepEqual(byName.get("AUC out-of-fold: actin / nucleus / fused"), ["0.850 / 0.750 / 0.900", "0.850 / 0.750 / 0.800"]);
    assert.deepEqual(byName.get("mean tem_fused, TNFTGF (n=2): in-sample / out-of-fold"), ["0.900 / 0.850", "0.900 / 0.850"]);
    assert.deepEqual(byName.get("Spearman with the latent state: actin / nucleus / fused"), ["0.500 / 0.400 / 0.600", "0.500 / 0.400 / 0.600"]);
    assert.deepEqual(byName.get("images embedded for this comparison (0: all from the cache)"), ["0", "44"]);
    assert.equal(t.text, formatComparison(result));
    const noTruth = comparisonTable({ ...result, latent_condition_only_spearman: null });
    assert.ok(!noTruth.html.includes("latent"), "no latent row without truth");
  });

  it("explainComparison: agreement, condition order, AUC, the latent baseline and what the cache saved", () => {
    assert.deepEqual(explainComparison(comparisonFixture()), [
      "resnet18 · seed0 (UNVERIFIED) and tfjs · Darknet Tiny — not the method's ResNet18 rank the cells with Spearman 0.700 " +
        "(1 = the same order, 0 = unrelated; Pearson 0.650).",
      "Every encoder puts the conditions in the order Ctrl < TNFTGF (mean tem_fused).",
      "Out-of-fold AUC of tem_fused: #0 0.900, #1 0.800.",
      "Spearman of tem_fused with the known latent EMT state: #0 0.600, #1 0.600; a score that knew only each cell's " +
        "condition would reach 0.550. Above that, a score sees differences between cells of the same condition.",
      "No image was embedded for this comparison: every embedding came from the cache the runs above filled.",
    ]);
    const differing = explainComparison(comparisonFixture([3, 4], [["Ctrl", "TNFTGF"], ["TNFTGF", "Ctrl"]]));
    assert.equal(differing[1], "The encoders order the conditions differently: #0 Ctrl < TNFTGF; #1 TNFTGF < Ctrl.");
    assert.equal(differing[4], "7 images were embedded for this comparison (the others came from the cache).");
  });

  it("encoderIndex finds an encoder by spec, or names the specs present", () => {
    const result = comparisonFixture();
    assert.equal(encoderIndex(result, "tfjs:/m/model.json"), 1);
    assert.throws(() => encoderIndex(result, "tfjs:/other"), /encoder tfjs:\/other is not in the comparison \(resnet18, tfjs:\/m\/model\.json\)/);
  });

  it("latentTable and explainLatent: each score, the condition-only baseline, and within each condition", () => {
    const result = comparisonFixture();
    assert.deepEqual(htmlRows(latentTable(result, 1).html).slice(1), [
      ["tem_actin", "4", "0.5000"], ["tem_nucleus", "4", "0.4000"], ["tem_fused", "4", "0.6000"],
      ["baseline: only the cell's condition", "4", "0.5500"],
      ["tem_fused within Ctrl", "2", "undefined (&lt; 3 cells or constant)"], ["tem_fused within TNFTGF", "2", "0.2500"],
    ]);
    assert.deepEqual(explainLatent(result, 1), [
      "tem_fused ranks the cells like their latent EMT state with Spearman 0.600; knowing only each cell's condition gives " +
        "0.550: above it, so the score also orders cells within a condition.",
      "Within each condition: TNFTGF 0.250 (n=2); 0 would mean that, inside a condition, the score is unrelated to how far each cell went.",
    ]);
    const noTruth = { ...result, latent_condition_only_spearman: null };
    assert.throws(() => latentTable(noTruth, 0), /no latent-state agreement \(was truth given\?\)/);
    assert.throws(() => explainLatent(noTruth, 0), /no latent-state agreement/);
  });
});

describe("beyond: morphometrics helpers", () => {
  it("scoresBySample maps sample ids to the chosen score", () => {
    const rows = [{ sample_id: "a", condition: "Ctrl", tem_actin: 0.1, tem_nucleus: 0.2, tem_fused: 0.15 }];
    assert.deepEqual([...scoresBySample(rows, "tem_nucleus")], [["a", 0.2]]);
    assert.deepEqual([...scoresBySample(rows)], [["a", 0.15]]);
  });

  it("strongestFeature takes the first defined correlation, and refuses when none is defined", () => {
    const c = (feature: FeatureCorrelation["feature"], spearman: number | null): FeatureCorrelation => ({ feature, spearman, pearson: spearman, n: 5 });
    assert.equal(strongestFeature([c("cell_area", null), c("actin_coherence", -0.8), c("cell_solidity", 0.2)]), "actin_coherence");
    assert.throws(() => strongestFeature([c("cell_area", null)]), /no morphology feature has a defined correlation/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Adapters on a real run

const SIZE = 8;

/** A closed-form encoder: the 8 x 8 image itself (plus 1, so no embedding is all zeros) is the embedding. */
function pixelEncoder(label: string): Encoder {
  return {
    info: { encoder: "pixels", engine: "onnx", backend: "cpu", device: "cpu", weights: { label, sha256: "1".repeat(64), verified: false } },
    inputSize: SIZE,
    dim: SIZE * SIZE,
    embed: async (batch) => batch.map((v) => v + 1),
    dispose: async () => undefined,
  };
}

const pixelEncoders = (): DualEncoders => ({ actin: pixelEncoder("pixels (test)"), nucleus: pixelEncoder("pixels (test)") });

describe("beyond: adapters from a score run", function () {
  let dir = "";
  let dataset: CelltoolDataset;
  let run: ScoreRun;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "beyond-"));
    // scale 0.04: Ctrl 7, TGF 2, TNF 5, TNFTGF 8 pairs; enough anchor cells for the 5 validation folds.
    await generateSynthetic({ out: path.join(dir, "cells"), scale: 0.04, seed: 1 });
    dataset = openCelltool(path.join(dir, "cells"));
    run = await scorePairs(dataset, pixelEncoders(), { cacheDir: null, fusion: [0.7, 0.3], validation: { bootstrap: 0, permutations: 0 } });
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("scoreBeyondRun reuses the main run when the choice is resnet18; describeBeyondRun says so", async () => {
    const beyond = await scoreBeyondRun(run, { spec: RESNET18_SPEC, methodEncoder: false, reason: "no Darknet Tiny at /x" });
    assert.equal(beyond.run, run, "the very same run, not a rescoring");
    assert.deepEqual([beyond.spec, beyond.reusedMainRun, beyond.reason], ["resnet18", true, "no Darknet Tiny at /x"]);
    const text = describeBeyondRun(beyond);
    assert.match(text, /^Encoder for the sections below: tfjs · pixels \(test\)\n/);
    assert.match(text, /\n {2}spec resnet18; 64 numbers per image; input as the engine feeds it\n/);
    assert.match(text, /\nWhy: no Darknet Tiny at \/x\.\nThis is NOT the method's ResNet18 with ImageNet weights/);
    assert.match(text, /Nothing was embedded again: the sections below reuse the scores of sections 8-15\.$/);
    const verified = { ...beyond, run: { ...run, encoders: { actin: encoderInfo("resnet18", "ImageNet", true), nucleus: run.encoders.nucleus } } };
    assert.match(describeBeyondRun(verified), /\nThis IS the method's encoder\.\n/);
  });

  it("scoreBeyondRun scores the main run's cells with Darknet Tiny through scorePairs, with the main run's anchors and fusion", async function () {
    requireFile(this, DARKNET_TINY, "the shared Darknet Tiny TF.js model");
    const spec = `tfjs:${DARKNET_TINY}`;
    const beyond = await scoreBeyondRun(run, { spec, methodEncoder: false, reason: "Darknet" }, { cacheDir: null, validation: false });
    assert.deepEqual([beyond.spec, beyond.reusedMainRun], [spec, false]);
    assert.equal(beyond.run.encoders.actin.encoder, spec);
    assert.deepEqual(beyond.run.rows.map((r) => r.sample_id), run.rows.map((r) => r.sample_id), "the same cells, in order");
    assert.deepEqual([beyond.run.anchors, beyond.run.scores.fusion], [run.anchors, [0.7, 0.3]]);
    assert.match(beyond.run.warning ?? "", /Darknet Tiny .*not the method's ResNet18/);
    assert.match(describeBeyondRun(beyond), new RegExp(`\nBoth channels of the ${run.rows.length} cells were embedded with it, then scored by the same scorePairs as the main run\\.$`));
  });

  it("runEmbeddingMap maps the channel's L2-normalised embeddings with its axis and its own score", () => {
    const fig = runEmbeddingMap(run, "nucleus");
    assert.match(fig.layout.title.text, /^nucleus embeddings: PC1 \+ PC2 explain/);
    const cells = fig.data.filter((t) => t.mode === "markers");
    assert.deepEqual(cells.map((t) => t.name), ["Ctrl (n=7)", "TGF (n=2)", "TNF (n=5)", "TNFTGF (n=8)"]);
    const hover = cells.flatMap((t) => t.text as string[]);
    const first = run.rows[0];
    assert.ok(hover.includes(`${first.sample_id}, tem_nucleus ${first.tem_nucleus.toFixed(3)}`), hover[0]);
    // PC coordinates are sign-ambiguous, distances between cells are not: the map's distances must not exceed those
    // of the unit vectors (a projection never lengthens one). The raw vectors (1 + pixels, norms near 8) are far
    // apart, so a map of them would break this at once.
    const { unit } = l2Normalize(run.embeddings.nucleus.vectors, run.embeddings.nucleus.n, run.embeddings.nucleus.dim);
    const xy = new Map(cells.flatMap((t) => (t.text as string[]).map((s, k): [string, number[]] =>
      [s.split(",")[0], [(t.x as number[])[k], (t.y as number[])[k]]])));
    const d = SIZE * SIZE;
    const unitDistance = (i: number, j: number) => Math.hypot(...Array.from({ length: d }, (_, k) => unit[i * d + k] - unit[j * d + k]));
    const mapDistance = (i: number, j: number) => Math.hypot(xy.get(run.rows[i].sample_id)![0] - xy.get(run.rows[j].sample_id)![0],
      xy.get(run.rows[i].sample_id)![1] - xy.get(run.rows[j].sample_id)![1]);
    // 1e-9: float64 rounding of 64-d sums.
    for (let j = 1; j < run.rows.length; j++) assert.ok(mapDistance(0, j) <= unitDistance(0, j) + 1e-9, `cell ${j}`);
  });

  it("saveGallery writes gallery.png atomically: 20 cells, 10 per row, the montage's exact size", async () => {
    const out = path.join(dir, "gallery-out");
    const { file, gallery } = await saveGallery(run, out, { columns: 10 });
    assert.equal(file, path.join(out, GALLERY_FILE));
    assert.ok(fs.readFileSync(file).equals(gallery.png));
    assert.equal(gallery.picked.length, 20);
    assert.deepEqual(gallery.picked.map((p) => p.quantile), Array.from({ length: 20 }, (_, j) => j / 19));
    const layout = montageLayout(20, 10, 160, 4, true);
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.width, meta.height], [layout.width, layout.height]);
    assert.deepEqual(fs.readdirSync(out), [GALLERY_FILE], "no temporary file left behind");
  });

  it("datasetTruth reads truth.csv beside the data, and is null without one", () => {
    const found = datasetTruth(dataset);
    assert.equal(found?.file, path.join(dataset.root, "truth.csv"));
    assert.deepEqual(found?.truth, truthBySample(readTruth(path.join(dataset.root, "truth.csv"))));
    assert.equal(found?.truth.size, dataset.pairs.length);
    assert.equal(datasetTruth({ root: path.join(dataset.root, "Ctrl"), source: path.join(dir, "missing.zip") }), null);
  });

  it("latentScatter puts the latent state on x and tem_fused on y; a cell without truth is an Error", () => {
    // A strictly increasing function of tem_fused: Spearman exactly 1, ties included.
    const truth = new Map(run.rows.map((r) => [r.sample_id, 0.5 * r.tem_fused + 0.1]));
    const fig = latentScatter(run, truth);
    assert.match(fig.layout.title.text, /\(Spearman 1\.000\)/);
    for (const trace of fig.data) {
      const ids = trace.text as string[];
      ids.forEach((id, k) => {
        const row = run.rows.find((r) => r.sample_id === id)!;
        assert.deepEqual([(trace.x as number[])[k], (trace.y as number[])[k]], [0.5 * row.tem_fused + 0.1, row.tem_fused]);
      });
    }
    truth.delete(run.rows[3].sample_id);
    assert.throws(() => latentScatter(run, truth), new RegExp(`truth.csv has no latent state for 1 scored cell\\(s\\): ${run.rows[3].sample_id}`));
  });

  it("showAndSaveFigure shows the figure once and writes its HTML (and PNG with a browser)", async () => {
    const sent: MimeBundle[] = [];
    const out = path.join(dir, "figures");
    const files = await showAndSaveFigure(createNotebookDisplay((b) => sent.push(b)), runEmbeddingMap(run, "actin"), out, "map");
    assert.equal(sent.length, 1);
    assert.ok("application/vnd.plotly.v1+json" in sent[0]);
    assert.equal(files[0], path.join(out, "map.html"));
    assert.match(fs.readFileSync(files[0], "utf8"), /Plotly\.newPlot/);
    assert.deepEqual(files.slice(1).map((f) => path.basename(f)), fs.existsSync(path.join(out, "map.png")) ? ["map.png"] : []);
  });
});
