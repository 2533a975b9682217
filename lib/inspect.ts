// Looking at individual cells next to their scores: the method's visual check that the score tracks morphology.
// Cells are picked by score zone (representatives), at random (seeded), or by sample id; each is shown as a colour
// composite (actin + nucleus) and marked on the condition histogram of the score.
import * as path from "node:path";
import { writeFileAtomic } from "./atomic";
import { compositeFromFiles, montage } from "./composite";
import type { CellPair, CelltoolDataset } from "./dataset";
import type { NotebookDisplay } from "./display";
import type { ScoreRow } from "./frame";
import type { ScoreName } from "./metrics";
import type { ScoreRun } from "./pipeline";
import { markCells, saveFigure, scoreHistogram, type PlotlyFigure } from "./plots";
import type { Rng } from "./synthDraw";

/** The reference notebook's three zones: epithelial (near 0), intermediate (around 0.45), mesenchymal (near 1). */
export const REPRESENTATIVE_TARGETS: readonly number[] = [0, 0.45, 1];

/**
 * For each target, the cell whose score is closest to it, each cell used once (targets taken in the order given).
 * Ties go to the earlier row, so the pick is deterministic: many cells sit exactly at 0 or 1 after clipping.
 */
export function representativeCells(
  rows: readonly ScoreRow[], score: ScoreName, targets: readonly number[] = REPRESENTATIVE_TARGETS,
): ScoreRow[] {
  if (rows.length < targets.length) {
    throw new Error(`representativeCells: ${targets.length} targets need at least as many cells, got ${rows.length}`);
  }
  const used = new Set<number>();
  return targets.map((target) => {
    if (!Number.isFinite(target)) throw new Error(`representativeCells: target ${target} is not a number`);
    let best = -1;
    rows.forEach((row, i) => {
      if (used.has(i)) return;
      if (best < 0 || Math.abs(row[score] - target) < Math.abs(rows[best][score] - target)) best = i;
    });
    used.add(best);
    return rows[best];
  });
}

/** One cell drawn uniformly with the caller's seeded generator. */
export function randomCell(rows: readonly ScoreRow[], rng: Rng): ScoreRow {
  if (rows.length === 0) throw new Error("randomCell: there are no cells to pick from");
  return rows[rng.int(0, rows.length - 1)];
}

/** The row of `sampleId`; an Error that suggests ids when it is not there. */
export function findCell(rows: readonly ScoreRow[], sampleId: string): ScoreRow {
  const found = rows.find((row) => row.sample_id === sampleId);
  if (found) return found;
  const lower = sampleId.toLowerCase();
  const similar = rows.filter((row) => row.sample_id.toLowerCase().includes(lower) || lower.includes(row.sample_id.toLowerCase()));
  const hint = similar.length > 0
    ? `did you mean ${similar.slice(0, 5).map((r) => `"${r.sample_id}"`).join(", ")}?`
    : `sample ids look like "${rows[0]?.sample_id ?? "Condition/name.png"}"`;
  throw new Error(`no cell "${sampleId}" among the ${rows.length} scored cells; ${hint}`);
}

/** "TNF/TNF7.png (TNF): fused 0.47 · actin 0.52 · nucleus 0.41" */
export function cellCaption(row: ScoreRow): string {
  return `${row.sample_id} (${row.condition}): fused ${row.tem_fused.toFixed(2)} · actin ${row.tem_actin.toFixed(2)} · ` +
    `nucleus ${row.tem_nucleus.toFixed(2)}`;
}

/** What the inspection functions need from a scoring run (pipeline.ts ScoreRun). */
export type InspectionSource = Pick<ScoreRun, "rows" | "warning"> & { dataset: Pick<CelltoolDataset, "pairs" | "conditions"> };

export interface Inspection {
  score: ScoreName;
  rows: readonly ScoreRow[];
  pairsById: ReadonlyMap<string, CellPair>;
  /** The condition histogram of `score` that cells are marked on. */
  histogram: PlotlyFigure;
}

/** The histogram of one score by condition, and the lookup from sample id to image files. */
export function inspection(source: InspectionSource, score: ScoreName = "tem_fused"): Inspection {
  const pairsById = new Map(source.dataset.pairs.map((p) => [p.sampleId, p]));
  const missing = source.rows.find((row) => !pairsById.has(row.sample_id));
  if (missing) throw new Error(`inspection: scored cell "${missing.sample_id}" has no image pair`);
  const histogram = scoreHistogram(source.rows.map((row) => ({ sample_id: row.sample_id, condition: row.condition, score: row[score] })), {
    title: `TEM score (${score}) by condition`,
    warning: source.warning,
    scoreLabel: `${score} (0 = epithelial anchor, 1 = mesenchymal anchor)`,
    conditionOrder: source.dataset.conditions,
  });
  return { score, rows: source.rows, pairsById, histogram };
}

export interface CellsView {
  /** The score the cells are placed by. */
  score: ScoreName;
  cells: ScoreRow[];
  /** One colour composite per cell (actin green, nucleus blue), PNG. */
  composites: Buffer[];
  captions: string[];
  /** The histogram with a dotted line at each cell's score. */
  figure: PlotlyFigure;
}

/** Composites of the given cells and the histogram with their positions marked. */
export async function viewCells(insp: Inspection, sampleIds: readonly string[]): Promise<CellsView> {
  if (sampleIds.length === 0) throw new Error("viewCells: no sample ids given");
  const cells = sampleIds.map((id) => findCell(insp.rows, id));
  const composites = await Promise.all(cells.map((cell) => {
    const pair = insp.pairsById.get(cell.sample_id)!; // inspection() checked that every row has its pair
    return compositeFromFiles(pair.actinPath, pair.nucleusPath);
  }));
  const figure = markCells(insp.histogram, cells.map((cell) => ({ sample_id: cell.sample_id, score: cell[insp.score] })));
  return { score: insp.score, cells, composites, captions: cells.map(cellCaption), figure };
}

/** The composites side by side, then the marked histogram. */
export async function showCellsView(display: NotebookDisplay, view: CellsView): Promise<void> {
  await display.showImages(view.composites, view.captions);
  display.showFigure(view.figure);
}

/** Single-cell inspection: the cell's composite and where it sits on the histogram. */
export async function inspectCell(display: NotebookDisplay, insp: Inspection, sampleId: string): Promise<void> {
  await showCellsView(display, await viewCells(insp, [sampleId]));
}

/** Writes `<name>.html` (+ `.png` with a browser), the marked histogram, and `<name>_composites.png`, the cells. */
export async function saveCellsView(view: CellsView, outDir: string, name: string): Promise<string[]> {
  const figure = await saveFigure(view.figure, outDir, name);
  const composites = path.join(outDir, `${name}_composites.png`);
  writeFileAtomic(composites, await montage(view.composites, {
    labels: view.cells.map((c) => `${c.sample_id} ${c[view.score].toFixed(2)}`),
  }));
  return [figure.html, ...(figure.png ? [figure.png] : []), composites];
}
