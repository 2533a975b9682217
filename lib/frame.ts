// danfo.js DataFrames of the scores and the per-condition statistics, for display in the notebook.
// danfo is only the view: every number is computed in lib/axis.ts and lib/metrics.ts (danfo's one-row std is 0
// where pandas says NaN) and files are written by lib/csv.ts, never by danfo. danfojs-node pulls in TensorFlow.js,
// so it is required lazily inside the functions: importing this module stays cheap for the CLI.
import type { DataFrame } from "danfojs-node";
import { toCsv } from "./csv";
import { SCORE_NAMES, type ConditionStats, type ScoreName, type TemMetrics } from "./metrics";

export { toCsv, writeCsvAtomic } from "./csv";

/** One cell's scores: a row of scores.csv. */
export interface ScoreRow {
  sample_id: string;
  condition: string;
  tem_actin: number;
  tem_nucleus: number;
  tem_fused: number;
}

/** One condition's statistics for one score: a row of the per-condition statistics table. */
export interface StatsRow extends ConditionStats {
  score: ScoreName;
}

export const SCORE_COLUMNS = ["sample_id", "condition", "tem_actin", "tem_nucleus", "tem_fused"] as const;
/** The columns of one score's ConditionStats. */
export const STATS_COLUMNS = ["condition", "n", "mean", "std", "median", "q25", "q75", "min", "max"] as const;
/** The columns of statsRows: which score, then its ConditionStats. */
export const SCORE_STATS_COLUMNS = ["score", ...STATS_COLUMNS] as const;

// Explicit dtypes: left to infer, danfo types string ids such as "1", "2" as int32. danfo labels numbers float32
// but keeps the JavaScript doubles it was given, so nothing is rounded.
const SCORE_DTYPES = ["string", "string", "float32", "float32", "float32"];
const STATS_DTYPES = ["string", "string", "int32", ...Array<string>(7).fill("float32")];

function loadDanfo(): typeof import("danfojs-node") {
  return require("danfojs-node");
}

function tableFrame<T extends object>(rows: readonly T[], columns: readonly string[], dtypes: string[]): DataFrame {
  const { DataFrame } = loadDanfo();
  const data = rows.map((row) => columns.map((column) => (row as Record<string, unknown>)[column]));
  return new DataFrame(data, { columns: [...columns], dtypes });
}

/** Rows of the scores table from parallel per-cell arrays (e.g. the cells' ids and conditions, scoreTem's output). */
export function scoreRows(
  sampleIds: readonly string[], conditions: readonly string[], scores: Record<ScoreName, ArrayLike<number>>,
): ScoreRow[] {
  const lengths: [string, number][] = [["conditions", conditions.length],
    ...SCORE_NAMES.map((name): [string, number] => [`${name} scores`, scores[name].length])];
  for (const [what, length] of lengths) {
    if (length !== sampleIds.length) throw new Error(`scoreRows: ${sampleIds.length} sample ids but ${length} ${what}`);
  }
  return sampleIds.map((sample_id, i) => ({
    sample_id, condition: conditions[i],
    tem_actin: scores.tem_actin[i], tem_nucleus: scores.tem_nucleus[i], tem_fused: scores.tem_fused[i],
  }));
}

/** Every score's per-condition statistics as one table, score by score. */
export function statsRows(metrics: Pick<TemMetrics, "scores">): StatsRow[] {
  return SCORE_NAMES.flatMap((score) => metrics.scores[score].by_condition.map((stats) => ({ score, ...stats })));
}

/** A DataFrame with columns sample_id, condition, tem_actin, tem_nucleus, tem_fused. */
export function scoresFrame(rows: readonly ScoreRow[]): DataFrame {
  return tableFrame(rows, SCORE_COLUMNS, SCORE_DTYPES);
}

/** A DataFrame of per-condition statistics (see statsRows); a one-cell condition's std shows as null. */
export function statsFrame(rows: readonly StatsRow[]): DataFrame {
  return tableFrame(rows, SCORE_STATS_COLUMNS, STATS_DTYPES);
}

/** CSV text of a DataFrame's columns (all by default), written by lib/csv.ts rather than by danfo. */
export function frameToCsv(frame: DataFrame, columns: readonly string[] = frame.columns): string {
  const missing = columns.filter((column) => !frame.columns.includes(column));
  if (missing.length > 0) throw new Error(`frameToCsv: the frame has no column(s) ${missing.join(", ")}`);
  const values = frame.values as unknown[][];
  const rows = values.map((row) => Object.fromEntries(frame.columns.map((column, j) => [column, row[j]])));
  return toCsv(rows, columns);
}
