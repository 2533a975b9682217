// One benchmark target (an engine on a backend) or one extraction variant, measured in a fresh Node process:
// TensorFlow.js commits a process to one backend, and the peak RSS the kernel reports never goes down, so each
// measurement gets a process of its own. bench.ts starts this file with a ChildTask as JSON in argv[2]; the result
// is one JSON line on stdout.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openCelltool } from "../lib/dataset";
import type { Encoder } from "../lib/encoder";
import { createEncoder, RESNET_INPUT_SIZE, type CreateEncoderOptions } from "../lib/engines";
import { CPU_SESSION_BATCH } from "../lib/onnxEngine";
import { loadWeights } from "../lib/weights";
import {
  measureExtraction, measureInference, measureScoring, measureWholeRun, peakRssMiB, prepareInputs, type ScoringTimings,
  type Timing,
} from "./measure";
import { targetName, type Target } from "./options";

export const BATCH_SIZE = 64;

/** How extraction is organised: where the onnx sessions run, how many threads each, one channel at a time or both,
 * and how many images onnxruntime gets per call. */
export interface Variant {
  name: string;
  thread: "main" | "worker";
  threads: number;
  channels: "sequential" | "concurrent";
  sessionBatch: number;
}

/** The layouts worth comparing on this machine; the first is how extraction ran before sessions moved to workers. */
export function extractionVariants(cores = os.availableParallelism()): Variant[] {
  const half = Math.max(1, Math.floor(cores / 2));
  const threads = (n: number) => `${n} thread${n === 1 ? "" : "s"}`;
  return [
    { name: `main thread, in turn, ${threads(cores)}, ${BATCH_SIZE}/call (before)`, thread: "main", threads: cores,
      channels: "sequential", sessionBatch: BATCH_SIZE },
    { name: `main thread, in turn, ${threads(cores)}, ${CPU_SESSION_BATCH}/call`, thread: "main", threads: cores,
      channels: "sequential", sessionBatch: CPU_SESSION_BATCH },
    { name: `workers, in turn, ${threads(cores)}, ${CPU_SESSION_BATCH}/call`, thread: "worker", threads: cores,
      channels: "sequential", sessionBatch: CPU_SESSION_BATCH },
    { name: `workers, both at once, ${threads(half)} each, ${CPU_SESSION_BATCH}/call (default)`, thread: "worker",
      threads: half, channels: "concurrent", sessionBatch: CPU_SESSION_BATCH },
    { name: `workers, both at once, ${threads(cores)} each, ${CPU_SESSION_BATCH}/call`, thread: "worker",
      threads: cores, channels: "concurrent", sessionBatch: CPU_SESSION_BATCH },
  ];
}

export interface TaskBase {
  dataDir: string;
  weightsDir: string;
  anchors: [string, string];
  repeat: number;
}

export type ChildTask =
  | (TaskBase & { kind: "target"; target: Target; whole: boolean })
  | (TaskBase & { kind: "variant"; variant: Variant })
  /** One whole run as `cellmorpho score` makes it (no cache): one side of a round against the PyTorch peer. */
  | (TaskBase & { kind: "whole" });

export interface TargetResult {
  kind: "target";
  target: string;
  engine: string;
  /** Backend the engine actually used, e.g. "cpu", "wasm". */
  backend: string;
  device: string;
  /** What the engine said when it started (provider, threads, thread). */
  engineLog: string[];
  /** One encoder alone, on every core where the engine has a thread setting (onnx). */
  inference: Timing & { batchSize: number; threads: number | null };
  /** The whole `score` run without cache (onnx only; tfjs-wasm would take minutes). */
  whole?: Timing;
  /** The same with a fresh cache folder (hashing + writes), then again reading every embedding from it. */
  coldCache?: Timing;
  warmCache?: Timing;
  /** Axes + metrics, and the validation, alone on the whole run's embeddings. */
  scoring?: Timing;
  validation?: ScoringTimings["validation"];
  /** Peak RSS after the first phase: the whole run when there is one, else inference. */
  peakRssMiB: number;
}

export interface WholeResult {
  kind: "whole";
  whole: Timing;
  peakRssMiB: number;
}

export interface VariantResult {
  kind: "variant";
  variant: Variant;
  extraction: Timing;
  peakRssMiB: number;
}

/** Images in the inference-alone timing: enough batches to average, few where the backend is very slow. */
export function inferenceImages(engine: string, backend: string, available: number): number {
  if (engine === "onnx") return Math.min(4 * BATCH_SIZE, available);
  // tfjs: wasm ~0.08 s/image, so one batch; the pure-JS cpu backend ~2.5 s/image, so a handful
  return Math.min(backend === "cpu" ? 4 : BATCH_SIZE, available);
}

/** One encoder alone gets every core: like the peer's inference timing (torch on all threads). */
function encoderOptions(target: Target, threads: number): Omit<CreateEncoderOptions, "weights" | "log"> {
  if (target.engine === "onnx") {
    const provider = target.backend ?? "auto";
    if (provider !== "auto" && provider !== "cpu" && provider !== "cuda") {
      throw new Error(`onnx backend must be cpu or cuda, got "${provider}"`);
    }
    return { engine: "onnx", onnx: { provider, intraOpNumThreads: threads } };
  }
  return { engine: "tfjs", tfjsBackend: target.backend };
}

async function withEncoder<T>(options: CreateEncoderOptions, fn: (encoder: Encoder) => Promise<T>): Promise<T> {
  const encoder = await createEncoder(options);
  try {
    return await fn(encoder);
  } finally {
    await encoder.dispose();
  }
}

export async function runTarget(task: Extract<ChildTask, { kind: "target" }>): Promise<TargetResult> {
  const dataset = openCelltool(task.dataDir);
  const files = dataset.pairs.flatMap((p) => [p.actinPath, p.nucleusPath]);
  const engineLog: string[] = [];
  // Each encoder opened says the same thing: keep every distinct line once.
  const log = (line: string) => { if (!engineLog.includes(line)) engineLog.push(line); };
  const result: Partial<TargetResult> = { kind: "target", target: targetName(task.target), engineLog };

  if (task.whole) {
    const score = { engine: "onnx" as const, weightsDir: task.weightsDir, anchors: task.anchors, progress: false, log };
    const whole = await measureWholeRun(task.dataDir, { ...score, cacheDir: null }, files.length, task.repeat);
    result.whole = whole.timing;
    result.peakRssMiB = peakRssMiB();
    Object.assign(result, await measureScoring(whole.run, task.repeat));
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "cellmorpho-bench-cache-"));
    try {
      result.coldCache = (await measureWholeRun(task.dataDir, { ...score, cacheDir }, files.length, 1)).timing;
      const warm = await measureWholeRun(task.dataDir, { ...score, cacheDir }, files.length, task.repeat);
      result.warmCache = warm.timing;
    } finally {
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  }

  const weights = loadWeights(task.weightsDir);
  const threads = os.availableParallelism();
  await withEncoder({ ...encoderOptions(task.target, threads), weights, log }, async (encoder) => {
    const n = inferenceImages(encoder.info.engine, encoder.info.backend, files.length);
    const inputs = await prepareInputs(files, n, RESNET_INPUT_SIZE);
    const timing = await measureInference(encoder, inputs, n, Math.min(BATCH_SIZE, n), task.repeat);
    result.inference = { ...timing, threads: encoder.info.engine === "onnx" ? threads : null };
    result.engine = encoder.info.engine;
    result.backend = encoder.info.backend;
    result.device = encoder.info.device;
  });
  result.peakRssMiB ??= peakRssMiB();
  return result as TargetResult;
}

export async function runVariant(task: Extract<ChildTask, { kind: "variant" }>): Promise<VariantResult> {
  const { variant } = task;
  const dataset = openCelltool(task.dataDir);
  const weights = loadWeights(task.weightsDir);
  const open = () => createEncoder({ engine: "onnx", weights, log: () => undefined,
    onnx: { provider: "cpu", thread: variant.thread, intraOpNumThreads: variant.threads,
      maxSessionBatch: variant.sessionBatch } });
  const encoders = { actin: await open(), nucleus: await open() };
  try {
    const extraction = await measureExtraction(dataset.pairs, encoders,
      { channels: variant.channels, batchSize: BATCH_SIZE }, task.repeat);
    return { kind: "variant", variant, extraction, peakRssMiB: peakRssMiB() };
  } finally {
    await encoders.actin.dispose();
    await encoders.nucleus.dispose();
  }
}

export async function runWhole(task: Extract<ChildTask, { kind: "whole" }>): Promise<WholeResult> {
  const images = 2 * openCelltool(task.dataDir).pairs.length;
  // engine "auto", as `cellmorpho score` runs by default
  const { timing } = await measureWholeRun(task.dataDir, { engine: "auto", weightsDir: task.weightsDir,
    anchors: task.anchors, cacheDir: null, progress: false, log: () => undefined }, images, task.repeat);
  return { kind: "whole", whole: timing, peakRssMiB: peakRssMiB() };
}

function run(task: ChildTask): Promise<TargetResult | VariantResult | WholeResult> {
  switch (task.kind) {
    case "target": return runTarget(task);
    case "variant": return runVariant(task);
    case "whole": return runWhole(task);
  }
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? "null") as ChildTask | null;
  if (task === null || !["target", "variant", "whole"].includes(task.kind)) {
    throw new Error("bench/child.js takes a ChildTask as JSON (bench.ts starts it)");
  }
  const result = await run(task);
  process.stdout.write(JSON.stringify(result) + "\n");
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench child: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
