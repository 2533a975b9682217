// End to end on real microscopy: `cellmorpho score` on a subset of the shared BBBC021 MCF-7 crops (DMSO vs the
// protein-synthesis inhibitors, a real two-condition contrast) separates the two anchors well above chance.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { main } from "../lib/cli";
import { naturalCompare } from "../lib/dataset";
import { convertWeights } from "../lib/weights";
import { BBBC021, requireFile, SEED0_WEIGHTS } from "./paths";

const PER_CONDITION = 60;

/** Copies the first `count` pairs of each condition (natural order) into a fresh Celltool folder. */
function subset(source: string, target: string, count: number): void {
  for (const condition of ["DMSO", "ProteinSynthesis"]) {
    const names = fs.readdirSync(path.join(source, condition, "Actine")).sort(naturalCompare).slice(0, count);
    for (const channel of ["Actine", "Noyaux"]) {
      fs.mkdirSync(path.join(target, condition, channel), { recursive: true });
      for (const name of names) {
        fs.copyFileSync(path.join(source, condition, channel, name), path.join(target, condition, channel, name));
      }
    }
  }
}

describe("end to end: score on real BBBC021 crops", function () {
  let work: string;

  before(function () {
    requireFile(this, SEED0_WEIGHTS, "the shared torchvision-format test weights");
    requireFile(this, BBBC021, "the shared BBBC021 MCF-7 crops");
    work = fs.mkdtempSync(path.join(os.tmpdir(), "cellmorpho-e2e-"));
    convertWeights({ source: SEED0_WEIGHTS, outDir: path.join(work, "weights"), unverified: true, log: () => undefined });
    subset(BBBC021, path.join(work, "data"), PER_CONDITION);
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("writes the four outputs, flags the unverified weights, and separates the anchors (AUC well above 0.5)", async () => {
    const out = path.join(work, "out");
    const silence = [console.log, console.error];
    console.log = console.error = () => undefined;
    let code: number;
    try {
      code = await main(["score", path.join(work, "data"), "--out", out, "--anchors", "dmso,ProteinSynthesis",
        "--weights", path.join(work, "weights"), "--no-cache", "--oof", "--bootstrap", "200", "--permutations", "200"]);
    } finally {
      [console.log, console.error] = silence;
    }
    assert.equal(code, 0);
    assert.deepEqual(fs.readdirSync(out).sort(),
      ["metrics.json", "pairing_report.json", "stats_by_condition.csv", "tem_scores.csv"]);

    const csv = fs.readFileSync(path.join(out, "tem_scores.csv"), "utf8").trimEnd().split("\n");
    assert.match(csv[0], /^# WARNING: .*resnet18-torchvision-seed0\.pth.*NOT torchvision's verified ImageNet ResNet18/);
    assert.equal(csv[1], "sample_id,condition,tem_actin,tem_nucleus,tem_fused,tem_actin_oof,tem_nucleus_oof,tem_fused_oof");
    assert.equal(csv.length, 2 + 2 * PER_CONDITION);
    for (const line of csv.slice(2)) {
      const [, condition, ...scores] = line.split(",");
      assert.ok(condition === "DMSO" || condition === "ProteinSynthesis");
      for (const s of scores.map(Number)) assert.ok(s >= 0 && s <= 1, line);
    }

    const metrics = JSON.parse(fs.readFileSync(path.join(out, "metrics.json"), "utf8"));
    assert.match(metrics.warning, /NOT torchvision's verified ImageNet ResNet18/);
    assert.deepEqual(metrics.anchors, { epithelial: "DMSO", mesenchymal: "ProteinSynthesis" });
    // Random-init features still carry this contrast (0.85 on 100+100 cells when measured); 0.7 leaves room for the
    // subset while staying far from chance.
    assert.ok(metrics.scores.tem_fused.auc > 0.7, `fused AUC ${metrics.scores.tem_fused.auc}`);
    const fusedMeans = metrics.scores.tem_fused.by_condition.map((s: { mean: number }) => s.mean);
    assert.ok(fusedMeans[1] > fusedMeans[0], "the treated anchor scores higher on average");

    // Honest validation: each anchor cell scored by an axis built without it still separates the anchors, the
    // interval brackets the estimate, and shuffled labels do worse than the real ones every time.
    const fused = metrics.validation.scores.tem_fused;
    assert.equal(metrics.validation.settings.folds, 5);
    assert.ok(fused.auc_out_of_fold > 0.65, `out-of-fold AUC ${fused.auc_out_of_fold}`);
    assert.ok(fused.auc_out_of_fold_ci[0] <= fused.auc_out_of_fold && fused.auc_out_of_fold <= fused.auc_out_of_fold_ci[1]);
    assert.equal(metrics.validation.permutation.p.tem_fused, 1 / 201);
  });
});
