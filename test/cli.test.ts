// The `cellmorpho` command line: argument checking (exit code 2, one line saying what is wrong), failures (exit
// code 1, one line naming the file and the problem), and a real scoring run. In-process through main() where
// possible; as a real process where the exit code and the stdout/stderr split are the point.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { generateSynthetic } from "../lib/synth";
import { DARKNET_TINY, requireFile } from "./paths";
import { celltoolCells, listFiles, runBin, runMain, seed0WeightsDir, tempDir, writeTree } from "./robustnessKit";

describe("cli: arguments", () => {
  it("help prints the usage and exits 0; no command prints it and exits 2", async () => {
    const help = await runMain(["help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^cellmorpho — EMT \(TEM\) scores/);
    assert.match(help.stdout, /\[--no-cache \| --cache-dir DIR\] \[--weights DIR\] \[--strict\]/);
    const none = await runMain([]);
    assert.equal(none.code, 2);
    assert.equal(none.stdout, help.stdout);
  });

  it("refuses every malformed command line with exit code 2 and a one-line reason", async () => {
    const dir = tempDir("cli-args");
    try {
      const score = (...args: string[]) => ["score", path.join(dir, "dataset"), "--out", path.join(dir, "out"), ...args];
      const cases: [string[], RegExp][] = [
        [["frobnicate"], /^cellmorpho: unknown command "frobnicate"; run "cellmorpho help"$/],
        [["score", "--out", dir], /^cellmorpho: score needs exactly one dataset \(a Celltool zip or folder\)$/],
        [["score", dir], /^cellmorpho: score needs --out DIR$/],
        [score("--frobnicate"), /^cellmorpho: Unknown option '--frobnicate'/],
        [score("--anchors", "Ctrl"), /^cellmorpho: --anchors must be two condition names, e.g\. Ctrl,TNFTGF; got "Ctrl"$/],
        [score("--anchors", "Ctrl,"), /^cellmorpho: --anchors must be two condition names/],
        [score("--fusion", "1,x"), /^cellmorpho: --fusion must be 2 comma-separated numbers, got "1,x"$/],
        [score("--fusion", "1,2,3"), /^cellmorpho: --fusion must be 2 comma-separated numbers, got "1,2,3"$/],
        [score("--fusion=-1,2"), /^cellmorpho: --fusion weights must be >= 0 and not both 0, got "-1,2"$/],
        [score("--fusion", "0,0"), /^cellmorpho: --fusion weights must be >= 0 and not both 0, got "0,0"$/],
        [score("--engine", "gpu"), /^cellmorpho: unknown --engine "gpu"; valid: auto, onnx, tfjs$/],
        [score("--batch", "1.5"), /^cellmorpho: --batch must be a positive integer, got "1\.5"$/],
        [score("--batch=-3"), /^cellmorpho: --batch must be a positive integer, got "-3"$/],
        [score("--no-cache", "--cache-dir", dir), /^cellmorpho: give --no-cache or --cache-dir, not both$/],
        [["weights", "extra"], /^cellmorpho: weights takes no positional arguments, got "extra"$/],
        [["synth"], /^cellmorpho: synth needs --out DIR$/],
        [["synth", "--out", dir, "--seed=-1"], /^cellmorpho: --seed must be a non-negative integer, got "-1"$/],
      ];
      for (const [argv, message] of cases) {
        const result = await runMain(argv);
        assert.equal(result.code, 2, argv.join(" "));
        assert.match(result.stderr, message, argv.join(" "));
      }
      assert.deepEqual(fs.readdirSync(dir), [], "a refused command line writes nothing");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("cli: score, as a real process", function () {
  let weights: string;
  let work: string;
  let dataset: string;

  before(async function () {
    weights = seed0WeightsDir(this);
    work = tempDir("cli");
    dataset = writeTree(path.join(work, "dataset"), await celltoolCells({ Ctrl: 3, TNFTGF: 3, TGF: 2 }));
  });
  after(() => {
    for (const dir of [weights, work]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("exits 0, results on stdout, the pairing report and warnings on stderr, the four outputs written", async () => {
    const out = path.join(work, "out");
    const result = await runBin(["score", dataset, "--out", out, "--engine", "onnx", "--weights", weights, "--no-cache"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^scored 8 cells; anchors Ctrl vs TNFTGF; AUC fused \d\.\d{3} \(actin \d\.\d{3}, nucleus \d\.\d{3}\)\n/);
    assert.match(result.stdout, /\n {2}Ctrl {9}n= {3}3 {2}mean \d\.\d{3}\n {2}TGF {10}n= {3}2/);
    assert.match(result.stdout, /WARNING: these scores were computed with resnet18-torchvision-seed0\.pth \(UNVERIFIED\)/);
    assert.match(result.stderr, /Celltool root: .*dataset\n/);
    assert.doesNotMatch(result.stderr, /skipped/, "nothing was unreadable");
    assert.deepEqual(listFiles(out), ["metrics.json", "pairing_report.json", "stats_by_condition.csv", "tem_scores.csv"]);
    const csv = fs.readFileSync(path.join(out, "tem_scores.csv"), "utf8").split("\n");
    assert.match(csv[0], /^# WARNING: /, "unverified weights: the CSV says so on its first line");
    assert.equal(csv[1], "sample_id,condition,tem_actin,tem_nucleus,tem_fused");
  });

  it("exits 1 with one line naming the file and the problem when the input is bad", async () => {
    const missing = path.join(work, "no-such-dataset");
    const result = await runBin(["score", missing, "--out", path.join(work, "out-missing"), "--weights", weights]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `cellmorpho: ${missing}: no such file or folder\n`);
    assert.equal(result.stdout, "");
  });

  it("--cache-dir: a second run reads every embedding from the cache and writes the same scores", async () => {
    const cache = path.join(work, "cache");
    const args = (out: string) => ["score", dataset, "--out", path.join(work, out), "--engine", "onnx", "--weights", weights,
      "--cache-dir", cache];
    assert.equal((await runMain(args("first"))).code, 0);
    const entries = listFiles(cache);
    assert.equal(entries.length, 16, "one entry per image: 8 cells x 2 channels, all different");
    const stamps = entries.map((f) => fs.statSync(path.join(cache, f)).mtimeMs);
    assert.equal((await runMain(args("second"))).code, 0);
    assert.deepEqual(listFiles(cache), entries);
    assert.deepEqual(entries.map((f) => fs.statSync(path.join(cache, f)).mtimeMs), stamps, "no entry rewritten");
    const scores = (out: string) => fs.readFileSync(path.join(work, out, "tem_scores.csv"), "utf8");
    assert.equal(scores("second"), scores("first"));
  });
});

describe("cli: compare and --encoder", function () {
  let weights: string;
  let work: string;

  before(async function () {
    requireFile(this, DARKNET_TINY, "the shared Darknet Tiny model");
    weights = seed0WeightsDir(this);
    work = tempDir("cli-compare");
    await generateSynthetic({ out: path.join(work, "synthetic"), seed: 3, scale: 0.05, log: () => undefined });
  });
  after(() => {
    for (const dir of [weights, work]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("compare scores the same cells with both encoders and, on synthetic data, against truth.csv", async () => {
    const out = path.join(work, "compare");
    const result = await runMain(["compare", path.join(work, "synthetic"), "--out", out, "--weights", weights,
      "--encoders", `resnet18,tfjs:${DARKNET_TINY}`, "--per-condition", "5", "--no-cache"]);
    assert.equal(result.code, 0, result.stderr);
    const comparison = JSON.parse(fs.readFileSync(path.join(out, "comparison.json"), "utf8"));
    assert.equal(comparison.encoders.length, 2);
    assert.deepEqual(comparison.encoders.map((e: { info: { encoder: string } }) => e.info.encoder),
      ["resnet18", `tfjs:${DARKNET_TINY}`]);
    for (const e of comparison.encoders) {
      // Truth was found beside the conditions: every encoder has a Spearman with the latent state.
      assert.ok(Number.isFinite(e.spearman_latent.tem_fused), JSON.stringify(e.spearman_latent));
    }
    assert.match(result.stdout, /not the method's ResNet18/);
    assert.ok(fs.existsSync(path.join(out, "comparison_scatter.html")));
  });

  it("score --encoder tfjs:<model.json> runs the TF.js model and names it in metrics.json", async () => {
    const out = path.join(work, "score-darknet");
    const result = await runMain(["score", path.join(work, "synthetic"), "--out", out, "--encoder", `tfjs:${DARKNET_TINY}`,
      "--no-cache", "--no-validation"]);
    assert.equal(result.code, 0, result.stderr);
    const metrics = JSON.parse(fs.readFileSync(path.join(out, "metrics.json"), "utf8"));
    assert.equal(metrics.encoders.actin.encoder, `tfjs:${DARKNET_TINY}`);
    assert.equal(metrics.encoders.actin.engine, "tfjs");
    assert.match(metrics.warning, /Darknet Tiny/);
  });

  it("refuses a bad --grey, a single encoder to compare, and --engine onnx with a TF.js model", async () => {
    const data = path.join(work, "synthetic");
    const grey = await runMain(["score", data, "--out", path.join(work, "x"), "--grey", "rgb"]);
    assert.equal(grey.code, 2);
    assert.match(grey.stderr, /^cellmorpho: --grey must be third or replicate, got "rgb"$/m);
    const single = await runMain(["compare", data, "--out", path.join(work, "y"), "--encoders", "resnet18"]);
    assert.equal(single.code, 2);
    assert.match(single.stderr, /compare needs at least two encoders/);
    const onnx = await runMain(["score", data, "--out", path.join(work, "z"), "--encoder", `tfjs:${DARKNET_TINY}`,
      "--engine", "onnx", "--no-cache"]);
    assert.equal(onnx.code, 1);
    assert.match(onnx.stderr, /engine/);
  });
});

describe("cli: score --morphology --map --gallery", function () {
  let weights: string;
  let work: string;

  before(async function () {
    weights = seed0WeightsDir(this);
    work = tempDir("cli-extras");
    await generateSynthetic({ out: path.join(work, "synthetic"), seed: 5, scale: 0.05, log: () => undefined });
  });
  after(() => {
    for (const dir of [weights, work]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("writes the per-cell morphometrics, their correlation with the score, the maps and the gallery", async () => {
    const out = path.join(work, "out");
    const result = await runMain(["score", path.join(work, "synthetic"), "--out", out, "--weights", weights, "--no-cache",
      "--no-validation", "--morphology", "--map", "--gallery"]);
    assert.equal(result.code, 0, result.stderr);
    for (const file of ["morphology.csv", "morphology_correlations.csv", "embedding_map_actin.html",
      "embedding_map_nucleus.html", "gallery.png"]) {
      assert.ok(fs.existsSync(path.join(out, file)), file);
    }
    const lines = fs.readFileSync(path.join(out, "morphology.csv"), "utf8").trimEnd().split("\n");
    assert.match(lines[0], /^# WARNING/);
    assert.equal(lines[1], "sample_id,condition,cell_area,cell_perimeter,cell_aspect_ratio,cell_circularity,cell_solidity," +
      "nucleus_area,nucleus_aspect_ratio,actin_coherence,reason");
    const scored = fs.readFileSync(path.join(out, "tem_scores.csv"), "utf8").trimEnd().split("\n").length;
    assert.equal(lines.length, scored, "one morphology row per scored cell");
    const correlations = fs.readFileSync(path.join(out, "morphology_correlations.csv"), "utf8").trimEnd().split("\n");
    assert.equal(correlations.length, 2 + 8, "warning, header, one row per feature");
  });
});
