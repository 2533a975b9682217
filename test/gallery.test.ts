// lib/gallery.ts: picking cells at score quantiles on closed-form cases, and the gallery strip's PNG.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import type { CellPair } from "../lib/dataset";
import type { ScoreRow } from "../lib/frame";
import { ScoredCell, pickAtQuantiles, scoreGallery } from "../lib/gallery";

const cellsWithScores = (scores: readonly number[]): ScoredCell[] =>
  scores.map((score, i) => ({ sample_id: `c${String(i).padStart(2, "0")}`, condition: "Ctrl", score }));

describe("gallery: picking cells at score quantiles", () => {
  it("picks the cells at 0, 0.2, ..., 1 of eleven evenly spaced scores, whatever their input order", () => {
    const cells = cellsWithScores([0.5, 0.1, 0.9, 0, 0.3, 0.7, 1, 0.2, 0.4, 0.6, 0.8]);
    const picked = pickAtQuantiles(cells, 6);
    assert.deepEqual(picked.map((p) => p.score), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(picked.map((p) => p.quantile), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(picked.map((p) => p.sample_id), ["c03", "c07", "c08", "c09", "c10", "c06"]);
    assert.deepEqual(pickAtQuantiles(cells, 1).map((p) => [p.score, p.quantile]), [[0.5, 0.5]], "one cell: the median");
  });

  // With distinct scores a quantile lies between two neighbouring cells and the nearer one is never taken yet
  // (quantiles are at least one rank apart); only equal scores make two quantiles want the same cell.
  it("never picks a cell twice: tied quantiles fall to the next nearest cell", () => {
    // Quantiles 0, 0.5, 1 of [0, 0, 0, 0, 1] are 0, 0, 1: the second 0 goes to the next cell scoring 0.
    const picked = pickAtQuantiles(cellsWithScores([0, 0, 0, 0, 1]), 3);
    assert.deepEqual(picked.map((p) => p.sample_id), ["c00", "c01", "c04"]);
    // Ten equal scores: every quantile is 0.5, and five distinct cells answer them.
    const flat = pickAtQuantiles(cellsWithScores(Array(10).fill(0.5)), 5);
    assert.equal(new Set(flat.map((p) => p.sample_id)).size, 5);
  });

  it("takes every cell once when asked for more than there are", () => {
    const picked = pickAtQuantiles(cellsWithScores([0.3, 0.1, 0.2]), 20);
    assert.deepEqual(picked.map((p) => p.score), [0.1, 0.2, 0.3]);
    assert.deepEqual(picked.map((p) => p.quantile), [0, 0.5, 1]);
  });

  it("rejects bad input, naming the problem", () => {
    assert.throws(() => pickAtQuantiles(cellsWithScores([0.1]), 0), /n must be a positive integer, got 0/);
    assert.throws(() => pickAtQuantiles([], 3), /no cells to pick from/);
    assert.throws(() => pickAtQuantiles(cellsWithScores([0.1, Number.NaN]), 2), /sample c01 has score NaN/);
    const twice = [...cellsWithScores([0.1]), ...cellsWithScores([0.2])];
    assert.throws(() => pickAtQuantiles(twice, 2), /sample c00 appears twice/);
  });
});

describe("gallery: the strip", function () {
  this.timeout(30_000);
  let tmp: string;
  let pairs: CellPair[];
  let rows: ScoreRow[];

  /** Five 24 x 16 cells: an actin bar (brighter with i) and a nucleus spot; tem_fused = i / 4. */
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gallery-test-"));
    pairs = [];
    rows = [];
    for (let i = 0; i < 5; i++) {
      const actin = new Uint8Array(24 * 16);
      const nucleus = new Uint8Array(24 * 16);
      for (let y = 4; y < 12; y++) for (let x = 2; x < 22; x++) actin[y * 24 + x] = 100 + 30 * i;
      for (let y = 6; y < 10; y++) for (let x = 9; x < 15; x++) nucleus[y * 24 + x] = 200;
      const name = `cell${i}.png`;
      const files = { actinPath: path.join(tmp, `actin-${name}`), nucleusPath: path.join(tmp, `nucleus-${name}`) };
      await sharp(actin, { raw: { width: 24, height: 16, channels: 1 } }).png().toFile(files.actinPath);
      await sharp(nucleus, { raw: { width: 24, height: 16, channels: 1 } }).png().toFile(files.nucleusPath);
      const condition = i < 3 ? "Ctrl" : "TNFTGF";
      pairs.push({ sampleId: `${condition}/${name}`, condition, name, ...files });
      rows.push({ sample_id: `${condition}/${name}`, condition, tem_actin: 1 - i / 4, tem_nucleus: 0.5, tem_fused: i / 4 });
    }
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("lays the picked cells out as tiles with a caption strip: one row, or the columns asked for", async () => {
    const { png, picked } = await scoreGallery(rows, pairs, { n: 3, tile: 64, composite: { autoContrast: false } });
    // Quantiles 0, 0.5, 1 of the scores 0, 0.25, ..., 1 are exactly cells 0, 2 and 4.
    assert.deepEqual(picked.map((p) => p.sample_id), ["Ctrl/cell0.png", "Ctrl/cell2.png", "TNFTGF/cell4.png"]);
    // Three 64 px tiles, montage's 4 px gaps and its 20 px caption strip under each row.
    const strip = await sharp(png).metadata();
    assert.deepEqual([strip.format, strip.width, strip.height], ["png", 3 * 64 + 2 * 4, 64 + 20]);
    // Without auto-contrast a tile's green is its actin level, 100 + 30 i, at the centre of the flat actin bar.
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const centreGreen = (tile: number): number => data[(32 * info.width + tile * 68 + 32) * info.channels + 1];
    assert.deepEqual([0, 1, 2].map(centreGreen), [100, 160, 220], "tiles in quantile order: cells 0, 2, 4");

    const grid = await scoreGallery(rows, pairs, { n: 5, tile: 64, columns: 3 });
    const meta = await sharp(grid.png).metadata();
    assert.deepEqual([meta.width, meta.height], [3 * 64 + 2 * 4, 2 * (64 + 20) + 4]);
  });

  it("orders by the score asked for and rejects a score without images", async () => {
    const { picked } = await scoreGallery(rows, pairs, { n: 2, score: "tem_actin", tile: 32 });
    assert.deepEqual(picked.map((p) => [p.sample_id, p.score]), [["TNFTGF/cell4.png", 0], ["Ctrl/cell0.png", 1]]);
    const stray: ScoreRow = { sample_id: "Ctrl/ghost.png", condition: "Ctrl", tem_actin: 0, tem_nucleus: 0, tem_fused: 2 };
    await assert.rejects(scoreGallery([...rows, stray], pairs, { n: 2 }), /no actin\/nucleus image pair for sample Ctrl\/ghost\.png/);
  });
});
