// Any TensorFlow.js model on disk (layers or graph format) as an Encoder: the embedding is the global average pool
// of one layer's output, by default the input of the model's final classifier, found by walking the graph back from
// the output. The same loaded model also gives the full class output (classify), so the ImageNet proof tests run
// through exactly the code path that produces embeddings.
import type * as tfTypes from "@tensorflow/tfjs";
import type { Encoder, EncoderInfo } from "./encoder";
import { initTfjs, type TfjsRuntime } from "./tfjsBackend";
import { readTfjsModelFiles, type TfjsModelFiles, type TfjsModelFormat } from "./tfjsFileIO";

type Tf = TfjsRuntime["tf"];
type Log = (msg: string) => void;

/** How a 1-channel cell image feeds an RGB network. */
export type GreyMode = "third" | "replicate";

/** Per-channel normalisation applied to [0,1] inputs: (x - mean) / std. One value applies to every channel. */
export interface InputScale {
  mean?: number[];
  std?: number[];
}

export interface TfjsModelOptions {
  /** Side of the square input; defaults to the model's fixed input size. */
  inputSize?: number;
  scale?: InputScale;
  /** Where the chosen backend and feature layer are reported (default: console.log). */
  log?: Log;
  /** Force a TF.js backend ("wasm", "cpu", ...); see lib/tfjsBackend.ts. */
  backend?: string;
}

export interface TfjsEncoderOptions extends TfjsModelOptions {
  grey: GreyMode;
}

/** "tfjs:<path/model.json>[#layer]" split into its parts. */
export interface TfjsSpec {
  modelJsonPath: string;
  layer: string | null;
}

/** A loaded TF.js model, its feature layer chosen. Inputs are NHWC network inputs (already normalised). */
export interface TfjsModel {
  readonly info: EncoderInfo;
  readonly format: TfjsModelFormat;
  /** Layer (layers model) or node (graph model) whose globally average-pooled output is the embedding. */
  readonly featureLayer: string;
  readonly inputSize: number;
  /** Channels the network takes: 1 or 3. */
  readonly channels: 1 | 3;
  readonly dim: number;
  /** Length of the model's output vector (e.g. 1000 ImageNet classes); 0 when the output is not [n, classes]. */
  readonly classes: number;
  /** True when the model already ends in a softmax; otherwise classify() applies one. */
  readonly outputIsProbability: boolean;
  readonly scale: { mean: number[]; std: number[] };
  forward(input: Float32Array, n: number, withOutput: boolean): Promise<ForwardResult>;
  dispose(): void;
}

export interface ForwardResult {
  /** n x dim, row-major. */
  embeddings: Float32Array;
  /** n x classes class probabilities, when asked for and the model has a [n, classes] output. */
  probabilities: Float32Array | null;
}

/** Weights whose origin is known, by TfjsModelFiles.sha256 (model.json bytes, then weight bytes). */
const KNOWN_WEIGHTS: Readonly<Record<string, string>> = {
  // ../shared/weights/darknet-tiny-imagenet (ml5-data-and-models 0612a3e7, see its PROVENANCE.md).
  "f766be97d4c2be383b5cae35200103820ddfd36148dc07e392b7e1d645833567": "Darknet Tiny (ImageNet, ml5) — not the method's ResNet18",
};

const SPEC_PREFIX = "tfjs:";

export function parseTfjsSpec(spec: string): TfjsSpec {
  if (!spec.startsWith(SPEC_PREFIX)) {
    throw new Error(`encoder spec "${spec}" does not start with "${SPEC_PREFIX}" (expected tfjs:<path/model.json>[#layer])`);
  }
  const body = spec.slice(SPEC_PREFIX.length);
  const hash = body.lastIndexOf("#");
  const modelJsonPath = hash < 0 ? body : body.slice(0, hash);
  const layer = hash < 0 ? null : body.slice(hash + 1);
  if (modelJsonPath === "" || layer === "") throw new Error(`encoder spec "${spec}": empty model path or layer name`);
  return { modelJsonPath, layer };
}

// ---------------------------------------------------------------------------------------------------------------
// Input preparation: pure functions on Float32Arrays, so they are checked without TF.js.

/** Per-channel mean/std arrays of length `channels`, validated. */
export function resolveScale(scale: InputScale | undefined, channels: number): { mean: number[]; std: number[] } {
  const expand = (values: number[] | undefined, fallback: number, what: string): number[] => {
    const v = values ?? [fallback];
    if (v.length !== 1 && v.length !== channels) {
      throw new Error(`scale.${what} has ${v.length} values; the network takes ${channels} channel(s)`);
    }
    if (!v.every(Number.isFinite)) throw new Error(`scale.${what} has a non-finite value: ${JSON.stringify(v)}`);
    return Array.from({ length: channels }, (_, c) => v[v.length === 1 ? 0 : c]);
  };
  const mean = expand(scale?.mean, 0, "mean");
  const std = expand(scale?.std, 1, "std");
  if (std.some((s) => s <= 0)) throw new Error(`scale.std must be positive, got ${JSON.stringify(std)}`);
  return { mean, std };
}

/**
 * n grey images NCHW [n,1,S,S] in [0,1] -> NHWC [n,S,S,C] network input. Each channel is the normalised grey value;
 * with "third" it is then divided by 3: for a network whose first layer is a convolution this equals running the
 * grey image through that convolution with its weights averaged over the input channels (the method's conv1 trick).
 */
export function greyToNetworkInput(grey: Float32Array, n: number, size: number, channels: number,
  scale: { mean: number[]; std: number[] }, mode: GreyMode): Float32Array {
  const pixels = size * size;
  if (grey.length !== n * pixels) {
    throw new Error(`grey batch has ${grey.length} values, expected n*1*${size}*${size} = ${n * pixels}`);
  }
  const share = mode === "third" && channels > 1 ? 1 / channels : 1;
  const out = new Float32Array(n * pixels * channels);
  for (let i = 0; i < grey.length; i++) {
    for (let c = 0; c < channels; c++) {
      out[i * channels + c] = ((grey[i] - scale.mean[c]) / scale.std[c]) * share;
    }
  }
  return out;
}

/** n NHWC images in [0,1] (channels last, as the network takes them) -> normalised network input. */
export function normaliseNhwc(images: Float32Array, channels: number, scale: { mean: number[]; std: number[] }): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const c = i % channels;
    out[i] = (images[i] - scale.mean[c]) / scale.std[c];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The two model kinds behind one small interface.

interface Network {
  readonly featureName: string;
  readonly featureFoundAutomatically: boolean;
  readonly outputIsProbability: boolean;
  /** [height, width, channels]; null where the model accepts any size. */
  readonly inputShape: (number | null)[];
  /** NHWC batch -> [feature map or vector, model output when asked]. Call inside tf.tidy. */
  run(x: tfTypes.Tensor4D, withOutput: boolean): tfTypes.Tensor[];
  dispose(): void;
}

const AUTO_HINT = "name the feature layer in the spec as tfjs:<model.json>#<layer>";

// Layers (Keras) models. Between the output and the classifier: pooling, activations and reshapes only.
const LAYER_HEAD = new Set(["GlobalAveragePooling2D", "GlobalMaxPooling2D", "Softmax", "Activation", "Flatten",
  "Reshape", "Dropout"]);
const LAYER_CLASSIFIERS = new Set(["Dense", "Conv2D"]);
// Between the classifier and the feature map it reads: skipped, since global average pooling subsumes them.
const LAYER_POOLING = new Set(["GlobalAveragePooling2D", "Flatten", "Reshape", "Dropout"]);

function soleInboundLayer(layer: tfTypes.layers.Layer): tfTypes.layers.Layer {
  const nodes = layer.inboundNodes;
  if (nodes.length !== 1 || nodes[0].inboundLayers.length !== 1) {
    throw new Error(`cannot walk back through layer "${layer.name}" (${layer.getClassName()}): it does not have ` +
      `exactly one input; ${AUTO_HINT}`);
  }
  return nodes[0].inboundLayers[0];
}

function isSoftmaxLayer(layer: tfTypes.layers.Layer): boolean {
  return layer.getClassName() === "Softmax" || layer.getConfig().activation === "softmax";
}

interface LayersHead {
  /** The first layer that is not a head layer, walking back from the output. */
  reached: tfTypes.layers.Layer;
  isClassifier: boolean;
  softmax: boolean;
}

/** Walks back from the output past the head layers to the classifier (if that is what it reaches). */
function layersHead(model: tfTypes.LayersModel): LayersHead {
  let layer = model.outputs[0].sourceLayer as tfTypes.layers.Layer;
  let softmax = false;
  while (LAYER_HEAD.has(layer.getClassName())) {
    softmax ||= isSoftmaxLayer(layer);
    layer = soleInboundLayer(layer);
  }
  const isClassifier = LAYER_CLASSIFIERS.has(layer.getClassName());
  return { reached: layer, isClassifier, softmax: softmax || (isClassifier && isSoftmaxLayer(layer)) };
}

function defaultLayersFeature(head: LayersHead): tfTypes.layers.Layer {
  const classifier = head.reached;
  if (!head.isClassifier) {
    throw new Error(`cannot find the classifier automatically: walking back from the output past ` +
      `${[...LAYER_HEAD].join("/")} reached layer "${classifier.name}" (${classifier.getClassName()}), not a ` +
      `${[...LAYER_CLASSIFIERS].join(" or ")}; ${AUTO_HINT}`);
  }
  let feature = soleInboundLayer(classifier);
  while (LAYER_POOLING.has(feature.getClassName())) feature = soleInboundLayer(feature);
  if (feature.getClassName() === "InputLayer") {
    throw new Error(`classifier "${classifier.name}" reads the model input directly: there is no feature layer`);
  }
  return feature;
}

function layersNetwork(tf: Tf, model: tfTypes.LayersModel, requested: string | null): Network {
  if (model.inputs.length !== 1) throw new Error(`the model has ${model.inputs.length} inputs; only 1 is supported`);
  const head = layersHead(model);
  const featureLayer = requested === null ? defaultLayersFeature(head) : namedLayer(model, requested);
  const output = featureLayer.output;
  if (Array.isArray(output)) {
    throw new Error(`layer "${featureLayer.name}" (${featureLayer.getClassName()}) has several outputs; choose another`);
  }
  // Sub-models share the loaded layers and weights: disposing the original model releases everything.
  const featuresOnly = tf.model({ inputs: model.inputs, outputs: output });
  const featuresAndOutput = tf.model({ inputs: model.inputs, outputs: [output, model.outputs[0]] });
  return {
    featureName: featureLayer.name,
    featureFoundAutomatically: requested === null,
    outputIsProbability: head.softmax,
    inputShape: model.inputs[0].shape.slice(1),
    run: (x, withOutput) => {
      const result = (withOutput ? featuresAndOutput : featuresOnly).predict(x);
      return Array.isArray(result) ? result : [result];
    },
    dispose: () => model.dispose(),
  };
}

function namedLayer(model: tfTypes.LayersModel, name: string): tfTypes.layers.Layer {
  const layer = model.layers.find((l) => l.name === name);
  if (layer === undefined) {
    throw new Error(`no layer "${name}" in the model; its layers: ${model.layers.map((l) => l.name).join(", ")}`);
  }
  return layer;
}

// Graph (TensorFlow GraphDef) models: the same walk over ops.
interface GraphNode {
  name: string;
  op: string;
  input?: string[];
}
const GRAPH_HEAD = new Set(["Identity", "Softmax", "Reshape", "Squeeze", "Mean", "AvgPool", "BiasAdd", "Add", "AddV2"]);
const GRAPH_CLASSIFIERS = new Set(["MatMul", "_FusedMatMul", "Conv2D", "_FusedConv2D"]);
const GRAPH_POOLING = new Set(["Identity", "Reshape", "Squeeze", "Mean", "AvgPool"]);

/** "name:1" -> "name"; control inputs ("^name") are not data. */
function nodeName(tensorName: string): string {
  const colon = tensorName.lastIndexOf(":");
  return colon < 0 ? tensorName : tensorName.slice(0, colon);
}

function soleDataInput(node: GraphNode, nodes: ReadonlyMap<string, GraphNode>): GraphNode {
  const data = (node.input ?? [])
    .filter((i) => !i.startsWith("^"))
    .map((i) => nodes.get(nodeName(i)))
    .filter((n): n is GraphNode => n !== undefined && n.op !== "Const");
  if (data.length !== 1) {
    throw new Error(`cannot walk back through node "${node.name}" (op ${node.op}): it has ${data.length} ` +
      `non-constant inputs; ${AUTO_HINT}`);
  }
  return data[0];
}

function defaultGraphFeature(output: GraphNode, nodes: ReadonlyMap<string, GraphNode>): GraphNode {
  let node = output;
  while (GRAPH_HEAD.has(node.op)) node = soleDataInput(node, nodes);
  if (!GRAPH_CLASSIFIERS.has(node.op)) {
    throw new Error(`cannot find the classifier automatically: walking back from output node "${output.name}" ` +
      `reached node "${node.name}" with unsupported op ${node.op} (expected one of ` +
      `${[...GRAPH_CLASSIFIERS].join(", ")} past ${[...GRAPH_HEAD].join("/")}); ${AUTO_HINT}`);
  }
  let feature = soleDataInput(node, nodes);
  while (GRAPH_POOLING.has(feature.op)) feature = soleDataInput(feature, nodes);
  if (feature.op === "Placeholder") {
    throw new Error(`classifier node "${node.name}" reads the model input directly: there is no feature node`);
  }
  return feature;
}

function graphHasSoftmax(output: GraphNode, nodes: ReadonlyMap<string, GraphNode>): boolean {
  let node = output;
  while (GRAPH_HEAD.has(node.op)) {
    if (node.op === "Softmax") return true;
    node = soleDataInput(node, nodes);
  }
  return false;
}

function graphNetwork(model: tfTypes.GraphModel, topology: unknown, requested: string | null): Network {
  if (model.inputs.length !== 1) throw new Error(`the model has ${model.inputs.length} inputs; only 1 is supported`);
  const nodeList = (topology as { node: GraphNode[] }).node;
  const nodes = new Map(nodeList.map((n) => [n.name, n]));
  const outputName = nodeName(model.outputNodes[0]);
  const output = nodes.get(outputName);
  if (output === undefined) throw new Error(`output node "${outputName}" is not in the graph`);
  let featureName: string;
  if (requested === null) {
    featureName = defaultGraphFeature(output, nodes).name;
  } else if (nodes.has(nodeName(requested))) {
    featureName = requested;
  } else {
    throw new Error(`no node "${requested}" in the graph`);
  }
  return {
    featureName,
    featureFoundAutomatically: requested === null,
    outputIsProbability: graphHasSoftmax(output, nodes),
    inputShape: (model.inputs[0].shape ?? []).slice(1).map((d) => (d !== undefined && d > 0 ? d : null)),
    run: (x, withOutput) => {
      const result = model.execute(x, withOutput ? [featureName, model.outputNodes[0]] : [featureName]);
      return Array.isArray(result) ? result : [result];
    },
    dispose: () => model.dispose(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Loading.

function globalAveragePool(tf: Tf, features: tfTypes.Tensor, name: string): tfTypes.Tensor2D {
  if (features.rank === 4) return tf.mean(features, [1, 2]) as tfTypes.Tensor2D;
  if (features.rank === 2) return features as tfTypes.Tensor2D;
  throw new Error(`feature layer "${name}" gives shape [${features.shape.join(", ")}]; expected [n, h, w, c] or [n, c]`);
}

async function loadNetwork(tf: Tf, files: TfjsModelFiles, requested: string | null): Promise<Network> {
  // The files are read and checked once; tfjs loads from memory and decodes (quantized) weights itself.
  const handler: tfTypes.io.IOHandler = { load: async () => files.artifacts };
  if (files.format === "layers") return layersNetwork(tf, await tf.loadLayersModel(handler), requested);
  return graphNetwork(await tf.loadGraphModel(handler), files.artifacts.modelTopology, requested);
}

function resolveInputSize(shape: (number | null)[], requested: number | undefined): number {
  const [h, w] = shape;
  const fixed = h !== null && h === w ? h : null;
  if ((h !== null || w !== null) && fixed === null) {
    throw new Error(`the model takes a ${h ?? "any"} x ${w ?? "any"} input; only square inputs are supported`);
  }
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested <= 0) throw new Error(`inputSize must be a positive integer, got ${requested}`);
    if (fixed !== null && fixed !== requested) {
      throw new Error(`inputSize ${requested} requested but the model takes a fixed ${fixed} x ${fixed} input`);
    }
    return requested;
  }
  if (fixed === null) throw new Error(`the model accepts any input size: pass inputSize`);
  return fixed;
}

function inputChannels(shape: (number | null)[]): 1 | 3 {
  const c = shape[2];
  if (c !== 1 && c !== 3) throw new Error(`the model takes ${c ?? "any number of"} input channels; only 1 or 3 are supported`);
  return c;
}

/** Runs NHWC batches through the network: pooled features, plus class probabilities when asked and available. */
function forwardPass(tf: Tf, network: Network, inputSize: number, channels: number, where: string): TfjsModel["forward"] {
  return async (input, n, withOutput) => {
    const expected = n * inputSize * inputSize * channels;
    if (!Number.isInteger(n) || n <= 0 || input.length !== expected) {
      throw new Error(`${where}: batch of ${input.length} values for n=${n}, expected n*${inputSize}*${inputSize}*${channels}`);
    }
    const [embeddings, probabilities] = tf.tidy(() => {
      const x = tf.tensor4d(input, [n, inputSize, inputSize, channels]);
      const [features, output] = network.run(x, withOutput);
      const pooled = globalAveragePool(tf, features, network.featureName);
      // A headless model (output not [n, classes]) still embeds; it just has nothing to classify with.
      if (output === undefined || output.rank !== 2) return [pooled];
      return [pooled, network.outputIsProbability ? output : tf.softmax(output as tfTypes.Tensor2D)];
    });
    try {
      return {
        embeddings: (await embeddings.data()) as Float32Array,
        probabilities: probabilities === undefined ? null : ((await probabilities.data()) as Float32Array),
      };
    } finally {
      tf.dispose([embeddings, probabilities]);
    }
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

/** Loads a TF.js model from "tfjs:<path/model.json>[#layer]" and runs it once to check it and learn its sizes. */
export async function loadTfjsModel(spec: string, opts: TfjsModelOptions = {}): Promise<TfjsModel> {
  const log = opts.log ?? ((msg: string) => console.log(msg));
  const { modelJsonPath, layer } = parseTfjsSpec(spec);
  const runtime = await initTfjs(log, opts.backend);
  const { tf } = runtime;
  const files = readTfjsModelFiles(modelJsonPath);
  const where = files.modelJsonPath;

  let network: Network;
  try {
    network = await loadNetwork(tf, files, layer);
  } catch (err) {
    throw new Error(`${where}: cannot use the ${files.format} model: ${firstLine(err)}`);
  }
  try {
    const inputSize = resolveInputSize(network.inputShape, opts.inputSize);
    const channels = inputChannels(network.inputShape);
    const scale = resolveScale(opts.scale, channels);

    const forward = forwardPass(tf, network, inputSize, channels, where);

    // One pass on a blank image: unsupported ops surface here (tfjs only reports them when run), and it tells
    // the embedding and output lengths whatever the model format.
    let probe: ForwardResult;
    try {
      probe = await forward(new Float32Array(inputSize * inputSize * channels), 1, true);
    } catch (err) {
      throw new Error(`cannot run the model: ${firstLine(err)}`);
    }
    const dim = probe.embeddings.length;
    const classes = probe.probabilities?.length ?? 0;
    log(`${spec}: embedding = global average pool of "${network.featureName}" (${dim}-d)` +
      (network.featureFoundAutomatically ? ", found automatically as the input of the final classifier" : "") +
      (classes === 0 ? "; no [n, classes] output"
        : `; output ${classes}-way${network.outputIsProbability ? " (ends in softmax)" : " (softmax applied by classify)"}`));

    const info: EncoderInfo = {
      encoder: spec,
      engine: "tfjs",
      backend: runtime.backend,
      device: runtime.device,
      weights: {
        label: KNOWN_WEIGHTS[files.sha256] ?? `TF.js model ${where} — not the method's ResNet18`,
        sha256: files.sha256,
        verified: false,
      },
    };
    return {
      info, format: files.format, featureLayer: network.featureName, inputSize, channels, dim, classes,
      outputIsProbability: network.outputIsProbability, scale, forward, dispose: () => network.dispose(),
    };
  } catch (err) {
    network.dispose();
    throw new Error(`${where}: ${firstLine(err)}`);
  }
}

/** Class probabilities for n NHWC images in [0,1] with the model's channel count (e.g. RGB): n x classes. */
export async function classify(model: TfjsModel, images: Float32Array, n: number): Promise<Float32Array> {
  const { probabilities } = await model.forward(normaliseNhwc(images, model.channels, model.scale), n, true);
  if (probabilities === null) throw new Error(`${model.info.encoder}: the model has no [n, classes] output to classify with`);
  return probabilities;
}

/** The Encoder over a loaded model: grey NCHW cells in, globally average-pooled features out. */
export function tfjsEncoder(model: TfjsModel, grey: GreyMode): Encoder {
  return {
    info: model.info,
    inputSize: model.inputSize,
    dim: model.dim,
    embed: async (batch: Float32Array, n: number) => {
      const input = greyToNetworkInput(batch, n, model.inputSize, model.channels, model.scale, grey);
      return (await model.forward(input, n, false)).embeddings;
    },
    dispose: async () => model.dispose(),
  };
}

/** Loads "tfjs:<path/model.json>[#layer]" as an Encoder (see loadTfjsModel and tfjsEncoder). */
export async function loadTfjsEncoder(spec: string, opts: TfjsEncoderOptions): Promise<Encoder> {
  return tfjsEncoder(await loadTfjsModel(spec, opts), opts.grey);
}
