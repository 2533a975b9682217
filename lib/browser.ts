// Headless Chromium for the two things a Node process cannot do itself: draw a plotly.js page into a PNG, and
// report the DOM a page ends up with after its scripts ran. Chromium is optional (CI may lack it): callers ask
// findChromium() first and carry on without a PNG when it answers null.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { writeFileAtomic } from "./atomic";

const execFileAsync = promisify(execFile);

/** Where Debian, Ubuntu and Chrome installs put the binary; CHROMIUM_PATH, when set, is tried first. */
const CHROMIUM_CANDIDATES: readonly string[] = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/** The first executable Chromium found, or null. */
export function findChromium(candidates: readonly string[] = CHROMIUM_CANDIDATES): string | null {
  const fromEnv = process.env.CHROMIUM_PATH;
  for (const candidate of fromEnv ? [fromEnv, ...candidates] : candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  return null;
}

export interface HeadlessOptions {
  /** Path to the browser; defaults to findChromium(). */
  chromium?: string;
  /**
   * Virtual time the page may use before the result is taken. Virtual time runs only while the page has work
   * pending, so a generous budget does not slow a page that finishes early.
   */
  virtualTimeBudgetMs?: number;
  /** Wall-clock limit for the whole browser run. */
  timeoutMs?: number;
}

export interface ScreenshotOptions extends HeadlessOptions {
  width: number;
  height: number;
}

// Flags that work as root in a container, and keep a headless run from reaching the network or a profile.
const HEADLESS_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--hide-scrollbars",
];

/** Runs Chromium on one local page with a fresh profile in `workDir`; returns its stdout. */
async function runHeadless(
  htmlPath: string, args: readonly string[], workDir: string, options: HeadlessOptions,
): Promise<string> {
  if (!fs.existsSync(htmlPath)) throw new Error(`headless Chromium: page ${htmlPath} does not exist`);
  const chromium = options.chromium ?? findChromium();
  if (!chromium) {
    throw new Error(`headless Chromium: no browser found (tried CHROMIUM_PATH and ${CHROMIUM_CANDIDATES.join(", ")})`);
  }
  const argv = [
    ...HEADLESS_FLAGS,
    `--user-data-dir=${path.join(workDir, "profile")}`,
    `--virtual-time-budget=${options.virtualTimeBudgetMs ?? 10000}`,
    ...args,
    pathToFileURL(path.resolve(htmlPath)).href,
  ];
  try {
    // A page with plotly.js inlined dumps ~11 MB of DOM, hence the buffer.
    const { stdout } = await execFileAsync(chromium, argv, {
      timeout: options.timeoutMs ?? 60000,
      maxBuffer: 256 * 1024 * 1024,
      encoding: "utf8",
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const stderrTail = (e.stderr ?? "").trim().split("\n").slice(-5).join("\n");
    throw new Error(`headless Chromium failed on ${htmlPath}: ${e.message}\n${stderrTail}`);
  }
}

async function withTempDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellmorpho-chromium-"));
  try {
    return await use(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Draws the page at `htmlPath` in a width x height window and writes the PNG atomically to `pngPath`.
 * The PNG is width x height, but in Chromium's new headless mode the page's viewport is shorter than the window
 * (by ~140 px here), so a page should lay itself out at a fixed size rather than fill the viewport.
 */
export async function screenshotHtml(htmlPath: string, pngPath: string, options: ScreenshotOptions): Promise<void> {
  const { width, height } = options;
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new Error(`screenshot of ${htmlPath}: window size must be positive integers, got ${width}x${height}`);
  }
  await withTempDir(async (dir) => {
    const shot = path.join(dir, "screenshot.png");
    await runHeadless(htmlPath, [`--window-size=${width},${height}`, `--screenshot=${shot}`], dir, options);
    if (!fs.existsSync(shot)) throw new Error(`headless Chromium wrote no screenshot of ${htmlPath}`);
    writeFileAtomic(pngPath, fs.readFileSync(shot));
  });
}

/** screenshotHtml() of a page given as HTML text (written to a temporary file first). */
export async function screenshotPage(pageHtml: string, pngPath: string, options: ScreenshotOptions): Promise<void> {
  await withTempDir(async (dir) => {
    const page = path.join(dir, "page.html");
    fs.writeFileSync(page, pageHtml);
    await screenshotHtml(page, pngPath, options);
  });
}

/** The serialised DOM of the page at `htmlPath` after its scripts ran (within the virtual time budget). */
export async function dumpDom(htmlPath: string, options: HeadlessOptions = {}): Promise<string> {
  return withTempDir((dir) => runHeadless(htmlPath, ["--dump-dom"], dir, options));
}
