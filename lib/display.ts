// Rich output for the tslab notebook. A figure goes out as ONE display bundle holding both the plotly MIME type
// (JupyterLab's plotly renderer) and text/html (nbconvert's HTML report keeps only that one), so each viewer
// picks what it can draw and the report never loses a figure. Outside a notebook, each call prints one line.
import * as path from "node:path";
import { montage } from "./composite";
import { figureHtmlFragment, plainTitle, PlotlyFigure } from "./plots";

/**
 * MIME type -> content, as the Jupyter protocol carries it: text as strings, binary (PNG) as base64 strings,
 * JSON types (the plotly figure) as JSON values, not strings.
 */
export type MimeBundle = Record<string, string | object>;

/** Where display bundles go: the notebook, or a one-line log outside it. */
export type DisplaySink = (bundle: MimeBundle) => void;

const PLOTLY_MIME = "application/vnd.plotly.v1+json";

// --- tslab -------------------------------------------------------------------------------------------------------

/** The slice of tslab's public module used here (node_modules/tslab/dist/public.d.ts). */
interface TslabPublic {
  display: { raw(contentType: string, content: string | Uint8Array): unknown };
}

/** tslab's kernel module (dist/jupyter.js); its writer is replaced for every cell that runs. */
interface TslabJupyter {
  lastWriteDisplayData: ((message: DisplayMessage, update: boolean) => void) | null;
}

interface DisplayMessage {
  data: MimeBundle;
  metadata: object;
  transient: object;
}

/** What tslab's executor puts on globalThis while a notebook runs: the cell's own `require`. */
interface TslabBridge {
  require(id: string): unknown;
}

/**
 * tslab's public API offers one MIME type per output. The kernel's writer under it takes a whole bundle, so the
 * sink uses that writer, found beside the public module the kernel itself hands to cells (the same instance even
 * when tslab is installed elsewhere than this project). Where it cannot be found, one output per bundle: the
 * first of text/html, image/png, text/plain.
 */
export function tslabSink(): DisplaySink | null {
  const bridge = (globalThis as { __tslab__?: TslabBridge }).__tslab__;
  if (typeof bridge?.require !== "function") return null;
  const tslab = bridge.require("tslab") as TslabPublic;
  const publicModule = Object.values(require.cache).find((m) => m?.exports === tslab);
  const jupyter = publicModule && require.cache[path.join(path.dirname(publicModule.filename), "jupyter.js")];
  const kernel = jupyter?.exports as TslabJupyter | undefined;
  return (bundle) => {
    const write = kernel?.lastWriteDisplayData;
    if (typeof write === "function") {
      write({ data: bundle, metadata: {}, transient: {} }, false);
      return;
    }
    const mime = ["text/html", "image/png", "text/plain"].find((m) => typeof bundle[m] === "string");
    if (!mime) return;
    const content = bundle[mime] as string;
    tslab.display.raw(mime, mime === "image/png" ? Buffer.from(content, "base64") : content);
  };
}

/** Outside a notebook: the bundle's text/plain line. */
export function consoleSink(log: (line: string) => void = console.log): DisplaySink {
  return (bundle) => {
    const line = bundle["text/plain"];
    log(typeof line === "string" ? line : `[output: ${Object.keys(bundle).join(", ")}]`);
  };
}

// --- bundles -----------------------------------------------------------------------------------------------------

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function figureSummary(fig: PlotlyFigure): string {
  const traces = fig.data.map((trace) => trace.name ?? trace.type).join(", ");
  return `[figure] ${plainTitle(fig) || "(untitled)"}: ${traces}`.replace(/\s+/g, " ");
}

/** A figure as plotly JSON + HTML (+ a text line); `includePlotly` puts plotly.js in the HTML. */
export function figureBundle(fig: PlotlyFigure, includePlotly: boolean): MimeBundle {
  return {
    [PLOTLY_MIME]: fig,
    "text/html": figureHtmlFragment(fig, { includePlotly }),
    "text/plain": figureSummary(fig),
  };
}

export function pngBundle(png: Uint8Array, caption?: string): MimeBundle {
  const base64 = Buffer.from(png).toString("base64");
  return { "image/png": base64, "text/plain": `[image] ${caption ?? `PNG, ${png.length} bytes`}` };
}

/** Cell crops are often ~60 px: shown at a common, readable width (the montage's tile size). */
const IMAGE_WIDTH_PX = 160;

/**
 * Images side by side: an HTML table of data-URI images with their captions, and the same as one PNG montage
 * for viewers without HTML.
 */
export async function imagesBundle(pngs: readonly Uint8Array[], captions?: readonly string[]): Promise<MimeBundle> {
  if (captions && captions.length !== pngs.length) {
    throw new Error(`showImages: ${captions.length} captions for ${pngs.length} images`);
  }
  const cells = pngs.map((png, i) => {
    const src = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
    const caption = captions ? `<figcaption>${escapeHtml(captions[i])}</figcaption>` : "";
    return `<td style="text-align:center;vertical-align:top"><figure style="margin:4px">` +
      `<img src="${src}" style="width:${IMAGE_WIDTH_PX}px;height:auto"/>${caption}</figure></td>`;
  });
  const sideBySide = await montage(pngs, { labels: captions });
  return {
    "text/html": `<table><tr>${cells.join("")}</tr></table>`,
    "image/png": sideBySide.toString("base64"),
    "text/plain": `[images] ${pngs.length}: ${captions ? captions.join(", ") : "(no captions)"}`,
  };
}

// --- the notebook's display --------------------------------------------------------------------------------------

export interface NotebookDisplay {
  showFigure(fig: PlotlyFigure): void;
  showPng(png: Uint8Array, caption?: string): void;
  showImages(pngs: readonly Uint8Array[], captions?: readonly string[]): Promise<void>;
}

/**
 * Display functions for one notebook. plotly.js (~11 MB) goes into the first figure's HTML only; later figures
 * use the window.Plotly it defines. Create one per notebook (re-creating it only re-sends plotly.js once more).
 * The default sink is tslab's when running in tslab, a one-line console log otherwise.
 */
export function createNotebookDisplay(sink: DisplaySink = tslabSink() ?? consoleSink()): NotebookDisplay {
  let plotlySent = false;
  return {
    showFigure(fig) {
      sink(figureBundle(fig, !plotlySent));
      plotlySent = true;
    },
    showPng(png, caption) {
      sink(pngBundle(png, caption));
    },
    async showImages(pngs, captions) {
      sink(await imagesBundle(pngs, captions));
    },
  };
}
