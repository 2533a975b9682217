// Embedding extraction: images in batches through an Encoder, the next batch decoded while the current one runs,
// both channels in flight at once, and every embedding cached on disk under (image content, encoder, weights,
// engine) so re-scoring is instant.
//
// Why this shape (bench/README.md has the profile): inference is ~80 % of a run's CPU. The onnx engine computes in
// worker threads, so while a batch is inferred the main thread decodes the next one (sharp on libuv's pool, the
// PIL-exact resize in JS), and the other channel's encoder keeps the other core busy.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Encoder } from "./encoder";
import type { CellPair } from "./dataset";
import { sha256File } from "./hash";
import { loadCell } from "./preprocess";
import { progressReporter, type Progress } from "./progress";

/** Bump when preprocessing changes what the encoder sees: old cache entries then stop matching. */
const PREPROCESS_VERSION = "grey-pil-bilinear-unit-v1";

/** What to do with an image that cannot be read or decoded. */
export type UnreadablePolicy = "skip" | "fail";

export interface EmbedOptions {
  /** Images per forward pass (the method uses 64). */
  batchSize?: number;
  /** Folder of the embedding cache; null disables it. */
  cacheDir?: string | null;
  /** Label of the progress line. */
  label?: string;
  /** Show progress (default true). */
  progress?: boolean;
  /**
   * "fail" (default): throw the decoding Error of the first unreadable image in input order; "skip": leave it out
   * of the result and list it in `unreadable`.
   */
  onUnreadable?: UnreadablePolicy;
  /** Stops before the next batch once aborted; batches already embedded stay cached. */
  signal?: AbortSignal;
}

export interface PairEmbedOptions extends Omit<EmbedOptions, "label"> {
  /**
   * "concurrent" (default): both channels in flight at once, which keeps both cores busy when each encoder computes
   * on its own thread (the onnx engine); "sequential": actin first, then nucleus. Same embeddings either way.
   */
  channels?: "concurrent" | "sequential";
}

export interface UnreadableImage {
  file: string;
  /** Why it could not be decoded (the decoder's message without the file name). */
  reason: string;
}

export interface EmbedResult {
  /** n x dim, row-major: one row per entry of `rows`. */
  vectors: Float32Array;
  n: number;
  dim: number;
  /** How many rows came from the cache. */
  cached: number;
  /** Which inputs the rows are, in input order: all of them unless some were skipped as unreadable. */
  rows: number[];
  /** Inputs skipped as unreadable, in input order (always empty with onUnreadable "fail"). */
  unreadable: UnreadableImage[];
}

export interface PairEmbeddings {
  /** Both channels hold the same rows: the pairs whose two images could be decoded. */
  actin: EmbedResult;
  nucleus: EmbedResult;
  /** Indices into the pairs given, in order, of the cells embedded. */
  rows: number[];
  /** Every image skipped as unreadable, in pair order, actin before nucleus. */
  unreadable: UnreadableImage[];
}

/** Identifies what produced an embedding; two encoders with the same key give the same numbers. */
export function encoderCacheKey(encoder: Encoder): string {
  const { info } = encoder;
  const id = [info.encoder, info.engine, info.weights.sha256, info.input ?? "", encoder.inputSize, PREPROCESS_VERSION].join("|");
  return crypto.createHash("sha256").update(id).digest("hex").slice(0, 24);
}

/** The image's content hash, or null when it cannot be read: that image is decoded (and reported) like any other. */
function contentHash(file: string): string | null {
  try {
    return sha256File(file);
  } catch {
    return null;
  }
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

// ---------------------------------------------------------------------------------------------------------------
// One channel

/**
 * Shared by the channels of one run under "fail": the input index of the first unreadable image met so far. A
 * channel stops before any batch that starts past it, yet still decodes the batches before it, so the Error finally
 * thrown is that of the first unreadable image in input order, whichever channel happens to meet one first.
 */
interface StopLine {
  index: number;
}

/** One channel over all its inputs, unreadable ones included (their rows stay zero). */
interface ChannelOutcome {
  vectors: Float32Array;
  fromCache: boolean[];
  failures: Map<number, Error>;
}

interface DecodedBatch {
  /** The rows that decoded, in order; `input` holds exactly these. */
  rows: number[];
  input: Float32Array;
  failures: Map<number, Error>;
}

async function decodeBatch(files: string[], rows: number[], inputSize: number): Promise<DecodedBatch> {
  const settled = await Promise.allSettled(rows.map((i) => loadCell(files[i], { size: inputSize })));
  const pixels = inputSize * inputSize;
  const decoded = rows.filter((_, k) => settled[k].status === "fulfilled");
  const input = new Float32Array(decoded.length * pixels);
  const failures = new Map<number, Error>();
  let filled = 0;
  settled.forEach((result, k) => {
    if (result.status === "fulfilled") input.set(result.value, pixels * filled++);
    else failures.set(rows[k], result.reason instanceof Error ? result.reason : new Error(String(result.reason)));
  });
  return { rows: decoded, input, failures };
}

async function embedChannel(files: string[], encoder: Encoder, options: EmbedOptions, progress: Progress | null,
  stopLine: StopLine): Promise<ChannelOutcome> {
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  }
  const failFast = (options.onUnreadable ?? "fail") === "fail";
  const { dim, inputSize } = encoder;
  const vectors = new Float32Array(files.length * dim);
  const fromCache = files.map(() => false);
  const failures = new Map<number, Error>();
  const cacheDir = options.cacheDir ? path.join(options.cacheDir, encoderCacheKey(encoder)) : null;
  const cache = cacheDir === null ? null : new EmbeddingCache(cacheDir, dim);

  // Hashing reads each file once more; without a cache there is nothing to hash.
  const hashes = cache ? files.map(contentHash) : [];
  const todo: number[] = [];
  files.forEach((_, i) => {
    const hit = hashes[i] ? cache?.get(hashes[i]!) : null;
    if (hit) {
      vectors.set(hit, i * dim);
      fromCache[i] = true;
    } else {
      todo.push(i);
    }
  });
  let done = files.length - todo.length;
  progress?.tick(done);

  const batches: number[][] = [];
  for (let start = 0; start < todo.length; start += batchSize) batches.push(todo.slice(start, start + batchSize));

  // Batch k+1 is decoded while batch k is inferred. decodeBatch never rejects (failures come back as data), and a
  // prefetch left behind by a stop or an error is awaited: nothing decodes behind the caller's back.
  let next = batches.length > 0 ? decodeBatch(files, batches[0], inputSize) : null;
  try {
    for (let b = 0; b < batches.length; b++) {
      options.signal?.throwIfAborted();
      if (batches[b][0] > stopLine.index) break;
      const batch = await next!;
      next = b + 1 < batches.length ? decodeBatch(files, batches[b + 1], inputSize) : null;
      batch.failures.forEach((err, i) => failures.set(i, err));
      if (failFast && batch.failures.size > 0) {
        stopLine.index = Math.min(stopLine.index, ...batch.failures.keys());
        break;
      }
      if (batch.rows.length > 0) {
        const out = await encoder.embed(batch.input, batch.rows.length);
        // Only a finished batch is cached: an interrupted one leaves no entry behind.
        batch.rows.forEach((i, k) => {
          const vector = out.subarray(k * dim, (k + 1) * dim);
          vectors.set(vector, i * dim);
          if (hashes[i]) cache?.put(hashes[i]!, vector.slice());
        });
      }
      done += batches[b].length;
      progress?.tick(done);
    }
  } finally {
    await next;
  }
  return { vectors, fromCache, failures };
}

/**
 * Decodes every failed image once more, one at a time, once nothing else decodes, and keeps that error: libvips has
 * one error buffer per process, so images failing at the same time can swap or merge their messages, and the
 * message is what the user is told.
 */
async function redecodeFailures(files: string[], outcome: ChannelOutcome, inputSize: number): Promise<void> {
  for (const index of [...outcome.failures.keys()].sort((a, b) => a - b)) {
    const alone = await loadCell(files[index], { size: inputSize }).then(() => null, (err: unknown) => err);
    if (alone instanceof Error) outcome.failures.set(index, alone);
  }
}

/** The error "fail" throws: the failure with the lowest input index, the first channel's first on a tie. */
function firstFailure(outcomes: ChannelOutcome[]): Error | null {
  let first: { index: number; err: Error } | null = null;
  for (const { failures } of outcomes) {
    for (const [index, err] of failures) if (first === null || index < first.index) first = { index, err };
  }
  return first?.err ?? null;
}

function unreadableImage(file: string, err: Error): UnreadableImage {
  const prefix = `${file}: `;
  return { file, reason: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message };
}

/** The outcome's rows listed in `rows`, compacted. */
function selectRows(files: string[], outcome: ChannelOutcome, rows: number[], dim: number): EmbedResult {
  const vectors = new Float32Array(rows.length * dim);
  rows.forEach((i, k) => vectors.set(outcome.vectors.subarray(i * dim, (i + 1) * dim), k * dim));
  const unreadable = [...outcome.failures].sort(([a], [b]) => a - b).map(([i, err]) => unreadableImage(files[i], err));
  return { vectors, n: rows.length, dim, cached: rows.filter((i) => outcome.fromCache[i]).length, rows, unreadable };
}

const noStop = (): StopLine => ({ index: Infinity });

/** Embed image files with one encoder; rows follow the order of `files`. */
export async function embedImages(files: string[], encoder: Encoder, options: EmbedOptions = {}): Promise<EmbedResult> {
  const progress = options.progress === false ? null : progressReporter(options.label ?? "embedding", files.length);
  const outcome = await embedChannel(files, encoder, options, progress, noStop());
  progress?.finish();
  await redecodeFailures(files, outcome, encoder.inputSize);
  const failed = firstFailure([outcome]);
  if (failed !== null && (options.onUnreadable ?? "fail") === "fail") throw failed;
  return selectRows(files, outcome, files.map((_, i) => i).filter((i) => !outcome.failures.has(i)), encoder.dim);
}

// ---------------------------------------------------------------------------------------------------------------
// Both channels

type Channel = "actin" | "nucleus";

/** Progress of a pair run: a bar per channel when they run one after the other, one shared bar when concurrent
 * (two redrawn bars on one terminal would overwrite each other). */
interface PairProgress {
  channel(name: Channel): Progress | null;
  finish(): void;
}

function pairProgress(show: boolean, sequential: boolean, pairs: number): PairProgress {
  if (!show) return { channel: () => null, finish: () => undefined };
  if (sequential) return { channel: (name) => progressReporter(name.padEnd(7), pairs), finish: () => undefined };
  const bar = progressReporter("actin+nucleus", 2 * pairs);
  const done = { actin: 0, nucleus: 0 };
  return {
    channel: (name) => ({
      tick: (n) => { done[name] = n; bar.tick(done.actin + done.nucleus); },
      finish: () => undefined,
    }),
    finish: () => bar.finish(),
  };
}

/** Embed both channels of every pair: actin images through the actin encoder, nuclei through the nucleus encoder. */
export async function embedPairs(
  pairs: CellPair[],
  encoders: { actin: Encoder; nucleus: Encoder },
  options: PairEmbedOptions = {},
): Promise<PairEmbeddings> {
  const files = { actin: pairs.map((p) => p.actinPath), nucleus: pairs.map((p) => p.nucleusPath) };
  const sequential = options.channels === "sequential";
  const progress = pairProgress(options.progress !== false, sequential, pairs.length);
  // Any error but an unreadable image stops the other channel at its next batch, and both settle before it is
  // thrown: nothing keeps running (or writing the cache) behind the caller's back.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const stopLine = noStop();
  const channel = async (name: Channel): Promise<ChannelOutcome> => {
    const bar = progress.channel(name);
    try {
      return await embedChannel(files[name], encoders[name], { ...options, signal }, bar, stopLine);
    } catch (err) {
      stop.abort(err);
      throw err;
    } finally {
      bar?.finish();
    }
  };
  let actin: ChannelOutcome;
  let nucleus: ChannelOutcome;
  try {
    if (sequential) {
      actin = await channel("actin");
      nucleus = await channel("nucleus");
    } else {
      const settled = await Promise.allSettled([channel("actin"), channel("nucleus")]);
      for (const s of settled) if (s.status === "rejected") throw s.reason;
      [actin, nucleus] = settled.map((s) => (s as PromiseFulfilledResult<ChannelOutcome>).value);
    }
  } finally {
    progress.finish();
  }

  await redecodeFailures(files.actin, actin, encoders.actin.inputSize);
  await redecodeFailures(files.nucleus, nucleus, encoders.nucleus.inputSize);
  const failed = firstFailure([actin, nucleus]);
  if (failed !== null && (options.onUnreadable ?? "fail") === "fail") throw failed;
  const rows = pairs.map((_, i) => i).filter((i) => !actin.failures.has(i) && !nucleus.failures.has(i));
  const unreadable = pairs.flatMap((_, i) => (["actin", "nucleus"] as const).flatMap((name) => {
    const err = (name === "actin" ? actin : nucleus).failures.get(i);
    return err === undefined ? [] : [unreadableImage(files[name][i], err)];
  }));
  return {
    actin: selectRows(files.actin, actin, rows, encoders.actin.dim),
    nucleus: selectRows(files.nucleus, nucleus, rows, encoders.nucleus.dim),
    rows,
    unreadable,
  };
}
