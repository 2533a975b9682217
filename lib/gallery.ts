// A gallery of cells along the score: the cells nearest to evenly spaced quantiles of the score, as colour
// composites in one labelled strip, so a reader can see what a low, middle and high score look like.
import { percentile } from "./axis";
import { type CompositeOptions, compositeFromFiles, montage } from "./composite";
import type { CellPair } from "./dataset";
import type { ScoreRow } from "./frame";
import type { ScoreName } from "./metrics";

export interface ScoredCell {
  sample_id: string;
  condition: string;
  score: number;
}

export interface PickedCell extends ScoredCell {
  /** The quantile (0 = lowest score, 1 = highest) this cell was picked for. */
  quantile: number;
}

/**
 * For count = min(n, cells) evenly spaced quantiles q_j = j / (count - 1) (0.5 for a single cell), the cell
 * whose score is nearest to the score's q_j-quantile (numpy's linear percentile) among those not yet picked, so
 * no cell appears twice. Ties go to the lower score, then the smaller sample id. Lowest quantile first.
 */
export function pickAtQuantiles(cells: readonly ScoredCell[], n: number): PickedCell[] {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`pickAtQuantiles: n must be a positive integer, got ${n}`);
  if (cells.length === 0) throw new Error("pickAtQuantiles: no cells to pick from");
  const seen = new Set<string>();
  for (const cell of cells) {
    if (!Number.isFinite(cell.score)) {
      throw new Error(`pickAtQuantiles: sample ${cell.sample_id} has score ${cell.score}`);
    }
    if (seen.has(cell.sample_id)) throw new Error(`pickAtQuantiles: sample ${cell.sample_id} appears twice`);
    seen.add(cell.sample_id);
  }
  const sorted = [...cells].sort((a, b) => a.score - b.score || (a.sample_id < b.sample_id ? -1 : 1));
  const scores = sorted.map((cell) => cell.score);
  const count = Math.min(n, sorted.length);
  const taken = new Uint8Array(sorted.length);
  return Array.from({ length: count }, (_, j): PickedCell => {
    const quantile = count === 1 ? 0.5 : j / (count - 1);
    const target = percentile(scores, 100 * quantile);
    let best = -1;
    for (let i = 0; i < sorted.length; i++) {
      // Strictly nearer only: on a tie the earlier (lower, then smaller id) cell stays.
      if (!taken[i] && (best < 0 || Math.abs(scores[i] - target) < Math.abs(scores[best] - target))) best = i;
    }
    taken[best] = 1;
    return { ...sorted[best], quantile };
  });
}

export interface GalleryOptions {
  /** Cells in the gallery (default 20; fewer when there are fewer cells). */
  n?: number;
  /** Which score to order by (default "tem_fused"). */
  score?: ScoreName;
  /** Tiles per row (default: all in one strip). */
  columns?: number;
  /** Side of each tile in px (default: montage's 160). */
  tile?: number;
  /** Colours and contrast of the composites (lib/composite.ts). */
  composite?: CompositeOptions;
}

export interface Gallery {
  png: Buffer;
  picked: PickedCell[];
}

/** Composites of the cells at evenly spaced score quantiles, each captioned with its score and condition. */
export async function scoreGallery(
  rows: readonly ScoreRow[], pairs: readonly CellPair[], options: GalleryOptions = {},
): Promise<Gallery> {
  const score = options.score ?? "tem_fused";
  const picked = pickAtQuantiles(
    rows.map((row) => ({ sample_id: row.sample_id, condition: row.condition, score: row[score] })), options.n ?? 20);
  const pairById = new Map(pairs.map((pair) => [pair.sampleId, pair]));
  // Every pick is checked before any image is read: a missing pair must not leave reads running after the throw.
  const pickedPairs = picked.map((cell) => {
    const pair = pairById.get(cell.sample_id);
    if (!pair) throw new Error(`scoreGallery: no actin/nucleus image pair for sample ${cell.sample_id}`);
    return pair;
  });
  const images = await Promise.all(pickedPairs.map((pair) => compositeFromFiles(pair.actinPath, pair.nucleusPath, options.composite)));
  const png = await montage(images, {
    columns: options.columns ?? picked.length,
    tile: options.tile,
    labels: picked.map((cell) => `${cell.score.toFixed(3)} ${cell.condition}`),
  });
  return { png, picked };
}
