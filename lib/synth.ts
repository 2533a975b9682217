// A synthetic Celltool dataset whose EMT state is known: the data a new user, a teacher or CI can run on a fresh
// machine, and the ground truth that shows whether the score measures what it claims. Layout, counts and the
// nucleus-only quirk copy the real (private) Celltool set; each cell is drawn by lib/synthDraw.ts from a latent
// state e in [0, 1] sampled per condition, and e is written to truth.csv.
import * as fs from "node:fs";
import * as path from "node:path";
import AdmZip from "adm-zip";
import sharp from "sharp";
import { writeFileAtomic } from "./atomic";
import { projectRoot } from "./paths";
import { MAX_SIDE, Rng, drawCell, mixSeed } from "./synthDraw";

export const CONDITIONS = ["Ctrl", "TGF", "TNF", "TNFTGF"] as const;
export type Condition = (typeof CONDITIONS)[number];

interface ConditionModel {
  /** Actin + nucleus pairs in the real set. */
  pairs: number;
  /** Extra nucleus-only images in the real set (its quirk: Noyaux holds more files than Actine). */
  nucleusOnly: number;
  /** Beta distribution of the latent EMT state: mean and concentration (alpha + beta). */
  emtMean: number;
  emtConcentration: number;
}

/**
 * Latent EMT state per condition. Ctrl is epithelial (mean 0.15) and TNF+TGF-beta the strongest inducer (0.85).
 * TGF-beta alone is the canonical EMT inducer, so it sits above TNF-alpha alone (0.55 vs 0.40). The wide Betas
 * (sd 0.10-0.17) overlap, as real populations do, instead of forming four clean clusters.
 */
const MODEL: Record<Condition, ConditionModel> = {
  Ctrl: { pairs: 166, nucleusOnly: 0, emtMean: 0.15, emtConcentration: 12 },
  TGF: { pairs: 22, nucleusOnly: 76, emtMean: 0.55, emtConcentration: 8 },
  TNF: { pairs: 131, nucleusOnly: 32, emtMean: 0.4, emtConcentration: 8 },
  TNFTGF: { pairs: 204, nucleusOnly: 0, emtMean: 0.85, emtConcentration: 12 },
};

/** Folder names of the two channels, as in Celltool. */
export const ACTIN_FOLDER = "Actine";
export const NUCLEUS_FOLDER = "Noyaux";
/** Root folder inside the zip. */
export const ZIP_ROOT = "Celltool";
const TRUTH_FILE = "truth.csv";
const DEFAULT_CONCURRENCY = 4;

export interface ConditionCounts {
  pairs: number;
  nucleusOnly: number;
}

/** Files per condition at a scale: round(count * scale), at least 2 pairs, and the quirk kept (at least 1). */
export function conditionCounts(scale: number): Record<Condition, ConditionCounts> {
  if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`synthetic dataset scale must be a positive number, got ${scale}`);
  const counts = {} as Record<Condition, ConditionCounts>;
  for (const condition of CONDITIONS) {
    const { pairs, nucleusOnly } = MODEL[condition];
    counts[condition] = {
      pairs: Math.max(2, Math.round(pairs * scale)),
      nucleusOnly: nucleusOnly > 0 ? Math.max(1, Math.round(nucleusOnly * scale)) : 0,
    };
  }
  return counts;
}

/** The Beta(alpha, beta) that a condition's latent EMT state is drawn from. */
export function emtDistribution(condition: Condition): { alpha: number; beta: number } {
  const { emtMean, emtConcentration } = MODEL[condition];
  return { alpha: emtMean * emtConcentration, beta: (1 - emtMean) * emtConcentration };
}

/** One latent EMT state for a cell of `condition`, rounded to the 6 decimals that truth.csv stores. */
export function sampleEmt(condition: Condition, rng: Rng): number {
  const { alpha, beta } = emtDistribution(condition);
  return Math.round(rng.beta(alpha, beta) * 1e6) / 1e6;
}

/** One cell of the dataset: which files it makes and the seed that draws it. */
export interface SyntheticCell {
  condition: Condition;
  /** 1-based file number, as in `<Cond><index>.png`. */
  index: number;
  /** Nucleus-only cells have no actin image and no truth row, like the real set's extras. */
  nucleusOnly: boolean;
  emt: number;
  seed: number;
}

/**
 * The cells of a dataset. Each cell's randomness depends only on (seed, condition, index), so a smaller scale
 * yields a prefix of the larger dataset and cells can be drawn in any order.
 */
export function planDataset(seed: number, scale: number): SyntheticCell[] {
  const counts = conditionCounts(scale);
  const cells: SyntheticCell[] = [];
  CONDITIONS.forEach((condition, conditionIndex) => {
    const { pairs, nucleusOnly } = counts[condition];
    for (let index = 1; index <= pairs + nucleusOnly; index++) {
      const cellSeed = mixSeed(seed, conditionIndex, index);
      const emt = sampleEmt(condition, new Rng(cellSeed));
      cells.push({ condition, index, nucleusOnly: index > pairs, emt, seed: mixSeed(cellSeed, 1) });
    }
  });
  return cells;
}

export const sampleId = (condition: string, index: number): string => `${condition}/${condition}${index}.png`;

export function truthCsv(cells: SyntheticCell[]): string {
  const rows = cells.filter((c) => !c.nucleusOnly).map((c) => `${sampleId(c.condition, c.index)},${c.condition},${c.emt.toFixed(6)}`);
  return ["sample_id,condition,emt", ...rows].join("\n") + "\n";
}

export interface TruthRow {
  sampleId: string;
  condition: string;
  emt: number;
}

/** Reads a truth.csv written by generateSynthetic. */
export function readTruth(file: string): TruthRow[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: truth file not found`);
  const lines = fs.readFileSync(file, "utf8").split(/\r?\n/).filter((line) => line.trim() !== "");
  if (lines[0] !== "sample_id,condition,emt") {
    throw new Error(`${file}: expected the header "sample_id,condition,emt", found "${lines[0] ?? ""}"`);
  }
  return lines.slice(1).map((line, k) => {
    const fields = line.split(",");
    const emt = Number(fields[2]);
    if (fields.length !== 3 || !fields[0] || !fields[1] || !(emt >= 0 && emt <= 1)) {
      throw new Error(`${file}, line ${k + 2}: expected "<Cond>/<Cond><i>.png,<Cond>,<emt in [0,1]>", found "${line}"`);
    }
    return { sampleId: fields[0], condition: fields[1], emt };
  });
}

/** Runs `task` on every item with at most `limit` in flight; resolves when all are done. */
async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function writeGreyPng(file: string, pixels: Uint8Array, side: number): Promise<void> {
  await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width: side, height: side, channels: 1 } })
    .toColourspace("b-w") // keep one channel: by default sharp writes RGB
    .png({ compressionLevel: 6 })
    .toFile(file);
}

/** Draws one cell and writes its image(s) into the dataset folder `root`. */
async function writeCell(root: string, cell: SyntheticCell): Promise<number> {
  // Drawing is synchronous CPU work; while it runs, sharp encodes the previous cells on its own threads.
  const images = drawCell(cell.emt, cell.seed);
  const name = `${cell.condition}${cell.index}.png`;
  const writes = [writeGreyPng(path.join(root, cell.condition, NUCLEUS_FOLDER, name), images.nucleus, images.side)];
  if (!cell.nucleusOnly) writes.push(writeGreyPng(path.join(root, cell.condition, ACTIN_FOLDER, name), images.actin, images.side));
  await Promise.all(writes);
  return writes.length;
}

export interface SynthOptions {
  /** Dataset folder to create. */
  out: string;
  seed?: number;
  /** Fraction of the real set's counts (1 = 523 pairs). */
  scale?: number;
  /** Also write `<out>.zip`, holding the same tree under `Celltool/`. */
  zip?: boolean;
  /** Replace `out` if it exists (default: refuse). */
  overwrite?: boolean;
  /** Cells in flight at once (default 4). */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface SynthSummary {
  out: string;
  zip: string | null;
  seed: number;
  scale: number;
  counts: Record<Condition, ConditionCounts>;
  /** Image files written. */
  images: number;
  seconds: number;
}

/** Moves the finished staging folder to `out`, replacing an existing dataset only when asked to. */
function publish(staging: string, out: string, overwrite: boolean): void {
  if (!fs.existsSync(out)) {
    fs.renameSync(staging, out);
    return;
  }
  if (!overwrite) throw new Error(`${out} already exists; remove it or pass overwrite to regenerate it`);
  const retired = `${staging}.old`;
  fs.renameSync(out, retired);
  fs.renameSync(staging, out);
  fs.rmSync(retired, { recursive: true, force: true });
}

/**
 * Writes a Celltool-layout dataset (`<out>/<Cond>/{Actine,Noyaux}/<Cond><i>.png` and `<out>/truth.csv`),
 * identical byte for byte for a given seed and scale. Everything is written into a staging folder first and then
 * renamed, so `out` never holds half a dataset.
 */
export async function generateSynthetic(options: SynthOptions): Promise<SynthSummary> {
  const { out, seed = 0, scale = 1, zip = false, overwrite = false, concurrency = DEFAULT_CONCURRENCY } = options;
  const log = options.log ?? ((): void => undefined);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  const target = path.resolve(out);
  if (fs.existsSync(target) && !overwrite) throw new Error(`${target} already exists; remove it or pass overwrite to regenerate it`);

  const started = Date.now();
  const cells = planDataset(seed, scale);
  const counts = conditionCounts(scale);
  const staging = path.join(path.dirname(target), `.${path.basename(target)}.partial-${process.pid}-${started}`);
  try {
    for (const condition of CONDITIONS) {
      fs.mkdirSync(path.join(staging, condition, ACTIN_FOLDER), { recursive: true });
      fs.mkdirSync(path.join(staging, condition, NUCLEUS_FOLDER), { recursive: true });
    }
    log(`synthetic dataset: drawing ${cells.length} cells (seed ${seed}, scale ${scale}) into ${target}`);
    let images = 0;
    await forEachLimited(cells, concurrency, async (cell) => {
      const written = await writeCell(staging, cell);
      images += written; // not `images += await ...`: that would read `images` before the await and lose updates
    });
    fs.writeFileSync(path.join(staging, TRUTH_FILE), truthCsv(cells));
    let zipPath: string | null = null;
    if (zip) {
      zipPath = `${target}.zip`;
      const archive = new AdmZip();
      archive.addLocalFolder(staging, ZIP_ROOT);
      writeFileAtomic(zipPath, archive.toBuffer());
    }
    publish(staging, target, overwrite);
    const seconds = (Date.now() - started) / 1000;
    log(`synthetic dataset: ${images} images in ${seconds.toFixed(1)} s -> ${target}${zipPath ? ` and ${zipPath}` : ""}`);
    return { out: target, zip: zipPath, seed, scale, counts, images, seconds };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The product's embedded default data: `<project>/data/synthetic` (seed 0, scale 1), generated on first use.
 * Returns its path.
 */
export async function defaultDataset(options: { root?: string; log?: (line: string) => void } = {}): Promise<string> {
  const dir = path.join(options.root ?? projectRoot(), "data", "synthetic");
  if (fs.existsSync(path.join(dir, TRUTH_FILE))) return dir;
  try {
    await generateSynthetic({ out: dir, seed: 0, scale: 1, log: options.log });
  } catch (err) {
    // Another process may have generated it meanwhile; its complete dataset is as good as ours.
    if (!fs.existsSync(path.join(dir, TRUTH_FILE))) throw err;
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// Contact sheet: cells sorted by their latent state, so a person can see the gradient at a glance.

export interface ContactSheetOptions {
  /** Dataset folder (Celltool layout). */
  dataset: string;
  /** truth.csv (default `<dataset>/truth.csv`). */
  truth?: string;
  /** PNG to write. */
  out: string;
  n?: number;
  columns?: number;
  /** Tile side in px. */
  tile?: number;
}

async function readGrey(file: string): Promise<{ pixels: Uint8Array; width: number; height: number }> {
  if (!fs.existsSync(file)) throw new Error(`${file}: image not found`);
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/**
 * One tile: actin in green-yellow, DNA in blue, centred on a MAX_SIDE canvas before shrinking so that cell sizes
 * stay comparable across tiles.
 */
async function compositeTile(dataset: string, row: TruthRow, tile: number): Promise<Buffer> {
  const [condition, name] = row.sampleId.split("/");
  const actin = await readGrey(path.join(dataset, condition, ACTIN_FOLDER, name));
  const dna = await readGrey(path.join(dataset, condition, NUCLEUS_FOLDER, name));
  if (actin.width !== dna.width || actin.height !== dna.height) {
    throw new Error(`${row.sampleId}: actin is ${actin.width}x${actin.height} but nucleus is ${dna.width}x${dna.height}`);
  }
  const canvas = Math.max(MAX_SIDE, actin.width, actin.height);
  const rgb = Buffer.alloc(canvas * canvas * 3);
  const x0 = Math.floor((canvas - actin.width) / 2);
  const y0 = Math.floor((canvas - actin.height) / 2);
  for (let y = 0; y < actin.height; y++) {
    for (let x = 0; x < actin.width; x++) {
      const a = actin.pixels[y * actin.width + x];
      const d = dna.pixels[y * actin.width + x];
      const o = ((y + y0) * canvas + x + x0) * 3;
      rgb[o] = Math.min(255, 0.6 * a + 0.2 * d);
      rgb[o + 1] = a;
      rgb[o + 2] = Math.min(255, d + 0.2 * a);
    }
  }
  return sharp(rgb, { raw: { width: canvas, height: canvas, channels: 3 } }).resize(tile, tile).png().toBuffer();
}

const escapeXml = (text: string): string =>
  text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? c);

/** Writes a grid of `n` cells spanning the range of e, lowest first, each labelled with its e and condition. */
export async function contactSheet(options: ContactSheetOptions): Promise<void> {
  const { dataset, out, n = 48, columns = 8, tile = 160 } = options;
  if (!(Number.isInteger(n) && n >= 1 && Number.isInteger(columns) && columns >= 1)) {
    throw new Error(`contact sheet needs positive integers n and columns, got n=${n}, columns=${columns}`);
  }
  const truthFile = options.truth ?? path.join(dataset, TRUTH_FILE);
  const sorted = readTruth(truthFile).sort((a, b) => a.emt - b.emt);
  if (sorted.length === 0) throw new Error(`${truthFile}: no cells listed`);
  const count = Math.min(n, sorted.length);
  const chosen = Array.from({ length: count }, (_, j) => sorted[count === 1 ? 0 : Math.round((j * (sorted.length - 1)) / (count - 1))]);

  const rows = Math.ceil(count / columns);
  const width = columns * tile;
  const height = rows * tile;
  const tiles = await Promise.all(chosen.map((row) => compositeTile(dataset, row, tile)));
  const fontSize = Math.max(10, Math.round(tile / 11));
  const labels = chosen.map((row, j) => {
    const x = (j % columns) * tile + 4;
    const y = Math.floor(j / columns) * tile + tile - 5;
    return `<text x="${x}" y="${y}">${escapeXml(`e=${row.emt.toFixed(2)} ${row.condition}`)}</text>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<g font-family="sans-serif" font-size="${fontSize}" fill="#ffffff">${labels.join("")}</g></svg>`;
  const png = await sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([
      ...tiles.map((input, j) => ({ input, left: (j % columns) * tile, top: Math.floor(j / columns) * tile })),
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
  writeFileAtomic(out, png);
}
