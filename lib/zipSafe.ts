// Extract a user's zip without trusting it: an entry may try to write outside the target (zip-slip), be a
// symlink that later redirects writes, or inflate to far more than its size suggests (zip bomb). Everything is
// checked before a byte is written, sizes are checked again after inflating, and the result appears in one
// rename, so a failed or interrupted extraction never leaves a half dataset behind.
import AdmZip from "adm-zip";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "./atomic";

export interface ZipLimits {
  /** Most entries (files and folders) the archive may list. */
  maxEntries: number;
  /** Most bytes all extracted files may hold together. */
  maxTotalBytes: number;
  /** Most bytes one extracted file may hold. */
  maxEntryBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = {
  maxEntries: 200_000,
  maxTotalBytes: 8 * 1024 ** 3,
  maxEntryBytes: 1024 ** 3,
};

/** What identifies a zip's content: an extraction is reused only while all three still match. */
export interface ZipFingerprint {
  size: number;
  mtimeMs: number;
  sha256: string;
}

export interface ExtractionResult {
  dir: string;
  /** True when an earlier extraction of the same zip was found and used as is. */
  reused: boolean;
  /** Files written (0 when reused). */
  files: number;
  /** Entries left out on purpose: __MACOSX/ resource forks and dot-files. */
  skipped: number;
}

/** Marker written inside a finished extraction; hidden, so dataset discovery never sees it. */
export const EXTRACTION_MARKER = ".cellmorphotem-extracted.json";

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Size, mtime and sha256 of a file, hashed in chunks so a large zip is never held twice in memory. */
export function fingerprintFile(file: string): ZipFingerprint {
  const stat = fs.statSync(file);
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return { size: stat.size, mtimeMs: stat.mtimeMs, sha256: hash.digest("hex") };
}

/**
 * Extract `zipPath` into `targetDir` safely (see the module comment); reuse `targetDir` when its marker records
 * this zip's fingerprint. Throws an Error naming the zip and the offending entry, leaving nothing behind.
 */
export function extractZipSafely(zipPath: string, targetDir: string, limits: Partial<ZipLimits> = {},
  fingerprint: ZipFingerprint = fingerprintFile(zipPath)): ExtractionResult {
  const target = path.resolve(targetDir);
  if (readMarker(target, fingerprint)) return { dir: target, reused: true, files: 0, skipped: 0 };
  assertReplaceable(target);

  const effective: ZipLimits = { ...DEFAULT_ZIP_LIMITS, ...limits };
  const plan = planExtraction(zipPath, effective);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const staging = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}.extracting-`));
  try {
    const files = writeEntries(zipPath, plan, staging, effective);
    writeJsonAtomic(path.join(staging, EXTRACTION_MARKER), { zip: path.basename(zipPath), ...fingerprint });
    if (!moveIntoPlace(staging, target, fingerprint)) {
      fs.rmSync(staging, { recursive: true, force: true });
      return { dir: target, reused: true, files: 0, skipped: 0 };
    }
    return { dir: target, reused: false, files, skipped: plan.skipped };
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

interface ExtractionPlan {
  zip: AdmZip;
  /** Entries to write, by their checked relative path. */
  entries: { entry: AdmZip.IZipEntry; relPath: string }[];
  skipped: number;
}

/** Every check that needs no inflating, done for all entries before anything is written. */
function planExtraction(zipPath: string, limits: ZipLimits): ExtractionPlan {
  let zip: AdmZip;
  let all: AdmZip.IZipEntry[];
  try {
    zip = new AdmZip(zipPath);
    all = zip.getEntries();
  } catch (err) {
    throw new Error(`${zipPath}: not a readable zip archive (${(err as Error).message})`);
  }
  if (all.length > limits.maxEntries) {
    throw new Error(`${zipPath}: ${all.length} entries, more than the limit of ${limits.maxEntries}`);
  }
  const entries: ExtractionPlan["entries"] = [];
  const seen = new Set<string>();
  let skipped = 0;
  let declaredTotal = 0;
  for (const entry of all) {
    const name = entry.entryName;
    const refuse = (why: string): never => {
      throw new Error(`${zipPath}: refusing entry ${JSON.stringify(name)}: ${why}`);
    };
    const problem = unsafePathReason(name);
    if (problem) refuse(problem);
    if (((entry.attr >>> 16) & S_IFMT) === S_IFLNK) refuse("it is a symbolic link");
    const relPath = name.replace(/\/+$/, "");
    if (isIgnoredPath(relPath)) {
      skipped++;
      continue;
    }
    if (seen.has(relPath)) refuse("the archive lists this path twice");
    seen.add(relPath);
    if (!entry.isDirectory) {
      const declared = entry.header.size;
      if (declared > limits.maxEntryBytes) refuse(`declares ${declared} bytes, more than the per-file limit of ${limits.maxEntryBytes}`);
      declaredTotal += declared;
      if (declaredTotal > limits.maxTotalBytes) {
        refuse(`the files up to this one declare ${declaredTotal} bytes, more than the total limit of ${limits.maxTotalBytes}`);
      }
    }
    entries.push({ entry, relPath });
  }
  return { zip, entries, skipped };
}

/** Why an entry name is unsafe to join onto a folder, or null when it is a plain relative path. */
export function unsafePathReason(name: string): string | null {
  if (name.length === 0) return "empty name";
  if (name.includes("\0")) return "NUL character in the name";
  if (name.includes("\\")) return "backslash in the name (a Windows path separator could escape the target)";
  if (name.startsWith("/")) return "absolute path";
  if (/^[A-Za-z]:/.test(name)) return "drive-letter path";
  if (name.split("/").some((segment) => segment === "..")) return "'..' in the path would escape the target folder";
  return null;
}

/** macOS resource forks and dot-files (.DS_Store, ._x.png, .git/) are not data. */
function isIgnoredPath(relPath: string): boolean {
  return relPath.split("/").some((segment) => segment === "__MACOSX" || segment.startsWith("."));
}

function writeEntries(zipPath: string, plan: ExtractionPlan, staging: string, limits: ZipLimits): number {
  let total = 0;
  let files = 0;
  for (const { entry, relPath } of plan.entries) {
    const dest = path.resolve(staging, relPath);
    const rel = path.relative(staging, dest);
    // belt and braces after unsafePathReason: the resolved path must stay inside the staging folder
    if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) {
      throw new Error(`${zipPath}: refusing entry ${JSON.stringify(entry.entryName)}: resolves outside the target folder`);
    }
    if (entry.isDirectory) {
      fs.mkdirSync(dest, { recursive: true });
      continue;
    }
    let data: Buffer;
    try {
      data = entry.getData();
    } catch (err) {
      throw new Error(`${zipPath}: cannot inflate entry ${JSON.stringify(entry.entryName)} (${(err as Error).message})`);
    }
    // the declared size was checked before inflating; a forged header is caught here
    if (data.length > limits.maxEntryBytes) {
      throw new Error(`${zipPath}: refusing entry ${JSON.stringify(entry.entryName)}: inflates to ${data.length} bytes, ` +
        `more than the per-file limit of ${limits.maxEntryBytes}`);
    }
    total += data.length;
    if (total > limits.maxTotalBytes) {
      throw new Error(`${zipPath}: refusing entry ${JSON.stringify(entry.entryName)}: the files inflate to more than ` +
        `the total limit of ${limits.maxTotalBytes} bytes`);
    }
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, data, { flag: "wx" });
    files++;
  }
  return files;
}

function readMarker(dir: string, fingerprint: ZipFingerprint): boolean {
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(dir, EXTRACTION_MARKER), "utf8")) as Partial<ZipFingerprint>;
    return marker.size === fingerprint.size && marker.mtimeMs === fingerprint.mtimeMs &&
      marker.sha256 === fingerprint.sha256;
  } catch {
    return false; // no marker, or an unreadable one: the folder is not a finished extraction of this zip
  }
}

/** Only ever replace a folder this module made: a user's folder given as the target by mistake is kept. */
function assertReplaceable(target: string): void {
  if (fs.existsSync(target) && !fs.existsSync(path.join(target, EXTRACTION_MARKER))) {
    throw new Error(`${target} already exists and is not an extraction made by this tool; remove it or extract elsewhere`);
  }
}

/**
 * Rename the staging folder onto the target, replacing an outdated extraction. Returns false when another
 * process finished the same extraction first (its result is then used).
 */
function moveIntoPlace(staging: string, target: string, fingerprint: ZipFingerprint): boolean {
  if (fs.existsSync(target)) {
    if (readMarker(target, fingerprint)) return false;
    assertReplaceable(target);
    const outdated = `${staging}.outdated`;
    fs.renameSync(target, outdated);
    fs.rmSync(outdated, { recursive: true, force: true });
  }
  try {
    fs.renameSync(staging, target);
    return true;
  } catch (err) {
    if (readMarker(target, fingerprint)) return false;
    throw new Error(`cannot move the extracted zip into ${target}: ${(err as Error).message}`);
  }
}
