// The synthetic Celltool dataset (lib/synth.ts, lib/synthDraw.ts) and the morphology measures that check it
// (lib/morphometrics.ts). Reference values for the measures come from skimage/numpy via
// scripts/reference/synth_stats.py -> test/fixtures/synth/morphometrics.json.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import AdmZip from "adm-zip";
import sharp from "sharp";
import { sampleRankCorrelation } from "simple-statistics";
import { FIXTURES } from "./paths";
import {
  Mask, aspectRatio, area, circularity, convexArea, momentAxes, orientationCoherence, perimeter, shapeMeasures,
  solidity, thresholdMask,
} from "../lib/morphometrics";
import {
  CONDITIONS, conditionCounts, contactSheet, defaultDataset, emtDistribution, generateSynthetic, readTruth, sampleEmt,
} from "../lib/synth";
import { Rng, distanceToOutside, drawCell, gaussianBlur, newPlane } from "../lib/synthDraw";

const maskFromRows = (rows: string[]): Mask => ({
  width: rows[0].length,
  height: rows.length,
  data: Uint8Array.from(rows.join(""), (ch) => (ch === "1" ? 1 : 0)),
});

const relClose = (actual: number, expected: number, tol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);

async function readGrey(file: string): Promise<{ pixels: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data), width: info.width, height: info.height };
}

/** Every file under `dir`, as sorted paths relative to it. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (sub: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) walk(rel);
      else out.push(rel.split(path.sep).join("/"));
    }
  };
  walk("");
  return out.sort();
}

describe("morphometrics", () => {
  interface ShapeCase {
    name: string; mask: string[]; area: number; perimeter: number; majorAxisLength: number;
    minorAxisLength: number; convexArea: number; solidity: number;
  }
  interface CoherenceCase { name: string; width: number; height: number; pixels: number[]; mask: string[]; coherence: number }
  const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, "synth", "morphometrics.json"), "utf8")) as {
    shapes: ShapeCase[]; coherence: CoherenceCase[];
  };

  // Same formulas as skimage, in float64: only summation order differs, so 1e-9 relative is already generous.
  const FLOAT_TOL = 1e-9;

  for (const c of fixture.shapes) {
    it(`matches skimage regionprops on "${c.name}"`, () => {
      const mask = maskFromRows(c.mask);
      const axes = momentAxes(mask);
      assert.equal(area(mask), c.area);
      assert.equal(convexArea(mask), c.convexArea); // pixel counts: exact
      relClose(perimeter(mask), c.perimeter, FLOAT_TOL, "perimeter");
      relClose(axes.major, c.majorAxisLength, FLOAT_TOL, "major axis");
      relClose(axes.minor, c.minorAxisLength, FLOAT_TOL, "minor axis");
      relClose(aspectRatio(mask), c.majorAxisLength / c.minorAxisLength, FLOAT_TOL, "aspect ratio");
      relClose(solidity(mask), c.solidity, FLOAT_TOL, "solidity");
      relClose(circularity(mask), (4 * Math.PI * c.area) / c.perimeter ** 2, FLOAT_TOL, "circularity");
    });
  }

  for (const c of fixture.coherence) {
    it(`matches numpy.gradient structure-tensor coherence on "${c.name}"`, () => {
      const got = orientationCoherence(c.pixels, c.width, c.height, maskFromRows(c.mask));
      relClose(got, c.coherence, FLOAT_TOL, "coherence");
    });
  }

  it("gives the closed-form aspect ratio of a pixel rectangle", () => {
    // A w x h block has per-axis variance (n^2 - 1) / 12, so the ratio is sqrt((31^2 - 1) / (11^2 - 1)) = sqrt(8).
    const w = 35;
    const h = 15;
    const data = new Uint8Array(w * h);
    for (let y = 2; y < 13; y++) for (let x = 2; x < 33; x++) data[y * w + x] = 1;
    const measures = shapeMeasures({ width: w, height: h, data });
    relClose(measures.aspectRatio, Math.sqrt(8), 1e-12, "aspect ratio");
    assert.equal(measures.area, 31 * 11);
    assert.equal(measures.perimeter, 2 * 31 + 2 * 11 - 4); // straight runs weigh 1 per border pixel
    assert.equal(measures.solidity, 1); // a rectangle is convex
  });

  it("gives coherence 1 for a ramp and 0 for a radially symmetric image", () => {
    const n = 21;
    const ramp = Array.from({ length: n * n }, (_, i) => 3 * (i % n) + 2 * Math.floor(i / n));
    relClose(orientationCoherence(ramp, n, n), 1, 1e-12, "ramp");
    const c = (n - 1) / 2;
    const bowl = Array.from({ length: n * n }, (_, i) => ((i % n) - c) ** 2 + (Math.floor(i / n) - c) ** 2);
    assert.ok(orientationCoherence(bowl, n, n) < 1e-12, "symmetric image has no preferred direction");
  });

  it("rejects empty masks and mismatched sizes", () => {
    assert.throws(() => area({ width: 2, height: 2, data: new Uint8Array(4) }), /no foreground/);
    assert.throws(() => thresholdMask([1, 2, 3], 2, 2, 0), /3 values do not form a 2x2 image/);
    assert.throws(() => orientationCoherence([1, 2, 3, 4], 2, 2, { width: 1, height: 4, data: new Uint8Array(4) }), /mask is 1x4/);
  });
});

describe("synthetic cell drawing primitives", () => {
  it("blurs a point into a Gaussian of the requested variance, exact kernel and box approximation alike", () => {
    for (const sigma of [1.2, 6]) {
      const side = 81;
      const point = newPlane(side, side);
      point.data[40 * side + 40] = 1;
      const blurred = gaussianBlur(point, sigma);
      let mass = 0;
      let variance = 0;
      blurred.data.forEach((v, i) => {
        mass += v;
        variance += v * ((i % side) - 40) ** 2;
      });
      relClose(mass, 1, 1e-5, `mass at sigma ${sigma}`); // float32 sums
      // The exact kernel is cut at 3 sigma (sd ~1.3 % low); three boxes must have odd widths, which can miss
      // the sd by up to ~3 % (sigma 6: widths 11, 11, 13, sd 5.83). 4 % catches any real error, e.g. a lost pass.
      assert.ok(Math.abs(Math.sqrt(variance) / sigma - 1) < 0.04, `sd ${Math.sqrt(variance)} for sigma ${sigma}`);
    }
  });

  it("measures the distance to the outside exactly on a rectangle", () => {
    const w = 12;
    const h = 9;
    const plane = newPlane(w, h);
    for (let y = 2; y < 7; y++) for (let x = 1; x < 11; x++) plane.data[y * w + x] = 1;
    const d = distanceToOutside(plane, (v) => v > 0.5);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inside = y >= 2 && y < 7 && x >= 1 && x < 11;
        const expected = inside ? Math.min(x - 1 + 1, 11 - x, y - 2 + 1, 7 - y) : 0;
        relClose(d.data[y * w + x], expected, 1e-6, `distance at (${x}, ${y})`);
      }
    }
  });

  it("draws each condition's latent state from its documented Beta distribution", () => {
    const rng = new Rng(12345);
    const n = 20000;
    const means: number[] = [];
    for (const condition of CONDITIONS) {
      const { alpha, beta } = emtDistribution(condition);
      const mean = alpha / (alpha + beta);
      const sd = Math.sqrt((alpha * beta) / ((alpha + beta) ** 2 * (alpha + beta + 1)));
      const draws = Array.from({ length: n }, () => sampleEmt(condition, rng));
      const sampleMean = draws.reduce((a, b) => a + b, 0) / n;
      // 4 standard errors: a false alarm about once in 16000 runs, yet a wrong sampler is far outside.
      assert.ok(Math.abs(sampleMean - mean) < (4 * sd) / Math.sqrt(n), `${condition}: mean ${sampleMean} vs ${mean}`);
      assert.ok(draws.every((e) => e >= 0 && e <= 1));
      means.push(mean);
    }
    const [ctrl, tgf, tnf, both] = means;
    assert.ok(ctrl < tnf && tnf < tgf && tgf < both, `ordering Ctrl < TNF < TGF < TNFTGF: ${means}`);
  });

  it("draws identical pixels for the same seed and different ones for another seed", () => {
    const a = drawCell(0.4, 7);
    const b = drawCell(0.4, 7);
    const c = drawCell(0.4, 8);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.actin, c.actin);
    assert.throws(() => drawCell(1.5, 7), /EMT state must be in \[0, 1\], got 1.5/);
  });
});

describe("synthetic Celltool dataset", function () {
  this.timeout(60_000); // a few seconds of drawing; generous for a loaded 2-core CI machine
  let tmp = "";
  let dataset = "";
  // Counts at scale 0.1 worked out by hand from the real set (166/22/131/204 pairs, 76 TGF and 32 TNF nucleus-only).
  const expected = {
    Ctrl: { pairs: 17, nucleusOnly: 0 },
    TGF: { pairs: 2, nucleusOnly: 8 },
    TNF: { pairs: 13, nucleusOnly: 3 },
    TNFTGF: { pairs: 20, nucleusOnly: 0 },
  };

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "synth-test-"));
    dataset = path.join(tmp, "small");
    const summary = await generateSynthetic({ out: dataset, seed: 0, scale: 0.1 });
    assert.deepEqual(summary.counts, expected);
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("scales the real set's counts and keeps its nucleus-only quirk", () => {
    assert.deepEqual(conditionCounts(1), {
      Ctrl: { pairs: 166, nucleusOnly: 0 }, TGF: { pairs: 22, nucleusOnly: 76 },
      TNF: { pairs: 131, nucleusOnly: 32 }, TNFTGF: { pairs: 204, nucleusOnly: 0 },
    });
    for (const [condition, counts] of Object.entries(expected)) {
      const actin = fs.readdirSync(path.join(dataset, condition, "Actine"));
      const nuclei = fs.readdirSync(path.join(dataset, condition, "Noyaux"));
      assert.equal(actin.length, counts.pairs, `${condition} actin files`);
      assert.equal(nuclei.length, counts.pairs + counts.nucleusOnly, `${condition} nucleus files`);
      for (let i = 1; i <= counts.pairs; i++) assert.ok(actin.includes(`${condition}${i}.png`));
      for (let i = 1; i <= counts.pairs + counts.nucleusOnly; i++) assert.ok(nuclei.includes(`${condition}${i}.png`));
    }
    assert.throws(() => conditionCounts(0), /positive number/);
  });

  it("lists exactly the actin/nucleus pairs in truth.csv", () => {
    const truth = readTruth(path.join(dataset, "truth.csv"));
    const pairs = listFiles(dataset)
      .filter((f) => f.includes("/Actine/"))
      .map((f) => f.replace("/Actine/", "/"));
    assert.deepEqual(truth.map((r) => r.sampleId).sort(), pairs);
    for (const row of truth) {
      assert.equal(row.sampleId.split("/")[0], row.condition);
      assert.ok(fs.existsSync(path.join(dataset, row.condition, "Noyaux", row.sampleId.split("/")[1])));
    }
    assert.ok(!listFiles(tmp).some((f) => f.includes(".partial")), "no staging folder left behind");
  });

  it("writes square 8-bit grey PNGs of 192-320 px, black outside the cell, both channels the same size", async () => {
    for (const row of readTruth(path.join(dataset, "truth.csv")).slice(0, 12)) {
      const [condition, name] = row.sampleId.split("/");
      const files = ["Actine", "Noyaux"].map((channel) => path.join(dataset, condition, channel, name));
      const sizes: number[] = [];
      for (const file of files) {
        const meta = await sharp(file).metadata();
        assert.equal(meta.format, "png");
        assert.equal(meta.channels, 1, `${file} should be single-channel`);
        assert.equal(meta.depth, "uchar");
        assert.equal(meta.width, meta.height);
        assert.ok(meta.width! >= 192 && meta.width! <= 320, `${file}: ${meta.width} px`);
        const { pixels, width } = await readGrey(file);
        for (const corner of [0, width - 1, width * (width - 1), width * width - 1]) assert.equal(pixels[corner], 0);
        assert.ok(Math.max(...pixels) > 100, `${file} should show a bright cell`);
        sizes.push(width);
      }
      assert.equal(sizes[0], sizes[1]);
    }
  });

  it("is byte-identical for the same seed, differs for another, and zips the same tree", async () => {
    const first = path.join(tmp, "a");
    const second = path.join(tmp, "b");
    const other = path.join(tmp, "c");
    await generateSynthetic({ out: first, seed: 0, scale: 0.02, zip: true });
    await generateSynthetic({ out: second, seed: 0, scale: 0.02 });
    await generateSynthetic({ out: other, seed: 1, scale: 0.02 });
    const files = listFiles(first);
    assert.deepEqual(listFiles(second), files);
    for (const f of files) assert.ok(fs.readFileSync(path.join(first, f)).equals(fs.readFileSync(path.join(second, f))), f);
    // Cells depend only on (seed, condition, index): the small set's cells are the large set's first cells.
    assert.ok(fs.readFileSync(path.join(first, "Ctrl/Actine/Ctrl1.png")).equals(fs.readFileSync(path.join(dataset, "Ctrl/Actine/Ctrl1.png"))));
    assert.ok(!fs.readFileSync(path.join(first, "Ctrl/Actine/Ctrl1.png")).equals(fs.readFileSync(path.join(other, "Ctrl/Actine/Ctrl1.png"))));
    assert.notEqual(fs.readFileSync(path.join(first, "truth.csv"), "utf8"), fs.readFileSync(path.join(other, "truth.csv"), "utf8"));

    const zip = new AdmZip(`${first}.zip`);
    const entries = zip.getEntries().filter((e) => !e.isDirectory);
    assert.deepEqual(entries.map((e) => e.entryName).sort(), files.map((f) => `Celltool/${f}`));
    for (const entry of entries) assert.ok(entry.getData().equals(fs.readFileSync(path.join(first, entry.entryName.slice("Celltool/".length)))));

    await assert.rejects(generateSynthetic({ out: first, seed: 0, scale: 0.02 }), /already exists/);
    await assert.rejects(generateSynthetic({ out: path.join(tmp, "d"), seed: -1, scale: 0.02 }), /seed must be an integer/);
  });

  it("draws cells whose shape and actin texture move with the latent state", async () => {
    const truth = readTruth(path.join(dataset, "truth.csv"));
    const emt: number[] = [];
    const elongation: number[] = [];
    const coherence: number[] = [];
    const roundness: number[] = [];
    for (const row of truth) {
      const [condition, name] = row.sampleId.split("/");
      const { pixels, width, height } = await readGrey(path.join(dataset, condition, "Actine", name));
      const mask = thresholdMask(pixels, width, height, 0); // Celltool crops are exactly 0 outside the cell
      emt.push(row.emt);
      elongation.push(aspectRatio(mask));
      coherence.push(orientationCoherence(pixels, width, height, mask));
      roundness.push(circularity(mask));
    }
    assert.ok(emt.length >= 40);
    // On the full 523-cell set these Spearman correlations are 0.95 (aspect), 0.93 (coherence), -0.95
    // (circularity), and 0.96 / 0.95 / -0.95 on these 52 cells; with 52 cells their sampling spread is ~0.03,
    // so 0.8 fails only if the link between e and morphology is broken.
    const floor = 0.8;
    const rhoAspect = sampleRankCorrelation(emt, elongation);
    const rhoCoherence = sampleRankCorrelation(emt, coherence);
    const rhoRound = sampleRankCorrelation(emt, roundness);
    assert.ok(rhoAspect > floor, `aspect ratio vs e: Spearman ${rhoAspect}`);
    assert.ok(rhoCoherence > floor, `actin orientation coherence vs e: Spearman ${rhoCoherence}`);
    assert.ok(rhoRound < -floor, `circularity vs e: Spearman ${rhoRound}`);
    // The most mesenchymal cells reach the brief's aspect ratio of ~4-5; epithelial ones stay near 1.
    const top = elongation[emt.indexOf(Math.max(...emt))];
    const bottom = elongation[emt.indexOf(Math.min(...emt))];
    assert.ok(top > 3 && bottom < 1.6, `aspect ratio ${bottom} at lowest e, ${top} at highest`);
  });

  it("writes a contact sheet of n tiles in the requested grid", async () => {
    const out = path.join(tmp, "sheet.png");
    await contactSheet({ dataset, out, n: 10, columns: 4, tile: 100 });
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height], [400, 300]);
    const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    const channels = meta.channels!;
    const tileBrightness = (j: number): number => {
      let max = 0;
      const x0 = (j % 4) * 100;
      const y0 = Math.floor(j / 4) * 100;
      for (let y = y0; y < y0 + 80; y++) for (let x = x0; x < x0 + 100; x++) max = Math.max(max, data[(y * 400 + x) * channels + 1]);
      return max;
    };
    for (let j = 0; j < 10; j++) assert.ok(tileBrightness(j) > 50, `tile ${j} shows a cell`);
    assert.equal(tileBrightness(10), 0, "the two unused tiles stay black");
    await assert.rejects(contactSheet({ dataset, out, truth: path.join(tmp, "missing.csv") }), /truth file not found/);
  });

  it("reports the file and line of a malformed truth.csv", () => {
    const bad = path.join(tmp, "bad.csv");
    fs.writeFileSync(bad, "sample_id,condition,emt\nCtrl/Ctrl1.png,Ctrl,0.2\nCtrl/Ctrl2.png,Ctrl,1.7\n");
    assert.throws(() => readTruth(bad), (err: Error) => err.message.startsWith(`${bad}, line 3:`));
  });

  it("returns the default dataset's path without regenerating one that exists", async () => {
    const root = path.join(tmp, "project");
    const existing = path.join(root, "data", "synthetic");
    fs.mkdirSync(existing, { recursive: true });
    fs.writeFileSync(path.join(existing, "truth.csv"), "sample_id,condition,emt\n");
    assert.equal(await defaultDataset({ root }), existing);
    assert.deepEqual(fs.readdirSync(existing), ["truth.csv"]);
  });
});
