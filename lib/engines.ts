// createEncoder: the method's ResNet18 behind the Encoder interface, on the onnxruntime or the TF.js engine.
// Both engines execute the same folded graph from lib/resnet.ts, so the choice changes speed, not numbers.
import * as os from "node:os";
import type { Encoder, EncoderInfo } from "./encoder";
import { buildResNet18, type GraphRunner } from "./resnet";
import { loadOnnxRuntime, OnnxResNet, type OnnxEngineOptions } from "./onnxEngine";
import { TfjsResNet } from "./tfjsEngine";
import type { ResNetWeights } from "./weights";

export const ENGINE_NAMES = ["auto", "onnx", "tfjs"] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** torchvision's ImageNet ResNet18 input side; the method resizes every cell to it. */
export const RESNET_INPUT_SIZE = 224;

/** The method's two encoders (actin, nucleus) run at the same time: lib/embedding.ts embedPairs. */
export const CONCURRENT_ENCODERS = 2;

/**
 * Default onnxruntime threads per encoder: the cores shared between the encoders that run at once. Measured on 2
 * cores (bench/README.md): two 1-thread sessions side by side are the fastest layout on a quiet machine and spend
 * the least CPU (no synchronisation inside an op); with another process busy, both channels at once finish ~25 %
 * sooner than one 2-thread session per channel in turn.
 */
export function defaultOnnxThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / CONCURRENT_ENCODERS));
}

type Log = (msg: string) => void;

export interface CreateEncoderOptions {
  /** "auto" = onnx when onnxruntime-node loads (~10x faster than tfjs-wasm on 2 cores, bench/README.md), else tfjs. */
  engine: EngineName;
  weights: ResNetWeights;
  /** Where the engine choice is reported (default: stderr, so piped stdout stays clean). */
  log?: Log;
  /** onnx engine only: execution provider, thread count (default defaultOnnxThreads()), worker or main thread. */
  onnx?: Omit<OnnxEngineOptions, "log">;
  /** tfjs engine only: force a TF.js backend, e.g. "wasm" (see lib/tfjsBackend.ts). */
  tfjsBackend?: string;
}

/** Resolves "auto" and rejects unknown names; returns the engine and the reason it was picked. */
export function resolveEngine(engine: string): { engine: "onnx" | "tfjs"; reason: string } {
  if (engine === "onnx" || engine === "tfjs") return { engine, reason: "requested" };
  if (engine !== "auto") {
    throw new Error(`unknown encoder engine "${engine}"; valid engines: ${ENGINE_NAMES.join(", ")}`);
  }
  const loaded = loadOnnxRuntime();
  if ("ort" in loaded) return { engine: "onnx", reason: "auto: onnxruntime-node loads" };
  return { engine: "tfjs", reason: `auto: onnxruntime-node unavailable (${loaded.error})` };
}

/** Adapts an engine's graph runner (one grey channel in) to the project's Encoder interface. */
class ResNetEncoder implements Encoder {
  readonly inputSize: number;
  readonly dim: number;

  constructor(private readonly runner: GraphRunner, readonly info: EncoderInfo) {
    this.inputSize = runner.inputSize;
    this.dim = runner.outputDim;
  }

  embed(batch: Float32Array, n: number): Promise<Float32Array> {
    return this.runner.run(batch, n);
  }

  dispose(): Promise<void> {
    return this.runner.dispose();
  }
}

export async function createEncoder(options: CreateEncoderOptions): Promise<Encoder> {
  const log = options.log ?? ((msg: string) => console.error(msg));
  const { engine, reason } = resolveEngine(options.engine);
  // The method feeds grey cells: conv1's RGB weights are averaged into one input channel.
  const graph = buildResNet18(options.weights.tensors, { inputChannels: 1 });
  const runner: GraphRunner = engine === "onnx"
    ? await OnnxResNet.create(graph, RESNET_INPUT_SIZE,
      { intraOpNumThreads: defaultOnnxThreads(), ...options.onnx, log })
    : await TfjsResNet.create(graph, RESNET_INPUT_SIZE, { backend: options.tfjsBackend, log });
  log(`encoder resnet18: engine ${engine} (${reason}), backend ${runner.backend}, device ${runner.device}, ` +
    `weights ${options.weights.provenance.label}`);
  return new ResNetEncoder(runner, {
    encoder: "resnet18",
    engine,
    backend: runner.backend,
    device: runner.device,
    weights: options.weights.provenance,
  });
}
