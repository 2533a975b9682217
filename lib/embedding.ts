// Embedding extraction: images in batches through an Encoder, with the next batch decoded while the current one
// runs, and every embedding cached on disk under (image content, encoder, weights, engine) so re-scoring is instant.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Encoder } from "./encoder";
import type { CellPair } from "./dataset";
import { decodeGrey, resizeBilinear } from "./preprocess";
import { progressReporter } from "./progress";

/** Bump when preprocessing changes what the encoder sees: old cache entries then stop matching. */
const PREPROCESS_VERSION = "grey-pil-bilinear-unit-v1";

export interface EmbedOptions {
  /** Images per forward pass (the method uses 64). */
  batchSize?: number;
  /** Folder of the embedding cache; null disables it. */
  cacheDir?: string | null;
  /** Label of the progress line. */
  label?: string;
  /** Show progress (default true). */
  progress?: boolean;
}

export interface EmbedResult {
  /** n x dim, row-major. */
  vectors: Float32Array;
  n: number;
  dim: number;
  /** How many rows came from the cache. */
  cached: number;
}

export interface PairEmbeddings {
  actin: EmbedResult;
  nucleus: EmbedResult;
}

/** Identifies what produced an embedding; two encoders with the same key give the same numbers. */
export function encoderCacheKey(encoder: Encoder): string {
  const { info } = encoder;
  const id = [info.encoder, info.engine, info.weights.sha256, encoder.inputSize, PREPROCESS_VERSION].join("|");
  return crypto.createHash("sha256").update(id).digest("hex").slice(0, 24);
}

/** Read, decode, grey, resize and scale one image file to inputSize x inputSize values in [0,1]. */
export async function prepareImage(file: string, inputSize: number): Promise<Float32Array> {
  const image = await decodeGrey(file);
  return resizeBilinear(image, inputSize, inputSize);
}

function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

class EmbeddingCache {
  constructor(private readonly dir: string, private readonly dim: number) {}

  private file(contentHash: string): string {
    return path.join(this.dir, contentHash.slice(0, 2), `${contentHash}.f32`);
  }

  get(contentHash: string): Float32Array | null {
    try {
      const buf = fs.readFileSync(this.file(contentHash));
      if (buf.byteLength !== this.dim * 4) return null; // a foreign or damaged entry is recomputed
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    } catch {
      return null;
    }
  }

  /** Temp file then rename: an interrupted run never leaves a truncated entry behind. */
  put(contentHash: string, vector: Float32Array): void {
    const target = this.file(contentHash);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
    fs.renameSync(tmp, target);
  }
}

/** Embed image files with one encoder; rows follow the order of `files`. */
export async function embedImages(files: string[], encoder: Encoder, options: EmbedOptions = {}): Promise<EmbedResult> {
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  const { dim, inputSize } = encoder;
  const pixels = inputSize * inputSize;
  const vectors = new Float32Array(files.length * dim);
  const cache = options.cacheDir ? new EmbeddingCache(path.join(options.cacheDir, encoderCacheKey(encoder)), dim) : null;

  const hashes = cache ? files.map(sha256File) : [];
  const todo: number[] = [];
  files.forEach((_, i) => {
    const hit = cache?.get(hashes[i]);
    if (hit) vectors.set(hit, i * dim);
    else todo.push(i);
  });

  const batches: number[][] = [];
  for (let start = 0; start < todo.length; start += batchSize) batches.push(todo.slice(start, start + batchSize));

  const decodeBatch = async (rows: number[]): Promise<Float32Array> => {
    const input = new Float32Array(rows.length * pixels);
    const images = await Promise.all(rows.map((i) => prepareImage(files[i], inputSize)));
    images.forEach((img, k) => input.set(img, k * pixels));
    return input;
  };

  const progress = options.progress === false ? null : progressReporter(options.label ?? "embedding", files.length);
  let done = files.length - todo.length;
  progress?.tick(done);
  // Decoding (sharp, off the main thread) of batch k+1 overlaps inference of batch k.
  let next = batches.length > 0 ? decodeBatch(batches[0]) : null;
  for (let b = 0; b < batches.length; b++) {
    const input = await next!;
    next = b + 1 < batches.length ? decodeBatch(batches[b + 1]) : null;
    const rows = batches[b];
    const out = await encoder.embed(input, rows.length);
    rows.forEach((i, k) => {
      const vector = out.subarray(k * dim, (k + 1) * dim);
      vectors.set(vector, i * dim);
      cache?.put(hashes[i], vector.slice());
    });
    done += rows.length;
    progress?.tick(done);
  }
  progress?.finish();
  return { vectors, n: files.length, dim, cached: files.length - todo.length };
}

/** Embed both channels of every pair: actin images through the actin encoder, nuclei through the nucleus encoder. */
export async function embedPairs(
  pairs: CellPair[],
  encoders: { actin: Encoder; nucleus: Encoder },
  options: EmbedOptions = {},
): Promise<PairEmbeddings> {
  const actin = await embedImages(pairs.map((p) => p.actinPath), encoders.actin, { ...options, label: "actin  " });
  const nucleus = await embedImages(pairs.map((p) => p.nucleusPath), encoders.nucleus, { ...options, label: "nucleus" });
  return { actin, nucleus };
}
