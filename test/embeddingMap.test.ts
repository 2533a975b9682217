// lib/embeddingMap.ts: the figure's structure, and the TEM arrow on closed-form cases (PCA itself is checked
// against sklearn in test/pca.test.ts).
import * as assert from "node:assert/strict";
import { l2Normalize, temAxis } from "../lib/axis";
import { EmbeddingMapInput, embeddingMap } from "../lib/embeddingMap";
import type { PlotlyFigure, PlotlyTrace } from "../lib/plots";
import { Rng } from "../lib/synthDraw";

// Coordinates are O(1) sums of a few float64 products: rounding is ~1e-15, so 1e-12 leaves room and nothing more.
const TOL = 1e-12;

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

function traceNamed(fig: PlotlyFigure, prefix: string): PlotlyTrace {
  const trace = fig.data.find((t) => (t.name ?? "").startsWith(prefix));
  assert.ok(trace, `a trace named "${prefix}..."`);
  return trace;
}

/** 15 unit embeddings in 6-d whose conditions sit at different offsets, scored on the axis fitted to them. */
function clusteredCells(): EmbeddingMapInput {
  const rng = new Rng(11);
  const conditions = [...Array(5).fill("Ctrl"), ...Array(4).fill("TNF"), ...Array(6).fill("TNFTGF")] as string[];
  const offsets: Record<string, number> = { Ctrl: 0, TNF: 1, TNFTGF: 2 };
  const d = 6;
  const raw = conditions.flatMap((c) => Array.from({ length: d }, (_, j) => 1 + (j < 2 ? offsets[c] : 0) + 0.3 * rng.normal()));
  const n = conditions.length;
  const { unit } = l2Normalize(raw, n, d);
  const axis = temAxis(unit, n, d, conditions.map((c) => c === "Ctrl"), conditions.map((c) => c === "TNFTGF"));
  return {
    unitEmbeddings: unit, n, d, conditions,
    sampleIds: conditions.map((c, i) => `${c}/${c}${i}.png`),
    scores: conditions.map((_, i) => i / (n - 1)),
    axis: { ...axis, epithelial: "Ctrl", mesenchymal: "TNFTGF" },
  };
}

describe("embeddingMap", () => {
  it("draws the TEM arrow from the epithelial cells' mean position to the mesenchymal cells' mean position", () => {
    const fig = embeddingMap(clusteredCells(), { channel: "actin", scoreName: "tem_actin" });
    // Projection is affine, so the projected anchor means are the means of the drawn points.
    const ctrl = traceNamed(fig, "Ctrl (n=5)");
    const mes = traceNamed(fig, "TNFTGF (n=6)");
    const arrow = traceNamed(fig, "TEM axis (Ctrl mean to TNFTGF mean)");
    const [x, y] = [arrow.x as number[], arrow.y as number[]];
    assert.ok(Math.abs(x[0] - mean(ctrl.x as number[])) < TOL && Math.abs(y[0] - mean(ctrl.y as number[])) < TOL,
      `arrow starts at (${x[0]}, ${y[0]})`);
    assert.ok(Math.abs(x[1] - mean(mes.x as number[])) < TOL && Math.abs(y[1] - mean(mes.y as number[])) < TOL,
      `arrow ends at (${x[1]}, ${y[1]})`);
  });

  it("shows sample id and score on hover, one trace per condition, equal axis scales, the warning in the title", () => {
    const input = clusteredCells();
    const fig = embeddingMap(input, { channel: "actin", scoreName: "tem_actin", warning: "WARNING: unverified" });
    assert.deepEqual(fig.data.map((t) => t.name), ["Ctrl (n=5)", "TNF (n=4)", "TNFTGF (n=6)",
      "TEM axis (Ctrl mean to TNFTGF mean)"]);
    assert.equal((traceNamed(fig, "TNF (n=4)").text as string[])[0], "TNF/TNF5.png, tem_actin 0.357");
    assert.match(fig.layout.title.text, /^actin embeddings: PC1 \+ PC2 explain \d+\.\d% of the variance/);
    assert.match(fig.layout.title.text, /WARNING: unverified/);
    const xaxis = fig.layout.xaxis as { range: number[]; title: { text: string } };
    const yaxis = fig.layout.yaxis as { range: number[]; scaleanchor: string };
    assert.equal(yaxis.scaleanchor, "x");
    assert.deepEqual(xaxis.range, yaxis.range);
    assert.match(xaxis.title.text, /^PC1 \(\d+\.\d%\)$/);
    const drawn = fig.data.flatMap((t) => [...(t.x as number[]), ...(t.y as number[])]);
    assert.ok(drawn.every((v) => v > xaxis.range[0] && v < xaxis.range[1]), "every point and the arrow in range");
  });

  it("says how much of the axis the plane keeps: 1/sqrt(2) for an axis half out of the cells' plane", () => {
    // Cells vary only in the first two coordinates, so PC1 and PC2 span that plane and explain all variance.
    const rng = new Rng(3);
    const n = 8;
    const cells = Array.from({ length: n }, () => [rng.normal(), 2 * rng.normal(), 0.5]).flat();
    const axis = { muE: [0, 0, 0.5], v: [1, 0, 1] };
    const fig = embeddingMap({
      unitEmbeddings: cells, n, d: 3, conditions: Array(n).fill("Ctrl"), sampleIds: Array.from({ length: n }, (_, i) => `c${i}`),
      scores: Array(n).fill(0.5), axis,
    });
    assert.match(fig.layout.title.text, /explain 100\.0% of the variance/);
    assert.match(fig.layout.title.text, /keeps 70\.7% of its length/);
    const arrow = traceNamed(fig, "TEM axis");
    const [x, y] = [arrow.x as number[], arrow.y as number[]];
    // The in-plane part of v is (1, 0, 0): a unit-length arrow.
    assert.ok(Math.abs(Math.hypot(x[1] - x[0], y[1] - y[0]) - 1) < TOL);
  });

  it("rejects inputs that do not line up", () => {
    const input = clusteredCells();
    assert.throws(() => embeddingMap({ ...input, sampleIds: input.sampleIds.slice(1) }), /15 embeddings but 14 sample ids/);
    assert.throws(() => embeddingMap({ ...input, axis: { muE: [0, 0], v: [1, 0] } }), /axis has dimension 2 .* embeddings 6/);
    const scores = Array.from(input.scores);
    scores[2] = Number.NaN;
    assert.throws(() => embeddingMap({ ...input, scores }), /sample Ctrl\/Ctrl2\.png has score NaN/);
  });
});
