// lib/notebook.ts (parameters, data choice, summaries, tables, metrics in words) on closed-form cases, then
// notebooks/main.ipynb itself: executed headless on a small synthetic set with the project's tslab kernel, its
// outputs and rich outputs checked, and its HTML report drawn by headless Chromium.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { dumpDom, findChromium, screenshotHtml } from "../lib/browser";
import { montageLayout } from "../lib/composite";
import { openCelltool, type CelltoolDataset } from "../lib/dataset";
import type { MimeBundle } from "../lib/display";
import type { EmbedResult } from "../lib/embedding";
import { weightsWarning, type WeightsProvenance } from "../lib/encoder";
import { SCORE_COLUMNS, scoreRows, scoresFrame } from "../lib/frame";
import { executeNotebook, installKernel, jupyterPython } from "../lib/jupyter";
import { temMetrics, type TemMetrics } from "../lib/metrics";
import {
  batchSizes, describeDataset, explainMetrics, formatAxis, formatCell, formatNormCheck, formatP, formatSummary,
  frameTable, loadPairBatch, metricsSummaryRows, normCheck, notebookParameters, pairwiseRows, PARAMETER_ENV,
  resolveDataSource, rowsTable, showWarning, summarizeArray, tableHtml, tableText, unitGreyPng, warningHtml,
  writeMetricsSummary,
} from "../lib/notebook";
import { loadCell } from "../lib/preprocess";
import { generateSynthetic } from "../lib/synth";
import { convertWeights, defaultWeightsDir, WEIGHTS_MANIFEST } from "../lib/weights";
import { DARKNET_TINY, PROJECT_ROOT, requireFile, SEED0_WEIGHTS } from "./paths";

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

describe("notebook: parameters from CELLMORPHO_* variables", () => {
  const root = path.join(os.tmpdir(), "project");

  it("defaults to the method's settings, with outputs/ under the project", () => {
    assert.deepEqual(notebookParameters({}, root), {
      data: null, anchors: ["Ctrl", "TNFTGF"], fusion: [0.5, 0.5], engine: "auto", batchSize: 64,
      outDir: path.join(root, "outputs"), seed: 0,
    });
    assert.deepEqual(notebookParameters({ CELLMORPHO_BATCH: "  ", CELLMORPHO_DATA: "" }, root).batchSize, 64, "blank = unset");
  });

  it("reads every variable; relative paths are taken from the project root", () => {
    const env = {
      CELLMORPHO_DATA: "data/mine.zip", CELLMORPHO_ANCHORS: " DMSO , ProteinSynthesis ", CELLMORPHO_FUSION: "0.7, 0.3",
      CELLMORPHO_ENGINE: "tfjs", CELLMORPHO_BATCH: "16", CELLMORPHO_OUT: "/abs/out", CELLMORPHO_SEED: "4294967295",
    };
    assert.deepEqual(notebookParameters(env, root), {
      data: path.join(root, "data", "mine.zip"), anchors: ["DMSO", "ProteinSynthesis"], fusion: [0.7, 0.3],
      engine: "tfjs", batchSize: 16, outDir: "/abs/out", seed: 4294967295,
    });
  });

  it("refuses bad values with an Error naming the variable and the value", () => {
    const bad: [string, string, RegExp][] = [
      ["CELLMORPHO_ANCHORS", "Ctrl", /CELLMORPHO_ANCHORS must be two different condition names.*got "Ctrl"/],
      ["CELLMORPHO_ANCHORS", "Ctrl,Ctrl", /two different condition names/],
      ["CELLMORPHO_FUSION", "1", /CELLMORPHO_FUSION must be two non-negative weights.*got "1"/],
      ["CELLMORPHO_FUSION", "-1,2", /non-negative/],
      ["CELLMORPHO_FUSION", "0,0", /not both 0/],
      ["CELLMORPHO_FUSION", "a,1", /got "a,1"/],
      ["CELLMORPHO_ENGINE", "gpu", /CELLMORPHO_ENGINE must be one of auto, onnx, tfjs, got "gpu"/],
      ["CELLMORPHO_BATCH", "0", /CELLMORPHO_BATCH must be an integer from 1 to 4096, got "0"/],
      ["CELLMORPHO_BATCH", "2.5", /got "2.5"/],
      ["CELLMORPHO_SEED", "-1", /CELLMORPHO_SEED must be an integer from 0 to 4294967295, got "-1"/],
    ];
    for (const [name, value, message] of bad) {
      assert.throws(() => notebookParameters({ [name]: value }, root), message, `${name}=${value}`);
    }
    assert.deepEqual(Object.values(PARAMETER_ENV).sort(), ["CELLMORPHO_ANCHORS", "CELLMORPHO_BATCH", "CELLMORPHO_DATA",
      "CELLMORPHO_ENGINE", "CELLMORPHO_FUSION", "CELLMORPHO_OUT", "CELLMORPHO_SEED"]);
  });
});

describe("notebook: the data it opens", () => {
  let dir = "";
  let dataset: CelltoolDataset;

  before(async () => {
    dir = tempDir("notebook-data-");
    await generateSynthetic({ out: path.join(dir, "cells"), scale: 0.02, seed: 2 });
    dataset = openCelltool(path.join(dir, "cells"));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("takes the given path, else data/Celltool.zip, else the synthetic set under data/", async () => {
    const given = await resolveDataSource(path.join(dir, "cells"), { root: dir });
    assert.deepEqual([given.origin, given.path], ["parameter", path.join(dir, "cells")]);
    await assert.rejects(resolveDataSource(path.join(dir, "nowhere"), { root: dir }), /data parameter \(CELLMORPHO_DATA\): .*nowhere: no such file or folder/);

    // An existing data/synthetic (its truth.csv marks it complete) is used as it is, not regenerated.
    const root = path.join(dir, "project");
    fs.mkdirSync(path.join(root, "data", "synthetic"), { recursive: true });
    fs.writeFileSync(path.join(root, "data", "synthetic", "truth.csv"), "sample_id,condition,emt\n");
    const synthetic = await resolveDataSource(null, { root });
    assert.deepEqual([synthetic.origin, synthetic.path], ["synthetic", path.join(root, "data", "synthetic")]);
    assert.match(synthetic.description, /SYNTHETIC/);

    fs.writeFileSync(path.join(root, "data", "Celltool.zip"), "");
    const zip = await resolveDataSource(null, { root });
    assert.deepEqual([zip.origin, zip.path], ["celltool-zip", path.join(root, "data", "Celltool.zip")]);
  });

  it("describeDataset lists the conditions with their pairs and marks the anchors; a missing anchor is an Error", () => {
    // scale 0.02: every condition has max(2, round(n * 0.02)) pairs: Ctrl 3, TGF 2, TNF 3, TNFTGF 4
    assert.equal(describeDataset(dataset, ["ctrl", "TNFTGF"]), [
      `Celltool root: ${dataset.root}`,
      "each condition folder holds Actine/ (actin) and Noyaux/ (nucleus) images",
      "4 conditions, 12 actin/nucleus pairs:",
      "  Ctrl        3 pairs  <- epithelial anchor",
      "  TGF         2 pairs",
      "  TNF         3 pairs",
      "  TNFTGF      4 pairs  <- mesenchymal anchor",
    ].join("\n"));
    assert.throws(() => describeDataset(dataset, ["Ctrl", "EMT"]), /anchor condition "EMT" not found.*Ctrl 3, TGF 2, TNF 3, TNFTGF 4/);
  });

  it("loadPairBatch stacks both channels of each pair exactly as loadCell reads them, in [n, 1, 224, 224]", async () => {
    const pairs = dataset.pairs.slice(1, 4);
    const batch = await loadPairBatch(pairs);
    assert.deepEqual(batch.shape, [3, 1, 224, 224]);
    const pixels = 224 * 224;
    for (const [k, pair] of pairs.entries()) {
      assert.deepEqual(batch.actin.subarray(k * pixels, (k + 1) * pixels), await loadCell(pair.actinPath));
      assert.deepEqual(batch.nucleus.subarray(k * pixels, (k + 1) * pixels), await loadCell(pair.nucleusPath));
    }
    await assert.rejects(loadPairBatch([]), /no pairs given/);
  });
});

describe("notebook: arrays, images and embeddings in a few words", () => {
  it("summarizeArray gives shape, min, max and mean; formatSummary keeps integers whole", () => {
    const s = summarizeArray([4, 1, 3, 2], [2, 2]);
    assert.deepEqual(s, { shape: [2, 2], min: 1, max: 4, mean: 2.5 });
    assert.equal(formatSummary("grey", s), "grey: shape [2, 2], min 1, max 4, mean 2.500");
    assert.throws(() => summarizeArray([1, 2, 3], [2, 2]), /3 values cannot have shape \[2, 2\]/);
  });

  it("unitGreyPng writes round(v * 255), clipped to [0, 255], as a one-channel PNG", async () => {
    const png = await unitGreyPng([-0.5, 0, 0.5, 1, 1.5, 0.2], 3, 2);
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ["png", 3, 2, 1]);
    // read back as one channel: sharp's raw output would otherwise be RGB
    const { data } = await sharp(png).toColourspace("b-w").raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data], [0, 0, 128, 255, 255, 51]); // 127.5 rounds up; 0.2 * 255 = 51.000000000000004
    await assert.rejects(unitGreyPng([0, 1], 3, 2), /2 values for a 3x2 image/);
  });

  it("batchSizes: full batches, then the remainder", () => {
    assert.deepEqual(batchSizes(130, 64), [64, 64, 2]);
    assert.deepEqual(batchSizes(128, 64), [64, 64]);
    assert.deepEqual(batchSizes(5, 64), [5]);
    assert.deepEqual(batchSizes(0, 64), []);
    assert.throws(() => batchSizes(10, 0), /batch size must be a positive integer, got 0/);
  });

  it("normCheck: norms before and after L2 normalisation, all-zero rows counted apart", () => {
    const e: EmbedResult = { vectors: Float32Array.from([3, 4, 0, 0, 0, -2]), n: 3, dim: 2, cached: 0, rows: [0, 1, 2], unreadable: [] };
    const check = normCheck(e);
    assert.deepEqual({ ...check, unit: undefined }, { cells: 3, dim: 2, raw: { min: 0, max: 5 }, unit: undefined, zeroRows: 1 });
    // 3/5 and 4/5 in float64 give a norm within one ulp of 1; (0, -1) is exact
    assert.ok(Math.abs(check.unit.min - 1) < 1e-15 && Math.abs(check.unit.max - 1) < 1e-15, JSON.stringify(check.unit));
    assert.match(formatNormCheck("actin", check), /^actin: 3 x 2; norms before 0\.000 to 5\.000, after 1\.000000 to 1\.000000 \(all 1: ok\); 1 all-zero/);
    assert.match(formatNormCheck("actin", { ...check, unit: { min: 1, max: 1.01 } }), /NOT 1: check the embeddings/);
  });

  it("formatAxis names the anchors, |v| and the percentiles that map to 0 and 1", () => {
    const axis = {
      d: 2, epithelial: "Ctrl", mesenchymal: "TNFTGF", nEpithelial: 25, nMesenchymal: 31, muE: [0, 1], muM: [1, 0],
      v: [1, -1], vNorm: Math.SQRT2, q_lo: 1, q_hi: 99, p_lo: -0.0000448, p_hi: 0.25,
    };
    assert.equal(formatAxis("actin", axis),
      "actin: v = mu(TNFTGF, n=31) - mu(Ctrl, n=25), |v| = 1.414; s = -4.48e-5 (P1) -> 0, s = 0.2500 (P99) -> 1");
  });
});

describe("notebook: tables and the warning box", () => {
  it("formatCell: integers whole, tiny values in exponent form, others with 4 significant digits, null empty", () => {
    assert.deepEqual([3, 0, 0.000123, 0.5, -17.82, null, "Ctrl"].map(formatCell), ["3", "0", "1.23e-4", "0.5000", "-17.82", "", "Ctrl"]);
  });

  it("tableHtml escapes text, right-aligns numbers and checks row lengths; tableText lines up columns", () => {
    const html = tableHtml(["name", "value"], [["<b>&", 0.5]], "a & b");
    assert.match(html, /<caption[^>]*>a &amp; b<\/caption>/);
    assert.match(html, /<td style="text-align:left">&lt;b&gt;&amp;<\/td><td style="text-align:right">0\.5000<\/td>/);
    assert.throws(() => tableHtml(["a", "b"], [[1]]), /row 0 has 1 cells for 2 columns/);
    assert.equal(tableText(["id", "score"], [["long-id", 1], ["x", 0.25]]), "id       score\nlong-id  1\nx        0.2500");
    assert.equal(rowsTable([{ a: 1, b: "x" }], ["b", "a"], "cap").text, "cap\nb  a\nx  1");
  });

  it("frameTable shows the first rows of a danfo frame and says how many there are", () => {
    const ids = Array.from({ length: 12 }, (_, i) => `Ctrl/Ctrl${i + 1}.png`);
    const values = ids.map((_, i) => i / 11);
    const frame = scoresFrame(scoreRows(ids, ids.map(() => "Ctrl"), { tem_actin: values, tem_nucleus: values, tem_fused: values }));
    const table = frameTable(frame, 10);
    assert.equal(table.html.match(/<tr>/g)?.length, 1 + 10, "header + 10 rows");
    assert.match(table.html, /first 10 of 12 rows/);
    assert.match(table.html, new RegExp(`<thead><tr>${SCORE_COLUMNS.map((c) => `<th style="text-align:left">${c}</th>`).join("")}`));
    assert.match(table.text, /\(first 10 of 12 rows\)$/);
    assert.match(frameTable(frame, 20).html, /<caption[^>]*>12 rows</);
  });

  it("showWarning sends the red box with a text fallback, and nothing when there is no warning", () => {
    const sent: MimeBundle[] = [];
    showWarning(null, (b) => sent.push(b));
    assert.equal(sent.length, 0);
    showWarning("WARNING: <test> weights", (b) => sent.push(b));
    assert.deepEqual(sent, [{ "text/html": warningHtml("WARNING: <test> weights"), "text/plain": "WARNING: <test> weights" }]);
    assert.match(warningHtml("WARNING: <test> weights"), /^<div class="cellmorpho-warning" role="alert".*WARNING: &lt;test&gt; weights<\/div>$/);
  });
});

/** tem_metrics of hand-made scores: every score the same values, so the three channels agree (r = 1). */
function metricsOf(groups: Record<string, number[]>): TemMetrics {
  const conditions = Object.entries(groups).flatMap(([c, values]) => values.map(() => c));
  const scores = Object.values(groups).flat();
  return temMetrics({ scores: { tem_actin: scores, tem_nucleus: scores, tem_fused: scores }, conditions, anchors: ["Ctrl", "TNFTGF"] });
}

describe("notebook: metrics in plain words, and the summary files", () => {
  // Ctrl and TNFTGF are 0.7 apart; each group's squared deviations sum to 2 * 0.05^2 + 2 * 0.15^2 = 0.05, so the
  // pooled SD is sqrt(0.1 / 6) and Cohen's d = 0.7 / sqrt(0.1 / 6) = 5.422; the groups do not overlap (AUC 1).
  const separated = metricsOf({ Ctrl: [0, 0.1, 0.2, 0.3], TGF: [0.4, 0.5, 0.6], TNFTGF: [0.7, 0.8, 0.9, 1] });

  it("says what AUC, d, t, overlap, the intermediate conditions and the correlation mean", () => {
    const [auc, d, welch, overlap, between, pairs, correlation] = explainMetrics(separated);
    assert.equal(auc, "AUC 1.00: a randomly chosen TNFTGF cell scores higher than a randomly chosen Ctrl cell 100 % of " +
      "the time (50 % = chance, 100 % = perfect separation).");
    assert.match(d, /^Cohen's d 5\.42: the mean TNFTGF score lies 5\.42 pooled standard deviations above the mean Ctrl/);
    assert.match(welch, /^Welch t-test TNFTGF vs Ctrl: t = [\d.]+, df = [\d.]+, p = [\d.e-]+: a difference this large would be very unlikely/);
    assert.match(overlap, /^Overlap 0\.00: .* share 0 % of their area/);
    assert.equal(between, "Intermediate conditions: TGF 0.50 (anchors: Ctrl 0.15, TNFTGF 0.85). All lie between the " +
      "anchors, as the biology expects.");
    assert.match(pairs, /^3 of 3 condition pairs differ at p < 0\.05/);
    assert.match(correlation, /Pearson r = 1\.00, Spearman rho = 1\.00: strongly related/);
  });

  it("says when anchors do not differ, when an intermediate falls outside, and when there is none", () => {
    const mixed = metricsOf({ Ctrl: [0, 0.5, 1, 0.4], TGF: [0.95, 1, 0.9], TNFTGF: [0.1, 0.6, 0.9, 0.5] });
    const lines = explainMetrics(mixed);
    assert.match(lines[2], /not significant at the 5 % level\.$/);
    assert.match(lines[4], /Not all lie between the anchors: TGF fall outside\.$/);
    const anchorsOnly = metricsOf({ Ctrl: [0, 0.1, 0.2], TNFTGF: [0.8, 0.9, 1] });
    assert.equal(explainMetrics(anchorsOnly)[4], "Only the two anchors are present: there is no intermediate condition to check.");
  });

  it("formatP: two significant digits, exponent form below 1e-4, and float64's floor said as such", () => {
    assert.deepEqual([0.0123, 0.5, 3.7e-50, 0].map(formatP), ["0.012", "0.50", "3.7e-50", "< 1e-300"]);
  });

  it("writeMetricsSummary writes the summary (one row per score) and every Welch pair, with the warning first", () => {
    const dir = tempDir("notebook-metrics-");
    try {
      const files = writeMetricsSummary(separated, "WARNING: test", dir);
      assert.deepEqual(files.map((f) => path.basename(f)), ["metrics_summary.csv", "pairwise_welch.csv", "metrics_summary.json"]);
      const summary = fs.readFileSync(files[0], "utf8").trimEnd().split("\n");
      assert.deepEqual(summary.slice(0, 2), ["# WARNING: test", "score,auc,cohens_d,welch_t,welch_df,welch_p,overlap"]);
      assert.deepEqual(summary.slice(2).map((line) => line.split(",").slice(0, 2)),
        [["tem_actin", "1"], ["tem_nucleus", "1"], ["tem_fused", "1"]]);
      const pairwise = fs.readFileSync(files[1], "utf8").trimEnd().split("\n");
      assert.equal(pairwise[1], "score,a,b,n_a,n_b,t,df,p,note");
      assert.equal(pairwise.length, 2 + 3 * 3, "3 scores x 3 condition pairs");
      const json = JSON.parse(fs.readFileSync(files[2], "utf8"));
      assert.equal(json.warning, "WARNING: test");
      assert.deepEqual(json.summary, metricsSummaryRows(separated));
      assert.deepEqual(json.pairwise_welch, pairwiseRows(separated));
      assert.ok(Math.abs(json.summary[2].cohens_d - 0.7 / Math.sqrt(0.1 / 6)) < 1e-12); // closed form, see above
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The notebook itself

interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
}
interface NotebookCell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: NotebookOutput[];
}

const joined = (text: string | string[] | unknown): string => (Array.isArray(text) ? text.join("") : String(text ?? ""));

/** Everything an output shows, as text: stream text, text/html and text/plain. */
function outputText(o: NotebookOutput): string {
  return o.text !== undefined ? joined(o.text) : joined(o.data?.["text/html"]) + joined(o.data?.["text/plain"]);
}

const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/**
 * Everything the code cells of one section show, as text: from the markdown cell whose source starts with
 * `heading` to the next "## " heading.
 */
function sectionText(cells: readonly NotebookCell[], heading: string): string {
  const start = cells.findIndex((c) => c.cell_type === "markdown" && joined(c.source).startsWith(heading));
  if (start < 0) throw new Error(`no section "${heading}" in the notebook`);
  const next = cells.findIndex((c, i) => i > start && c.cell_type === "markdown" && joined(c.source).startsWith("## "));
  return cells.slice(start + 1, next < 0 ? undefined : next).flatMap((c) => c.outputs ?? []).map(outputText).join("\n");
}

/** The shared ImageNet-trained Darknet Tiny: with it, the beyond sections run on it and compare it with resnet18. */
const darknetPresent = (): boolean => fs.existsSync(DARKNET_TINY);

/**
 * Figures the notebook draws: the histogram, the random, representative and inspected cells (sections 12-15); then
 * the validation AUCs, the morphology bars and strongest feature, two embedding maps and the latent-state scatter
 * (16-22); and the encoders' scatter when Darknet Tiny gives a second encoder to compare with.
 */
const expectedFigures = (): number => 4 + 6 + (darknetPresent() ? 1 : 0);

/** Skips the calling suite, saying why, where no Python with Jupyter is installed (CI installs it). */
function requireJupyter(ctx: Mocha.Context): void {
  try {
    jupyterPython();
  } catch (err) {
    console.log(`      (skipped: ${(err as Error).message})`);
    ctx.skip();
  }
}

describe("notebook: a failing cell stops the run and the Error shows that cell", function () {
  let dir = "";

  before(function () {
    requireJupyter(this);
    installKernel();
    dir = tempDir("notebook-fail-");
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("names the cell, quotes its source and its error text, and keeps the notebook as far as it ran", () => {
    const cell = (source: string) => ({ cell_type: "code", execution_count: null, id: `c${source.length}`, metadata: {}, outputs: [], source });
    const notebook = path.join(dir, "fails.ipynb");
    fs.writeFileSync(notebook, JSON.stringify({
      cells: [cell("console.log(\"first\");"), cell("throw new Error(\"deliberate failure 42\");"), cell("console.log(\"never\");")],
      metadata: { kernelspec: { name: "cellmorphotem", display_name: "CellMorphoTEM (TypeScript)", language: "typescript" } },
      nbformat: 4, nbformat_minor: 5,
    }));
    const out = path.join(dir, "out");
    assert.throws(() => executeNotebook({ notebook, outDir: out, html: false, timeoutSeconds: 120 }), (err: Error) => {
      assert.match(err.message, /failed to execute \(exit 3\):\ncell 1 failed:\nthrow new Error\("deliberate failure 42"\);\n--- its error output ---\n.*deliberate failure 42/s);
      return true;
    });
    const ran: NotebookCell[] = JSON.parse(fs.readFileSync(path.join(out, "fails.executed.ipynb"), "utf8")).cells;
    const shown = ran.map((c) => (c.outputs ?? []).map(outputText).join(""));
    assert.equal(shown[0], "first\n");
    assert.match(shown[1], /deliberate failure 42/);
    assert.deepEqual([shown[2], ran[2].execution_count], ["", null], "the cell after the failure did not run");
  });
});

describe("notebook: notebooks/main.ipynb runs headless and shows its results", function () {
  const notebook = path.join(PROJECT_ROOT, "notebooks", "main.ipynb");
  let dir = "";
  let outDir = "";
  let report = { ipynb: "", html: "" };
  let cells: NotebookCell[] = [];
  let pairs = 0;
  let warning: string | null = null;

  before(async function () {
    requireJupyter(this);
    if (!fs.existsSync(path.join(defaultWeightsDir(), WEIGHTS_MANIFEST))) {
      requireFile(this, SEED0_WEIGHTS, "the shared seed0 ResNet18 test weights (needed to convert weights/)");
      convertWeights({ source: SEED0_WEIGHTS, unverified: true, log: () => undefined });
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(defaultWeightsDir(), WEIGHTS_MANIFEST), "utf8"));
    warning = weightsWarning(manifest.source as WeightsProvenance);

    dir = tempDir("notebook-run-");
    const data = path.join(dir, "data");
    await generateSynthetic({ out: data, scale: 0.15, seed: 0 });
    pairs = openCelltool(data).pairs.length;
    outDir = path.join(dir, "outputs");
    installKernel();
    // A failing cell throws here with that cell's source and error text (lib/jupyter.ts), failing every test below.
    const executed = executeNotebook({
      notebook, outDir: path.join(dir, "report"), timeoutSeconds: 600,
      env: { CELLMORPHO_DATA: data, CELLMORPHO_OUT: outDir, CELLMORPHO_SEED: "3" },
    });
    report = { ipynb: executed.ipynb, html: executed.html! };
    cells = JSON.parse(fs.readFileSync(report.ipynb, "utf8")).cells;
  });
  after(() => {
    if (!dir) return;
    if (process.env.CELLMORPHO_KEEP_TEST_OUTPUT) console.log(`      (kept ${dir})`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });

  it("every code cell ran, none with an error output", () => {
    const code = cells.filter((c) => c.cell_type === "code");
    assert.ok(code.length >= 15, `${code.length} code cells`);
    code.forEach((c, i) => assert.ok(typeof c.execution_count === "number", `code cell ${i} did not run`));
    const errors = code.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "error");
    assert.deepEqual(errors, []);
  });

  it("writes tem_scores.csv (the warning comment, then the exact header, one row per pair) and metrics.json", () => {
    const lines = fs.readFileSync(path.join(outDir, "tem_scores.csv"), "utf8").trimEnd().split("\n");
    const preamble = warning ? [`# ${warning}`] : [];
    assert.deepEqual(lines.slice(0, preamble.length + 1), [...preamble, "sample_id,condition,tem_actin,tem_nucleus,tem_fused"]);
    const rows = lines.slice(preamble.length + 1).map((line) => line.split(","));
    assert.equal(rows.length, pairs);
    for (const [id, condition, ...scores] of rows) {
      assert.equal(id.split("/")[0], condition);
      scores.map(Number).forEach((s) => assert.ok(s >= 0 && s <= 1, `${id}: score ${s}`));
    }
    const metrics = JSON.parse(fs.readFileSync(path.join(outDir, "metrics.json"), "utf8"));
    assert.equal(metrics.n_cells, pairs);
    assert.equal(metrics.warning, warning);
    for (const file of ["stats_by_condition.csv", "pairing_report.json", "metrics_summary.csv", "metrics_summary.json", "pairwise_welch.csv"]) {
      assert.ok(fs.existsSync(path.join(outDir, file)), file);
    }
  });

  it("saves every figure as HTML (and PNG where Chromium is available) and the composites as PNG", () => {
    const chromium = findChromium();
    const beyondFigures = ["validation_auc", "morphology_correlations", "morphology_strongest", "embedding_map_actin",
      "embedding_map_nucleus", "latent_state", ...(darknetPresent() ? ["encoder_comparison"] : [])];
    for (const name of ["tem_fused_histogram", "random_cell", "representative_cells", ...beyondFigures]) {
      assert.match(fs.readFileSync(path.join(outDir, `${name}.html`), "utf8"), /Plotly\.newPlot/, name);
      if (chromium) assert.ok(fs.readFileSync(path.join(outDir, `${name}.png`)).subarray(1, 4).equals(Buffer.from("PNG")), name);
    }
    for (const name of ["random_cell_composites", "representative_cells_composites", "gallery"]) {
      assert.ok(fs.readFileSync(path.join(outDir, `${name}.png`)).subarray(1, 4).equals(Buffer.from("PNG")), name);
    }
  });

  it("holds the Plotly figures (plotly JSON and drawing HTML, plotly.js inlined once) and the cell images", () => {
    const outputs = cells.flatMap((c) => c.outputs ?? []);
    const figures = outputs.filter((o) => o.data?.[PLOTLY_MIME] !== undefined);
    assert.equal(figures.length, expectedFigures(), "see expectedFigures");
    figures.forEach((f) => assert.match(joined(f.data?.["text/html"]), /Plotly\.newPlot/));
    // plots.ts's loader: plotly.js wrapped in a guard, at the very start of the HTML
    const withLibrary = outputs.filter((o) => joined(o.data?.["text/html"]).startsWith('<script type="text/javascript">if (!window.Plotly) {'));
    assert.equal(withLibrary.length, 1, "plotly.js is sent with the first figure only");
    const images = outputs.filter((o) => typeof o.data?.["image/png"] === "string");
    assert.equal(images.length, 5, "the transform demo, the random cell, the representatives, the inspected cell, the gallery");
  });

  it("section 16 sets the out-of-fold AUC beside the in-sample one, as metrics.json's validation holds it", () => {
    const text = sectionText(cells, "## 16.");
    const validation = JSON.parse(fs.readFileSync(path.join(outDir, "metrics.json"), "utf8")).validation;
    assert.ok(validation.scores, `validation ran: ${JSON.stringify(validation)}`);
    for (const phrase of ["Honest validation of the main run", "AUC in-sample", "AUC out-of-fold", "AUC out-of-fold, 95 % CI",
      "permutation p", "tem_fused, tuned fusion", "Out of fold, tem_fused separates", "Permutation test:", "Fusion tuned on the training folds only"]) {
      assert.ok(text.includes(phrase), phrase);
    }
    // the table shows the very numbers the CLI's metrics.json records, formatted as every table formats numbers
    assert.ok(text.includes(`<td style="text-align:right">${formatCell(validation.scores.tem_fused.auc_out_of_fold)}</td>`));
    assert.ok(text.includes(`AUC ${validation.scores.tem_fused.auc_out_of_fold.toFixed(3)} (95 % CI`));
  });

  it("sections 17-18 name the encoder they use and say it is not the method's ResNet18 (or why there is no second one)", () => {
    const choice = sectionText(cells, "## 17.");
    const comparison = sectionText(cells, "## 18.");
    if (darknetPresent()) {
      assert.match(choice, /Encoder for the sections below: tfjs · Darknet Tiny \(ImageNet, ml5\) — not the method's ResNet18/);
      assert.match(choice, /This is NOT the method's ResNet18 with ImageNet weights/);
      assert.match(comparison, /#1 tfjs · Darknet Tiny \(ImageNet, ml5\) — not the method's ResNet18/);
      assert.match(comparison, /rank the cells with Spearman -?[01]\.\d{3}/);
      // The main run and section 17 filled the embedding cache: the comparison embeds nothing a third time.
      assert.match(comparison, /No image was embedded for this comparison/);
    } else {
      assert.match(choice, /Nothing was embedded again/);
      assert.match(comparison, /One encoder only, so there is nothing to compare it with: .*no Darknet Tiny at/);
    }
    assert.match(comparison, /Spearman of tem_fused with the known latent EMT state/);
  });

  it("sections 19-22: morphology in words, the gallery of 20 cells, and the score against the latent state", async () => {
    assert.match(sectionText(cells, "## 19."), /How cell morphology tracks tem_fused \(Spearman's rho/);
    assert.match(sectionText(cells, "## 20."), /nucleus embeddings of .*; saved /);
    const gallery = await sharp(path.join(outDir, "gallery.png")).metadata();
    const layout = montageLayout(20, 10, 160, 4, true); // 20 cells, 10 per row, 160 px tiles, captions
    assert.deepEqual([gallery.width, gallery.height], [layout.width, layout.height]);
    assert.match(sectionText(cells, "## 21."), /20 cells at evenly spaced quantiles of tem_fused, scored with /);
    const latent = sectionText(cells, "## 22.");
    assert.match(latent, /latent states from .*truth\.csv/);
    assert.match(latent, /baseline: only the cell's condition/);
    assert.match(latent, /tem_fused ranks the cells like their latent EMT state with Spearman/);
  });

  it("shows the weights warning before the first result, and the HTML report carries it", function () {
    const outputs = cells.flatMap((c) => c.outputs ?? []).map(outputText);
    const box = outputs.findIndex((text) => text.includes('class="cellmorpho-warning"'));
    if (warning === null) {
      assert.equal(box, -1, "verified weights: no warning box");
      this.skip();
    }
    const firstResult = outputs.findIndex((text) => /tem_(actin|nucleus|fused)|AUC|\[figure\]/.test(text));
    assert.ok(box >= 0, "the warning box is shown");
    assert.ok(outputs[box].includes(warning!), "it holds the warning sentence");
    assert.ok(box < firstResult, `warning at output ${box}, first result at output ${firstResult}`);
    assert.ok(fs.readFileSync(report.html, "utf8").includes('class="cellmorpho-warning"'));
  });

  it("the HTML report draws its plots in headless Chromium", async function () {
    const chromium = findChromium();
    if (!chromium) {
      console.log("      (skipped: no headless Chromium found; set CHROMIUM_PATH or install chromium)");
      this.skip();
    }
    // plotly.js's own source names its classes, so only the DOM outside <script> elements counts.
    const dom = (await dumpDom(report.html, { chromium: chromium!, virtualTimeBudgetMs: 30000, timeoutMs: 120000 }))
      .replace(/<script[\s\S]*?<\/script>/g, "");
    assert.equal(dom.match(/class="plot-container plotly"/g)?.length, expectedFigures(), "every figure drawn");
    assert.ok((dom.match(/<svg class="main-svg"/g)?.length ?? 0) >= expectedFigures(), "each with plotly's SVG");
    assert.ok((dom.match(/<g class="point"><path d="M[^"]+"/g)?.length ?? 0) > 20, "histogram bars drawn");
    assert.ok(!dom.includes("plotly.js is not loaded"));
    // A tall window: the whole report in one picture, for a person to look at (kept with CELLMORPHO_KEEP_TEST_OUTPUT=1).
    const shot = path.join(dir, "report.png");
    // The report on the test set is about 24000 px tall with the "Beyond the reference" sections.
    await screenshotHtml(report.html, shot, { width: 1100, height: 28000, chromium: chromium!, virtualTimeBudgetMs: 30000, timeoutMs: 120000 });
    const meta = await sharp(shot).metadata();
    assert.deepEqual([meta.width, meta.height], [1100, 28000]);
  });
});
