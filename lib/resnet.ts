// ResNet18 as torchvision's resnet.py builds it (BasicBlock, layers [2, 2, 2, 2], stride-2 1x1 conv + BN
// downsample), turned into ONE engine-neutral list of operations that both the ONNX and the TF.js engines
// execute. Every eval-mode BatchNorm is folded into the conv before it, so an engine only needs
// conv(+bias)(+residual)(+relu), a 3x3/2 max pool and a global average pool.

/** One named tensor in torchvision state_dict layout. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** torchvision state_dict names -> tensors (fc.* and num_batches_tracked may be absent). */
export type TensorMap = ReadonlyMap<string, NamedTensor>;

/** Convolution with its BatchNorm folded in: y = relu?(conv(x, weight) + bias + residual?). */
export interface ConvOp {
  kind: "conv";
  /** torchvision name of the conv, e.g. "layer2.0.downsample.0". */
  name: string;
  input: string;
  output: string;
  /** OIHW, as PyTorch stores it. */
  weight: Float32Array;
  /** [out channels, in channels, kernel h, kernel w]. */
  shape: [number, number, number, number];
  bias: Float32Array;
  stride: number;
  /** Zero padding on every side. */
  pad: number;
  /** Value added after the bias and before the relu (the BasicBlock shortcut), if any. */
  residual?: string;
  relu: boolean;
}

export interface MaxPoolOp {
  kind: "maxpool";
  name: string;
  input: string;
  output: string;
  kernel: number;
  stride: number;
  /** PyTorch padding: the window never sees the pad as a value, only as "-infinity". */
  pad: number;
}

/** Mean over H and W, giving one vector per image (torchvision's avgpool + flatten). */
export interface GlobalAvgPoolOp {
  kind: "globalAvgPool";
  name: string;
  input: string;
  output: string;
}

export type ResNetOp = ConvOp | MaxPoolOp | GlobalAvgPoolOp;

/** A ResNet18 feature extractor: ops in execution order, each reading values produced earlier. */
export interface ResNetGraph {
  input: string;
  output: string;
  inputChannels: 1 | 3;
  /** Length of the output vector. */
  outputDim: number;
  ops: ResNetOp[];
}

export interface ResNetOptions {
  /** 1 = conv1 weights averaged over the RGB axis (the method, grey input); 3 = torchvision's RGB conv1. */
  inputChannels: 1 | 3;
}

/** torchvision's BatchNorm2d default. */
export const BN_EPS = 1e-5;
const STAGE_WIDTHS = [64, 128, 256, 512];
const BLOCKS_PER_STAGE = 2;

/** Reads torchvision tensors by name, failing with the name and shape that is wrong. */
class WeightReader {
  constructor(private readonly tensors: TensorMap) {}

  get(name: string, shape: number[]): Float32Array {
    const tensor = this.tensors.get(name);
    if (tensor === undefined) throw new Error(`ResNet18 weights: missing tensor "${name}"`);
    const same = tensor.shape.length === shape.length && tensor.shape.every((d, i) => d === shape[i]);
    if (!same) {
      throw new Error(`ResNet18 weights: "${name}" has shape [${tensor.shape}], expected [${shape}]`);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== size) {
      throw new Error(`ResNet18 weights: "${name}" holds ${tensor.data.length} values, shape [${shape}] needs ${size}`);
    }
    return tensor.data;
  }
}

/**
 * Folds eval-mode BatchNorm into the conv before it:
 * w' = w * gamma / sqrt(var + eps),  b' = beta - mean * gamma / sqrt(var + eps).
 * Arithmetic in float64, stored as float32, so folding adds no error beyond float32 rounding.
 */
export function foldBatchNorm(
  weight: Float32Array, outChannels: number,
  bn: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array }, eps = BN_EPS,
): { weight: Float32Array; bias: Float32Array } {
  const perChannel = weight.length / outChannels;
  const folded = new Float32Array(weight.length);
  const bias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    const scale = bn.gamma[o] / Math.sqrt(bn.variance[o] + eps);
    for (let k = o * perChannel; k < (o + 1) * perChannel; k++) folded[k] = weight[k] * scale;
    bias[o] = bn.beta[o] - bn.mean[o] * scale;
  }
  return { weight: folded, bias };
}

/** OIHW RGB weights -> OIHW one-channel weights, the mean over I (a grey image seen as R = G = B). */
export function averageInputChannels(weight: Float32Array, shape: [number, number, number, number]): Float32Array {
  const [outChannels, inChannels, kh, kw] = shape;
  const plane = kh * kw;
  const averaged = new Float32Array(outChannels * plane);
  for (let o = 0; o < outChannels; o++) {
    for (let p = 0; p < plane; p++) {
      let sum = 0;
      for (let i = 0; i < inChannels; i++) sum += weight[(o * inChannels + i) * plane + p];
      averaged[o * plane + p] = sum / inChannels;
    }
  }
  return averaged;
}

interface ConvSpec {
  conv: string;
  bn: string;
  input: string;
  output: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  pad: number;
  relu: boolean;
  residual?: string;
}

function foldedConv(reader: WeightReader, spec: ConvSpec): ConvOp {
  const shape: [number, number, number, number] = [spec.outChannels, spec.inChannels, spec.kernel, spec.kernel];
  const bnShape = [spec.outChannels];
  const { weight, bias } = foldBatchNorm(reader.get(`${spec.conv}.weight`, shape), spec.outChannels, {
    gamma: reader.get(`${spec.bn}.weight`, bnShape),
    beta: reader.get(`${spec.bn}.bias`, bnShape),
    mean: reader.get(`${spec.bn}.running_mean`, bnShape),
    variance: reader.get(`${spec.bn}.running_var`, bnShape),
  });
  const op: ConvOp = {
    kind: "conv", name: spec.conv, input: spec.input, output: spec.output, weight, shape, bias,
    stride: spec.stride, pad: spec.pad, relu: spec.relu,
  };
  if (spec.residual !== undefined) op.residual = spec.residual;
  return op;
}

/** conv1 (7x7/2) + bn1 + relu, optionally reduced to one input channel. */
function stem(reader: WeightReader, inputChannels: 1 | 3): ConvOp {
  const rgb = foldedConv(reader, {
    conv: "conv1", bn: "bn1", input: "input", output: "conv1", inChannels: 3, outChannels: 64,
    kernel: 7, stride: 2, pad: 3, relu: true,
  });
  if (inputChannels === 3) return rgb;
  // Averaging after folding equals folding after averaging: the BN scale is per output channel.
  return { ...rgb, weight: averageInputChannels(rgb.weight, rgb.shape), shape: [64, 1, 7, 7] };
}

/** torchvision BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). */
function basicBlock(reader: WeightReader, prefix: string, input: string, inChannels: number,
  outChannels: number, stride: number): ConvOp[] {
  const ops: ConvOp[] = [];
  let shortcut = input;
  if (stride !== 1 || inChannels !== outChannels) {
    shortcut = `${prefix}.downsample`;
    ops.push(foldedConv(reader, {
      conv: `${prefix}.downsample.0`, bn: `${prefix}.downsample.1`, input, output: shortcut,
      inChannels, outChannels, kernel: 1, stride, pad: 0, relu: false,
    }));
  }
  ops.push(foldedConv(reader, {
    conv: `${prefix}.conv1`, bn: `${prefix}.bn1`, input, output: `${prefix}.conv1`,
    inChannels, outChannels, kernel: 3, stride, pad: 1, relu: true,
  }));
  ops.push(foldedConv(reader, {
    conv: `${prefix}.conv2`, bn: `${prefix}.bn2`, input: `${prefix}.conv1`, output: prefix,
    inChannels: outChannels, outChannels, kernel: 3, stride: 1, pad: 1, relu: true, residual: shortcut,
  }));
  return ops;
}

/** Builds the folded ResNet18 feature extractor (fc removed: the output is the 512-d average-pooled vector). */
export function buildResNet18(tensors: TensorMap, options: ResNetOptions): ResNetGraph {
  if (options.inputChannels !== 1 && options.inputChannels !== 3) {
    throw new Error(`ResNet18: inputChannels must be 1 or 3, got ${String(options.inputChannels)}`);
  }
  const reader = new WeightReader(tensors);
  const ops: ResNetOp[] = [stem(reader, options.inputChannels)];
  ops.push({ kind: "maxpool", name: "maxpool", input: "conv1", output: "maxpool", kernel: 3, stride: 2, pad: 1 });
  let current = "maxpool";
  let channels = 64;
  STAGE_WIDTHS.forEach((width, stage) => {
    for (let block = 0; block < BLOCKS_PER_STAGE; block++) {
      const prefix = `layer${stage + 1}.${block}`;
      // The first block of stages 2-4 halves the resolution, as in torchvision's _make_layer.
      const stride = stage > 0 && block === 0 ? 2 : 1;
      ops.push(...basicBlock(reader, prefix, current, channels, width, stride));
      current = prefix;
      channels = width;
    }
  });
  ops.push({ kind: "globalAvgPool", name: "avgpool", input: current, output: "features" });
  return { input: "input", output: "features", inputChannels: options.inputChannels, outputDim: channels, ops };
}

/** What an engine makes of a ResNetGraph: NCHW batches in, one outputDim vector per image out. */
export interface GraphRunner {
  /** Backend or execution provider in use, e.g. "cpu", "cuda", "wasm", "tensorflow". */
  readonly backend: string;
  readonly device: "cpu" | "gpu";
  readonly inputChannels: number;
  readonly inputSize: number;
  readonly outputDim: number;
  /** batch: n * inputChannels * inputSize * inputSize values (NCHW). Returns n * outputDim values, row-major. */
  run(batch: Float32Array, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Rejects a batch whose length does not match n images of the runner's shape, before any engine sees it. */
export function checkBatch(runner: Pick<GraphRunner, "inputChannels" | "inputSize">, batch: Float32Array,
  n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`batch size must be a positive integer, got ${n}`);
  const expected = n * runner.inputChannels * runner.inputSize * runner.inputSize;
  if (batch.length !== expected) {
    throw new Error(`batch of ${n} needs ${expected} values (${n}x${runner.inputChannels}x${runner.inputSize}x` +
      `${runner.inputSize}), got ${batch.length}`);
  }
}
