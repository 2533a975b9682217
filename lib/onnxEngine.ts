// Runs a ResNetGraph with onnxruntime-node: the graph is written as an ONNX model in memory (onnx-proto), so
// no .onnx file or Python exporter is needed, then executed on CUDA when it really works here, else on the CPU.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { onnx } from "onnx-proto";
import { checkBatch } from "./resnet";
import type { ConvOp, GraphRunner, ResNetGraph, ResNetOp } from "./resnet";

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
  log?: Log;
}

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

type Session = import("onnxruntime-node").InferenceSession;

function sessionOptions(provider: "cpu" | "cuda", threads: number): import("onnxruntime-node").InferenceSession.SessionOptions {
  return { executionProviders: [provider], intraOpNumThreads: threads, graphOptimizationLevel: "all" };
}

/**
 * Opens the session on CUDA when asked for or when "auto" finds it usable, else on the CPU. "cuda" fails loudly;
 * "auto" falls back and says why, because a missing GPU library must not stop a CPU-only analysis.
 */
async function openSession(ort: Ort, model: Uint8Array, requested: "auto" | "cpu" | "cuda", threads: number,
  log: Log): Promise<{ session: Session; provider: "cpu" | "cuda" }> {
  const cpu = async (why: string) => {
    log(`onnxruntime: CPU execution provider, ${threads} threads (${why})`);
    return { session: await ort.InferenceSession.create(model, sessionOptions("cpu", threads)), provider: "cpu" as const };
  };
  if (requested === "cpu") return cpu("requested");
  const unavailable = cudaUnavailableReason(probeCuda(ort));
  if (unavailable !== null) {
    if (requested === "cuda") throw new Error(`onnxruntime: CUDA requested but ${unavailable}`);
    return cpu(unavailable);
  }
  try {
    const session = await ort.InferenceSession.create(model, sessionOptions("cuda", threads));
    log(`onnxruntime: CUDA execution provider (${requested === "cuda" ? "requested" : "GPU and CUDA provider found"})`);
    return { session, provider: "cuda" };
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    if (requested === "cuda") throw new Error(`onnxruntime: CUDA session failed: ${why}`);
    return cpu(`CUDA session failed: ${why}`);
  }
}

export class OnnxResNet implements GraphRunner {
  private constructor(
    private readonly ort: Ort,
    private readonly session: Session,
    private readonly graph: ResNetGraph,
    readonly inputSize: number,
    readonly backend: "cpu" | "cuda",
  ) {}

  get device(): "cpu" | "gpu" { return this.backend === "cuda" ? "gpu" : "cpu"; }
  get inputChannels(): number { return this.graph.inputChannels; }
  get outputDim(): number { return this.graph.outputDim; }

  static async create(graph: ResNetGraph, inputSize: number, options: OnnxEngineOptions = {}): Promise<OnnxResNet> {
    const loaded = loadOnnxRuntime();
    if ("error" in loaded) throw new Error(`onnxruntime-node cannot be loaded: ${loaded.error}`);
    const threads = options.intraOpNumThreads ?? os.availableParallelism();
    const { session, provider } = await openSession(loaded.ort, buildOnnxModel(graph, inputSize),
      options.provider ?? "auto", threads, options.log ?? (() => undefined));
    return new OnnxResNet(loaded.ort, session, graph, inputSize, provider);
  }

  async run(batch: Float32Array, n: number): Promise<Float32Array> {
    checkBatch(this, batch, n);
    const dims = [n, this.graph.inputChannels, this.inputSize, this.inputSize];
    const input = new this.ort.Tensor("float32", batch, dims);
    const outputs = await this.session.run({ [this.graph.input]: input });
    const features = outputs[this.graph.output];
    if (!(features.data instanceof Float32Array) || features.data.length !== n * this.graph.outputDim) {
      throw new Error(`onnxruntime returned ${features.type} [${features.dims}] for "${this.graph.output}", ` +
        `expected float32 [${n}, ${this.graph.outputDim}]`);
    }
    return features.data;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
