// The ResNet18 encoders: the shared graph (BN folding, conv1 averaging, wiring) checked in closed form, then both
// engines checked against torchvision's own embeddings of the same inputs (test/fixtures/encoders, made by
// scripts/reference/golden_embeddings.py from the shared seed0 weights).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createEncoder, ENGINE_NAMES, resolveEngine } from "../lib/engines";
import { cudaUnavailableReason, OnnxResNet } from "../lib/onnxEngine";
import { averageInputChannels, buildResNet18, type ConvOp, foldBatchNorm, type GraphRunner, type ResNetGraph,
  type TensorMap } from "../lib/resnet";
import { initTfjs } from "../lib/tfjsBackend";
import { TfjsResNet } from "../lib/tfjsEngine";
import { convertWeights, loadWeights, type ResNetWeights } from "../lib/weights";
import { FIXTURES, requireFile, SEED0_WEIGHTS } from "./paths";

const FIXTURE_DIR = path.join(FIXTURES, "encoders");
const SIZE = 224;
const PLANE = SIZE * SIZE;

/**
 * torchvision vs our engines: the same float32 network, but different convolution algorithms and summation
 * orders (im2col/GEMM, Winograd, fused kernels) over 20 layers. Measured here: about 3e-7 relative L2 for both
 * engines; 1e-4 is the method's parity requirement and still catches any wiring, padding or folding error (those
 * give errors of order 1e-2 or more).
 */
const PARITY_TOLERANCE = 1e-4;
/** Same engine, same weights, only the batching or an exact channel identity differs: float32 reordering only. */
const SAME_ENGINE_TOLERANCE = 1e-5;

interface GoldenImage { png: string; input: string; height: number; width: number; embedding: number[] }
interface Golden { weightsSha256: string; inputSize: number; dim: number; images: GoldenImage[] }

function readGolden(): Golden {
  return JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, "golden.json"), "utf8")) as Golden;
}

function readInput(file: string): Float32Array {
  const bytes = fs.readFileSync(path.join(FIXTURE_DIR, file));
  assert.equal(bytes.length, PLANE * 4, `${file}: expected a 1x224x224 float32 tensor`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

/** ||a - b|| / ||b||. */
function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, "vector lengths differ");
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

function row(matrix: Float32Array, i: number, dim: number): Float32Array {
  return matrix.subarray(i * dim, (i + 1) * dim);
}

/** A grey image seen as RGB with each channel holding grey/3: the 3-channel conv1 then sums to the 1-channel one. */
function greyAsThirdRgb(grey: Float32Array): Float32Array {
  const rgb = new Float32Array(3 * grey.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < grey.length; i++) rgb[c * grey.length + i] = grey[i] / 3;
  return rgb;
}

/** Uniform [0,1) values from a fixed-seed linear congruential generator: reproducible benchmark input. */
function seededUniform(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 32;
  }
  return out;
}

async function msPerImage(runner: GraphRunner, n: number): Promise<number> {
  const batch = seededUniform(n * runner.inputChannels * PLANE, 7);
  await runner.run(batch.subarray(0, runner.inputChannels * PLANE), 1); // warm-up: kernel selection, allocation
  const start = process.hrtime.bigint();
  await runner.run(batch, n);
  return Number(process.hrtime.bigint() - start) / 1e6 / n;
}

describe("resnet graph (closed form)", () => {
  it("folds BatchNorm as w*gamma/sqrt(var+eps), beta - mean*gamma/sqrt(var+eps)", () => {
    // Two output channels of two weights each; var + eps = 4 and 1 make the scales exact: 3/2 and -1/1.
    const eps = 1e-5;
    const { weight, bias } = foldBatchNorm(new Float32Array([1, 2, 3, 4]), 2, {
      gamma: new Float32Array([3, -1]), beta: new Float32Array([0.5, 2]),
      mean: new Float32Array([2, -3]), variance: new Float32Array([4 - eps, 1 - eps]),
    }, eps);
    assert.deepEqual(Array.from(weight), [1.5, 3, -3, -4]);
    assert.deepEqual(Array.from(bias), [0.5 - 2 * 1.5, 2 - 3]);
  });

  it("averages conv1 over the input-channel axis of OIHW weights", () => {
    // 2 out x 3 in x 1 x 2: out 0 has channels [1,2],[3,4],[5,6]; out 1 has [0,0],[0,0],[9,-3].
    const averaged = averageInputChannels(new Float32Array([1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 9, -3]), [2, 3, 1, 2]);
    assert.deepEqual(Array.from(averaged), [3, 4, 3, -1]);
  });
});

describe("resnet18 encoders (seed0 weights vs torchvision)", function () {
  let weightsDir = "";
  let weights: ResNetWeights;
  let grey: ResNetGraph;
  const golden = readGolden();
  const inputs = golden.images.map((image) => readInput(image.input));

  before(function () {
    requireFile(this, SEED0_WEIGHTS, "seed0 ResNet18 test weights");
    weightsDir = fs.mkdtempSync(path.join(os.tmpdir(), "encoders-test-"));
    convertWeights({ source: SEED0_WEIGHTS, outDir: weightsDir, unverified: true, log: () => undefined });
    weights = loadWeights(weightsDir);
    assert.equal(weights.provenance.sha256, golden.weightsSha256, "golden.json was made from other weights");
    grey = buildResNet18(weights.tensors, { inputChannels: 1 });
  });

  after(() => {
    if (weightsDir !== "") fs.rmSync(weightsDir, { recursive: true, force: true });
  });

  describe("graph", () => {
    it("has torchvision's 20 convolutions, one max pool and a 512-d output", () => {
      const convs = grey.ops.filter((op): op is ConvOp => op.kind === "conv");
      assert.equal(convs.length, 1 + 4 * 2 * 2 + 3, "stem + 8 blocks x 2 convs + 3 downsamples");
      assert.deepEqual(convs.filter((op) => op.name.includes("downsample")).map((op) => op.stride), [2, 2, 2]);
      assert.deepEqual(convs[0].shape, [64, 1, 7, 7]);
      assert.equal(grey.outputDim, 512);
      // Every value is produced before it is read: engines may execute the list in order.
      const produced = new Set([grey.input]);
      for (const op of grey.ops) {
        assert.ok(produced.has(op.input), `${op.name} reads ${op.input} too early`);
        if (op.kind === "conv" && op.residual !== undefined) assert.ok(produced.has(op.residual));
        produced.add(op.output);
      }
      assert.ok(produced.has(grey.output));
    });

    it("names the tensor that is missing or misshapen", () => {
      const without = new Map(weights.tensors);
      without.delete("layer3.1.bn2.running_var");
      assert.throws(() => buildResNet18(without, { inputChannels: 1 }), /missing tensor "layer3.1.bn2.running_var"/);
      const wrong: TensorMap = new Map([...weights.tensors,
        ["layer1.0.conv1.weight", { shape: [64, 64, 1, 1], data: new Float32Array(64 * 64) }]]);
      assert.throws(() => buildResNet18(wrong, { inputChannels: 1 }),
        /"layer1.0.conv1.weight" has shape \[64,64,1,1\], expected \[64,64,3,3\]/);
    });
  });

  /** The checks every engine must pass; `images` limits the work for slow backends. */
  function engineContract(create: (graph: ResNetGraph) => Promise<GraphRunner>, images: () => number): void {
    let runner: GraphRunner;
    before(async () => { runner = await create(grey); });
    after(async () => { await runner?.dispose(); });

    it(`matches torchvision within ${PARITY_TOLERANCE} relative L2 per embedding`, async () => {
      for (let i = 0; i < images(); i++) {
        const embedding = await runner.run(inputs[i], 1);
        const error = relativeL2(embedding, golden.images[i].embedding);
        assert.ok(error < PARITY_TOLERANCE, `${golden.images[i].png}: relative L2 error ${error.toExponential(2)}`);
      }
    });

    it("gives a batch of n the same rows as n batches of 1", async () => {
      const n = Math.max(2, images());
      const batched = await runner.run(concat(inputs.slice(0, n)), n);
      assert.equal(batched.length, n * 512);
      for (let i = 0; i < n; i++) {
        const single = await runner.run(inputs[i], 1);
        const error = relativeL2(row(batched, i, 512), single);
        assert.ok(error < SAME_ENGINE_TOLERANCE, `row ${i}: relative L2 ${error.toExponential(2)}`);
      }
    });

    it("with inputChannels 3 and grey/3 on each channel, equals inputChannels 1", async () => {
      const rgbRunner = await create(buildResNet18(weights.tensors, { inputChannels: 3 }));
      try {
        const rgb = await rgbRunner.run(greyAsThirdRgb(inputs[0]), 1);
        const error = relativeL2(rgb, await runner.run(inputs[0], 1));
        assert.ok(error < SAME_ENGINE_TOLERANCE, `relative L2 ${error.toExponential(2)}`);
      } finally {
        await rgbRunner.dispose();
      }
    });

    it("rejects a batch whose length does not match n images", async () => {
      await assert.rejects(runner.run(new Float32Array(PLANE + 1), 1), /batch of 1 needs 50176 values/);
      await assert.rejects(runner.run(inputs[0], 0), /positive integer/);
    });
  }

  describe("onnx engine (onnxruntime-node), session in a worker thread", () => {
    engineContract((graph) => OnnxResNet.create(graph, SIZE, { intraOpNumThreads: 2 }), () => golden.images.length);

    it("runs a batch larger than maxSessionBatch in slices, bit-identical to one call", async () => {
      const whole = await OnnxResNet.create(grey, SIZE, { intraOpNumThreads: 1, maxSessionBatch: 64 });
      const sliced = await OnnxResNet.create(grey, SIZE, { intraOpNumThreads: 1, maxSessionBatch: 2 });
      try {
        assert.equal(sliced.thread, "worker");
        const n = 5;
        const batch = concat(Array.from({ length: n }, (_, i) => inputs[i % inputs.length]));
        assert.deepEqual(await sliced.run(batch, n), await whole.run(batch, n));
      } finally {
        await whole.dispose();
        await sliced.dispose();
      }
    });

    it("leaves the main thread free while it computes: the event loop keeps ticking during a batch", async () => {
      const runner = await OnnxResNet.create(grey, SIZE, { intraOpNumThreads: 1 });
      try {
        const n = 16; // ~0.2 s of inference at 1 thread, one session call
        const batch = concat(Array.from({ length: n }, (_, i) => inputs[i % inputs.length]));
        let ticks = 0;
        const timer = setInterval(() => ticks++, 5);
        try {
          await runner.run(batch, n);
        } finally {
          clearInterval(timer);
        }
        // On the main thread the call blocks the loop: at most the tick before it starts. 5 leaves room for a busy CI.
        assert.ok(ticks >= 5, `only ${ticks} ticks of 5 ms during the batch`);
      } finally {
        await runner.dispose();
      }
    });

    it("refuses to run once disposed, and a non-integer thread count or slice size", async () => {
      const runner = await OnnxResNet.create(grey, SIZE, { intraOpNumThreads: 1 });
      await runner.dispose();
      await assert.rejects(runner.run(inputs[0], 1), /onnxruntime session already released/);
      await assert.rejects(OnnxResNet.create(grey, SIZE, { intraOpNumThreads: 0 }),
        /intraOpNumThreads must be a positive integer, got 0/);
      await assert.rejects(OnnxResNet.create(grey, SIZE, { maxSessionBatch: 1.5 }),
        /maxSessionBatch must be a positive integer, got 1.5/);
    });

    it("reports ms/image (batch 64 of random input, 2 threads)", async () => {
      const runner = await OnnxResNet.create(grey, SIZE, { intraOpNumThreads: 2 });
      try {
        const ms = await msPerImage(runner, 64);
        console.log(`      onnx ${runner.backend}: ${ms.toFixed(1)} ms/image (batch 64, 2 threads)`);
      } finally {
        await runner.dispose();
      }
    });
  });

  describe("onnx engine (onnxruntime-node), session on the main thread", () => {
    engineContract(async (graph) => {
      const runner = await OnnxResNet.create(graph, SIZE, { intraOpNumThreads: 2, thread: "main" });
      assert.equal(runner.thread, "main");
      return runner;
    }, () => golden.images.length);
  });

  describe("tfjs engine", () => {
    // wasm when it starts; the pure-JS cpu backend takes seconds per image, so it only gets one image.
    let backend = "";
    before(async () => {
      const runtime = await initTfjs(() => undefined, "wasm").catch(() => initTfjs(() => undefined));
      backend = runtime.backend;
      console.log(`      TF.js backend for these tests: ${backend}`);
    });
    engineContract((graph) => TfjsResNet.create(graph, SIZE), () => (backend === "wasm" ? 2 : 1));

    it("refuses an unknown backend by name, and a switch once the process's engine is committed", async () => {
      await assert.rejects(initTfjs(undefined, "webgl"), /unknown TF.js backend "webgl"; valid: tfjs-node-gpu, tfjs-node, wasm, cpu/);
      const other = backend === "cpu" ? "wasm" : "cpu";
      await assert.rejects(initTfjs(undefined, other), new RegExp(`already runs on "${backend}".*cannot switch to "${other}"`));
    });

    it("reports ms/image (batch 4 of random input)", async () => {
      const runner = await TfjsResNet.create(grey, SIZE);
      try {
        const ms = await msPerImage(runner, 4);
        console.log(`      tfjs ${runner.backend}: ${ms.toFixed(1)} ms/image (batch 4)`);
      } finally {
        await runner.dispose();
      }
    });
  });

  describe("createEncoder", () => {
    it('"auto" picks onnx when onnxruntime-node loads, and reports why', async () => {
      const lines: string[] = [];
      const encoder = await createEncoder({ engine: "auto", weights, log: (l) => lines.push(l),
        onnx: { intraOpNumThreads: 2 } });
      try {
        assert.equal(encoder.info.engine, "onnx");
        assert.equal(encoder.info.encoder, "resnet18");
        assert.deepEqual(encoder.info.weights, weights.provenance);
        assert.equal(encoder.inputSize, 224);
        assert.equal(encoder.dim, 512);
        assert.ok(lines.some((l) => /engine onnx \(auto: onnxruntime-node loads\)/.test(l)), lines.join("\n"));
        const embedding = await encoder.embed(inputs[0], 1);
        assert.ok(relativeL2(embedding, golden.images[0].embedding) < PARITY_TOLERANCE);
      } finally {
        await encoder.dispose();
      }
    });

    it("tries CUDA only when onnxruntime has it, its library is installed and a GPU is present", () => {
      const usable = { listed: true, libraryInstalled: true, gpuPresent: true };
      assert.equal(cudaUnavailableReason(usable), null);
      assert.match(cudaUnavailableReason({ ...usable, listed: false }) ?? "", /no CUDA execution provider/);
      assert.match(cudaUnavailableReason({ ...usable, libraryInstalled: false }) ?? "", /library is not installed/);
      assert.match(cudaUnavailableReason({ ...usable, gpuPresent: false }) ?? "", /no NVIDIA GPU/);
    });

    it("rejects an unknown engine, listing the valid ones", () => {
      assert.throws(() => resolveEngine("torch"), new RegExp(`valid engines: ${ENGINE_NAMES.join(", ")}`));
    });
  });
});
