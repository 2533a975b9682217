// The ONE place that turns an encoder spec into an Encoder: "resnet18" (the method's backbone, on the onnxruntime
// or the TF.js engine) or "tfjs:<path/model.json>[#layer]" (any TF.js model, TF.js engine only). Every caller (the
// score pipeline, the CLI, the backbone comparison, the notebook) goes through openBackbone, so a spec means the
// same network, fed the same way, everywhere; and the way a grey cell is fed is recorded in EncoderInfo.input.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Encoder } from "./encoder";
import { createEncoder, ENGINE_NAMES, type EngineName } from "./engines";
import { projectRoot } from "./paths";
import type { DualEncoders } from "./pipeline";
import { loadTfjsModel, parseTfjsSpec, tfjsEncoder, type GreyMode, type TfjsSpec } from "./tfjsModel";
import { defaultWeightsDir, loadWeights, WEIGHTS_MANIFEST } from "./weights";

type Log = (msg: string) => void;

export const RESNET18_SPEC = "resnet18";
const SPEC_FORMS = `"${RESNET18_SPEC}" or "tfjs:<path/model.json>[#layer]"`;

/** The shared ImageNet-trained TF.js model, relative to the folder that holds the project. */
const DARKNET_TINY_FROM_PARENT = ["shared", "weights", "darknet-tiny-imagenet", "model.json"];

export type BackboneSpec = { kind: "resnet18" } | { kind: "tfjs"; tfjs: TfjsSpec };

export interface BackboneOptions {
  /** "auto" (default): onnx for resnet18 when onnxruntime-node loads, else tfjs; TF.js models always run on tfjs. */
  engine?: EngineName;
  /** resnet18 only: folder holding resnet18.{json,bin} (default <project>/weights). */
  weightsDir?: string;
  /**
   * How a grey cell feeds a 3-channel TF.js model: "third" (default; grey/3 in each channel, which equals the
   * method's conv1 averaged over RGB) or "replicate" (grey in each channel). ResNet18 takes "third" only.
   */
  grey?: GreyMode;
  /** Force a TF.js backend ("wasm", "cpu", ...); see lib/tfjsBackend.ts. */
  tfjsBackend?: string;
  log?: Log;
}

/** Splits a spec into its kind, or says which forms are valid. */
export function parseBackboneSpec(spec: string): BackboneSpec {
  if (spec === RESNET18_SPEC) return { kind: "resnet18" };
  if (spec.startsWith("tfjs:")) return { kind: "tfjs", tfjs: parseTfjsSpec(spec) };
  throw new Error(`unknown encoder "${spec}"; valid encoders: ${SPEC_FORMS}`);
}

/**
 * The input descriptor stored in EncoderInfo.input: channels the network sees, and the per-channel normalisation
 * of the [0,1] grey value. "grey/3 x3" is the method's convention: conv1's RGB weights averaged, i.e. grey/3 fed to
 * each of the three channels of the unmodified convolution.
 */
export function describeInput(channels: number, grey: GreyMode, scale?: { mean: number[]; std: number[] }): string {
  const feed = channels === 1 ? "grey" : `${grey === "third" ? "grey/3" : "grey"} x${channels}`;
  const identity = scale === undefined || (scale.mean.every((m) => m === 0) && scale.std.every((s) => s === 1));
  const normalisation = identity ? "[0,1]" : `(x-[${scale.mean.join(",")}])/[${scale.std.join(",")}]`;
  return `${feed}, ${normalisation}`;
}

/** The same encoder, its info stamped with the input descriptor. */
function withInputDescriptor(encoder: Encoder, input: string): Encoder {
  return {
    info: { ...encoder.info, input },
    inputSize: encoder.inputSize,
    dim: encoder.dim,
    embed: (batch, n) => encoder.embed(batch, n),
    dispose: () => encoder.dispose(),
  };
}

async function openResNet18(opts: BackboneOptions): Promise<Encoder> {
  if (opts.grey !== undefined && opts.grey !== "third") {
    throw new Error(`encoder ${RESNET18_SPEC}: grey mode "${opts.grey}" is not available; the method's ResNet18 ` +
      `averages conv1 over RGB (grey mode "third"). Other grey modes apply to TF.js models only`);
  }
  const weights = loadWeights(opts.weightsDir);
  const encoder = await createEncoder({
    engine: opts.engine ?? "auto", weights, log: opts.log, tfjsBackend: opts.tfjsBackend,
  });
  return withInputDescriptor(encoder, describeInput(3, "third"));
}

async function openTfjs(spec: string, opts: BackboneOptions): Promise<Encoder> {
  const engine = opts.engine ?? "auto";
  if (engine !== "auto" && engine !== "tfjs") {
    throw new Error(`encoder ${spec}: a TF.js model runs on the tfjs engine only, not on "${engine}"; ` +
      `use engine "tfjs" or "auto"`);
  }
  const grey = opts.grey ?? "third";
  const model = await loadTfjsModel(spec, { log: opts.log, backend: opts.tfjsBackend });
  return withInputDescriptor(tfjsEncoder(model, grey), describeInput(model.channels, grey, model.scale));
}

/** Opens the encoder a spec names (see the header); throws a clear Error for an unknown spec or a bad combination. */
export async function openBackbone(spec: string, opts: BackboneOptions = {}): Promise<Encoder> {
  const parsed = parseBackboneSpec(spec);
  // Checked before any file is read: a misspelt engine is reported as such, not as a weights or model problem.
  if (opts.engine !== undefined && !(ENGINE_NAMES as readonly string[]).includes(opts.engine)) {
    throw new Error(`unknown encoder engine "${opts.engine}"; valid engines: ${ENGINE_NAMES.join(", ")}`);
  }
  return parsed.kind === "resnet18" ? openResNet18(opts) : openTfjs(spec, opts);
}

/**
 * Two independent encoders of one spec, one per channel, as the method prescribes (see lib/pipeline.ts
 * openEncoders). If the second fails to open, the first is released.
 */
export async function openBackbonePair(spec: string, opts: BackboneOptions = {}): Promise<DualEncoders> {
  const actin = await openBackbone(spec, opts);
  try {
    return { actin, nucleus: await openBackbone(spec, opts) };
  } catch (err) {
    await actin.dispose();
    throw err;
  }
}

/** "tfjs:<...>/shared/weights/darknet-tiny-imagenet/model.json" for the project at `root`. */
export function sharedDarknetTinySpec(root: string = projectRoot()): string {
  return `tfjs:${path.join(root, "..", ...DARKNET_TINY_FROM_PARENT)}`;
}

export interface DefaultBackbone {
  spec: string;
  /** True only for resnet18 with torchvision's verified ImageNet weights: the method's encoder. */
  methodEncoder: boolean;
  /** Why this encoder was chosen, naming what it is when it is not the method's ResNet18. */
  reason: string;
}

/** Why the weights folder does not hold the verified ImageNet ResNet18, or null when it does. */
function unverifiedReason(weightsDir: string): string | null {
  const manifest = path.join(weightsDir, WEIGHTS_MANIFEST);
  try {
    const weights = loadWeights(weightsDir);
    const { verified, label } = weights.provenance;
    return verified ? null : `${manifest} holds ${label}, not verified ImageNet weights`;
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

/**
 * The encoder validation runs should use: resnet18 when weights/resnet18.json holds torchvision's verified ImageNet
 * weights; else the shared ImageNet-trained Darknet Tiny when present (genuine pretrained features, though not the
 * method's network); else resnet18 with whatever unverified weights there are (random features, at best).
 */
export function defaultBackboneForValidation(
  opts: { weightsDir?: string; projectDir?: string } = {},
): DefaultBackbone {
  const weightsDir = opts.weightsDir ?? defaultWeightsDir();
  const noImageNet = unverifiedReason(weightsDir);
  if (noImageNet === null) {
    return {
      spec: RESNET18_SPEC, methodEncoder: true,
      reason: `${weightsDir} holds torchvision's verified ImageNet ResNet18: the method's encoder`,
    };
  }
  const darknet = sharedDarknetTinySpec(opts.projectDir);
  const darknetJson = parseTfjsSpec(darknet).modelJsonPath;
  if (fs.existsSync(darknetJson)) {
    return {
      spec: darknet, methodEncoder: false,
      reason: `no verified ImageNet ResNet18 (${noImageNet}); using the shared ImageNet-trained Darknet Tiny ` +
        `(${darknetJson}), which is NOT the method's ResNet18`,
    };
  }
  return {
    spec: RESNET18_SPEC, methodEncoder: false,
    reason: `no verified ImageNet ResNet18 (${noImageNet}) and no Darknet Tiny at ${darknetJson}: using resnet18 ` +
      "with UNVERIFIED weights, NOT the method's encoder",
  };
}
