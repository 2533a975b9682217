// lib/compare.ts: several encoders on the same synthetic cells. The comparison must report exactly what the score
// pipeline (scorePairs) and the validation (validate) give for each encoder, be deterministic (an encoder agrees
// with itself perfectly), and say which encoders are not the method's ResNet18.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openBackbonePair } from "../lib/backbones";
import {
  compareEncoders, comparisonScatter, comparisonWarning, formatComparison, truthBySample, type CompareResult,
} from "../lib/compare";
import { openCelltool, type CelltoolDataset } from "../lib/dataset";
import { SCORE_NAMES, spearman } from "../lib/metrics";
import { closeEncoders, scorePairs } from "../lib/pipeline";
import { generateSynthetic, readTruth } from "../lib/synth";
import { validate } from "../lib/validation";
import { convertWeights } from "../lib/weights";
import { DARKNET_TINY, requireFile, SEED0_WEIGHTS } from "./paths";

const quiet = (): void => undefined;
const DARKNET_SPEC = `tfjs:${DARKNET_TINY}`;
// 52 pairs (Ctrl 17, TGF 2, TNF 13, TNFTGF 20): enough anchors for 5 folds, small enough for seconds per encoder.
const SYNTH_SCALE = 0.1;
/**
 * The same network on the same images in two runs: onnxruntime's CPU kernels are deterministic for a fixed thread
 * count, so the floats agree exactly in practice. 1e-6 only allows for a reordered float32 reduction (embeddings
 * moving by ~1e-7 relative), far less than any wiring mistake: a wrong channel or anchor moves scores by O(0.1).
 */
const RERUN_TOLERANCE = 1e-6;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function allFinite(values: ArrayLike<number>): boolean {
  return Array.from(values).every(Number.isFinite);
}

describe("compare: truth and labels", function () {
  it("truthBySample maps sample ids to latent states and refuses a repeated id", function () {
    const rows = [{ sampleId: "Ctrl/Ctrl1.png", condition: "Ctrl", emt: 0.1 },
      { sampleId: "TGF/TGF1.png", condition: "TGF", emt: 0.6 }];
    assert.deepEqual([...truthBySample(rows)], [["Ctrl/Ctrl1.png", 0.1], ["TGF/TGF1.png", 0.6]]);
    assert.throws(() => truthBySample([...rows, rows[0]]), /sample_id "Ctrl\/Ctrl1\.png" appears twice/);
  });

  it("warns unless every encoder is the verified ImageNet ResNet18, naming each unverified one once", function () {
    const info = (label: string, verified: boolean) => ({
      encoder: "resnet18", engine: "onnx" as const, backend: "cpu", device: "cpu" as const,
      weights: { label, sha256: "0", verified },
    });
    assert.equal(comparisonWarning([info("torchvision ResNet18 IMAGENET1K_V1", true)]), null);
    const imagenet = info("torchvision ResNet18 IMAGENET1K_V1", true);
    const warning = comparisonWarning([info("A", false), imagenet, info("A", false), info("B", false)]);
    assert.match(warning ?? "", /^WARNING: computed with A; B: NOT torchvision's verified ImageNet ResNet18/);
  });
});

describe("compare: encoders on a small synthetic set", function () {
  this.timeout(300_000);
  let scratch: string;
  let dataset: CelltoolDataset;
  let truth: Map<string, number>;
  let weightsDir: string;
  /** resnet18 twice, each run embedding every image afresh. */
  let twice: CompareResult;

  before(async function () {
    requireFile(this, SEED0_WEIGHTS, "seed0 ResNet18 test weights");
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "compare-test-"));
    const data = path.join(scratch, "synthetic");
    await generateSynthetic({ out: data, seed: 0, scale: SYNTH_SCALE });
    dataset = openCelltool(data);
    truth = truthBySample(readTruth(path.join(data, "truth.csv")));
    weightsDir = path.join(scratch, "weights");
    convertWeights({ source: SEED0_WEIGHTS, outDir: weightsDir, unverified: true, log: quiet });
    twice = await compareEncoders({
      dataset, specs: ["resnet18", "resnet18"], truth, cacheDir: null, progress: false,
      backbone: { engine: "onnx", weightsDir },
    });
  });

  after(function () {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("reports every encoder, every cell, and only finite values", function () {
    assert.equal(twice.encoders.length, 2);
    assert.equal(twice.cells.length, dataset.pairs.length);
    assert.deepEqual(twice.cells.map((c) => c.sample_id), dataset.pairs.map((p) => p.sampleId));
    assert.deepEqual(twice.anchors, ["Ctrl", "TNFTGF"]);
    assert.equal(twice.folds, 5);
    for (const e of twice.encoders) {
      assert.equal(e.spec, "resnet18");
      assert.equal(e.info.input, "grey/3 x3, [0,1]");
      assert.equal(e.info.engine, "onnx");
      assert.match(e.label, /resnet18 · resnet18-torchvision-seed0\.pth \(UNVERIFIED\)/);
      assert.match(e.warning ?? "", /NOT torchvision's verified ImageNet ResNet18/);
      assert.equal(e.tem_fused.length, dataset.pairs.length);
      assert.ok(allFinite(e.tem_fused));
      for (const auc of [e.auc_in_sample, e.auc_out_of_fold]) {
        for (const name of SCORE_NAMES) assert.ok(auc[name] >= 0 && auc[name] <= 1, `${name} AUC ${auc[name]}`);
      }
      assert.deepEqual(e.condition_means.map((c) => c.condition), dataset.conditions);
      assert.deepEqual([...e.condition_order].sort(), [...dataset.conditions].sort());
      assert.ok(e.spearman_latent !== null && allFinite(Object.values(e.spearman_latent)));
      // No cache: every image of both channels went through the network once.
      assert.equal(e.timing.images_embedded, 2 * dataset.pairs.length);
      assert.ok(e.timing.ms_per_image !== null && e.timing.ms_per_image > 0);
      // Both channels embed at once: busy time is the union of their passes, within the run, not their sum.
      assert.ok(e.timing.busy_seconds > 0 && e.timing.busy_seconds <= e.timing.wall_seconds, JSON.stringify(e.timing));
    }
    assert.deepEqual(JSON.parse(JSON.stringify(twice)), twice, "the result is plain JSON");
  });

  it("measures what knowing only the condition gives: condition-mean latent state vs latent state", function () {
    const latent = dataset.pairs.map((p) => truth.get(p.sampleId)!);
    const meanOf = (condition: string) => {
      const values = dataset.pairs.flatMap((p, row) => (p.condition === condition ? [latent[row]] : []));
      return values.reduce((a, b) => a + b, 0) / values.length;
    };
    const expected = spearman(dataset.pairs.map((p) => meanOf(p.condition)), latent);
    // Same midrank arithmetic on the same doubles; only the mean's summation order could differ (ties stay ties).
    assert.ok(Math.abs(twice.latent_condition_only_spearman! - expected) < 1e-12);
    // Four distinct condition means over 52 cells rank the latent state well, but not perfectly.
    assert.ok(expected > 0.5 && expected < 1);
  });

  it("an encoder agrees with itself perfectly: the same scores, Spearman 1", function () {
    const [first, second] = twice.encoders;
    assertClose(second.tem_fused, first.tem_fused, RERUN_TOLERANCE, "rerun tem_fused");
    assert.equal(twice.agreement.length, 1);
    assert.deepEqual([twice.agreement[0].a, twice.agreement[0].b], [0, 1]);
    assert.ok(Math.abs(twice.agreement[0].spearman - 1) < 1e-12);
    assert.ok(Math.abs(twice.agreement[0].pearson - 1) < 1e-12);
  });

  it("reports exactly what a direct scorePairs run and validate() give", async function () {
    const encoders = await openBackbonePair("resnet18", { engine: "onnx", weightsDir, log: quiet });
    const run = await scorePairs(dataset, encoders, { cacheDir: null, progress: false })
      .finally(() => closeEncoders(encoders));
    const reported = twice.encoders[0];
    assertClose(reported.tem_fused, run.scores.tem_fused, RERUN_TOLERANCE, "tem_fused");
    for (const name of SCORE_NAMES) {
      assert.ok(Math.abs(reported.auc_in_sample[name] - run.metrics.scores[name].auc) < RERUN_TOLERANCE);
    }
    reported.condition_means.forEach((c, i) => {
      const direct = run.metrics.scores.tem_fused.by_condition[i];
      assert.equal(c.condition, direct.condition);
      assert.equal(c.n, direct.n);
      assert.ok(Math.abs(c.mean_in_sample - direct.mean) < RERUN_TOLERANCE);
    });
    const latent = dataset.pairs.map((p) => truth.get(p.sampleId)!);
    for (const name of SCORE_NAMES) {
      assert.ok(Math.abs(reported.spearman_latent![name] - spearman(run.scores[name], latent)) < RERUN_TOLERANCE);
    }
    // Inside each condition: that condition's cells only; TGF has 2 cells here, too few for a rank correlation.
    for (const within of reported.spearman_latent_within!) {
      const rows = dataset.pairs.flatMap((p, row) => (p.condition === within.condition ? [row] : []));
      assert.equal(within.n, rows.length);
      if (rows.length < 3) {
        assert.equal(within.spearman, null);
      } else {
        const expected = spearman(rows.map((row) => run.scores.tem_fused[row]), rows.map((row) => latent[row]));
        assert.ok(Math.abs(within.spearman! - expected) < RERUN_TOLERANCE, `${within.condition}`);
      }
    }
    assert.equal(reported.spearman_latent_within!.find((w) => w.condition === "TGF")!.n, 2);
    const { actin, nucleus } = run.embeddings;
    const validation = validate({
      actin: { emb: actin.vectors, n: actin.n, d: actin.dim },
      nucleus: { emb: nucleus.vectors, n: nucleus.n, d: nucleus.dim },
      conditions: dataset.pairs.map((p) => p.condition), anchors: run.anchors,
    }, { folds: 5, seed: 0, bootstrap: 0, permutations: 0 }).summary;
    for (const name of SCORE_NAMES) {
      assert.ok(Math.abs(reported.auc_out_of_fold[name] - validation.scores[name].auc_out_of_fold) < RERUN_TOLERANCE);
    }
    reported.condition_means.forEach((c, i) => {
      const oof = validation.scores.tem_fused.condition_means_out_of_fold[i];
      assert.ok(Math.abs(c.mean_out_of_fold - oof.mean) < RERUN_TOLERANCE);
    });
  });

  it("ResNet18 against the shared Darknet Tiny: both reported, scatter of one against the other", async function () {
    requireFile(this, DARKNET_TINY, "shared Darknet Tiny");
    const result = await compareEncoders({
      dataset, specs: ["resnet18", DARKNET_SPEC], truth, cacheDir: null, progress: false, backbone: { weightsDir },
    });
    const [resnet, darknet] = result.encoders;
    assert.equal(darknet.info.engine, "tfjs");
    assert.equal(darknet.info.input, "grey/3 x3, [0,1]");
    assert.match(darknet.label, /^tfjs · Darknet Tiny/);
    assert.ok(allFinite(darknet.tem_fused));
    // ImageNet features on cells drawn from their latent state: measured 0.95 on this set (random ResNet18: 0.92).
    // 0.5 only asks that the pretrained encoder ranks cells by their state at all; an unwired channel gives ~0.
    assert.ok(darknet.spearman_latent!.tem_fused > 0.5, `Spearman ${darknet.spearman_latent!.tem_fused}`);
    assert.ok(Math.abs(result.agreement[0].spearman - spearman(resnet.tem_fused, darknet.tem_fused)) < 1e-12);

    const figure = result.scatter!;
    assert.deepEqual(figure, comparisonScatter(result, 0, 1));
    const points = figure.data.flatMap((trace) => (trace.text as string[]).map((id, k) =>
      ({ id, x: (trace.x as number[])[k], y: (trace.y as number[])[k] })));
    assert.equal(points.length, dataset.pairs.length);
    for (const point of points) {
      const row = result.cells.findIndex((c) => c.sample_id === point.id);
      assert.equal(point.x, resnet.tem_fused[row]);
      assert.equal(point.y, darknet.tem_fused[row]);
    }
    assert.match(String(figure.layout.title.text), /Darknet Tiny/);
  });

  it("formats a table naming each encoder, its AUCs and the warning", function () {
    const text = formatComparison(twice);
    const e = twice.encoders[0];
    assert.ok(text.includes(e.label));
    assert.ok(text.includes(`${e.auc_in_sample.tem_actin.toFixed(3)} / ${e.auc_in_sample.tem_nucleus.toFixed(3)} / ` +
      `${e.auc_in_sample.tem_fused.toFixed(3)}`));
    assert.ok(text.includes(e.condition_order.join(" < ")));
    assert.match(text, /#0 vs #1: Spearman 1\.000/);
    assert.match(text, /WARNING: computed with resnet18-torchvision-seed0\.pth \(UNVERIFIED\)/);
    const markdown = formatComparison(twice, { markdown: true });
    const tableLines = markdown.split("\n").filter((line) => line.startsWith("|"));
    // Summary: header, rule, 2 encoders. Means: header, rule, one row per condition.
    assert.equal(tableLines.length, 4 + 2 + dataset.conditions.length);
    assert.ok(tableLines.every((line) => line.endsWith("|")));
  });

  it("refuses a truth that misses cells before embedding anything, and an empty list of encoders", async function () {
    const partial = new Map([...truth].slice(1));
    const missing = dataset.pairs.find((p) => !partial.has(p.sampleId))!.sampleId;
    // A spec that would fail on opening: the truth check must come first.
    await assert.rejects(compareEncoders({ dataset, specs: ["tfjs:/nowhere/model.json"], truth: partial }),
      (err: Error) => err.message.startsWith(`truth: no latent state for 1 of ${dataset.pairs.length} cells`) &&
        err.message.includes(missing));
    await assert.rejects(compareEncoders({ dataset, specs: [] }), /no encoder specs given/);
  });
});
