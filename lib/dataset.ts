// A Celltool dataset: ROOT/<Condition>/Actine/<name> and ROOT/<Condition>/Noyaux/<name>, the actin and nucleus
// images of one cell sharing a file name. ROOT may sit at any depth inside the zip or folder the user gives.
// Pairing is by exact file name only; anything that does not pair is reported, never silently dropped or guessed.
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "./paths";
import { extractZipSafely, fingerprintFile } from "./zipSafe";

/** Channel folder names as Celltool writes them; matched case-insensitively. */
export const CHANNEL_FOLDERS = { actin: "Actine", nucleus: "Noyaux" } as const;

/** Image file extensions considered (case-insensitive). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"]);

export interface CellPair {
  /** "<Condition>/<name>", e.g. "Ctrl/Ctrl12.png": unique within a dataset. */
  sampleId: string;
  /** The condition folder's name as spelled on disk. */
  condition: string;
  /** The shared file name. */
  name: string;
  actinPath: string;
  nucleusPath: string;
}

/** Files whose names differ only in case or extension ("Ctrl7.PNG" vs "ctrl7.png"): shown, never paired. */
export interface NearMiss {
  actin: string;
  nucleus: string;
}

export interface ConditionReport {
  condition: string;
  /** Image files found in the actin / nucleus folder. */
  actin: number;
  nucleus: number;
  pairs: number;
  /** Every actin image without a nucleus image of exactly the same name (near-misses included). */
  actinOnly: string[];
  /** Every nucleus image without an actin image of exactly the same name (near-misses included). */
  nucleusOnly: string[];
  /** Unpaired files that look like each other's partner; a subset of actinOnly x nucleusOnly. */
  nearMisses: NearMiss[];
  /** Channel folders ("Actine", "Noyaux") this condition lacks. */
  missingChannelFolders: string[];
}

export interface PairingReport {
  root: string;
  conditions: ConditionReport[];
  totalPairs: number;
  /** All actinOnly plus nucleusOnly files. */
  totalUnpaired: number;
}

export interface CelltoolDataset {
  /** The zip or folder given, as an absolute path. */
  source: string;
  /** The Celltool root found inside it. */
  root: string;
  /** Condition folder names in natural order. */
  conditions: string[];
  /** Sorted by condition (natural order), then name (natural order). */
  pairs: CellPair[];
  report: PairingReport;
}

export interface OpenOptions {
  /** Where a zip is extracted; default <project>/.cache/datasets/<zip name>-<first 12 hex of its sha256>. */
  extractDir?: string;
}

/** Open a Celltool zip (extracted safely, once) or folder, find its root and pair the channels. */
export function openCelltool(source: string, opts: OpenOptions = {}): CelltoolDataset {
  const absolute = path.resolve(source);
  const dir = isZip(absolute) ? extractDataset(absolute, opts.extractDir) : absolute;
  const root = findCelltoolRoot(dir);
  const conditions = conditionFolders(root);
  const paired = conditions.map((c) => pairCondition(root, c));
  const report: PairingReport = {
    root,
    conditions: paired.map((p) => p.report),
    totalPairs: paired.reduce((n, p) => n + p.pairs.length, 0),
    totalUnpaired: paired.reduce((n, p) => n + p.report.actinOnly.length + p.report.nucleusOnly.length, 0),
  };
  if (report.totalPairs === 0) {
    throw new Error(`${source}: no actin/nucleus image pairs found\n${formatPairingReport(report)}`);
  }
  return { source: absolute, root, conditions, pairs: paired.flatMap((p) => p.pairs), report };
}

function isZip(file: string): boolean {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Error(`${file}: no such file or folder`);
  }
  if (stat.isDirectory()) return false;
  if (stat.isFile() && hasZipSignature(file)) return true;
  throw new Error(`${file}: neither a folder nor a zip archive`);
}

function hasZipSignature(file: string): boolean {
  const head = Buffer.alloc(4);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  return head.equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])) || head.equals(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
}

function extractDataset(zipPath: string, extractDir: string | undefined): string {
  const fingerprint = fingerprintFile(zipPath);
  const stem = path.basename(zipPath).replace(/\.zip$/i, "");
  const target = extractDir ?? path.join(projectRoot(), ".cache", "datasets", `${stem}-${fingerprint.sha256.slice(0, 12)}`);
  return extractZipSafely(zipPath, target, {}, fingerprint).dir;
}

// ---------------------------------------------------------------------------------------------------------------
// Finding the root

/** Visible sub-folders (no dot-folders, no __MACOSX), symlinks to folders included, in natural order. */
function subfolders(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => !isHiddenName(e.name) && (e.isDirectory() || (e.isSymbolicLink() && isDirectory(path.join(dir, e.name)))))
    .map((e) => e.name)
    .sort(naturalCompare);
}

function isHiddenName(name: string): boolean {
  return name.startsWith(".") || name === "__MACOSX";
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false; // a dangling link is not a folder
  }
}

/** The sub-folder of `dir` named like `wanted` ignoring case; Error when two spellings both exist. */
function channelFolder(dir: string, wanted: string): string | undefined {
  const matches = subfolders(dir).filter((name) => name.toLowerCase() === wanted.toLowerCase());
  if (matches.length > 1) {
    throw new Error(`${dir}: ambiguous channel folders ${matches.map((m) => JSON.stringify(m)).join(" and ")}`);
  }
  return matches[0];
}

function isConditionFolder(dir: string): boolean {
  return subfolders(dir).some((name) => {
    const lower = name.toLowerCase();
    return lower === CHANNEL_FOLDERS.actin.toLowerCase() || lower === CHANNEL_FOLDERS.nucleus.toLowerCase();
  });
}

/**
 * The shallowest folder under `dir` (itself included) with at least one child folder holding an Actine or Noyaux
 * sub-folder. Breadth-first, hidden folders and __MACOSX ignored; two candidates at the same depth are an Error
 * rather than a guess.
 */
export function findCelltoolRoot(dir: string): string {
  const start = path.resolve(dir);
  if (!isDirectory(start)) throw new Error(`${start}: not a folder`);
  const visited = new Set<string>([fs.realpathSync(start)]);
  for (let level = [start]; level.length > 0;) {
    const roots = level.filter((d) => subfolders(d).some((c) => isConditionFolder(path.join(d, c))));
    if (roots.length === 1) return roots[0];
    if (roots.length > 1) {
      throw new Error(`${start}: several Celltool roots at the same depth, pass one of them: ${roots.join(", ")}`);
    }
    const next: string[] = [];
    for (const d of level) {
      for (const child of subfolders(d).map((c) => path.join(d, c))) {
        const real = fs.realpathSync(child);
        if (!visited.has(real)) {
          visited.add(real); // symlinked folders may form loops
          next.push(child);
        }
      }
    }
    level = next;
  }
  throw new Error(`${start}: no Celltool dataset found: expected <root>/<Condition>/${CHANNEL_FOLDERS.actin}/ and ` +
    `<root>/<Condition>/${CHANNEL_FOLDERS.nucleus}/ folders at some depth`);
}

function conditionFolders(root: string): string[] {
  return subfolders(root).filter((c) => isConditionFolder(path.join(root, c)));
}

// ---------------------------------------------------------------------------------------------------------------
// Pairing

/** Visible image files of a folder (by extension, case-insensitive), in natural order. */
function imageFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith(".") && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
    .filter((e) => e.isFile() || (e.isSymbolicLink() && isFile(path.join(dir, e.name))))
    .map((e) => e.name)
    .sort(naturalCompare);
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Names that differ only in case or extension share this key. */
function nearMissKey(name: string): string {
  return path.parse(name).name.toLowerCase();
}

function pairCondition(root: string, condition: string): { pairs: CellPair[]; report: ConditionReport } {
  const conditionDir = path.join(root, condition);
  const actinDir = channelFolder(conditionDir, CHANNEL_FOLDERS.actin);
  const nucleusDir = channelFolder(conditionDir, CHANNEL_FOLDERS.nucleus);
  const actin = actinDir ? imageFiles(path.join(conditionDir, actinDir)) : [];
  const nucleus = nucleusDir ? imageFiles(path.join(conditionDir, nucleusDir)) : [];
  const nucleusSet = new Set(nucleus);
  const actinSet = new Set(actin);

  const pairs: CellPair[] = actinDir && nucleusDir
    ? actin.filter((n) => nucleusSet.has(n)).map((name) => ({
      sampleId: `${condition}/${name}`,
      condition,
      name,
      actinPath: path.join(conditionDir, actinDir, name),
      nucleusPath: path.join(conditionDir, nucleusDir, name),
    }))
    : [];
  const actinOnly = actin.filter((n) => !nucleusSet.has(n));
  const nucleusOnly = nucleus.filter((n) => !actinSet.has(n));
  const nearMisses = actinOnly.flatMap((a) =>
    nucleusOnly.filter((n) => nearMissKey(n) === nearMissKey(a)).map((n) => ({ actin: a, nucleus: n })));
  const missingChannelFolders = [
    ...(actinDir ? [] : [CHANNEL_FOLDERS.actin]),
    ...(nucleusDir ? [] : [CHANNEL_FOLDERS.nucleus]),
  ];
  return {
    pairs,
    report: {
      condition, actin: actin.length, nucleus: nucleus.length, pairs: pairs.length,
      actinOnly, nucleusOnly, nearMisses, missingChannelFolders,
    },
  };
}

/**
 * Natural order: digit runs compare by value (Ctrl2 < Ctrl10), other characters one by one ignoring case
 * ("Ctrl.png" < "Ctrl1.png" < "Ctrl_a.png"). Ties are broken by leading zeros ("7" before "007"), then by plain
 * code units, so the order is total and the same on every machine (no locale involved).
 */
export function naturalCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  let zerosTieBreak = 0;
  while (i < a.length && j < b.length) {
    if (isDigit(a, i) && isDigit(b, j)) {
      const endA = digitRunEnd(a, i);
      const endB = digitRunEnd(b, j);
      const runA = a.slice(i, endA);
      const runB = b.slice(j, endB);
      const byValue = compareDigitRuns(runA, runB);
      if (byValue !== 0) return byValue;
      if (zerosTieBreak === 0) zerosTieBreak = runA.length - runB.length;
      i = endA;
      j = endB;
    } else {
      const ca = a[i].toLowerCase();
      const cb = b[j].toLowerCase();
      if (ca !== cb) return ca < cb ? -1 : 1;
      i++;
      j++;
    }
  }
  const remaining = (a.length - i) - (b.length - j); // the one that ran out first is a prefix: it sorts first
  if (remaining !== 0) return remaining;
  if (zerosTieBreak !== 0) return zerosTieBreak;
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

function digitRunEnd(s: string, start: number): number {
  let end = start;
  while (end < s.length && isDigit(s, end)) end++;
  return end;
}

/** Compare two digit strings by value without converting them (no overflow past 2^53). */
function compareDigitRuns(x: string, y: string): number {
  const xv = x.replace(/^0+(?=\d)/, "");
  const yv = y.replace(/^0+(?=\d)/, "");
  if (xv.length !== yv.length) return xv.length - yv.length;
  return xv < yv ? -1 : xv > yv ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Conditions by name

/**
 * The entry of `known` that `name` designates: an exact match, else the one match ignoring case ("CTRL" finds
 * "Ctrl"); undefined when none. Error when several differ from `name` only by case.
 */
export function canonicalCondition(name: string, known: readonly string[]): string | undefined {
  if (known.includes(name)) return name;
  const matches = known.filter((k) => k.toLowerCase() === name.toLowerCase());
  if (matches.length > 1) {
    throw new Error(`condition "${name}" is ambiguous: ${matches.map((m) => JSON.stringify(m)).join(", ")} all match`);
  }
  return matches[0];
}

/** The dataset's folder name for condition `name` (case-insensitive), or an Error listing the conditions found. */
export function resolveCondition(dataset: CelltoolDataset, name: string): string {
  const found = canonicalCondition(name, dataset.conditions);
  if (found === undefined) {
    throw new Error(`condition "${name}" not found in ${dataset.root}; conditions found: ${dataset.conditions.join(", ")}`);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Human-readable report

const LIST_LIMIT = 10;

function listNames(names: string[]): string {
  const shown = names.slice(0, LIST_LIMIT).join(", ");
  return names.length > LIST_LIMIT ? `${shown}, ... and ${names.length - LIST_LIMIT} more` : shown;
}

/** A table of counts per condition, then the unpaired and near-miss names (long lists truncated, with counts). */
export function formatPairingReport(report: PairingReport): string {
  const header = ["condition", "actin", "nucleus", "pairs", "actin only", "nucleus only", "near-misses"];
  const rows = report.conditions.map((c) => [
    c.condition, c.actin, c.nucleus, c.pairs, c.actinOnly.length, c.nucleusOnly.length, c.nearMisses.length,
  ].map(String));
  rows.push(["total", "", "", String(report.totalPairs), "", "", ""]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();

  const out = [`Celltool root: ${report.root}`, line(header), ...rows.map(line),
    `${report.totalPairs} pairs, ${report.totalUnpaired} unpaired files`];
  for (const c of report.conditions) {
    if (c.missingChannelFolders.length > 0) out.push(`${c.condition}: missing folder ${c.missingChannelFolders.join(", ")}`);
    if (c.actinOnly.length > 0) {
      out.push(`${c.condition}: ${c.actinOnly.length} in ${CHANNEL_FOLDERS.actin} only: ${listNames(c.actinOnly)}`);
    }
    if (c.nucleusOnly.length > 0) {
      out.push(`${c.condition}: ${c.nucleusOnly.length} in ${CHANNEL_FOLDERS.nucleus} only: ${listNames(c.nucleusOnly)}`);
    }
    if (c.nearMisses.length > 0) {
      out.push(`${c.condition}: ${c.nearMisses.length} near-misses (names differ only in case or extension; ` +
        `rename to pair them): ${listNames(c.nearMisses.map((m) => `${m.actin} ~ ${m.nucleus}`))}`);
    }
  }
  return out.join("\n");
}

/** The first `perCondition` pairs of each condition (natural file order): a reproducible subset for quick runs. */
export function firstPairsPerCondition(dataset: CelltoolDataset, perCondition: number): CelltoolDataset {
  const seen = new Map<string, number>();
  const pairs = dataset.pairs.filter((p) => {
    const count = (seen.get(p.condition) ?? 0) + 1;
    seen.set(p.condition, count);
    return count <= perCondition;
  });
  return { ...dataset, pairs };
}
