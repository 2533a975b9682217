// Plotly figures for the notebook and the reports: pure builders that return plain `{data, layout}` JSON,
// plus the HTML that draws such a figure offline (plotly.js inlined from the plotly.js-dist-min package, no CDN).
// Every builder takes the weights warning and puts it in the title, so a figure cannot hide it.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "./atomic";
import { findChromium, screenshotPage } from "./browser";
import { histogram } from "./metrics";

// ---------------------------------------------------------------------------------------------------------------
// Figure JSON

/** One Plotly trace; only the keys these builders set are named, the rest passes through to plotly.js. */
export interface PlotlyTrace {
  type: "bar" | "scatter" | "box" | "heatmap";
  name?: string;
  [key: string]: unknown;
}

export interface PlotlyShape {
  type: "line";
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  xref: "x";
  yref: "paper";
  line: { color: string; width: number; dash: string };
}

export interface PlotlyAnnotation {
  text: string;
  x: number;
  y: number;
  xref: "x";
  yref: "paper";
  [key: string]: unknown;
}

export interface PlotlyLayout {
  title: { text: string; [key: string]: unknown };
  shapes?: PlotlyShape[];
  annotations?: PlotlyAnnotation[];
  [key: string]: unknown;
}

export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout: PlotlyLayout;
}

/** One cell's score, as the histogram and box plot take it. */
export interface ScoreRow {
  sample_id: string;
  condition: string;
  score: number;
}

/** Options every builder shares. */
export interface FigureOptions {
  title?: string;
  /** The unverified-weights sentence (encoder.ts weightsWarning); shown under the title when present. */
  warning?: string | null;
}

export interface ConditionFigureOptions extends FigureOptions {
  /** Conditions drawn first, in this order; others follow (known ones canonically, then alphabetically). */
  conditionOrder?: readonly string[];
  /** Axis title for the score, e.g. "tem_fused". */
  scoreLabel?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Condition colours: the method's anchors are fixed (Ctrl blue, TNFTGF red) so every figure reads the same way.

const KNOWN_CONDITIONS: readonly string[] = ["Ctrl", "TNF", "TGF", "TNFTGF"];
const KNOWN_CONDITION_COLOURS: Readonly<Record<string, string>> = {
  Ctrl: "#1f77b4",
  TNF: "#9467bd",
  TGF: "#ff7f0e",
  TNFTGF: "#d62728",
};
const SPARE_PALETTE: readonly string[] = ["#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** Known conditions keep their colour; the others take spare palette colours in the order given. */
export function conditionColours(conditions: readonly string[]): Map<string, string> {
  const colours = new Map<string, string>();
  let spare = 0;
  for (const condition of conditions) {
    if (colours.has(condition)) continue;
    const known = KNOWN_CONDITION_COLOURS[condition];
    colours.set(condition, known ?? SPARE_PALETTE[spare++ % SPARE_PALETTE.length]);
  }
  return colours;
}

/** The conditions present in `present`, preferred ones first, then known ones canonically, then alphabetically. */
export function orderConditions(present: Iterable<string>, preferred: readonly string[] = []): string[] {
  const remaining = new Set(present);
  const ordered: string[] = [];
  for (const condition of [...preferred, ...KNOWN_CONDITIONS]) {
    if (remaining.delete(condition)) ordered.push(condition);
  }
  return [...ordered, ...[...remaining].sort()];
}

function groupByCondition<T extends { condition: string }>(rows: readonly T[], preferred?: readonly string[]) {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const group = groups.get(row.condition);
    if (group) group.push(row);
    else groups.set(row.condition, [row]);
  }
  const order = orderConditions(groups.keys(), preferred);
  const colours = conditionColours(order);
  return order.map((condition) => ({ condition, rows: groups.get(condition)!, colour: colours.get(condition)! }));
}

// ---------------------------------------------------------------------------------------------------------------
// Text: user strings go through plotly's pseudo-HTML renderer, so they are escaped; the warning is wrapped.

function escapeMarkup(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Greedy word wrap; plotly never wraps titles itself. */
function wrapWords(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > maxChars) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

const WARNING_LINE_CHARS = 100;
/** Plotly spaces <br> lines by 1.3 x the title's font size (17 px). */
const TITLE_LINE_PX = 22;
const TITLE_PAD_PX = 24;
const TITLE_GAP_PX = 16;

/**
 * Title text (the warning in red under it), pinned to the top of the figure, and the top margin all its lines
 * need: plotly centres a title in the margin and would otherwise push a long warning into the plot.
 */
function titleLayout(options: FigureOptions): Pick<PlotlyLayout, "title"> & { margin: { t: number } } {
  const title = escapeMarkup(options.title ?? "");
  const warningLines = options.warning ? wrapWords(escapeMarkup(options.warning), WARNING_LINE_CHARS) : [];
  const warning = warningLines.length
    ? `<span style="color:#b00020;font-size:12px">${warningLines.join("<br>")}</span>`
    : "";
  const lines = (title ? 1 : 0) + warningLines.length;
  return {
    title: {
      text: [title, warning].filter(Boolean).join("<br>"),
      x: 0.5, xanchor: "center", y: 1, yref: "container", yanchor: "top", pad: { t: TITLE_PAD_PX },
    },
    margin: { t: TITLE_PAD_PX + TITLE_LINE_PX * lines + TITLE_GAP_PX },
  };
}

function requireFiniteScores<T extends { sample_id: string }>(
  rows: readonly T[], values: (row: T) => readonly number[], what: string,
): void {
  for (const row of rows) {
    for (const value of values(row)) {
      if (!Number.isFinite(value)) {
        throw new Error(`${what}: sample ${row.sample_id} has a non-finite score (${value})`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Histogram. Counts come from lib/metrics.ts histogram, not from plotly: plotly's histogram bins are all half-open
// (measured with plotly.js 3.7: values equal to xbins.end are dropped), so every score of exactly 1.0 (the cells
// clipped at the 99th percentile, >= 1 % of them by construction) would vanish. numpy.histogram's rule (last bin
// closed) keeps them, and matches the Python side.

export interface HistogramOptions extends ConditionFigureOptions {
  bins?: number;
}

/** Overlaid probability-density histograms of a [0, 1] score, one trace per condition. */
export function scoreHistogram(rows: readonly ScoreRow[], options: HistogramOptions = {}): PlotlyFigure {
  const bins = options.bins ?? 30;
  requireFiniteScores(rows, (row: ScoreRow) => [row.score], "scoreHistogram");
  for (const row of rows) {
    if (row.score < 0 || row.score > 1) {
      throw new Error(`scoreHistogram: sample ${row.sample_id} has score ${row.score}, outside [0, 1]`);
    }
  }
  const data = groupByCondition(rows, options.conditionOrder).map(({ condition, rows: group, colour }): PlotlyTrace => {
    const { edges, counts, density } = histogram(group.map((row) => row.score), bins);
    const label = escapeMarkup(condition);
    return {
      type: "bar",
      name: `${label} (n=${group.length})`,
      legendgroup: condition,
      x: counts.map((_, i) => (edges[i] + edges[i + 1]) / 2),
      width: counts.map((_, i) => edges[i + 1] - edges[i]),
      y: density,
      customdata: counts.map((count, i) => [edges[i], edges[i + 1], count]),
      hovertemplate: `${label}<br>score %{customdata[0]:.3f} to %{customdata[1]:.3f}<br>` +
        `%{customdata[2]} cells, density %{y:.2f}<extra></extra>`,
      marker: { color: colour, line: { width: 0 } },
      opacity: 0.55,
    };
  });
  return {
    data,
    layout: {
      ...titleLayout(options),
      barmode: "overlay",
      bargap: 0,
      xaxis: { title: { text: escapeMarkup(options.scoreLabel ?? "score") }, range: [0, 1] },
      yaxis: { title: { text: "probability density" } },
      legend: { title: { text: "condition" } },
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Marks on a score axis (representative cells)

export interface MarkedCell {
  sample_id: string;
  score: number;
  /** Shown beside the line; defaults to the sample id. */
  label?: string;
}

/** Label heights cycle so that marks at close scores do not print over each other. */
const MARK_LABEL_HEIGHTS = [0.98, 0.9, 0.82];

/** A copy of `fig` with a dotted vertical line and a label at each cell's score. */
export function markCells(fig: PlotlyFigure, cells: readonly MarkedCell[]): PlotlyFigure {
  requireFiniteScores(cells, (cell: MarkedCell) => [cell.score], "markCells");
  const ordered = [...cells].sort((a, b) => a.score - b.score);
  const shapes = ordered.map((cell): PlotlyShape => ({
    type: "line", x0: cell.score, x1: cell.score, y0: 0, y1: 1, xref: "x", yref: "paper",
    line: { color: "#333333", width: 1.5, dash: "dot" },
  }));
  const annotations = ordered.map((cell, i): PlotlyAnnotation => ({
    text: escapeMarkup(cell.label ?? cell.sample_id),
    x: cell.score,
    y: MARK_LABEL_HEIGHTS[i % MARK_LABEL_HEIGHTS.length],
    xref: "x",
    yref: "paper",
    // Labels of marks in the right half run leftwards, so they stay inside the plot (not over the legend).
    xanchor: cell.score > 0.5 ? "right" : "left",
    showarrow: false,
    font: { size: 11 },
    bgcolor: "rgba(255,255,255,0.8)",
  }));
  return {
    data: fig.data,
    layout: {
      ...fig.layout,
      shapes: [...(fig.layout.shapes ?? []), ...shapes],
      annotations: [...(fig.layout.annotations ?? []), ...annotations],
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Scatter, box plot, heatmap, bar

export interface ScatterRow {
  sample_id: string;
  condition: string;
  x: number;
  y: number;
}

export interface ScatterOptions extends FigureOptions {
  conditionOrder?: readonly string[];
  xTitle?: string;
  yTitle?: string;
  /** Both axes; scores live in [0, 1], the margin keeps points at 0 and 1 visible. */
  range?: readonly [number, number];
}

/** Score against score, one marker trace per condition; hover shows the sample id. */
export function scatter(rows: readonly ScatterRow[], options: ScatterOptions = {}): PlotlyFigure {
  requireFiniteScores(rows, (row: ScatterRow) => [row.x, row.y], "scatter");
  const range = options.range ?? [-0.02, 1.02];
  const xTitle = escapeMarkup(options.xTitle ?? "x");
  const yTitle = escapeMarkup(options.yTitle ?? "y");
  const groups = groupByCondition(rows, options.conditionOrder);
  const data = groups.map(({ condition, rows: group, colour }): PlotlyTrace => ({
    type: "scatter",
    mode: "markers",
    name: `${escapeMarkup(condition)} (n=${group.length})`,
    x: group.map((row) => row.x),
    y: group.map((row) => row.y),
    text: group.map((row) => escapeMarkup(row.sample_id)),
    hovertemplate: `%{text}<br>${xTitle} %{x:.3f}<br>${yTitle} %{y:.3f}<extra>${escapeMarkup(condition)}</extra>`,
    marker: { color: colour, size: 6, opacity: 0.7 },
  }));
  return {
    data,
    layout: {
      ...titleLayout(options),
      xaxis: { title: { text: xTitle }, range: [...range] },
      yaxis: { title: { text: yTitle }, range: [...range] },
      legend: { title: { text: "condition" } },
    },
  };
}

/** A box per condition with every cell drawn beside it; hover shows the sample id. */
export function boxByCondition(rows: readonly ScoreRow[], options: ConditionFigureOptions = {}): PlotlyFigure {
  requireFiniteScores(rows, (row: ScoreRow) => [row.score], "boxByCondition");
  const groups = groupByCondition(rows, options.conditionOrder);
  const data = groups.map(({ condition, rows: group, colour }): PlotlyTrace => ({
    type: "box",
    name: `${escapeMarkup(condition)} (n=${group.length})`,
    y: group.map((row) => row.score),
    text: group.map((row) => escapeMarkup(row.sample_id)),
    hovertemplate: "%{text}<br>%{y:.3f}<extra></extra>",
    boxpoints: "all",
    jitter: 0.4,
    pointpos: 0,
    marker: { color: colour, size: 4, opacity: 0.6 },
    line: { color: colour },
  }));
  return {
    data,
    layout: {
      ...titleLayout(options),
      yaxis: { title: { text: escapeMarkup(options.scoreLabel ?? "score") } },
      showlegend: false,
    },
  };
}

export interface HeatmapOptions extends FigureOptions {
  /** Centre of a diverging colour scale (e.g. 0 for Cohen's d); omitted: a sequential scale. */
  zmid?: number;
  /** d3-format of the value printed in each cell. */
  valueFormat?: string;
}

/** A labelled matrix, e.g. Cohen's d or p-values for all condition pairs; values are printed in the cells. */
export function heatmap(
  columns: readonly string[], rowLabels: readonly string[], z: readonly (readonly (number | null)[])[],
  options: HeatmapOptions = {},
): PlotlyFigure {
  if (z.length !== rowLabels.length || z.some((row) => row.length !== columns.length)) {
    throw new Error(`heatmap: z must be ${rowLabels.length} rows of ${columns.length} values`);
  }
  const format = options.valueFormat ?? ".2f";
  const trace: PlotlyTrace = {
    type: "heatmap",
    x: columns.map(escapeMarkup),
    y: rowLabels.map(escapeMarkup),
    z: z.map((row) => [...row]),
    colorscale: options.zmid === undefined ? "Viridis" : "RdBu",
    reversescale: options.zmid !== undefined,
    texttemplate: `%{z:${format}}`,
    hovertemplate: `%{y} / %{x}: %{z:${format}}<extra></extra>`,
  };
  if (options.zmid !== undefined) trace.zmid = options.zmid;
  return {
    data: [trace],
    layout: { ...titleLayout(options), yaxis: { autorange: "reversed" } },
  };
}

export interface BarOptions extends FigureOptions {
  yTitle?: string;
  yRange?: readonly [number, number];
  /** Symmetric error bar per bar, e.g. a standard error. */
  errors?: readonly number[];
}

/** One bar per category, e.g. the anchors' ROC-AUC per channel. */
export function bar(categories: readonly string[], values: readonly number[], options: BarOptions = {}): PlotlyFigure {
  if (values.length !== categories.length || (options.errors && options.errors.length !== categories.length)) {
    throw new Error(`bar: ${categories.length} categories need as many values (and errors, if given)`);
  }
  const trace: PlotlyTrace = {
    type: "bar",
    x: categories.map(escapeMarkup),
    y: [...values],
    texttemplate: "%{y:.3f}",
    textposition: "outside",
    marker: { color: "#4c72b0" },
  };
  if (options.errors) trace.error_y = { type: "data", array: [...options.errors], visible: true };
  const yaxis: Record<string, unknown> = { title: { text: escapeMarkup(options.yTitle ?? "") } };
  if (options.yRange) yaxis.range = [...options.yRange];
  return { data: [trace], layout: { ...titleLayout(options), yaxis, showlegend: false } };
}

// ---------------------------------------------------------------------------------------------------------------
// HTML: plotly.js is inlined (the reports are opened offline) and read from disk at most once per process.

function lazy<T>(compute: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => (cached ??= { value: compute() }).value;
}

const plotlySource = lazy((): string => {
  const file = require.resolve("plotly.js-dist-min");
  const source = fs.readFileSync(file, "utf8");
  // Inside <script>, "</script" would end the element early; plotly.js has none today, a new version might.
  if (/<\/script/i.test(source)) throw new Error(`${file} contains "</script" and cannot be inlined in HTML`);
  return source;
});

/** A <script> that defines window.Plotly unless an earlier output on the page already did. */
export function plotlyLoaderHtml(): string {
  // The newline keeps a trailing line comment in the library from swallowing the closing brace.
  return `<script type="text/javascript">if (!window.Plotly) {\n${plotlySource()}\n}</script>\n`;
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function escapeHtml(text: string): string {
  return escapeMarkup(text).replace(/'/g, "&#39;");
}

export interface FragmentOptions {
  /** Id of the figure's <div>; defaults to a random one so that several figures share a page. */
  divId?: string;
  /** CSS height of the figure; defaults to layout.height in px, else 480px. */
  height?: string;
  /** Put plotly.js itself in front of the figure (the first figure of a notebook). */
  includePlotly?: boolean;
  /** A still picture: no toolbar, no hover (pages drawn only to be screenshotted). */
  staticPlot?: boolean;
}

/**
 * A <div> and the <script> that draws `fig` into it with the page's window.Plotly. Without plotly.js on the page
 * the div says so instead of staying blank.
 */
export function figureHtmlFragment(fig: PlotlyFigure, options: FragmentOptions = {}): string {
  const divId = options.divId ?? `cellmorpho-figure-${randomUUID()}`;
  const layoutHeight = fig.layout.height;
  const height = options.height ?? `${typeof layoutHeight === "number" ? layoutHeight : 480}px`;
  const loader = options.includePlotly ? plotlyLoaderHtml() : "";
  const plotConfig = options.staticPlot ? { staticPlot: true } : { responsive: true, displaylogo: false };
  const div = `<div id="${escapeHtml(divId)}" class="cellmorpho-figure" style="width:100%;height:${escapeHtml(height)}">`;
  return `${loader}${div}</div>
<script type="text/javascript">(function () {
  var el = document.getElementById(${scriptJson(divId)});
  if (!window.Plotly) {
    el.textContent = "plotly.js is not loaded on this page: output plotlyLoaderHtml() before this figure.";
    return;
  }
  var fig = ${scriptJson(fig)};
  window.Plotly.newPlot(el, fig.data, fig.layout, ${scriptJson(plotConfig)});
})();</script>
`;
}

export interface PageOptions {
  /** The page's <title>; defaults to the figure's title. */
  title?: string;
  /**
   * A fixed-size still figure for a screenshot. Without it the figure fills the window; but headless Chromium's
   * viewport is shorter than its --window-size, so a window-filling figure would come out short in a PNG.
   */
  imageSize?: { width: number; height: number };
}

/** A self-contained page (plotly.js inlined) that draws `fig`, over the whole window unless imageSize is given. */
export function figureHtml(fig: PlotlyFigure, options: PageOptions = {}): string {
  const title = escapeHtml(options.title ?? plainTitle(fig));
  const size = options.imageSize;
  const figure = size
    ? figureHtmlFragment({ data: fig.data, layout: { ...fig.layout, ...size } }, { divId: "figure", staticPlot: true })
    : figureHtmlFragment(fig, { divId: "figure", height: "100vh" });
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<style>html, body { margin: 0; height: 100%; background: #ffffff; }</style>
</head>
<body>
${plotlyLoaderHtml()}${figure}</body>
</html>
`;
}

/** The figure's title and warning as one line of plain text (summaries, page titles). */
export function plainTitle(fig: PlotlyFigure): string {
  return fig.layout.title.text
    .replace(/<br>/g, " ")
    .replace(/<[^>]*>/g, "")
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&")
    .trim();
}

// ---------------------------------------------------------------------------------------------------------------
// Files

export interface SaveFigureOptions {
  title?: string;
  /** Size of the PNG in px (the browser window the page is drawn in). */
  width?: number;
  height?: number;
  /** Set false to skip the PNG even when a browser is available. */
  png?: boolean;
}

export interface SavedFigure {
  html: string;
  /** Absent when no headless Chromium was found (or png: false). */
  png?: string;
}

/** Writes `<outDir>/<name>.html`, and `<name>.png` where a headless Chromium is available. */
export async function saveFigure(
  fig: PlotlyFigure, outDir: string, name: string, options: SaveFigureOptions = {},
): Promise<SavedFigure> {
  if (!name || name !== path.basename(name) || name.startsWith(".")) {
    throw new Error(`saveFigure: "${name}" is not a plain file name (no folders, no leading dot)`);
  }
  const html = path.join(outDir, `${name}.html`);
  writeFileAtomic(html, figureHtml(fig, { title: options.title }));
  const chromium = options.png === false ? null : findChromium();
  if (!chromium) return { html };
  const png = path.join(outDir, `${name}.png`);
  const imageSize = { width: options.width ?? 900, height: options.height ?? 540 };
  await screenshotPage(figureHtml(fig, { title: options.title, imageSize }), png, { ...imageSize, chromium });
  return { html, png };
}
