// lib/tfjsFileIO.ts and lib/tfjsModel.ts: reading TF.js models from disk, choosing the feature layer, grey input,
// and the shared ImageNet-trained Darknet Tiny checked against an independent PyTorch re-implementation
// (scripts/reference/darknet_reference.py -> test/fixtures/tfjsmodel/).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import type * as tfTypes from "@tensorflow/tfjs";
import { initTfjs } from "../lib/tfjsBackend";
import { fileSystemHandler, readTfjsModelFiles } from "../lib/tfjsFileIO";
import {
  classify, greyToNetworkInput, loadTfjsEncoder, loadTfjsModel, parseTfjsSpec, resolveScale, tfjsEncoder,
  type TfjsModel,
} from "../lib/tfjsModel";
import { DARKNET_TINY, FIXTURES, requireFile } from "./paths";

type Tf = typeof tfTypes;
const quiet = (): void => undefined;

function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "tfjsmodel-test-"));
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value));
}

/** Saves a layers model as model.json + one shard, the layout tfjs's converter writes. */
async function saveLayersModel(model: tfTypes.LayersModel, dir: string, tf: Tf): Promise<string> {
  const modelJson = path.join(dir, "model.json");
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData as ArrayBuffer;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "weights.bin"), new Uint8Array(data));
    writeJson(modelJson, {
      format: "layers-model", modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
    });
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
  return modelJson;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function softmax(logits: number[]): number[] {
  const top = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Closed form of a 1x1 convolution (weights [c][k]) with optional relu, then the mean over pixels. */
function convGapExpected(nhwc: ArrayLike<number>, pixels: number, channels: number, w: number[][], relu: boolean): number[] {
  const out = new Array<number>(w[0].length).fill(0);
  for (let p = 0; p < pixels; p++) {
    for (let k = 0; k < out.length; k++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += nhwc[p * channels + c] * w[c][k];
      out[k] += (relu ? Math.max(s, 0) : s) / pixels;
    }
  }
  return out;
}

// float32 arithmetic on O(1) values through a handful of ops: a few ulps of 1, far below 1e-5.
const SMALL_MODEL_TOL = 1e-5;

describe("tfjsFileIO: fileSystemHandler", function () {
  let tf: Tf;
  let dir: string;

  // Two Dense layers whose weights are stored quantized three ways; values chosen so the decoded floats are exact.
  const D1_KERNEL_Q = [0, 1, 2, 3, 4, 255]; // uint8, scale 0.5, min -1
  const D1_BIAS_F16 = [0x3800, 0xbd00]; // float16 bit patterns of 0.5 and -1.25
  const D2_KERNEL_Q = [0, 8, 65535, 3]; // uint16, scale 0.25, min -2
  const D2_BIAS = [1.5, -3]; // plain float32

  function writeQuantizedModel(target: string, topology: unknown): string {
    const group1 = Buffer.alloc(6 + 4);
    D1_KERNEL_Q.forEach((q, i) => group1.writeUInt8(q, i));
    D1_BIAS_F16.forEach((h, i) => group1.writeUInt16LE(h, 6 + 2 * i));
    const group2 = Buffer.alloc(8 + 8);
    D2_KERNEL_Q.forEach((q, i) => group2.writeUInt16LE(q, 2 * i));
    D2_BIAS.forEach((v, i) => group2.writeFloatLE(v, 8 + 4 * i));
    fs.mkdirSync(target, { recursive: true });
    // Group 1 split across two shards mid-weight: the handler must join them in the listed order.
    fs.writeFileSync(path.join(target, "group1-shard1of2"), group1.subarray(0, 7));
    fs.writeFileSync(path.join(target, "group1-shard2of2"), group1.subarray(7));
    fs.writeFileSync(path.join(target, "group2-shard1of1"), group2);
    const modelJson = path.join(target, "model.json");
    writeJson(modelJson, {
      format: "layers-model", modelTopology: topology,
      weightsManifest: [
        {
          paths: ["group1-shard1of2", "group1-shard2of2"], weights: [
            { name: "d1/kernel", shape: [3, 2], dtype: "float32", quantization: { dtype: "uint8", scale: 0.5, min: -1 } },
            { name: "d1/bias", shape: [2], dtype: "float32", quantization: { dtype: "float16" } },
          ],
        },
        {
          paths: ["group2-shard1of1"], weights: [
            { name: "d2/kernel", shape: [2, 2], dtype: "float32", quantization: { dtype: "uint16", scale: 0.25, min: -2 } },
            { name: "d2/bias", shape: [2], dtype: "float32" },
          ],
        },
      ],
    });
    return modelJson;
  }

  let topology: unknown;
  let good: string;

  before(async function () {
    ({ tf } = await initTfjs(quiet));
    dir = makeTempDir();
    const model = tf.sequential({
      layers: [tf.layers.dense({ units: 2, inputShape: [3], name: "d1" }), tf.layers.dense({ units: 2, name: "d2" })],
    });
    topology = model.toJSON(null, false);
    model.dispose();
    good = writeQuantizedModel(path.join(dir, "good"), topology);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("loads a layers model whose uint8, uint16 and float16 weights tfjs decodes to the closed-form values", async function () {
    const model = await tf.loadLayersModel(fileSystemHandler(good));
    try {
      const values = model.getWeights().map((w) => Array.from(w.dataSync()));
      assert.deepEqual(values, [
        D1_KERNEL_Q.map((q) => q * 0.5 - 1),
        [0.5, -1.25],
        D2_KERNEL_Q.map((q) => q * 0.25 - 2),
        D2_BIAS,
      ]);
    } finally {
      model.dispose();
    }
  });

  it("concatenates the shards in manifest order and fingerprints model.json + weights", function () {
    const files = readTfjsModelFiles(good);
    assert.equal(files.format, "layers");
    const data = new Uint8Array(files.artifacts.weightData as ArrayBuffer);
    assert.equal(data.byteLength, 10 + 16);
    assert.deepEqual(Array.from(data.subarray(0, 6)), D1_KERNEL_Q);
    assert.equal(files.artifacts.weightSpecs?.length, 4);
    assert.match(files.sha256, /^[0-9a-f]{64}$/);
  });

  async function loadError(modelJson: string): Promise<string> {
    const handler = fileSystemHandler(modelJson);
    try {
      await handler.load!();
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error(`expected loading ${modelJson} to fail`);
  }

  function variant(name: string, edit: (folder: string) => void): string {
    const modelJson = writeQuantizedModel(path.join(dir, name), topology);
    edit(path.dirname(modelJson));
    return modelJson;
  }

  it("names model.json when it is missing", async function () {
    const missing = path.join(dir, "nowhere", "model.json");
    const message = await loadError(missing);
    assert.ok(message.includes(missing) && message.includes("not found"), message);
  });

  it("names model.json when it is not JSON", async function () {
    const bad = variant("badjson", (f) => fs.writeFileSync(path.join(f, "model.json"), "{ not json"));
    const message = await loadError(bad);
    assert.ok(message.includes(bad) && message.includes("not readable JSON"), message);
  });

  it("rejects a topology that is neither a layers nor a graph model", async function () {
    const bad = variant("badformat", (f) => writeJson(path.join(f, "model.json"), { modelTopology: { foo: 1 } }));
    const message = await loadError(bad);
    assert.ok(message.includes(bad) && message.includes("unsupported format"), message);
  });

  it("names a missing shard", async function () {
    const bad = variant("noshard", (f) => fs.rmSync(path.join(f, "group1-shard2of2")));
    const message = await loadError(bad);
    assert.ok(message.includes("missing weight shard") && message.includes("group1-shard2of2"), message);
  });

  it("reports a shard byte count that does not match the manifest", async function () {
    const bad = variant("short", (f) => fs.writeFileSync(path.join(f, "group1-shard2of2"), Buffer.alloc(2)));
    const message = await loadError(bad);
    assert.ok(message.includes(bad) && message.includes("holds 9 bytes") && message.includes("need 10"), message);
  });

  it("names a weight with an unsupported quantization dtype", async function () {
    const bad = variant("int4", (f) => {
      const file = path.join(f, "model.json");
      const json = JSON.parse(fs.readFileSync(file, "utf8"));
      json.weightsManifest[1].weights[0].quantization.dtype = "int4";
      writeJson(file, json);
    });
    const message = await loadError(bad);
    assert.ok(message.includes('"d2/kernel"') && message.includes("int4"), message);
  });
});

describe("tfjsModel: input preparation", function () {
  it("parses tfjs:<model.json>[#layer]", function () {
    assert.deepEqual(parseTfjsSpec("tfjs:a/b/model.json"), { modelJsonPath: "a/b/model.json", layer: null });
    assert.deepEqual(parseTfjsSpec("tfjs:a/model.json#conv_5"), { modelJsonPath: "a/model.json", layer: "conv_5" });
    assert.throws(() => parseTfjsSpec("resnet18"), /does not start with "tfjs:"/);
    assert.throws(() => parseTfjsSpec("tfjs:model.json#"), /empty/);
  });

  it("maps grey NCHW to NHWC: each channel the normalised grey, divided by the channel count for 'third'", function () {
    const grey = Float32Array.from([0, 0.5, 1, 0.25]); // n=1, 2x2
    const scale = resolveScale({ mean: [0.5, 0, 0.25], std: [0.5, 1, 0.25] }, 3);
    const replicate = greyToNetworkInput(grey, 1, 2, 3, scale, "replicate");
    const third = greyToNetworkInput(grey, 1, 2, 3, scale, "third");
    const expected = [-1, 0, -1, 0, 0.5, 1, 1, 1, 3, -0.5, 0.25, 0]; // (g - mean_c) / std_c, pixel by pixel
    assert.ok(maxAbsDiff(replicate, expected) < 1e-7);
    assert.ok(maxAbsDiff(third, expected.map((v) => v / 3)) < 1e-7);
    assert.throws(() => greyToNetworkInput(grey, 2, 2, 3, scale, "third"), /expected n\*1\*2\*2 = 8/);
  });

  it("rejects a scale that does not fit the channels or divides by zero", function () {
    assert.deepEqual(resolveScale(undefined, 3), { mean: [0, 0, 0], std: [1, 1, 1] });
    assert.throws(() => resolveScale({ mean: [0, 0] }, 3), /scale.mean has 2 values/);
    assert.throws(() => resolveScale({ std: [0] }, 3), /must be positive/);
  });
});

describe("tfjsModel: small hand-made models (closed form)", function () {
  let tf: Tf;
  let dir: string;
  // 1x1 convolution weights [input channel][filter] and the Dense classifier of the small layers model.
  const CONV_W = [[0.5, -1], [1, 0.25], [-0.5, 2]];
  const DENSE_W = [[1, -1, 0.5], [0.25, 2, -1]];
  const DENSE_B = [0.1, -0.2, 0.3];
  const SIZE = 4;
  const grey = Float32Array.from({ length: SIZE * SIZE }, (_, i) => ((i * 7) % 16) / 15);

  let layersJson: string;
  let graphJson: string;
  let headlessJson: string;

  before(async function () {
    ({ tf } = await initTfjs(quiet));
    dir = makeTempDir();

    const input = tf.input({ shape: [SIZE, SIZE, 3] });
    const features = tf.layers.conv2d({ filters: 2, kernelSize: 1, useBias: false, activation: "relu", name: "features" });
    const pooled = tf.layers.globalAveragePooling2d({ name: "gap" });
    const classifier = tf.layers.dense({ units: 3, activation: "softmax", name: "classifier" });
    const convOut = features.apply(input) as tfTypes.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: classifier.apply(pooled.apply(convOut)) as tfTypes.SymbolicTensor });
    features.setWeights([tf.tensor4d(CONV_W.flat(), [1, 1, 3, 2])]);
    classifier.setWeights([tf.tensor2d(DENSE_W), tf.tensor1d(DENSE_B)]);
    layersJson = await saveLayersModel(model, path.join(dir, "layers"), tf);
    // Ends in batch normalisation: nothing to recognise as a classifier.
    const norm = tf.layers.batchNormalization({ name: "norm" });
    const headless = tf.model({ inputs: input, outputs: norm.apply(convOut) as tfTypes.SymbolicTensor });
    headlessJson = await saveLayersModel(headless, path.join(dir, "headless"), tf);
    model.dispose();

    graphJson = writeGraphModel(path.join(dir, "graph"), "Relu");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A TF GraphDef as the tfjs converter writes it: conv 1x1 -> activation -> mean -> matmul -> bias (logits). */
  function writeGraphModel(folder: string, activationOp: string): string {
    const f32 = { type: "DT_FLOAT" };
    const dims = (...d: number[]) => ({ dim: d.map((size) => ({ size: String(size) })) });
    const constant = (name: string, dtype: string, ...shape: number[]) => ({
      name, op: "Const", attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: dims(...shape) } } },
    });
    const nhwc = { s: Buffer.from("NHWC").toString("base64") };
    const nodes = [
      { name: "image", op: "Placeholder", attr: { dtype: f32, shape: { shape: dims(-1, SIZE, SIZE, 3) } } },
      constant("conv/w", "DT_FLOAT", 1, 1, 3, 2),
      {
        name: "conv", op: "Conv2D", input: ["image", "conv/w"], attr: {
          T: f32, data_format: nhwc, padding: { s: Buffer.from("VALID").toString("base64") },
          strides: { list: { i: ["1", "1", "1", "1"] } }, dilations: { list: { i: ["1", "1", "1", "1"] } },
        },
      },
      { name: "act", op: activationOp, input: ["conv"], attr: { T: f32 } },
      constant("axes", "DT_INT32", 2),
      { name: "gap", op: "Mean", input: ["act", "axes"], attr: { T: f32, keep_dims: { b: false } } },
      constant("fc/w", "DT_FLOAT", 2, 3),
      { name: "fc", op: "MatMul", input: ["gap", "fc/w"], attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } } },
      constant("fc/b", "DT_FLOAT", 3),
      { name: "logits", op: "BiasAdd", input: ["fc", "fc/b"], attr: { T: f32, data_format: nhwc } },
    ];
    const values = [...CONV_W.flat(), ...DENSE_W.flat(), ...DENSE_B];
    const floats = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => floats.writeFloatLE(v, 4 * i));
    const axes = Buffer.alloc(8);
    axes.writeInt32LE(1, 0);
    axes.writeInt32LE(2, 4);
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, "weights.bin"),
      Buffer.concat([floats.subarray(0, 24), axes, floats.subarray(24)]));
    const modelJson = path.join(folder, "model.json");
    writeJson(modelJson, {
      format: "graph-model", generatedBy: "test/tfjsModel.test.ts",
      modelTopology: { node: nodes, library: {}, versions: {} },
      weightsManifest: [{
        paths: ["weights.bin"], weights: [
          { name: "conv/w", shape: [1, 1, 3, 2], dtype: "float32" },
          { name: "axes", shape: [2], dtype: "int32" },
          { name: "fc/w", shape: [2, 3], dtype: "float32" },
          { name: "fc/b", shape: [3], dtype: "float32" },
        ],
      }],
    });
    return modelJson;
  }

  function classifierExpected(embedding: number[]): number[] {
    return DENSE_B.map((b, j) => b + embedding.reduce((s, e, k) => s + e * DENSE_W[k][j], 0));
  }

  it("layers model: finds the feature layer behind GAP + Dense, prints it, and embeds grey input both ways", async function () {
    const messages: string[] = [];
    const model = await loadTfjsModel(`tfjs:${layersJson}`, { log: (m) => messages.push(m) });
    try {
      assert.equal(model.featureLayer, "features");
      assert.ok(messages.some((m) => m.includes('"features"') && m.includes("found automatically")), messages.join("\n"));
      assert.equal(model.dim, 2);
      assert.equal(model.inputSize, SIZE);
      for (const mode of ["third", "replicate"] as const) {
        const share = mode === "third" ? 1 / 3 : 1;
        const nhwc = Array.from(grey).flatMap((g) => [g * share, g * share, g * share]);
        const embedding = await tfjsEncoder(model, mode).embed(grey, 1);
        assert.ok(maxAbsDiff(embedding, convGapExpected(nhwc, SIZE * SIZE, 3, CONV_W, true)) < SMALL_MODEL_TOL, mode);
      }
    } finally {
      model.dispose();
    }
  });

  it("layers model ending in softmax: classify returns that softmax, not a second one", async function () {
    const scale = { mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] };
    const model = await loadTfjsModel(`tfjs:${layersJson}`, { log: quiet, scale });
    try {
      assert.equal(model.outputIsProbability, true);
      const rgb = Float32Array.from({ length: SIZE * SIZE * 3 }, (_, i) => ((i * 5) % 17) / 16);
      const normalised = Array.from(rgb, (v, i) => (v - scale.mean[i % 3]) / scale.std[i % 3]);
      const expected = softmax(classifierExpected(convGapExpected(normalised, SIZE * SIZE, 3, CONV_W, true)));
      assert.ok(maxAbsDiff(await classify(model, rgb, 1), expected) < SMALL_MODEL_TOL);
    } finally {
      model.dispose();
    }
  });

  it("graph model: finds the node feeding MatMul behind Mean, and classify applies the missing softmax", async function () {
    assert.equal(readTfjsModelFiles(graphJson).format, "graph");
    const model = await loadTfjsModel(`tfjs:${graphJson}`, { log: quiet });
    try {
      assert.equal(model.format, "graph");
      assert.equal(model.featureLayer, "act");
      assert.equal(model.outputIsProbability, false);
      const rgb = Float32Array.from({ length: 2 * SIZE * SIZE * 3 }, (_, i) => Math.sin(i) * 0.8);
      const pixels = SIZE * SIZE;
      const first = convGapExpected(rgb.subarray(0, pixels * 3), pixels, 3, CONV_W, true);
      const second = convGapExpected(rgb.subarray(pixels * 3), pixels, 3, CONV_W, true);
      const probabilities = await classify(model, rgb, 2);
      const expected = [...softmax(classifierExpected(first)), ...softmax(classifierExpected(second))];
      assert.ok(maxAbsDiff(probabilities, expected) < SMALL_MODEL_TOL);
      const embeddings = await tfjsEncoder(model, "replicate").embed(grey, 1);
      const nhwc = Array.from(grey).flatMap((g) => [g, g, g]);
      assert.ok(maxAbsDiff(embeddings, convGapExpected(nhwc, pixels, 3, CONV_W, true)) < SMALL_MODEL_TOL);
    } finally {
      model.dispose();
    }
  });

  it("uses a layer named in the spec, and names an unknown one", async function () {
    const model = await loadTfjsModel(`tfjs:${layersJson}#gap`, { log: quiet });
    try {
      assert.equal(model.featureLayer, "gap");
      assert.equal(model.dim, 2);
    } finally {
      model.dispose();
    }
    await assert.rejects(loadTfjsModel(`tfjs:${layersJson}#nope`, { log: quiet }), /no layer "nope"/);
    await assert.rejects(loadTfjsModel(`tfjs:${graphJson}#nope`, { log: quiet }), /no node "nope"/);
  });

  it("says when no classifier can be found, and accepts the layer named instead", async function () {
    await assert.rejects(loadTfjsModel(`tfjs:${headlessJson}`, { log: quiet }),
      (err: Error) => err.message.includes(headlessJson) && err.message.includes("cannot find the classifier") &&
        err.message.includes('"norm" (BatchNormalization)') && err.message.includes("#<layer>"));
    const model = await loadTfjsModel(`tfjs:${headlessJson}#features`, { log: quiet });
    try {
      assert.deepEqual([model.featureLayer, model.dim, model.classes], ["features", 2, 0]);
      await assert.rejects(classify(model, new Float32Array(SIZE * SIZE * 3), 1), /no \[n, classes\] output/);
    } finally {
      model.dispose();
    }
  });

  it("names an unsupported layer class and an unsupported graph op", async function () {
    const layersCopy = path.join(dir, "fancy", "model.json");
    fs.cpSync(path.dirname(layersJson), path.dirname(layersCopy), { recursive: true });
    const json = JSON.parse(fs.readFileSync(layersCopy, "utf8"));
    json.modelTopology.config.layers.find((l: { name: string }) => l.name === "gap").class_name = "FancyPooling";
    writeJson(layersCopy, json);
    await assert.rejects(loadTfjsModel(`tfjs:${layersCopy}`, { log: quiet }),
      (err: Error) => err.message.includes(layersCopy) && err.message.includes("FancyPooling"));

    const graphCopy = writeGraphModel(path.join(dir, "graph-unsupported"), "FancyActivation");
    await assert.rejects(loadTfjsModel(`tfjs:${graphCopy}`, { log: quiet }),
      (err: Error) => err.message.includes(graphCopy) && err.message.includes("FancyActivation"));
  });

  it("rejects an input size the model cannot take, and a batch of the wrong length", async function () {
    await assert.rejects(loadTfjsModel(`tfjs:${layersJson}`, { log: quiet, inputSize: 8 }), /fixed 4 x 4 input/);
    const model = await loadTfjsModel(`tfjs:${layersJson}`, { log: quiet });
    try {
      await assert.rejects(tfjsEncoder(model, "third").embed(grey, 2), /expected n\*1\*4\*4 = 32/);
    } finally {
      model.dispose();
    }
  });

  it("frees every tensor it made once disposed", async function () {
    const before = tf.memory().numTensors;
    for (const json of [layersJson, graphJson]) {
      const encoder = await loadTfjsEncoder(`tfjs:${json}`, { grey: "third", log: quiet });
      await encoder.embed(grey, 1);
      await encoder.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });
});

describe("tfjsModel: Darknet Tiny, the shared ImageNet-trained model", function () {
  interface ReferenceImage {
    rgb: { softmax: number[]; embedding: number[]; top5: { index: number; label: string; p: number }[] };
    greyThirdEmbedding: number[];
    greyReplicateEmbedding: number[];
  }
  interface Reference {
    inputSize: number;
    featureLayer: string;
    images: Record<"chelsea" | "coffee", ReferenceImage>;
  }
  const reference = JSON.parse(fs.readFileSync(path.join(FIXTURES, "tfjsmodel", "darknet-reference.json"), "utf8")) as Reference;
  const spec = `tfjs:${DARKNET_TINY}`;
  const messages: string[] = [];
  let model: TfjsModel;
  let labels: string[];

  async function rgbPixels(name: string): Promise<Float32Array> {
    const { data, info } = await sharp(path.join(FIXTURES, "tfjsmodel", `${name}.png`)).raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [reference.inputSize, reference.inputSize, 3]);
    return Float32Array.from(data, (v) => v / 255);
  }

  async function greyPixels(name: string): Promise<Float32Array> {
    // sharp hands grey PNGs out as three equal channels; one of them is the grey image.
    const { data, info } = await sharp(path.join(FIXTURES, "tfjsmodel", `${name}-grey.png`)).extractChannel(0).raw()
      .toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 1);
    return Float32Array.from(data, (v) => v / 255);
  }

  /**
   * Embedding tolerance, relative to the largest component: both sides run float32 through 16 convolutions whose
   * sums tfjs (wasm/XNNPACK) and PyTorch order differently; measured <= 1.4e-6, so 1e-5 leaves room for other
   * backends while a wrong grey mode (>= 0.3) or layer fails by far.
   */
  function assertEmbeddingClose(actual: Float32Array, expected: number[], what: string): void {
    const magnitude = Math.max(...expected.map(Math.abs));
    const diff = maxAbsDiff(actual, expected);
    assert.ok(diff <= 1e-5 * magnitude, `${what}: max abs diff ${diff} vs magnitude ${magnitude}`);
  }

  before(async function () {
    requireFile(this, DARKNET_TINY, "Darknet Tiny TF.js model");
    model = await loadTfjsModel(spec, { log: (m) => messages.push(m) });
    labels = fs.readFileSync(path.join(path.dirname(DARKNET_TINY), "labels.txt"), "utf8").split("\n");
  });
  after(() => model?.dispose());

  it("prints the feature layer it found: the input of the 1000-way classifier", function () {
    assert.equal(model.featureLayer, reference.featureLayer);
    assert.ok(messages.some((m) => m.includes(`"${reference.featureLayer}"`) && m.includes("found automatically")),
      messages.join("\n"));
    assert.deepEqual([model.inputSize, model.dim, model.classes, model.outputIsProbability], [224, 128, 1000, false]);
  });

  it("classifies chelsea as a cat and coffee as espresso", async function () {
    const top1 = async (name: string): Promise<string> => {
      const p = await classify(model, await rgbPixels(name), 1);
      return labels[p.indexOf(Math.max(...p))];
    };
    assert.ok(["Egyptian cat", "tabby", "tiger cat"].includes(await top1("chelsea")));
    assert.equal(await top1("coffee"), "espresso");
  });

  it("matches the PyTorch re-implementation: softmax within 1e-4, embedding of the classifier input", async function () {
    const both = new Float32Array([...await rgbPixels("chelsea"), ...await rgbPixels("coffee")]);
    const { embeddings, probabilities } = await model.forward(both, 2, true);
    const names = ["chelsea", "coffee"] as const;
    names.forEach((name, i) => {
      const ref = reference.images[name].rgb;
      // 1e-4 is the brief's bound; float32 on both sides measured <= 1.3e-6.
      const diff = maxAbsDiff(probabilities!.subarray(i * 1000, (i + 1) * 1000), ref.softmax);
      assert.ok(diff < 1e-4, `${name}: softmax max abs diff ${diff}`);
      assertEmbeddingClose(embeddings.subarray(i * 128, (i + 1) * 128), ref.embedding, `${name} rgb embedding`);
    });
  });

  it("embeds grey images as the Encoder ('third' and 'replicate') like the reference", async function () {
    for (const name of ["chelsea", "coffee"] as const) {
      const grey = await greyPixels(name);
      assertEmbeddingClose(await tfjsEncoder(model, "third").embed(grey, 1),
        reference.images[name].greyThirdEmbedding, `${name} third`);
      assertEmbeddingClose(await tfjsEncoder(model, "replicate").embed(grey, 1),
        reference.images[name].greyReplicateEmbedding, `${name} replicate`);
    }
  });

  it("loads as an Encoder labelled as Darknet Tiny, not the method's verified ResNet18", async function () {
    const encoder = await loadTfjsEncoder(spec, { grey: "third", log: quiet });
    try {
      assert.equal(encoder.info.encoder, spec);
      assert.equal(encoder.info.engine, "tfjs");
      assert.equal(encoder.info.weights.label, "Darknet Tiny (ImageNet, ml5) — not the method's ResNet18");
      assert.equal(encoder.info.weights.verified, false);
      assert.deepEqual([encoder.inputSize, encoder.dim], [224, 128]);
    } finally {
      await encoder.dispose();
    }
  });
});
