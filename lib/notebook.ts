// What notebooks/main.ipynb needs beyond the pipeline: its parameters (CELLMORPHO_* environment variables, so CI
// and tests can run it on other data), the default data, short summaries of arrays and embeddings, HTML tables
// and the weights-warning box, and the metrics in plain sentences. The notebook's cells stay a few lines long
// and every piece of logic they call is tested here.
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import type { DataFrame } from "danfojs-node";
import { writeJsonAtomic } from "./atomic";
import { l2Normalize, type AxisInfo } from "./axis";
import { toCsv, writeCsvAtomic } from "./csv";
import { CHANNEL_FOLDERS, type CellPair, type CelltoolDataset } from "./dataset";
import { consoleSink, tslabSink, type DisplaySink } from "./display";
import type { EmbedResult } from "./embedding";
import type { Encoder } from "./encoder";
import { ENGINE_NAMES, type EngineName } from "./engines";
import { SCORE_NAMES, type PairwiseWelch, type ScoreName, type TemMetrics } from "./metrics";
import { projectRoot } from "./paths";
import { CELL_SIZE, loadCell } from "./preprocess";
import { DEFAULT_ANCHORS, DEFAULT_FUSION, resolveAnchors, type ScoreRun } from "./pipeline";
import { defaultDataset } from "./synth";

// ---------------------------------------------------------------------------------------------------------------
// Parameters

/** The environment variable that overrides each parameter. */
export const PARAMETER_ENV = {
  data: "CELLMORPHO_DATA",
  anchors: "CELLMORPHO_ANCHORS",
  fusion: "CELLMORPHO_FUSION",
  engine: "CELLMORPHO_ENGINE",
  batchSize: "CELLMORPHO_BATCH",
  outDir: "CELLMORPHO_OUT",
  seed: "CELLMORPHO_SEED",
} as const;

export interface NotebookParameters {
  /** Dataset zip or folder (absolute); null: data/Celltool.zip when present, else the synthetic set. */
  data: string | null;
  /** [epithelial, mesenchymal] anchor conditions. */
  anchors: [string, string];
  /** [actin, nucleus] fusion weights. */
  fusion: [number, number];
  engine: EngineName;
  batchSize: number;
  /** Output folder (absolute). */
  outDir: string;
  /** Seed of the random-cell picks. */
  seed: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/** An unset or blank variable means "use the default". */
function envValue(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function parseAnchors(text: string, name: string): [string, string] {
  const parts = text.split(",").map((s) => s.trim());
  if (parts.length !== 2 || parts.some((p) => p === "") || parts[0] === parts[1]) {
    throw new Error(`${name} must be two different condition names separated by a comma (e.g. Ctrl,TNFTGF), got "${text}"`);
  }
  return [parts[0], parts[1]];
}

function parseFusion(text: string, name: string): [number, number] {
  const parts = text.split(",").map((s) => s.trim());
  const weights = parts.map(Number);
  const valid = parts.length === 2 && parts.every((p) => p !== "") &&
    weights.every((w) => Number.isFinite(w) && w >= 0) && weights[0] + weights[1] > 0;
  if (!valid) {
    throw new Error(`${name} must be two non-negative weights, not both 0, separated by a comma (actin,nucleus; ` +
      `e.g. 0.5,0.5), got "${text}"`);
  }
  return [weights[0], weights[1]];
}

function parseEngine(text: string, name: string): EngineName {
  if (!(ENGINE_NAMES as readonly string[]).includes(text)) {
    throw new Error(`${name} must be one of ${ENGINE_NAMES.join(", ")}, got "${text}"`);
  }
  return text as EngineName;
}

function parseInteger(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/**
 * The notebook's parameters: the defaults of the method (anchors Ctrl/TNFTGF, equal fusion, batches of 64), each
 * overridden by its CELLMORPHO_* variable. Relative paths are taken from the project root, the kernel's folder.
 */
export function notebookParameters(env: Env = process.env, root: string = projectRoot()): NotebookParameters {
  const read = <T>(key: keyof typeof PARAMETER_ENV, fallback: T, parse: (text: string, name: string) => T): T => {
    const text = envValue(env, PARAMETER_ENV[key]);
    return text === undefined ? fallback : parse(text, PARAMETER_ENV[key]);
  };
  const data = envValue(env, PARAMETER_ENV.data);
  return {
    data: data === undefined ? null : path.resolve(root, data),
    anchors: read("anchors", [DEFAULT_ANCHORS[0], DEFAULT_ANCHORS[1]], parseAnchors),
    fusion: read("fusion", [DEFAULT_FUSION[0], DEFAULT_FUSION[1]], parseFusion),
    engine: read("engine", "auto", parseEngine),
    batchSize: read("batchSize", 64, (text, name) => parseInteger(text, name, 1, 4096)),
    outDir: path.resolve(root, envValue(env, PARAMETER_ENV.outDir) ?? "outputs"),
    seed: read("seed", 0, (text, name) => parseInteger(text, name, 0, 0xffffffff)),
  };
}

/** One line per parameter, with the variable that changes it. */
export function formatParameters(p: NotebookParameters): string {
  const rows: [string, string, string][] = [
    ["data", p.data ?? "default: data/Celltool.zip if present, else the synthetic set", PARAMETER_ENV.data],
    ["anchors", `${p.anchors[0]} (epithelial) -> ${p.anchors[1]} (mesenchymal)`, PARAMETER_ENV.anchors],
    ["fusion", `actin ${p.fusion[0]}, nucleus ${p.fusion[1]}`, PARAMETER_ENV.fusion],
    ["engine", p.engine, PARAMETER_ENV.engine],
    ["batch size", String(p.batchSize), PARAMETER_ENV.batchSize],
    ["output folder", p.outDir, PARAMETER_ENV.outDir],
    ["seed", String(p.seed), PARAMETER_ENV.seed],
  ];
  const nameWidth = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([name, value, variable]) => `${name.padEnd(nameWidth)}  ${value.padEnd(valueWidth)}  (${variable})`)
    .join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Data

/** Where the notebook looks for the user's own data when CELLMORPHO_DATA is not set. */
export const DEFAULT_CELLTOOL_ZIP = path.join("data", "Celltool.zip");

export interface DataSource {
  /** Zip or folder to open with openCelltool. */
  path: string;
  origin: "parameter" | "celltool-zip" | "synthetic";
  /** One sentence saying which data this is and why it was chosen. */
  description: string;
}

/**
 * The data the notebook scores: the given path, else data/Celltool.zip, else the embedded synthetic set (generated
 * into data/synthetic on first use).
 */
export async function resolveDataSource(
  data: string | null, options: { root?: string; log?: (line: string) => void } = {},
): Promise<DataSource> {
  const root = options.root ?? projectRoot();
  if (data !== null) {
    if (!fs.existsSync(data)) throw new Error(`data parameter (${PARAMETER_ENV.data}): ${data}: no such file or folder`);
    return { path: data, origin: "parameter", description: `Using ${data} (the data parameter, ${PARAMETER_ENV.data}).` };
  }
  const zip = path.join(root, DEFAULT_CELLTOOL_ZIP);
  if (fs.existsSync(zip)) return { path: zip, origin: "celltool-zip", description: `Using your Celltool export ${zip}.` };
  const synthetic = await defaultDataset({ root, log: options.log });
  return {
    path: synthetic,
    origin: "synthetic",
    description: `No ${DEFAULT_CELLTOOL_ZIP} found: using the embedded SYNTHETIC dataset ${synthetic} ` +
      "(drawn cells with a known EMT state, not biology). To score your own cells, put your export at " +
      `${DEFAULT_CELLTOOL_ZIP} or set the data parameter.`,
  };
}

/** What the dataset holds and which conditions are the anchors; Error when an anchor is missing or too small. */
export function describeDataset(dataset: CelltoolDataset, anchors: readonly [string, string]): string {
  const [epithelial, mesenchymal] = resolveAnchors(dataset, anchors);
  const pairsOf = (condition: string) => dataset.pairs.filter((p) => p.condition === condition).length;
  const role = (condition: string) =>
    condition === epithelial ? "  <- epithelial anchor" : condition === mesenchymal ? "  <- mesenchymal anchor" : "";
  const width = Math.max(...dataset.conditions.map((c) => c.length));
  return [
    `Celltool root: ${dataset.root}`,
    `each condition folder holds ${CHANNEL_FOLDERS.actin}/ (actin) and ${CHANNEL_FOLDERS.nucleus}/ (nucleus) images`,
    `${dataset.conditions.length} conditions, ${dataset.pairs.length} actin/nucleus pairs:`,
    ...dataset.conditions.map((c) => `  ${c.padEnd(width)}  ${String(pairsOf(c)).padStart(5)} pairs${role(c)}`),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Arrays and images

export interface ArraySummary {
  shape: number[];
  min: number;
  max: number;
  mean: number;
}

/** Shape, range and mean of a flat array read as the given shape (Error when the sizes disagree). */
export function summarizeArray(values: ArrayLike<number>, shape: readonly number[]): ArraySummary {
  const size = shape.reduce((a, b) => a * b, 1);
  if (values.length !== size || values.length === 0) {
    throw new Error(`summarizeArray: ${values.length} values cannot have shape [${shape.join(", ")}]`);
  }
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { shape: [...shape], min, max, mean: sum / values.length };
}

/** Integers (grey levels, counts) as they are, other numbers with 3 decimals. */
function formatValue(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}

export function formatSummary(label: string, s: ArraySummary): string {
  return `${label}: shape [${s.shape.join(", ")}], min ${formatValue(s.min)}, max ${formatValue(s.max)}, ` +
    `mean ${formatValue(s.mean)}`;
}

/** A width x height image of values in [0, 1] as an 8-bit grey PNG (round(v * 255), values outside clipped). */
export async function unitGreyPng(values: ArrayLike<number>, width: number, height: number): Promise<Buffer> {
  if (values.length !== width * height) {
    throw new Error(`unitGreyPng: ${values.length} values for a ${width}x${height} image`);
  }
  const grey = Uint8Array.from(values, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  // toColourspace keeps one channel: sharp would otherwise write a grey image as RGB
  return sharp(grey, { raw: { width, height, channels: 1 } }).toColourspace("b-w").png().toBuffer();
}

/** Sizes of the batches n cells fall into: full batches, then the remainder. */
export function batchSizes(n: number, batchSize: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`batchSizes: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSizes: batch size must be a positive integer, got ${batchSize}`);
  }
  const full = Math.floor(n / batchSize);
  const rest = n - full * batchSize;
  return [...Array<number>(full).fill(batchSize), ...(rest > 0 ? [rest] : [])];
}

export interface PairBatch {
  /** [cells, channels, height, width], the layout the encoders take (NCHW, one grey channel). */
  shape: [number, number, number, number];
  actin: Float32Array;
  nucleus: Float32Array;
}

/** Both channels of the given pairs, preprocessed exactly as the encoders receive them, stacked as one batch. */
export async function loadPairBatch(pairs: readonly CellPair[], size: number = CELL_SIZE): Promise<PairBatch> {
  if (pairs.length === 0) throw new Error("loadPairBatch: no pairs given");
  const pixels = size * size;
  const stack = async (files: string[]): Promise<Float32Array> => {
    const out = new Float32Array(files.length * pixels);
    (await Promise.all(files.map((f) => loadCell(f, { size })))).forEach((img, k) => out.set(img, k * pixels));
    return out;
  };
  return {
    shape: [pairs.length, 1, size, size],
    actin: await stack(pairs.map((p) => p.actinPath)),
    nucleus: await stack(pairs.map((p) => p.nucleusPath)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Embeddings and axes

export interface NormCheck {
  cells: number;
  dim: number;
  /** Range of the raw embeddings' Euclidean norms. */
  raw: { min: number; max: number };
  /** Range of the norms after l2Normalize, all-zero rows left out (they stay zero). */
  unit: { min: number; max: number };
  zeroRows: number;
}

function rowNorms(values: ArrayLike<number>, n: number, d: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sumSq = 0;
    for (let j = 0; j < d; j++) sumSq += values[i * d + j] * values[i * d + j];
    norms[i] = Math.sqrt(sumSq);
  }
  return norms;
}

function range(values: ArrayLike<number>): { min: number; max: number } {
  const { min, max } = summarizeArray(values, [values.length]);
  return { min, max };
}

/** The norms of one channel's embeddings before and after L2 normalisation (after: 1 up to rounding). */
export function normCheck(embeddings: EmbedResult): NormCheck {
  const { vectors, n, dim } = embeddings;
  const { unit, zeroRows } = l2Normalize(vectors, n, dim);
  const zero = new Set(zeroRows);
  const unitNorms = Array.from(rowNorms(unit, n, dim)).filter((_, i) => !zero.has(i));
  return {
    cells: n,
    dim,
    raw: range(rowNorms(vectors, n, dim)),
    unit: unitNorms.length > 0 ? range(unitNorms) : { min: 0, max: 0 },
    zeroRows: zeroRows.length,
  };
}

/** float64 division leaves a unit vector's norm within a few ulps of 1; 1e-9 is far above that and far below any bug. */
const UNIT_NORM_TOLERANCE = 1e-9;

export function formatNormCheck(channel: string, c: NormCheck): string {
  const ok = c.unit.min >= 1 - UNIT_NORM_TOLERANCE && c.unit.max <= 1 + UNIT_NORM_TOLERANCE;
  const zero = c.zeroRows > 0 ? `; ${c.zeroRows} all-zero embedding(s) left at 0` : "";
  return `${channel}: ${c.cells} x ${c.dim}; norms before ${c.raw.min.toFixed(3)} to ${c.raw.max.toFixed(3)}, ` +
    `after ${c.unit.min.toFixed(6)} to ${c.unit.max.toFixed(6)} ${ok ? "(all 1: ok)" : "(NOT 1: check the embeddings)"}${zero}`;
}

/** What runs one channel's encoder, and from which weights. */
export function formatEncoderInfo(channel: string, encoder: Pick<Encoder, "info" | "inputSize" | "dim">): string {
  const { info } = encoder;
  return `${channel}: ${info.encoder} on engine ${info.engine} (backend ${info.backend}, device ${info.device}); ` +
    `input 1 x ${encoder.inputSize} x ${encoder.inputSize} -> ${encoder.dim} numbers; weights ${info.weights.label}, ` +
    `sha256 ${info.weights.sha256.slice(0, 12)}..., ${info.weights.verified ? "verified ImageNet" : "NOT verified"}`;
}

/** One channel's axis in a line: anchors and their sizes, |v| and the 1st/99th percentile raw scores. */
export function formatAxis(channel: string, axis: AxisInfo): string {
  return `${channel}: v = mu(${axis.mesenchymal}, n=${axis.nMesenchymal}) - mu(${axis.epithelial}, n=${axis.nEpithelial}), ` +
    `|v| = ${formatCell(axis.vNorm)}; s = ${formatCell(axis.p_lo)} (P${axis.q_lo}) -> 0, ` +
    `s = ${formatCell(axis.p_hi)} (P${axis.q_hi}) -> 1`;
}

/** What the embedding step produced: cells x numbers per channel (how many from the cache), and any image left out. */
export function describeEmbeddings(run: Pick<ScoreRun, "embeddings" | "unreadable" | "scored">): string {
  const lines = (["actin", "nucleus"] as const).map((channel) => {
    const e = run.embeddings[channel];
    return `${channel}: ${e.n} cells x ${e.dim} numbers (${e.cached} from the cache)`;
  });
  const skipped = run.unreadable.map((u) => `  left out: ${u.sample_id} (${u.channel} image ${u.file}: ${u.reason})`);
  return [...lines, `${run.scored.length} cells scored, ${run.unreadable.length} unreadable image(s)`, ...skipped].join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// HTML output: tables and the warning box

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Integers as they are, tiny values (p-values) in exponent form, the rest with 4 significant digits. */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  return Math.abs(value) < 1e-3 ? value.toExponential(2) : value.toPrecision(4);
}

/** An HTML table; numbers right-aligned and formatted by formatCell. */
export function tableHtml(columns: readonly string[], rows: readonly (readonly unknown[])[], caption?: string): string {
  rows.forEach((row, i) => {
    if (row.length !== columns.length) throw new Error(`tableHtml: row ${i} has ${row.length} cells for ${columns.length} columns`);
  });
  const cell = (v: unknown) => `<td style="text-align:${typeof v === "number" ? "right" : "left"}">${escapeHtml(formatCell(v))}</td>`;
  const head = columns.map((c) => `<th style="text-align:left">${escapeHtml(c)}</th>`).join("");
  const body = rows.map((row) => `<tr>${row.map(cell).join("")}</tr>`).join("\n");
  const title = caption ? `<caption style="text-align:left">${escapeHtml(caption)}</caption>` : "";
  return `<table class="cellmorpho-table">${title}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** The same table as plain text, for viewers without HTML. */
export function tableText(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [columns.map(String), ...rows.map((row) => row.map(formatCell))];
  const widths = columns.map((_, j) => Math.max(...cells.map((r) => r[j].length)));
  return cells.map((r) => r.map((c, j) => c.padEnd(widths[j])).join("  ").trimEnd()).join("\n");
}

export interface TableOutput {
  html: string;
  text: string;
}

/** Objects as a table, one column per key given, in that order. */
export function rowsTable<T extends object>(
  objects: readonly T[], columns: readonly (keyof T & string)[], caption?: string,
): TableOutput {
  const rows = objects.map((o) => columns.map((c) => o[c]));
  const text = tableText(columns, rows);
  return { html: tableHtml(columns, rows, caption), text: caption ? `${caption}\n${text}` : text };
}

/** The first maxRows rows of a danfo DataFrame as a table, with a note of how many rows were left out. */
export function frameTable(frame: DataFrame, maxRows = 10): TableOutput {
  const [rowCount] = frame.shape;
  const shown = frame.head(Math.min(maxRows, rowCount)).values as unknown[][];
  const caption = rowCount > shown.length ? `first ${shown.length} of ${rowCount} rows` : `${rowCount} rows`;
  return { html: tableHtml(frame.columns, shown, caption), text: `${tableText(frame.columns, shown)}\n(${caption})` };
}

/** The weights warning as a red box, so that nobody mistakes the scores below it for the method's. */
export function warningHtml(warning: string): string {
  return `<div class="cellmorpho-warning" role="alert" style="border:2px solid #b00020;background:#fdecea;` +
    `color:#5f0010;padding:10px 14px;margin:6px 0;border-radius:4px;font-weight:600">&#9888; ${escapeHtml(warning)}</div>`;
}

/** Sends HTML (with a text fallback) to the notebook, or prints the text outside one. */
export function showHtml(html: string, text: string, sink: DisplaySink = tslabSink() ?? consoleSink()): void {
  sink({ "text/html": html, "text/plain": text });
}

export function showTable(table: TableOutput, sink?: DisplaySink): void {
  showHtml(table.html, table.text, sink);
}

/** Shows the warning box when there is a warning, nothing otherwise. */
export function showWarning(warning: string | null, sink?: DisplaySink): void {
  if (warning !== null) showHtml(warningHtml(warning), warning, sink);
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics in words

/** p-values: two significant digits, exponent form below 1e-4, and the floor of float64 said as such. */
export function formatP(p: number): string {
  if (p === 0) return "< 1e-300";
  return p < 1e-4 ? p.toExponential(1) : p.toPrecision(2);
}

function percent(x: number): string {
  return `${Math.round(x * 100)} %`;
}

function correlationStrength(r: number): string {
  const a = Math.abs(r);
  if (a < 0.3) return "weakly related: the two channels see different aspects of the cell, which is why fusing them can help";
  if (a < 0.7) return "moderately related: the channels partly agree and partly add information";
  return "strongly related: the two channels largely agree";
}

/** The metrics of one score (default tem_fused) as sentences a newcomer can read. */
export function explainMetrics(metrics: TemMetrics, score: ScoreName = "tem_fused"): string[] {
  const m = metrics.scores[score];
  const { epithelial: E, mesenchymal: M } = metrics.anchors;
  const d = m.cohens_d;
  const t = m.welch_anchor;
  const significant = m.pairwise_welch.filter((w) => w.p !== null && w.p < 0.05).length;
  const between = m.between_anchors.details;
  const meanOf = (c: string) => m.by_condition.find((s) => s.condition === c)?.mean;
  const anchorMeans = `${E} ${meanOf(E)?.toFixed(2)}, ${M} ${meanOf(M)?.toFixed(2)}`;
  const { pearson, spearman } = metrics.correlation_actin_nucleus;
  return [
    `AUC ${m.auc.toFixed(2)}: a randomly chosen ${M} cell scores higher than a randomly chosen ${E} cell ` +
      `${percent(m.auc)} of the time (50 % = chance, 100 % = perfect separation).`,
    `Cohen's d ${d.toFixed(2)}: the mean ${M} score lies ${Math.abs(d).toFixed(2)} pooled standard deviations ` +
      `${d >= 0 ? "above" : "below"} the mean ${E} score (rule of thumb: 0.2 small, 0.5 medium, 0.8 large).`,
    `Welch t-test ${M} vs ${E}: t = ${t.t.toFixed(2)}, df = ${t.df.toFixed(1)}, p = ${formatP(t.p)}: ` +
      (t.p < 0.05 ? "a difference this large would be very unlikely if both conditions had the same mean score."
        : "not significant at the 5 % level."),
    `Overlap ${m.overlap.toFixed(2)}: the ${E} and ${M} histograms share ${percent(m.overlap)} of their area ` +
      "(0 % = fully separated, 100 % = identical).",
    between.length === 0
      ? "Only the two anchors are present: there is no intermediate condition to check."
      : `Intermediate conditions: ${between.map((b) => `${b.condition} ${b.mean.toFixed(2)}`).join(", ")} ` +
        `(anchors: ${anchorMeans}). ` + (m.between_anchors.ok
          ? "All lie between the anchors, as the biology expects."
          : `Not all lie between the anchors: ${between.filter((b) => !b.between).map((b) => b.condition).join(", ")} ` +
            "fall outside."),
    `${significant} of ${m.pairwise_welch.length} condition pairs differ at p < 0.05 (Welch t-tests; no correction ` +
      "for multiple comparisons).",
    `Actin and nucleus scores: Pearson r = ${pearson.toFixed(2)}, Spearman rho = ${spearman.toFixed(2)}: ` +
      `${correlationStrength(pearson)}.`,
  ];
}

/** One row per score: the anchor statistics of metrics.json side by side. */
export interface MetricsSummaryRow {
  score: ScoreName;
  auc: number;
  cohens_d: number;
  welch_t: number;
  welch_df: number;
  welch_p: number;
  overlap: number;
}

export const METRICS_SUMMARY_COLUMNS = ["score", "auc", "cohens_d", "welch_t", "welch_df", "welch_p", "overlap"] as const;
export const PAIRWISE_COLUMNS = ["score", "a", "b", "n_a", "n_b", "t", "df", "p", "note"] as const;

export function metricsSummaryRows(metrics: TemMetrics): MetricsSummaryRow[] {
  return SCORE_NAMES.map((score) => {
    const m = metrics.scores[score];
    return {
      score, auc: m.auc, cohens_d: m.cohens_d,
      welch_t: m.welch_anchor.t, welch_df: m.welch_anchor.df, welch_p: m.welch_anchor.p, overlap: m.overlap,
    };
  });
}

/** One Welch test of the pairwise table; note is "" when the test is defined. */
export type PairwiseRow = PairwiseWelch & { score: ScoreName; note: string };

/** Every score's Welch tests for all condition pairs, one table. */
export function pairwiseRows(metrics: TemMetrics): PairwiseRow[] {
  return SCORE_NAMES.flatMap((score) => metrics.scores[score].pairwise_welch.map((w) => ({ score, ...w, note: w.note ?? "" })));
}

/**
 * metrics_summary.csv (one row per score), pairwise_welch.csv (all condition pairs) and metrics_summary.json (both,
 * with the warning), each written atomically; the CSVs open with the warning as a "# " comment line when there is one.
 */
export function writeMetricsSummary(metrics: TemMetrics, warning: string | null, outDir: string): string[] {
  const files = {
    summaryCsv: path.join(outDir, "metrics_summary.csv"),
    pairwiseCsv: path.join(outDir, "pairwise_welch.csv"),
    json: path.join(outDir, "metrics_summary.json"),
  };
  const preamble = warning ? [`# ${warning}`] : [];
  const summary = metricsSummaryRows(metrics);
  const pairwise = pairwiseRows(metrics);
  writeCsvAtomic(files.summaryCsv, toCsv(summary, METRICS_SUMMARY_COLUMNS, preamble));
  writeCsvAtomic(files.pairwiseCsv, toCsv(pairwise, PAIRWISE_COLUMNS, preamble));
  writeJsonAtomic(files.json, { warning, anchors: metrics.anchors, summary, pairwise_welch: pairwise });
  return Object.values(files);
}
