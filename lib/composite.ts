// Colour composites of a cell (actin + nucleus in one RGB picture) and montages of several cells with labels,
// for the notebook and the reports. Display only: nothing here feeds the scores.
import sharp from "sharp";
import { decodeGrey } from "./preprocess";

/** A grey image as preprocess.ts's decodeGrey returns it, or any row-major values in [0, maxValue]. */
export interface GreyImageLike {
  width: number;
  height: number;
  data: ArrayLike<number>;
  maxValue: number;
}

/** An RGB colour, each component in [0, 255]. */
export type Colour = readonly [number, number, number];

export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3 bytes, row-major, R G B. */
  rgb: Uint8Array;
}

export interface CompositeOptions {
  /** Default green: with a blue nucleus it stays readable for red-green colour-blind readers. */
  actinColour?: Colour;
  nucleusColour?: Colour;
  /**
   * true (default): each channel is stretched between its own low and high percentiles, because crops are
   * often dim and a fixed 0..maxValue scale shows them nearly black. false: value / maxValue.
   */
  autoContrast?: boolean;
  /** The stretch's [low, high] percentiles (numpy "linear" definition); default [0.5, 99.5]. */
  percentiles?: readonly [number, number];
}

const DEFAULT_ACTIN_COLOUR: Colour = [0, 255, 0];
const DEFAULT_NUCLEUS_COLOUR: Colour = [0, 0, 255];
const DEFAULT_PERCENTILES: readonly [number, number] = [0.5, 99.5];

function checkImage(image: GreyImageLike, what: string): void {
  const { width, height, maxValue } = image;
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new Error(`${what}: size must be positive integers, got ${width}x${height}`);
  }
  if (image.data.length !== width * height) {
    throw new Error(`${what}: ${image.data.length} values for a ${width}x${height} image`);
  }
  if (!(maxValue > 0)) throw new Error(`${what}: maxValue must be positive, got ${maxValue}`);
}

function checkColour(colour: Colour, what: string): void {
  if (colour.length !== 3 || colour.some((c) => !(c >= 0 && c <= 255))) {
    throw new Error(`${what}: a colour is three numbers in [0, 255], got [${colour.join(", ")}]`);
  }
}

/**
 * Nearest-neighbour resize, each output pixel taking the source pixel under its centre. Nearest rather than
 * bilinear: it keeps composite() synchronous and exact, and the two channels of a crop differ in size rarely
 * (and then by a few pixels), where interpolation would show no visible difference.
 */
export function resizeNearest(image: GreyImageLike, width: number, height: number): GreyImageLike {
  const data = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(image.height - 1, Math.floor(((y + 0.5) * image.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(image.width - 1, Math.floor(((x + 0.5) * image.width) / width));
      data[y * width + x] = image.data[sy * image.width + sx];
    }
  }
  return { width, height, data, maxValue: image.maxValue };
}

/** numpy.percentile(values, q) with the default "linear" method, on already sorted values. */
function percentileOfSorted(sorted: Float64Array, q: number): number {
  const position = (q / 100) * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const t = position - below;
  const gap = sorted[above] - sorted[below];
  // numpy interpolates from the nearer end, which keeps the result inside [a, b] under rounding.
  return t >= 0.5 ? sorted[above] - gap * (1 - t) : sorted[below] + gap * t;
}

/** Channel values mapped to [0, 1]: stretched between percentiles, or divided by maxValue. */
function channelIntensities(
  image: GreyImageLike, autoContrast: boolean, percentiles: readonly [number, number],
): Float64Array {
  const values = Float64Array.from(image.data);
  let low = 0;
  let high = image.maxValue;
  if (autoContrast) {
    const sorted = Float64Array.from(values).sort();
    const stretchLow = percentileOfSorted(sorted, percentiles[0]);
    const stretchHigh = percentileOfSorted(sorted, percentiles[1]);
    // A flat channel has nothing to stretch; the fixed scale then shows its level honestly.
    if (stretchHigh > stretchLow) [low, high] = [stretchLow, stretchHigh];
  }
  return values.map((v) => Math.min(1, Math.max(0, (v - low) / (high - low))));
}

/**
 * Additive two-colour composite: every pixel is actin * actinColour + nucleus * nucleusColour, clipped to 255.
 * A nucleus image of another size is resized to the actin image's size (nearest neighbour, see resizeNearest).
 */
export function composite(actin: GreyImageLike, nucleus: GreyImageLike, options: CompositeOptions = {}): RgbImage {
  checkImage(actin, "actin image");
  checkImage(nucleus, "nucleus image");
  const actinColour = options.actinColour ?? DEFAULT_ACTIN_COLOUR;
  const nucleusColour = options.nucleusColour ?? DEFAULT_NUCLEUS_COLOUR;
  checkColour(actinColour, "actinColour");
  checkColour(nucleusColour, "nucleusColour");
  const percentiles = options.percentiles ?? DEFAULT_PERCENTILES;
  if (!(percentiles[0] >= 0 && percentiles[0] < percentiles[1] && percentiles[1] <= 100)) {
    throw new Error(`composite: percentiles must satisfy 0 <= low < high <= 100, got [${percentiles.join(", ")}]`);
  }
  const autoContrast = options.autoContrast ?? true;
  const { width, height } = actin;
  const sameSize = nucleus.width === width && nucleus.height === height;
  const a = channelIntensities(actin, autoContrast, percentiles);
  const n = channelIntensities(sameSize ? nucleus : resizeNearest(nucleus, width, height), autoContrast, percentiles);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) {
      rgb[i * 3 + c] = Math.round(Math.min(255, a[i] * actinColour[c] + n[i] * nucleusColour[c]));
    }
  }
  return { width, height, rgb };
}

/** An RGB image as PNG bytes. */
export function rgbToPng(image: RgbImage): Promise<Buffer> {
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

/** composite() as PNG bytes. */
export function compositePng(
  actin: GreyImageLike, nucleus: GreyImageLike, options: CompositeOptions = {},
): Promise<Buffer> {
  return rgbToPng(composite(actin, nucleus, options));
}

/** The composite PNG of one cell's actin and nucleus files. */
export async function compositeFromFiles(
  actinPath: string, nucleusPath: string, options: CompositeOptions = {},
): Promise<Buffer> {
  // decodeGrey names the file in its errors, and keeps 16-bit files' range (the stretch then uses all of it).
  const [actin, nucleus] = await Promise.all([decodeGrey(actinPath), decodeGrey(nucleusPath)]);
  return compositePng(actin, nucleus, options);
}

// ---------------------------------------------------------------------------------------------------------------
// Montage

export interface MontageOptions {
  /** Tiles per row; default: all in one row (a strip). */
  columns?: number;
  /** One caption per image, drawn under its tile. */
  labels?: readonly string[];
  /** Side of each square tile in px; images are scaled to fit inside it, aspect kept. Default 160. */
  tile?: number;
  /** Space between tiles in px. Default 4. */
  gap?: number;
  background?: Colour;
  labelColour?: Colour;
}

const LABEL_STRIP_PX = 20;
const LABEL_FONT_PX = 12;
/** Average advance of a DejaVu/Liberation sans glyph, as a fraction of the font size; used to shorten labels. */
const GLYPH_WIDTH_EM = 0.6;

export interface MontageLayout {
  width: number;
  height: number;
  /** Top-left corner of each tile. */
  tiles: { left: number; top: number }[];
  tile: number;
  labelStrip: number;
}

/** Where each of `count` tiles goes, and the size of the whole picture. */
export function montageLayout(
  count: number, columns: number, tile: number, gap: number, labelled: boolean,
): MontageLayout {
  const usedColumns = Math.min(columns, count);
  const rows = Math.ceil(count / columns);
  const labelStrip = labelled ? LABEL_STRIP_PX : 0;
  const tiles = Array.from({ length: count }, (_, i) => ({
    left: (i % columns) * (tile + gap),
    top: Math.floor(i / columns) * (tile + labelStrip + gap),
  }));
  return {
    width: usedColumns * tile + (usedColumns - 1) * gap,
    height: rows * (tile + labelStrip) + (rows - 1) * gap,
    tiles,
    tile,
    labelStrip,
  };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fitLabel(label: string, tile: number): string {
  const maxChars = Math.max(1, Math.floor(tile / (LABEL_FONT_PX * GLYPH_WIDTH_EM)));
  return label.length <= maxChars ? label : `${label.slice(0, maxChars - 1)}…`;
}

function labelsSvg(labels: readonly string[], layout: MontageLayout, colour: Colour): Buffer {
  const texts = labels.map((label, i) => {
    const { left, top } = layout.tiles[i];
    const x = left + layout.tile / 2;
    const y = top + layout.tile + layout.labelStrip - (layout.labelStrip - LABEL_FONT_PX) / 2 - 2;
    return `<text x="${x}" y="${y}">${escapeXml(fitLabel(label, layout.tile))}</text>`;
  });
  const fill = `rgb(${colour.join(",")})`;
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}">` +
    `<g font-family="DejaVu Sans, Liberation Sans, sans-serif" font-size="${LABEL_FONT_PX}" fill="${fill}" ` +
    `text-anchor="middle">${texts.join("")}</g></svg>`,
  );
}

function requireInteger(value: number, min: number, name: string): void {
  if (!(Number.isInteger(value) && value >= min)) {
    throw new Error(`montage: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** Several images (PNG or anything sharp reads) in a grid of square tiles, optionally captioned, as one PNG. */
export async function montage(images: readonly Uint8Array[], options: MontageOptions = {}): Promise<Buffer> {
  if (images.length === 0) throw new Error("montage: no images given");
  const columns = options.columns ?? images.length;
  const tile = options.tile ?? 160;
  const gap = options.gap ?? 4;
  const background = options.background ?? [0, 0, 0];
  const labelColour = options.labelColour ?? [255, 255, 255];
  requireInteger(columns, 1, "columns");
  requireInteger(tile, 1, "tile");
  requireInteger(gap, 0, "gap");
  if (options.labels && options.labels.length !== images.length) {
    throw new Error(`montage: ${options.labels.length} labels for ${images.length} images`);
  }
  checkColour(background, "montage background");
  checkColour(labelColour, "montage labelColour");
  const layout = montageLayout(images.length, columns, tile, gap, options.labels !== undefined);
  const fill = { r: background[0], g: background[1], b: background[2] };
  const tiles = await Promise.all(images.map(async (image, i) => {
    try {
      return await sharp(image).resize(tile, tile, { fit: "contain", background: fill }).flatten({ background: fill })
        .png().toBuffer();
    } catch (err) {
      throw new Error(`montage: image ${i} cannot be decoded: ${(err as Error).message}`);
    }
  }));
  const overlays: sharp.OverlayOptions[] = tiles.map((input, i) => ({ input, ...layout.tiles[i] }));
  if (options.labels) overlays.push({ input: labelsSvg(options.labels, layout, labelColour), left: 0, top: 0 });
  return sharp({ create: { width: layout.width, height: layout.height, channels: 3, background: fill } })
    .composite(overlays)
    .png()
    .toBuffer();
}
