// Runs a ResNetGraph with onnxruntime-node: the graph is written as an ONNX model in memory (onnx-proto), so
// no .onnx file or Python exporter is needed, then executed on CUDA when it really works here, else on the CPU.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { onnx } from "onnx-proto";
import { checkBatch } from "./resnet";
import type { ConvOp, GraphRunner, ResNetGraph, ResNetOp } from "./resnet";
import { findWorkerScript, openMainThreadSession, openWorkerSession, type Provider, type SessionHost,
  type SessionSpec, type SessionThread } from "./onnxSession";

type Ort = typeof import("onnxruntime-node");
type Log = (msg: string) => void;

const OPSET = 13;
/** IR version 7 is what ONNX 1.8+ writes for opset 13; onnxruntime reads it. */
const IR_VERSION = 7;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const BATCH_DIM = "batch";

/** Loads onnxruntime-node lazily, so a machine without its native binary can still use the TF.js engine. */
export function loadOnnxRuntime(): { ort: Ort } | { error: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { ort: require("onnxruntime-node") as Ort };
  } catch (err) {
    return { error: (err as Error).message.split("\n")[0] };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Graph -> ONNX ModelProto

function ints(name: string, values: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

function floatInitializer(name: string, dims: number[], values: Float32Array): onnx.ITensorProto {
  // raw_data is little-endian by the ONNX spec; Float32Array uses the host order, little-endian on every
  // platform onnxruntime-node ships for (x64, arm64).
  const rawData = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  return { name, dims, dataType: FLOAT, rawData };
}

function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } };
}

function convNodes(op: ConvOp, initializers: onnx.ITensorProto[]): onnx.INodeProto[] {
  const weightName = `${op.name}.weight`;
  const biasName = `${op.name}.bias`;
  initializers.push(floatInitializer(weightName, op.shape, op.weight));
  initializers.push(floatInitializer(biasName, [op.shape[0]], op.bias));
  const [, , kh, kw] = op.shape;
  const convOut = op.residual === undefined && !op.relu ? op.output : `${op.name}.conv`;
  const nodes: onnx.INodeProto[] = [{
    opType: "Conv", name: op.name, input: [op.input, weightName, biasName], output: [convOut],
    attribute: [ints("kernel_shape", [kh, kw]), ints("strides", [op.stride, op.stride]),
      ints("pads", [op.pad, op.pad, op.pad, op.pad])],
  }];
  let current = convOut;
  if (op.residual !== undefined) {
    const sum = op.relu ? `${op.name}.add` : op.output;
    nodes.push({ opType: "Add", name: `${op.name}.add`, input: [current, op.residual], output: [sum] });
    current = sum;
  }
  if (op.relu) nodes.push({ opType: "Relu", name: `${op.name}.relu`, input: [current], output: [op.output] });
  return nodes;
}

function opNodes(op: ResNetOp, initializers: onnx.ITensorProto[]): onnx.INodeProto[] {
  switch (op.kind) {
    case "conv":
      return convNodes(op, initializers);
    case "maxpool":
      // ONNX MaxPool pads with -infinity, exactly like PyTorch's MaxPool2d.
      return [{
        opType: "MaxPool", name: op.name, input: [op.input], output: [op.output],
        attribute: [ints("kernel_shape", [op.kernel, op.kernel]), ints("strides", [op.stride, op.stride]),
          ints("pads", [op.pad, op.pad, op.pad, op.pad])],
      }];
    case "globalAvgPool": {
      const pooled = `${op.name}.pooled`;
      return [
        { opType: "GlobalAveragePool", name: op.name, input: [op.input], output: [pooled] },
        { opType: "Flatten", name: `${op.name}.flatten`, input: [pooled], output: [op.output],
          attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
      ];
    }
  }
}

/** Serialises the graph as an ONNX model (opset 13) with input [batch, C, size, size] and output [batch, dim]. */
export function buildOnnxModel(graph: ResNetGraph, inputSize: number): Uint8Array {
  const initializers: onnx.ITensorProto[] = [];
  const nodes = graph.ops.flatMap((op) => opNodes(op, initializers));
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: "cellmorphotem",
    graph: {
      name: "resnet18_features",
      node: nodes,
      initializer: initializers,
      input: [valueInfo(graph.input, [BATCH_DIM, graph.inputChannels, inputSize, inputSize])],
      output: [valueInfo(graph.output, [BATCH_DIM, graph.outputDim])],
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Execution provider and session

export interface OnnxEngineOptions {
  /** Threads inside one op (default os.availableParallelism()). */
  intraOpNumThreads?: number;
  /** "auto" (default) = CUDA when it is built in, a GPU is present and a session starts on it; else CPU. */
  provider?: "auto" | "cpu" | "cuda";
  /**
   * "worker" (default): the session runs in its own worker thread, so the main thread keeps decoding while it
   * computes and two sessions can run at once (see lib/onnxSession.ts); "main": on the calling thread.
   */
  thread?: SessionThread;
  /**
   * Most images per onnxruntime call (default: 16 on the CPU, no limit on CUDA); a larger batch is run in slices.
   * On the CPU the time per image is flat from 8 to 64 images (13.8 ms/image, 1 thread, bench/README.md) while the
   * activation memory grows with the batch: slices of 16 keep ~320 MB less per session, with bit-identical outputs.
   */
  maxSessionBatch?: number;
  log?: Log;
}

/** See OnnxEngineOptions.maxSessionBatch. */
export const CPU_SESSION_BATCH = 16;

/** What decides whether the CUDA execution provider can work on this machine. */
export interface CudaProbe {
  /** onnxruntime-node was built with the CUDA provider (listSupportedBackends names "cuda"). */
  listed: boolean;
  /** The provider's shared library is on disk; onnxruntime-node's install script downloads it separately. */
  libraryInstalled: boolean;
  gpuPresent: boolean;
}

/** Why CUDA should not even be tried, or null when a CUDA session is worth attempting. Pure, for testing. */
export function cudaUnavailableReason(probe: CudaProbe): string | null {
  if (!probe.listed) return "this onnxruntime-node build has no CUDA execution provider";
  if (!probe.libraryInstalled) {
    return "the CUDA provider library is not installed (onnxruntime-node's install script fetches it)";
  }
  if (!probe.gpuPresent) return "no NVIDIA GPU found (/dev/nvidia0, nvidia-smi)";
  return null;
}

function nvidiaGpuPresent(): boolean {
  if (fs.existsSync("/dev/nvidia0")) return true;
  const smi = spawnSync("nvidia-smi", ["-L"], { timeout: 5000, stdio: "ignore" });
  return smi.status === 0;
}

/** onnxruntime-node keeps its native libraries in bin/napi-v6/<platform>/<arch>/ beside dist/. */
function cudaLibraryInstalled(): boolean {
  const binDir = path.join(path.dirname(require.resolve("onnxruntime-node")), "..", "bin", "napi-v6",
    process.platform, process.arch);
  const file = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  return fs.existsSync(path.join(binDir, file));
}

function probeCuda(ort: Ort): CudaProbe {
  const cuda = ort.listSupportedBackends().find((b) => b.name === "cuda");
  const listed = cuda !== undefined;
  // Without the library nothing else matters; skip the GPU probe (it may spawn nvidia-smi).
  const libraryInstalled = listed && (cuda.bundled || cudaLibraryInstalled());
  return { listed, libraryInstalled, gpuPresent: listed && libraryInstalled && nvidiaGpuPresent() };
}

type OpenHost = (provider: Provider) => Promise<SessionHost>;

/**
 * Opens the session on CUDA when asked for or when "auto" finds it usable, else on the CPU. "cuda" fails loudly;
 * "auto" falls back and says why, because a missing GPU library must not stop a CPU-only analysis.
 */
async function openSession(ort: Ort, requested: "auto" | "cpu" | "cuda", threads: number, open: OpenHost, log: Log):
  Promise<{ host: SessionHost; provider: Provider }> {
  const cpu = async (why: string) => {
    const host = await open("cpu");
    log(`onnxruntime: CPU execution provider, ${threads} thread${threads === 1 ? "" : "s"}, on the ${host.thread} ` +
      `thread (${why})`);
    return { host, provider: "cpu" as const };
  };
  if (requested === "cpu") return cpu("requested");
  const unavailable = cudaUnavailableReason(probeCuda(ort));
  if (unavailable !== null) {
    if (requested === "cuda") throw new Error(`onnxruntime: CUDA requested but ${unavailable}`);
    return cpu(unavailable);
  }
  try {
    const host = await open("cuda");
    log(`onnxruntime: CUDA execution provider (${requested === "cuda" ? "requested" : "GPU and CUDA provider found"})`);
    return { host, provider: "cuda" };
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    if (requested === "cuda") throw new Error(`onnxruntime: CUDA session failed: ${why}`);
    return cpu(`CUDA session failed: ${why}`);
  }
}

/** How sessions get opened on the requested thread; a missing worker script falls back to the main thread. */
function hostOpener(ort: Ort, model: Uint8Array, graph: ResNetGraph, threads: number, thread: SessionThread,
  log: Log): OpenHost {
  const spec = (provider: Provider): SessionSpec =>
    ({ model, provider, threads, inputName: graph.input, outputName: graph.output });
  if (thread === "main") return (provider) => openMainThreadSession(ort, spec(provider));
  const script = findWorkerScript();
  if (script === null) {
    log("onnxruntime: worker script dist/lib/onnxSessionWorker.js not found (run `npm run build`); " +
      "running the session on the main thread, which blocks decoding while it computes");
    return (provider) => openMainThreadSession(ort, spec(provider));
  }
  return (provider) => openWorkerSession(script, spec(provider));
}

export class OnnxResNet implements GraphRunner {
  /** Only the graph's shape is kept: its weights (~45 MB) live in the session, not twice in this process. */
  private constructor(
    private readonly host: SessionHost,
    private readonly shape: { inputChannels: number; outputDim: number; output: string },
    readonly inputSize: number,
    readonly backend: Provider,
    private readonly maxSessionBatch: number,
  ) {}

  get device(): "cpu" | "gpu" { return this.backend === "cuda" ? "gpu" : "cpu"; }
  get inputChannels(): number { return this.shape.inputChannels; }
  get outputDim(): number { return this.shape.outputDim; }
  /** The thread the session runs on: "worker" unless asked otherwise or the worker script is missing. */
  get thread(): SessionThread { return this.host.thread; }

  static async create(graph: ResNetGraph, inputSize: number, options: OnnxEngineOptions = {}): Promise<OnnxResNet> {
    const loaded = loadOnnxRuntime();
    if ("error" in loaded) throw new Error(`onnxruntime-node cannot be loaded: ${loaded.error}`);
    const threads = options.intraOpNumThreads ?? os.availableParallelism();
    const counts = [["intraOpNumThreads", threads], ["maxSessionBatch", options.maxSessionBatch ?? 1]] as const;
    for (const [name, value] of counts) {
      if (!Number.isInteger(value) || value < 1) {
        throw new Error(`onnxruntime: ${name} must be a positive integer, got ${value}`);
      }
    }
    const log = options.log ?? (() => undefined);
    const model = buildOnnxModel(graph, inputSize);
    const open = hostOpener(loaded.ort, model, graph, threads, options.thread ?? "worker", log);
    const { host, provider } = await openSession(loaded.ort, options.provider ?? "auto", threads, open, log);
    const { inputChannels, outputDim, output } = graph;
    const maxSessionBatch = options.maxSessionBatch ?? (provider === "cpu" ? CPU_SESSION_BATCH : Infinity);
    return new OnnxResNet(host, { inputChannels, outputDim, output }, inputSize, provider, maxSessionBatch);
  }

  async run(batch: Float32Array, n: number): Promise<Float32Array> {
    checkBatch(this, batch, n);
    if (n <= this.maxSessionBatch) return this.runSlice(batch, n);
    const perImage = batch.length / n;
    const features = new Float32Array(n * this.outputDim);
    for (let start = 0; start < n; start += this.maxSessionBatch) {
      const m = Math.min(this.maxSessionBatch, n - start);
      const slice = await this.runSlice(batch.subarray(start * perImage, (start + m) * perImage), m);
      features.set(slice, start * this.outputDim);
    }
    return features;
  }

  private async runSlice(batch: Float32Array, n: number): Promise<Float32Array> {
    const features = await this.host.run(batch, [n, this.inputChannels, this.inputSize, this.inputSize]);
    if (features.length !== n * this.outputDim) {
      throw new Error(`onnxruntime returned ${features.length} values for "${this.shape.output}", ` +
        `expected float32 [${n}, ${this.outputDim}]`);
    }
    return features;
  }

  dispose(): Promise<void> {
    return this.host.release();
  }
}
