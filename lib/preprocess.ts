// Image preprocessing exactly as the method's Python does it: PIL's convert("L"), then torchvision's Resize
// (which, on a PIL image, is PIL's Image.resize(..., BILINEAR)), then ToTensor's scaling to [0, 1].
// Reproducing PIL bit for bit matters: the embeddings are compared with ones computed in Python, and the
// antialiasing triangle filter and fixed-point rounding below are what make PIL's result differ from a naive
// bilinear interpolation by whole grey levels.
import * as fs from "node:fs";
import sharp from "sharp";

/** Side of the square cell image fed to the encoders (torchvision Resize((224, 224))). */
export const CELL_SIZE = 224;

/** Largest image decodeGrey accepts by default (width * height): far beyond a cell crop, small enough to refuse
 * a decompression bomb before it allocates gigabytes. */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

export interface GreyImage {
  width: number;
  height: number;
  /** Row-major grey levels: 8-bit images as Uint8Array, 16-bit images keep their range as Uint16Array. */
  data: Uint8Array | Uint16Array;
  maxValue: 255 | 65535;
}

/** An image file by path, or its bytes with a name to put in error messages. */
export type ImageSource = string | { bytes: Buffer; name: string };

export interface DecodeOptions {
  /** Refuse images with more pixels than this (sharp's limitInputPixels). */
  maxPixels?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/**
 * Decode an image file to one grey channel the way PIL's `Image.open(f).convert("L")` does for 8-bit images:
 * grey stays as is, RGB / RGBA / palette become L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 (ITU-R 601-2,
 * PIL's Convert.c `L24`), alpha is ignored. 16-bit grey keeps its 0..65535 range (PIL's convert("L") would clip
 * it at 255; see resizeBilinear). Lossless formats decode to PIL's exact values; JPEG decoders may differ by a
 * grey level.
 */
export async function decodeGrey(source: ImageSource, opts: DecodeOptions = {}): Promise<GreyImage> {
  const { bytes, name } = await readSource(source);
  if (bytes.length === 0) throw new Error(`${name}: empty file (0 bytes), not an image`);
  const limitInputPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    const meta = await sharp(bytes, { limitInputPixels }).metadata();
    const layout = sampleLayout(meta.space, meta.depth);
    if (layout === null) {
      throw new Error(`unsupported colour space / sample format ${meta.space ?? "?"}/${meta.depth ?? "?"} ` +
        "(expected 8- or 16-bit grey, RGB, RGBA or palette)");
    }
    // Keep the file's own colour space and depth: sharp would otherwise convert grey to 3-channel sRGB and
    // 16-bit to 8-bit, and its own grey conversion is not PIL's formula.
    const { data, info } = await sharp(bytes, { limitInputPixels })
      .toColourspace(layout.space)
      .raw({ depth: layout.sixteenBit ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.width === 0 || info.height === 0) throw new Error(`zero-size image (${info.width}x${info.height})`);
    const samples = layout.sixteenBit
      ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
    return {
      width: info.width,
      height: info.height,
      data: toGrey(samples, info.channels, info.width * info.height, layout.sixteenBit),
      maxValue: layout.sixteenBit ? 65535 : 255,
    };
  } catch (err) {
    throw new Error(`${name}: ${describeDecodeError(err as Error, limitInputPixels, bytes)}`);
  }
}

async function readSource(source: ImageSource): Promise<{ bytes: Buffer; name: string }> {
  if (typeof source !== "string") return source;
  try {
    return { bytes: await fs.promises.readFile(source), name: source };
  } catch (err) {
    throw new Error(`${source}: cannot read image file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

interface SampleLayout {
  space: "b-w" | "grey16" | "srgb" | "rgb16";
  sixteenBit: boolean;
}

/** The colour spaces decodeGrey reads without conversion; null for anything else (CMYK, Lab, float, ...). */
function sampleLayout(space: string | undefined, depth: string | undefined): SampleLayout | null {
  if (depth !== "uchar" && depth !== "ushort") return null;
  const sixteenBit = depth === "ushort";
  if (space === "b-w" || space === "grey16") return { space: sixteenBit ? "grey16" : "b-w", sixteenBit };
  if (space === "srgb" || space === "rgb16") return { space: sixteenBit ? "rgb16" : "srgb", sixteenBit };
  return null;
}

function toGrey(samples: Uint8Array | Uint16Array, channels: number, pixels: number, sixteenBit: boolean):
  Uint8Array | Uint16Array {
  const grey = sixteenBit ? new Uint16Array(pixels) : new Uint8Array(pixels);
  if (channels <= 2) {
    // grey or grey + alpha: the first channel is the grey level
    for (let i = 0; i < pixels; i++) grey[i] = samples[i * channels];
    return grey;
  }
  for (let i = 0; i < pixels; i++) {
    const p = i * channels;
    // PIL's L24 at 8 bits; at 16 bits the products exceed int32, so divide instead of >> (exact below 2^53).
    grey[i] = Math.floor((samples[p] * 19595 + samples[p + 1] * 38470 + samples[p + 2] * 7471 + 0x8000) / 65536);
  }
  return grey;
}

/** The format a file's first bytes announce, if any: tells a damaged image from a file that never was one. */
function announcedFormat(bytes: Buffer): "PNG" | "TIFF" | "JPEG" | "WebP" | "BMP" | null {
  const startsWith = (...signature: number[]) => signature.every((byte, i) => bytes[i] === byte);
  if (startsWith(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "PNG";
  if (startsWith(0x49, 0x49, 0x2a, 0x00) || startsWith(0x4d, 0x4d, 0x00, 0x2a)) return "TIFF";
  if (startsWith(0xff, 0xd8, 0xff)) return "JPEG";
  if (startsWith(0x52, 0x49, 0x46, 0x46) && bytes.subarray(8, 12).toString("latin1") === "WEBP") return "WebP";
  if (startsWith(0x42, 0x4d) && bytes.length >= 26) return "BMP";
  return null;
}

function describeDecodeError(err: Error, maxPixels: number, bytes: Buffer): string {
  const msg = err.message;
  if (/unsupported image format/i.test(msg)) {
    const format = announcedFormat(bytes);
    // sharp's prebuilt libvips has no BMP decoder (it would need ImageMagick)
    if (format === "BMP") return "BMP images cannot be decoded here; convert them to PNG or TIFF";
    if (format) return `truncated or corrupt ${format} (the file starts as one but cannot be decoded)`;
    return "not an image (unrecognised or unsupported format)";
  }
  if (/end of stream|truncat|premature|unexpected end|not enough data/i.test(msg)) {
    return `truncated or corrupt image data (${msg})`;
  }
  if (/pixel limit/i.test(msg)) return `image too large: more than the limit of ${maxPixels} pixels (${msg})`;
  if (/unsupported colour space|zero-size/.test(msg)) return msg;
  return `corrupt or undecodable image (${msg})`;
}

// ---------------------------------------------------------------------------------------------------------------
// PIL's separable resampling, mirrored from Pillow src/libImaging/Resample.c (precompute_coeffs,
// normalize_coeffs_8bpc, ImagingResample{Horizontal,Vertical}_{8bpc,32bpc}, ImagingResampleInner).

/** Fixed-point fraction bits of the 8-bit path: 32 - 8 - 2 ("8 bits for result ... two extra bits"). */
const PRECISION_BITS = 32 - 8 - 2;
/** BILINEAR's triangle filter support before scaling. */
const BILINEAR_SUPPORT = 1.0;

/** One pass's filter: for output pixel i, `count[i]` input pixels from `first[i]` weighted by row i of weights. */
interface PassCoefficients {
  first: Int32Array;
  count: Int32Array;
  /** outSize rows of `taps` weights each (unused tail entries are 0). */
  weights: Float64Array;
  taps: number;
}

function bilinearFilter(x: number): number {
  const ax = x < 0 ? -x : x;
  return ax < 1.0 ? 1.0 - ax : 0.0;
}

/** Resample.c precompute_coeffs with box (0, inSize): the triangle widens by the downscale factor, which is
 * PIL's antialiasing. Operation order is kept as in C so the doubles round identically. */
function precomputeCoefficients(inSize: number, outSize: number): PassCoefficients {
  const scale = inSize / outSize;
  const filterScale = scale < 1.0 ? 1.0 : scale;
  const support = BILINEAR_SUPPORT * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  const invFilterScale = 1.0 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const row = xx * taps;
    let sum = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * invFilterScale);
      weights[row + x] = w;
      sum += w;
    }
    if (sum !== 0.0) for (let x = 0; x < xmax; x++) weights[row + x] /= sum;
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, weights, taps };
}

/** normalize_coeffs_8bpc: weights as integers with PRECISION_BITS fraction bits, rounded half away from 0. */
function fixedPointWeights(weights: Float64Array): Int32Array {
  const one = 1 << PRECISION_BITS;
  return Int32Array.from(weights, (w) => (w < 0 ? Math.trunc(-0.5 + w * one) : Math.trunc(0.5 + w * one)));
}

/** clip8: the accumulator's integer part, clamped to 0..255. */
function clip8(accumulator: number): number {
  const v = accumulator >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Which input rows the vertical pass reads: the horizontal pass only computes those (ImagingResampleInner). */
function usedRows(vertical: PassCoefficients, outH: number): { firstRow: number; rowCount: number } {
  const firstRow = vertical.first[0];
  return { firstRow, rowCount: vertical.first[outH - 1] + vertical.count[outH - 1] - firstRow };
}

/**
 * PIL's `Image.resize((outW, outH), BILINEAR)` on an 8-bit grey ("L") image, bit for bit: horizontal pass then
 * vertical, each rounding to uint8 (fixed-point accumulate, +half, >> 22, clip). A pass is skipped when its size
 * does not change, as PIL does.
 */
export function resampleBilinearUint8(src: Uint8Array, width: number, height: number, outW: number, outH: number):
  Uint8Array {
  checkResizeArgs(src.length, width, height, outW, outH);
  const vertical = precomputeCoefficients(height, outH);
  let plane = src;
  let planeW = width;
  let rowOffset = 0; // input row of plane's row 0
  if (outW !== width) {
    const { firstRow, rowCount } = usedRows(vertical, outH);
    plane = horizontalPassUint8(src, width, firstRow, rowCount, outW);
    planeW = outW;
    rowOffset = firstRow;
  }
  if (outH === height) return plane === src ? src.slice() : plane;
  return verticalPassUint8(plane, planeW, rowOffset, vertical, outH);
}

function horizontalPassUint8(src: Uint8Array, width: number, firstRow: number, rowCount: number, outW: number):
  Uint8Array {
  const c = precomputeCoefficients(width, outW);
  const k = fixedPointWeights(c.weights);
  const out = new Uint8Array(outW * rowCount);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < rowCount; y++) {
    const srcRow = (y + firstRow) * width;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.first[xx];
      const kRow = xx * c.taps;
      let acc = half;
      for (let x = 0; x < c.count[xx]; x++) acc += src[srcRow + xmin + x] * k[kRow + x];
      out[y * outW + xx] = clip8(acc);
    }
  }
  return out;
}

function verticalPassUint8(plane: Uint8Array, width: number, rowOffset: number, c: PassCoefficients, outH: number):
  Uint8Array {
  const k = fixedPointWeights(c.weights);
  const out = new Uint8Array(width * outH);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.first[yy] - rowOffset;
    const kRow = yy * c.taps;
    for (let xx = 0; xx < width; xx++) {
      let acc = half;
      for (let y = 0; y < c.count[yy]; y++) acc += plane[(ymin + y) * width + xx] * k[kRow + y];
      out[yy * width + xx] = clip8(acc);
    }
  }
  return out;
}

/**
 * PIL's `Image.resize((outW, outH), BILINEAR)` on a float ("F") image: same coefficients, double accumulation,
 * float32 storage after each pass (ImagingResample*_32bpc, FLOAT32 case). No rounding to integers.
 */
export function resampleBilinearFloat32(src: ArrayLike<number>, width: number, height: number, outW: number,
  outH: number): Float32Array {
  checkResizeArgs(src.length, width, height, outW, outH);
  const vertical = precomputeCoefficients(height, outH);
  let plane = Float32Array.from(src);
  let planeW = width;
  let rowOffset = 0;
  if (outW !== width) {
    const { firstRow, rowCount } = usedRows(vertical, outH);
    plane = horizontalPassFloat32(plane, width, firstRow, rowCount, outW);
    planeW = outW;
    rowOffset = firstRow;
  }
  if (outH === height) return plane;
  return verticalPassFloat32(plane, planeW, rowOffset, vertical, outH);
}

function horizontalPassFloat32(src: Float32Array, width: number, firstRow: number, rowCount: number, outW: number):
  Float32Array {
  const c = precomputeCoefficients(width, outW);
  const out = new Float32Array(outW * rowCount);
  for (let y = 0; y < rowCount; y++) {
    const srcRow = (y + firstRow) * width;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.first[xx];
      const kRow = xx * c.taps;
      let acc = 0.0;
      for (let x = 0; x < c.count[xx]; x++) acc += src[srcRow + xmin + x] * c.weights[kRow + x];
      out[y * outW + xx] = acc;
    }
  }
  return out;
}

function verticalPassFloat32(plane: Float32Array, width: number, rowOffset: number, c: PassCoefficients,
  outH: number): Float32Array {
  const out = new Float32Array(width * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.first[yy] - rowOffset;
    const kRow = yy * c.taps;
    for (let xx = 0; xx < width; xx++) {
      let acc = 0.0;
      for (let y = 0; y < c.count[yy]; y++) acc += plane[(ymin + y) * width + xx] * c.weights[kRow + y];
      out[yy * width + xx] = acc;
    }
  }
  return out;
}

function checkResizeArgs(length: number, width: number, height: number, outW: number, outH: number): void {
  for (const [label, v] of [["width", width], ["height", height], ["output width", outW], ["output height", outH]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`resize: ${label} must be a positive integer, got ${v}`);
  }
  if (length !== width * height) {
    throw new Error(`resize: ${length} pixels given for a ${width}x${height} image (expected ${width * height})`);
  }
}

/**
 * Resize to outW x outH as torchvision's Resize does on a PIL image, scaled to [0, 1] like ToTensor, float32
 * row-major. 8-bit images: PIL's exact uint8 result / 255. 16-bit images: PIL's float ("F") path / 65535.
 *
 * Why the float path for 16 bits: PIL 9.4 opens a 16-bit PNG as mode "I"; the method's convert("L") would then
 * clip every value above 255 to white, and torchvision's ToTensor on mode "I" returns unscaled int32 counts.
 * Neither is usable, so the project keeps the 16-bit range and divides by 65535 (a 12-bit camera image therefore
 * lands in [0, 1/16]). PIL's own integer-mode resize rounds after each pass; the float path differs from it by at
 * most one grey level in 65535.
 */
export function resizeBilinear(img: GreyImage, outW: number, outH: number): Float32Array {
  if (img.maxValue === 255) {
    if (!(img.data instanceof Uint8Array)) throw new Error("resize: an 8-bit image must hold a Uint8Array");
    // double division then float32 storage: the same float32 as ToTensor's float32 x / 255
    return scaled(resampleBilinearUint8(img.data, img.width, img.height, outW, outH), 255);
  }
  return scaled(resampleBilinearFloat32(img.data, img.width, img.height, outW, outH), img.maxValue);
}

/** values / maxValue as float32 (a plain loop: typed-array from/map with a callback is several times slower). */
function scaled(values: Uint8Array | Float32Array, maxValue: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / maxValue;
  return out;
}

export interface LoadOptions extends DecodeOptions {
  /** Side of the square output; default CELL_SIZE (the encoder's input). */
  size?: number;
}

/** One cell channel as the encoders take it: size x size grey values in [0, 1], float32 row-major. */
export async function loadCell(source: ImageSource, opts: LoadOptions = {}): Promise<Float32Array> {
  const size = opts.size ?? CELL_SIZE;
  return resizeBilinear(await decodeGrey(source, opts), size, size);
}
