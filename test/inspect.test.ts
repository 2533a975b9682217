// lib/inspect.ts: picking cells by score zone, at random and by id; their composites and marks on the histogram.
// Closed-form score tables, and a tiny synthetic Celltool set (lib/synth.ts) for the image side.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { openCelltool, type CelltoolDataset } from "../lib/dataset";
import type { NotebookDisplay } from "../lib/display";
import type { ScoreRow } from "../lib/frame";
import {
  cellCaption, findCell, inspectCell, inspection, randomCell, representativeCells, saveCellsView, showCellsView,
  viewCells, type InspectionSource,
} from "../lib/inspect";
import type { PlotlyFigure } from "../lib/plots";
import { generateSynthetic } from "../lib/synth";
import { Rng } from "../lib/synthDraw";

/** Rows whose three scores are all `fused` (the picks only read the score asked for). */
function rows(scores: readonly number[], condition = "Ctrl"): ScoreRow[] {
  return scores.map((s, i) => ({ sample_id: `${condition}/${condition}${i + 1}.png`, condition, tem_actin: s, tem_nucleus: s, tem_fused: s }));
}

describe("inspect: picking cells", () => {
  it("representativeCells takes the cell nearest each target, the earlier one on a tie", () => {
    const table = rows([0.3, 0, 0, 0.43, 0.5, 0.97, 1, 0.8]);
    const picked = representativeCells(table, "tem_fused").map((r) => r.sample_id);
    // 0 -> the first of the two zeros (row 2), 0.45 -> 0.43 (|0.02| < |0.05|), 1 -> the 1 (row 7)
    assert.deepEqual(picked, ["Ctrl/Ctrl2.png", "Ctrl/Ctrl4.png", "Ctrl/Ctrl7.png"]);
  });

  it("representativeCells uses each cell once and reads the score it is given", () => {
    const table: ScoreRow[] = [
      { sample_id: "a", condition: "Ctrl", tem_actin: 0.9, tem_nucleus: 0, tem_fused: 0.1 },
      { sample_id: "b", condition: "Ctrl", tem_actin: 0.1, tem_nucleus: 0, tem_fused: 0.9 },
      { sample_id: "c", condition: "Ctrl", tem_actin: 0.5, tem_nucleus: 0, tem_fused: 0.5 },
    ];
    assert.deepEqual(representativeCells(table, "tem_actin", [0, 0]).map((r) => r.sample_id), ["b", "c"]);
    assert.deepEqual(representativeCells(table, "tem_fused", [1]).map((r) => r.sample_id), ["b"]);
    assert.throws(() => representativeCells(table.slice(0, 2), "tem_fused"), /3 targets need at least as many cells, got 2/);
  });

  it("randomCell repeats with the same seed and reaches every cell about equally often", () => {
    const table = rows([0.1, 0.2, 0.3, 0.4]);
    const draws = (seed: number, n: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: n }, () => randomCell(table, rng).sample_id);
    };
    assert.deepEqual(draws(7, 20), draws(7, 20));
    assert.notDeepEqual(draws(7, 20), draws(8, 20));
    const counts = new Map<string, number>();
    for (const id of draws(1, 4000)) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.equal(counts.size, 4);
    // Binomial(4000, 1/4): sd = sqrt(4000 * 1/4 * 3/4) ~ 27; 150 is more than 5 sd, so a fair draw never fails.
    for (const count of counts.values()) assert.ok(Math.abs(count - 1000) < 150, `count ${count}`);
    assert.throws(() => randomCell([], new Rng(0)), /no cells to pick from/);
  });

  it("findCell finds an id, and otherwise suggests near ids or shows what ids look like", () => {
    const table = rows([0.1, 0.2], "TNF");
    assert.equal(findCell(table, "TNF/TNF2.png").tem_fused, 0.2);
    assert.throws(() => findCell(table, "tnf/tnf2.png"), /no cell "tnf\/tnf2\.png" among the 2 scored cells; did you mean "TNF\/TNF2\.png"\?/);
    assert.throws(() => findCell(table, "Ctrl/x.png"), /sample ids look like "TNF\/TNF1\.png"/);
  });

  it("cellCaption gives the id, the condition and the three scores", () => {
    assert.equal(cellCaption({ sample_id: "TNF/TNF7.png", condition: "TNF", tem_actin: 0.524, tem_nucleus: 0.406, tem_fused: 0.465 }),
      "TNF/TNF7.png (TNF): fused 0.47 · actin 0.52 · nucleus 0.41");
  });
});

describe("inspect: composites and marks on the histogram", function () {
  let dir = "";
  let dataset: CelltoolDataset;
  let source: InspectionSource;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "inspect-test-"));
    await generateSynthetic({ out: path.join(dir, "data"), scale: 0.02, seed: 5 });
    dataset = openCelltool(path.join(dir, "data"));
    // Scores spread evenly over [0, 1] in pair order: known positions for the marks.
    const n = dataset.pairs.length;
    source = {
      dataset,
      warning: "WARNING: test weights",
      rows: dataset.pairs.map((p, i) => ({
        sample_id: p.sampleId, condition: p.condition, tem_actin: 1 - i / (n - 1), tem_nucleus: 0.5, tem_fused: i / (n - 1),
      })),
    };
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("inspection draws the chosen score's histogram, one trace per condition in the dataset's order, with the warning", () => {
    const insp = inspection(source, "tem_actin");
    assert.equal(insp.score, "tem_actin");
    assert.deepEqual(insp.histogram.data.map((t) => String(t.name).split(" ")[0]), dataset.conditions);
    assert.match(insp.histogram.layout.title.text, /tem_actin/);
    assert.match(insp.histogram.layout.title.text, /WARNING: test weights/);
    const scored = { ...source, rows: [...source.rows, { ...source.rows[0], sample_id: "Ctrl/none.png" }] };
    assert.throws(() => inspection(scored), /scored cell "Ctrl\/none\.png" has no image pair/);
  });

  it("viewCells gives one composite per cell at the actin image's size, captions, and a mark at each score", async () => {
    const insp = inspection(source);
    const ids = [source.rows[source.rows.length - 1].sample_id, source.rows[0].sample_id];
    const view = await viewCells(insp, ids);
    assert.deepEqual(view.cells.map((c) => c.sample_id), ids);
    assert.deepEqual(view.captions, view.cells.map(cellCaption));
    for (const [k, png] of view.composites.entries()) {
      const pair = dataset.pairs.find((p) => p.sampleId === ids[k])!;
      const [composite, actin] = await Promise.all([sharp(png).metadata(), sharp(pair.actinPath).metadata()]);
      assert.deepEqual([composite.format, composite.width, composite.height, composite.channels], ["png", actin.width, actin.height, 3]);
    }
    // the last row scores exactly 1, the first exactly 0 (see before()); marks are sorted by score
    assert.deepEqual(view.figure.layout.shapes?.map((s) => s.x0), [0, 1]);
    assert.deepEqual(view.figure.layout.annotations?.map((a) => a.text), [ids[1], ids[0]]);
    assert.equal(insp.histogram.layout.shapes, undefined, "the base histogram is left unmarked");
    await assert.rejects(viewCells(insp, ["TNF/missing.png"]), /no cell "TNF\/missing\.png"/);
  });

  it("showCellsView shows the composites and then the marked figure; inspectCell does both for one id", async () => {
    const calls: string[] = [];
    const display: NotebookDisplay = {
      showFigure: (fig: PlotlyFigure) => { calls.push(`figure:${fig.layout.shapes?.length}`); },
      showPng: () => { calls.push("png"); },
      showImages: async (pngs, captions) => { calls.push(`images:${pngs.length}:${captions?.join("|")}`); },
    };
    const insp = inspection(source);
    await inspectCell(display, insp, source.rows[1].sample_id);
    await showCellsView(display, await viewCells(insp, [source.rows[1].sample_id]));
    const expected = [`images:1:${cellCaption(source.rows[1])}`, "figure:1"];
    assert.deepEqual(calls, [...expected, ...expected]);
  });

  it("saveCellsView writes the marked histogram page and the composites side by side", async () => {
    const insp = inspection(source);
    const view = await viewCells(insp, source.rows.slice(0, 3).map((r) => r.sample_id));
    const out = path.join(dir, "out");
    const files = await saveCellsView(view, out, "picked");
    assert.equal(files[0], path.join(out, "picked.html"));
    assert.match(fs.readFileSync(files[0], "utf8"), /Plotly\.newPlot/);
    const montage = await sharp(path.join(out, "picked_composites.png")).metadata();
    // three 160 px tiles, 4 px apart, each with a 20 px label strip (composite.ts's montage defaults)
    assert.deepEqual([montage.width, montage.height], [3 * 160 + 2 * 4, 160 + 20]);
  });
});
