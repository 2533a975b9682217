// Runs a ResNetGraph with TensorFlow.js ops on whatever backend lib/tfjsBackend.ts chose for this process.
// TF.js convolutions are NHWC with HWIO filters, so the graph's NCHW/OIHW data is transposed once at load;
// padding is always explicit because TF.js "same" padding is not PyTorch's symmetric padding.
import type * as tfTypes from "@tensorflow/tfjs";
import { checkBatch } from "./resnet";
import type { ConvOp, GraphRunner, MaxPoolOp, ResNetGraph, ResNetOp } from "./resnet";
import { initTfjs, type TfjsRuntime } from "./tfjsBackend";

type Tf = TfjsRuntime["tf"];
type Log = (msg: string) => void;

export interface TfjsEngineOptions {
  log?: Log;
  /** Force a TF.js backend ("wasm", "cpu", ...); honoured only if TF.js is not yet initialised in this process. */
  backend?: string;
}

interface ConvWeights {
  filter: tfTypes.Tensor4D;
  bias: tfTypes.Tensor1D;
}

function symmetricPadding(pad: number): [[0, 0], [number, number], [number, number], [0, 0]] {
  return [[0, 0], [pad, pad], [pad, pad], [0, 0]];
}

function read4d(values: ReadonlyMap<string, tfTypes.Tensor>, name: string): tfTypes.Tensor4D {
  const value = values.get(name);
  if (value === undefined) throw new Error(`ResNet graph: "${name}" is read before it is computed`);
  if (value.rank !== 4) throw new Error(`ResNet graph: "${name}" has rank ${value.rank}, expected an NHWC map`);
  return value as tfTypes.Tensor4D;
}

function applyConv(tf: Tf, op: ConvOp, w: ConvWeights, x: tfTypes.Tensor4D,
  shortcut: tfTypes.Tensor4D | undefined): tfTypes.Tensor4D {
  const strides: [number, number] = [op.stride, op.stride];
  const pad = symmetricPadding(op.pad);
  if (shortcut === undefined) {
    // Bias and relu fused into the conv kernel where the backend supports it (wasm and native do).
    const activation = op.relu ? "relu" : "linear";
    return tf.fused.conv2d({ x, filter: w.filter, strides, pad, bias: w.bias, activation });
  }
  const sum = tf.add<tfTypes.Tensor4D>(tf.fused.conv2d({ x, filter: w.filter, strides, pad, bias: w.bias }), shortcut);
  return op.relu ? tf.relu(sum) : sum;
}

function applyMaxPool(tf: Tf, op: MaxPoolOp, x: tfTypes.Tensor4D): tfTypes.Tensor4D {
  // PyTorch pads max pooling with -infinity; pad explicitly, then pool without padding.
  const padded = tf.pad(x, symmetricPadding(op.pad), -Infinity);
  return tf.maxPool(padded, [op.kernel, op.kernel], [op.stride, op.stride], "valid");
}

export class TfjsResNet implements GraphRunner {
  private constructor(
    private readonly runtime: TfjsRuntime,
    private readonly graph: ResNetGraph,
    private readonly weights: Map<string, ConvWeights>,
    readonly inputSize: number,
  ) {}

  get backend(): string { return this.runtime.backend; }
  get device(): "cpu" | "gpu" { return this.runtime.device; }
  get inputChannels(): number { return this.graph.inputChannels; }
  get outputDim(): number { return this.graph.outputDim; }

  static async create(graph: ResNetGraph, inputSize: number, options: TfjsEngineOptions = {}): Promise<TfjsResNet> {
    const runtime = await initTfjs(options.log, options.backend);
    const { tf } = runtime;
    // Uploaded once; every run reuses them until dispose().
    const weights = new Map<string, ConvWeights>();
    for (const op of graph.ops) {
      if (op.kind !== "conv") continue;
      weights.set(op.name, tf.tidy(() => ({
        filter: tf.tensor4d(op.weight, op.shape).transpose<tfTypes.Tensor4D>([2, 3, 1, 0]), // OIHW -> HWIO
        bias: tf.tensor1d(op.bias),
      })));
    }
    return new TfjsResNet(runtime, graph, weights, inputSize);
  }

  /** Executes the ops in order; every intermediate lives in the caller's tf.tidy scope. */
  private forward(input: tfTypes.Tensor4D): tfTypes.Tensor2D {
    const values = new Map<string, tfTypes.Tensor>([[this.graph.input, input]]);
    for (const op of this.graph.ops) values.set(op.output, this.apply(op, values));
    const output = values.get(this.graph.output);
    if (output === undefined || output.rank !== 2) {
      throw new Error(`ResNet graph: "${this.graph.output}" is not a [batch, features] output`);
    }
    return output as tfTypes.Tensor2D;
  }

  private apply(op: ResNetOp, values: ReadonlyMap<string, tfTypes.Tensor>): tfTypes.Tensor {
    const { tf } = this.runtime;
    const x = read4d(values, op.input);
    switch (op.kind) {
      case "conv": {
        const w = this.weights.get(op.name);
        if (w === undefined) throw new Error(`ResNet graph: no weights loaded for "${op.name}"`);
        const shortcut = op.residual === undefined ? undefined : read4d(values, op.residual);
        return applyConv(tf, op, w, x, shortcut);
      }
      case "maxpool":
        return applyMaxPool(tf, op, x);
      case "globalAvgPool":
        return tf.mean(x, [1, 2]); // NHWC -> [batch, channels]
    }
  }

  async run(batch: Float32Array, n: number): Promise<Float32Array> {
    checkBatch(this, batch, n);
    const { tf } = this.runtime;
    const features = tf.tidy(() => {
      const nchw = tf.tensor4d(batch, [n, this.graph.inputChannels, this.inputSize, this.inputSize]);
      return this.forward(nchw.transpose<tfTypes.Tensor4D>([0, 2, 3, 1]));
    });
    try {
      return (await features.data()) as Float32Array;
    } finally {
      features.dispose();
    }
  }

  async dispose(): Promise<void> {
    for (const { filter, bias } of this.weights.values()) {
      filter.dispose();
      bias.dispose();
    }
    this.weights.clear();
  }
}
