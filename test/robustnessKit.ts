// What the robustness, CLI and fuzz tests share: tiny Celltool datasets built in os.tmpdir(), the shared seed0
// weights converted once per suite, and the CLI run in-process with its console captured or as a real process.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { main } from "../lib/cli";
import { Rng } from "../lib/synthDraw";
import { convertWeights } from "../lib/weights";
import { PROJECT_ROOT, requireFile, SEED0_WEIGHTS } from "./paths";

export const CLI_BIN = path.join(PROJECT_ROOT, "bin", "cellmorpho.js");
/** Cells are this small so that decoding is instant; the encoders still see 224 x 224 after the resize. */
export const CELL_SIDE = 40;

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cellmorpho-${prefix}-`));
}

/**
 * A grey PNG: a bright disc whose centre, radius and brightness follow the seed, on seeded noise. `elongated`
 * stretches the disc into an ellipse, so the two anchor conditions really differ and the axis is never degenerate.
 */
export async function cellPng(seed: number, elongated = false, side = CELL_SIDE): Promise<Buffer> {
  const rng = new Rng(seed);
  const [cx, cy] = [rng.uniform(0.35, 0.65) * side, rng.uniform(0.35, 0.65) * side];
  const radius = rng.uniform(0.15, 0.3) * side;
  const peak = rng.int(150, 255);
  const stretch = elongated ? 3 : 1;
  const pixels = Buffer.alloc(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.hypot((x - cx) / stretch, (y - cy) * (elongated ? 1.5 : 1));
      pixels[y * side + x] = r < radius ? peak : rng.int(0, 40);
    }
  }
  return sharp(pixels, { raw: { width: side, height: side, channels: 1 } }).png().toBuffer();
}

export type CellFiles = Record<string, Buffer | string>;

/**
 * `cells` per condition: "<Condition>/Actine/c<k>.png" and "<Condition>/Noyaux/c<k>.png", different content for
 * every file; the condition named `mesenchymal` gets elongated cells.
 */
export async function celltoolCells(cells: Record<string, number>, seed = 0, mesenchymal = "TNFTGF"): Promise<CellFiles> {
  const files: CellFiles = {};
  let k = seed * 1000;
  for (const [condition, n] of Object.entries(cells)) {
    for (let i = 0; i < n; i++) {
      files[`${condition}/Actine/c${i}.png`] = await cellPng(++k, condition === mesenchymal);
      files[`${condition}/Noyaux/c${i}.png`] = await cellPng(++k, condition === mesenchymal);
    }
  }
  return files;
}

export function writeTree(root: string, files: CellFiles): string {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  return root;
}

/** Converts the shared seed0 ResNet18 into a temp folder (skipping the calling suite when it is absent). */
export function seed0WeightsDir(ctx: Mocha.Context): string {
  requireFile(ctx, SEED0_WEIGHTS, "seed0 ResNet18 test weights");
  const dir = tempDir("weights");
  convertWeights({ source: SEED0_WEIGHTS, outDir: dir, unverified: true, log: () => undefined });
  return dir;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The CLI's main() in this process with console.log / console.error captured (restored afterwards). Progress lines go
 * to process.stderr directly and are not captured. Fast: no process start, but the encoders still load per call.
 */
export async function runMain(argv: string[]): Promise<CliResult> {
  const original = { log: console.log, error: console.error };
  const out: string[] = [];
  const err: string[] = [];
  console.log = (...args: unknown[]) => { out.push(args.join(" ")); };
  console.error = (...args: unknown[]) => { err.push(args.join(" ")); };
  try {
    const code = await main(argv);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = original.log;
    console.error = original.error;
  }
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** bin/cellmorpho.js as a real process; `whileRunning` may signal it. */
export function runBin(
  args: string[], whileRunning?: (child: ReturnType<typeof spawn>) => void,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on("data", (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    whileRunning?.(child);
  });
}

/** Every file under `dir`, relative, sorted (none when `dir` is absent). */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}
