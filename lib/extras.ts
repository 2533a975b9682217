// The optional outputs of `cellmorpho score` beyond the method's four files: classical morphometrics per cell and
// their correlation with the score, the PCA embedding maps, and the gallery strip. The notebook shows the same
// things (sections 19-21) through the same functions.
import * as path from "node:path";
import { saveGallery, runEmbeddingMap, scoresBySample } from "./beyond";
import { toCsv, writeCsvAtomic } from "./csv";
import { featureScoreCorrelation, FEATURE_NAMES, morphologyTable, type FeatureCorrelation } from "./morphology";
import type { ScoreRun } from "./pipeline";
import { saveFigure } from "./plots";

export interface ExtrasOptions {
  morphology?: boolean;
  map?: boolean;
  gallery?: boolean;
}

/** Writes the requested extras into outDir (each file atomically); returns the files written. */
export async function writeExtras(run: ScoreRun, outDir: string, options: ExtrasOptions): Promise<string[]> {
  const written: string[] = [];
  const preamble = run.warning ? [`# ${run.warning}`] : [];
  if (options.morphology) {
    const table = await morphologyTable(run.scored);
    const perCell = path.join(outDir, "morphology.csv");
    writeCsvAtomic(perCell, toCsv(table, ["sample_id", "condition", ...FEATURE_NAMES, "reason"], preamble));
    const correlations: FeatureCorrelation[] = featureScoreCorrelation(table, scoresBySample(run.rows));
    const summary = path.join(outDir, "morphology_correlations.csv");
    writeCsvAtomic(summary, toCsv(correlations, ["feature", "spearman", "pearson", "n"], preamble));
    written.push(perCell, summary);
  }
  if (options.map) {
    for (const channel of ["actin", "nucleus"] as const) {
      const saved = await saveFigure(runEmbeddingMap(run, channel), outDir, `embedding_map_${channel}`);
      written.push(saved.html, ...(saved.png ? [saved.png] : []));
    }
  }
  if (options.gallery) written.push((await saveGallery(run, outDir)).file);
  return written;
}
