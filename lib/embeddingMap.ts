// A map of one channel's embeddings: the cells' first two principal components, coloured by condition, with the
// TEM axis drawn as an arrow from the epithelial anchor's mean to the mesenchymal one's. It shows whether the
// conditions separate at all in the encoder's space and whether the axis runs along that separation. The map is a
// view: a 2-D projection can hide separation (the title says how much variance and how much of the axis it keeps).
import { type Pca, pca, projectAxis, projectPoints } from "./pca";
import { type FigureOptions, type PlotlyFigure, type PlotlyTrace, scatter } from "./plots";

export interface EmbeddingMapInput {
  /** n x d embeddings of one channel, row-major, L2-normalised as the TEM axis was fitted on them. */
  unitEmbeddings: ArrayLike<number>;
  n: number;
  d: number;
  /** One condition and sample id per row. */
  conditions: readonly string[];
  sampleIds: readonly string[];
  /** The cells' score on this channel (shown on hover). */
  scores: ArrayLike<number>;
  /** The channel's TEM axis (lib/axis.ts AxisInfo or TemAxis): the anchors' mean muE and v = muM - muE. */
  axis: { muE: ArrayLike<number>; v: ArrayLike<number>; epithelial?: string; mesenchymal?: string };
}

export interface EmbeddingMapOptions extends FigureOptions {
  /** Channel name for the title, e.g. "actin". */
  channel?: string;
  /** Score name for the hover text, e.g. "tem_actin". */
  scoreName?: string;
  conditionOrder?: readonly string[];
}

/** The TEM axis in the PCA plane: where muE and muM = muE + v land, and the share of |v| the plane keeps. */
export interface AxisArrow {
  start: [number, number];
  end: [number, number];
  captured: number;
}

/** muE projected like a cell (centred), v as a direction (not centred): their sum is the projected muM. */
export function axisArrow(model: Pca, axis: EmbeddingMapInput["axis"]): AxisArrow {
  if (model.k !== 2) throw new Error(`axisArrow: needs a 2-component PCA, got ${model.k} components`);
  const start = projectPoints(axis.muE, 1, model);
  const { direction, captured } = projectAxis(axis.v, model);
  return { start: [start[0], start[1]], end: [start[0] + direction[0], start[1] + direction[1]], captured };
}

function checkInput(input: EmbeddingMapInput): void {
  const { n, d, conditions, sampleIds, scores, axis } = input;
  if (axis.muE.length !== d || axis.v.length !== d) {
    throw new Error(`embeddingMap: the axis has dimension ${axis.v.length} (muE ${axis.muE.length}), ` +
      `the embeddings ${d}`);
  }
  for (const [what, length] of [["conditions", conditions.length], ["sample ids", sampleIds.length],
    ["scores", scores.length]] as const) {
    if (length !== n) throw new Error(`embeddingMap: ${n} embeddings but ${length} ${what}`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i])) throw new Error(`embeddingMap: sample ${sampleIds[i]} has score ${scores[i]}`);
  }
}

/** Plotly renders trace text as pseudo-HTML: condition names are shown as written. */
const escapeMarkup = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const percent = (fraction: number): string => `${(100 * fraction).toFixed(1)}%`;

/** One square range holding every point: with equal axis scales the arrow's angle to the clouds is true. */
function squareRange(values: readonly number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = 0.05 * (hi - lo || 1);
  return [lo - pad, hi + pad];
}

/** PC1 vs PC2 of the cells, coloured by condition (hover: sample id and score), with the TEM axis as an arrow. */
export function embeddingMap(input: EmbeddingMapInput, options: EmbeddingMapOptions = {}): PlotlyFigure {
  checkInput(input);
  const { unitEmbeddings, n, d, conditions, sampleIds, scores, axis } = input;
  const model = pca(unitEmbeddings, n, d, 2);
  const arrow = axisArrow(model, axis);
  const scoreName = options.scoreName ?? "score";
  const subject = options.channel ? `${options.channel} embeddings` : "Embeddings";
  const [ratio1, ratio2] = model.explainedVarianceRatio;
  const points = sampleIds.map((sampleId, i) => ({
    // scatter() shows the sample id on hover; the score rides along in the same label.
    sample_id: `${sampleId}, ${scoreName} ${scores[i].toFixed(3)}`,
    condition: conditions[i],
    x: model.scores[2 * i],
    y: model.scores[2 * i + 1],
  }));
  const range = squareRange([...model.scores, ...arrow.start, ...arrow.end]);
  const fig = scatter(points, {
    title: options.title ?? `${subject}: PC1 + PC2 explain ${percent(ratio1 + ratio2)} of the variance ` +
      `(${percent(ratio1)} + ${percent(ratio2)}); the TEM axis keeps ${percent(arrow.captured)} of its length here`,
    warning: options.warning,
    conditionOrder: options.conditionOrder,
    xTitle: `PC1 (${percent(ratio1)})`,
    yTitle: `PC2 (${percent(ratio2)})`,
    range,
  });
  const epithelial = escapeMarkup(axis.epithelial ?? "epithelial anchor");
  const mesenchymal = escapeMarkup(axis.mesenchymal ?? "mesenchymal anchor");
  const arrowTrace: PlotlyTrace = {
    type: "scatter",
    mode: "lines+markers",
    name: `TEM axis (${epithelial} mean to ${mesenchymal} mean)`,
    x: [arrow.start[0], arrow.end[0]],
    y: [arrow.start[1], arrow.end[1]],
    text: [`mean of ${epithelial} (muE)`, `mean of ${mesenchymal} (muM)`],
    hovertemplate: "%{text}<extra>TEM axis</extra>",
    line: { color: "#111111", width: 3 },
    // The arrowhead turns to point along the segment from the previous point.
    marker: { color: "#111111", symbol: ["circle-open", "arrow"], size: [12, 16], angleref: "previous" },
  };
  const yaxis = { ...(fig.layout.yaxis as Record<string, unknown>), scaleanchor: "x", scaleratio: 1 };
  return { data: [...fig.data, arrowTrace], layout: { ...fig.layout, yaxis } };
}
