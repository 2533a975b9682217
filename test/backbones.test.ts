// lib/backbones.ts: encoder specs -> Encoders, the input descriptor, and the default encoder for validation runs.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  defaultBackboneForValidation, describeInput, openBackbone, openBackbonePair, parseBackboneSpec, sharedDarknetTinySpec,
} from "../lib/backbones";
import { createEncoder } from "../lib/engines";
import { convertWeights, loadWeights, WEIGHTS_MANIFEST } from "../lib/weights";
import { DARKNET_TINY, PROJECT_ROOT, requireFile, SEED0_WEIGHTS } from "./paths";

const quiet = (): void => undefined;
const SIZE = 224;

/** Every temporary folder lives under one scratch folder, removed when the file's tests are done. */
const scratch = { dir: "" };
function tempDir(): string {
  return fs.mkdtempSync(path.join(scratch.dir, "t-"));
}

/** A reproducible grey batch in [0,1): a fixed-seed linear congruential generator. */
function greyBatch(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * SIZE * SIZE);
  let state = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 32;
  }
  return out;
}

/** max |a - b| / max |b|. */
function relativeMaxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

describe("backbones", function () {
  before(function () {
    scratch.dir = fs.mkdtempSync(path.join(os.tmpdir(), "backbones-test-"));
  });
  after(function () {
    fs.rmSync(scratch.dir, { recursive: true, force: true });
  });

  describe("specs and input descriptors", function () {
    it("parses resnet18 and tfjs:<model.json>[#layer], and lists the valid forms for anything else", function () {
      assert.deepEqual(parseBackboneSpec("resnet18"), { kind: "resnet18" });
      assert.deepEqual(parseBackboneSpec("tfjs:m/model.json#conv5"),
        { kind: "tfjs", tfjs: { modelJsonPath: "m/model.json", layer: "conv5" } });
      assert.throws(() => parseBackboneSpec("vgg16"), /unknown encoder "vgg16"; valid encoders: "resnet18" or "tfjs:/);
      assert.throws(() => parseBackboneSpec("ResNet18"), /unknown encoder "ResNet18"/);
    });

    it("describes how a grey cell feeds the network", function () {
      assert.equal(describeInput(3, "third"), "grey/3 x3, [0,1]");
      assert.equal(describeInput(3, "replicate", { mean: [0, 0, 0], std: [1, 1, 1] }), "grey x3, [0,1]");
      assert.equal(describeInput(1, "third"), "grey, [0,1]");
      assert.equal(describeInput(3, "replicate", { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }),
        "grey x3, (x-[0.5,0.5,0.5])/[0.25,0.25,0.25]");
    });

    it("locates the shared Darknet Tiny beside the project", function () {
      assert.equal(sharedDarknetTinySpec("/a/project"), "tfjs:/a/shared/weights/darknet-tiny-imagenet/model.json");
      assert.equal(sharedDarknetTinySpec(PROJECT_ROOT), `tfjs:${DARKNET_TINY}`);
    });
  });

  describe("openBackbone errors", function () {
    it("rejects an unknown spec", async function () {
      await assert.rejects(openBackbone("vgg16", { log: quiet }), /unknown encoder "vgg16"/);
    });

    it("refuses to run a TF.js model on the onnx engine, before reading any file", async function () {
      // The path does not exist: the engine error must come first, since no file can fix it.
      await assert.rejects(openBackbone("tfjs:/nowhere/model.json", { engine: "onnx", log: quiet }),
        /tfjs:\/nowhere\/model\.json: a TF\.js model runs on the tfjs engine only, not on "onnx"/);
    });

    it("rejects an unknown engine by name, for either kind of spec", async function () {
      await assert.rejects(openBackbone("tfjs:/nowhere/model.json", { engine: "cuda" as never, log: quiet }),
        /unknown encoder engine "cuda"/);
      const dir = tempDir();
      await assert.rejects(openBackbone("resnet18", { engine: "cuda" as never, weightsDir: dir, log: quiet }),
        /unknown encoder engine "cuda"; valid engines: auto, onnx, tfjs/);
    });

    it("names a missing model.json", async function () {
      const missing = path.join(tempDir(), "model.json");
      await assert.rejects(openBackbone(`tfjs:${missing}`, { log: quiet }),
        (err: Error) => err.message.includes(missing));
    });

    it("names the missing resnet18 weights file", async function () {
      const dir = tempDir();
      await assert.rejects(openBackbone("resnet18", { weightsDir: dir, log: quiet }),
        (err: Error) => err.message.includes(path.join(dir, WEIGHTS_MANIFEST)));
    });

    it("offers ResNet18 only with the method's conv1 averaging", async function () {
      await assert.rejects(openBackbone("resnet18", { grey: "replicate", log: quiet }),
        /grey mode "replicate" is not available; the method's ResNet18 averages conv1/);
    });
  });

  describe("opening encoders", function () {
    this.timeout(120_000);
    let weightsDir: string;

    before(function () {
      requireFile(this, SEED0_WEIGHTS, "seed0 ResNet18 test weights");
      weightsDir = tempDir();
      convertWeights({ source: SEED0_WEIGHTS, outDir: weightsDir, unverified: true, log: quiet });
    });

    it("resnet18: the engine's encoder, with its input descriptor, giving the same numbers", async function () {
      const batch = greyBatch(2, 7);
      const viaSpec = await openBackbone("resnet18", { engine: "onnx", weightsDir, log: quiet });
      const direct = await createEncoder({ engine: "onnx", weights: loadWeights(weightsDir), log: quiet });
      try {
        assert.equal(viaSpec.info.encoder, "resnet18");
        assert.equal(viaSpec.info.engine, "onnx");
        assert.equal(viaSpec.info.input, "grey/3 x3, [0,1]");
        assert.equal(viaSpec.info.weights.verified, false);
        assert.equal(viaSpec.dim, 512);
        // Same engine, same weights, same batch: only the wrapper differs, so the values are the same floats.
        assert.deepEqual(await viaSpec.embed(batch, 2), await direct.embed(batch, 2));
      } finally {
        await viaSpec.dispose();
        await direct.dispose();
      }
    });

    it("openBackbonePair: two separate encoders of one spec", async function () {
      const pair = await openBackbonePair("resnet18", { engine: "onnx", weightsDir, log: quiet });
      try {
        assert.notEqual(pair.actin, pair.nucleus);
        assert.equal(pair.actin.info.encoder, "resnet18");
        assert.equal(pair.nucleus.info.input, "grey/3 x3, [0,1]");
      } finally {
        await pair.actin.dispose();
        await pair.nucleus.dispose();
      }
    });

    it("tfjs: Darknet Tiny on the tfjs engine; 'replicate' of x equals 'third' of 3x", async function () {
      requireFile(this, DARKNET_TINY, "shared Darknet Tiny");
      const spec = `tfjs:${DARKNET_TINY}`;
      const third = await openBackbone(spec, { log: quiet });
      const replicate = await openBackbone(spec, { engine: "tfjs", grey: "replicate", log: quiet });
      try {
        assert.equal(third.info.engine, "tfjs");
        assert.equal(third.info.encoder, spec);
        assert.equal(third.info.input, "grey/3 x3, [0,1]");
        assert.equal(replicate.info.input, "grey x3, [0,1]");
        assert.match(third.info.weights.label, /Darknet Tiny/);
        const x = greyBatch(1, 3);
        const tripled = x.map((v) => 3 * v);
        // grey/3 of 3x is x up to one float32 rounding of the input (relative 6e-8); through the network's
        // float32 arithmetic that stays far below 1e-5, while feeding the wrong mode changes the output by O(1).
        assert.ok(relativeMaxDiff(await replicate.embed(x, 1), await third.embed(tripled, 1)) < 1e-5);
        assert.ok(relativeMaxDiff(await replicate.embed(x, 1), await third.embed(x, 1)) > 1e-2);
      } finally {
        await third.dispose();
        await replicate.dispose();
      }
    });
  });

  describe("defaultBackboneForValidation", function () {
    this.timeout(60_000);
    let unverifiedDir: string;
    /** A project folder with nothing beside it: no ../shared/weights/darknet-tiny-imagenet. */
    let bareProject: string;

    before(function () {
      requireFile(this, SEED0_WEIGHTS, "seed0 ResNet18 test weights");
      unverifiedDir = tempDir();
      convertWeights({ source: SEED0_WEIGHTS, outDir: unverifiedDir, unverified: true, log: quiet });
      bareProject = path.join(tempDir(), "project");
    });

    it("resnet18 when the weights are the verified ImageNet file", function () {
      // The same tensors under a manifest that records a verified source: only the provenance decides.
      const verifiedDir = tempDir();
      fs.copyFileSync(path.join(unverifiedDir, "resnet18.bin"), path.join(verifiedDir, "resnet18.bin"));
      const manifest = JSON.parse(fs.readFileSync(path.join(unverifiedDir, WEIGHTS_MANIFEST), "utf8"));
      manifest.source = { ...manifest.source, verified: true, label: "torchvision ResNet18 IMAGENET1K_V1" };
      fs.writeFileSync(path.join(verifiedDir, WEIGHTS_MANIFEST), JSON.stringify(manifest));
      const chosen = defaultBackboneForValidation({ weightsDir: verifiedDir, projectDir: bareProject });
      assert.equal(chosen.spec, "resnet18");
      assert.equal(chosen.methodEncoder, true);
      assert.match(chosen.reason, /verified ImageNet ResNet18: the method's encoder/);
    });

    it("the shared Darknet Tiny when the weights are unverified, saying it is not the method's ResNet18", function () {
      requireFile(this, DARKNET_TINY, "shared Darknet Tiny");
      const chosen = defaultBackboneForValidation({ weightsDir: unverifiedDir, projectDir: PROJECT_ROOT });
      assert.equal(chosen.spec, `tfjs:${DARKNET_TINY}`);
      assert.equal(chosen.methodEncoder, false);
      assert.match(chosen.reason, /resnet18-torchvision-seed0\.pth \(UNVERIFIED\), not verified ImageNet weights/);
      assert.match(chosen.reason, /Darknet Tiny .* NOT the method's ResNet18/);
    });

    it("unverified resnet18 when there is neither, naming both gaps", function () {
      const chosen = defaultBackboneForValidation({ weightsDir: unverifiedDir, projectDir: bareProject });
      assert.equal(chosen.spec, "resnet18");
      assert.equal(chosen.methodEncoder, false);
      const expectedDarknet = path.join(bareProject, "..", "shared", "weights", "darknet-tiny-imagenet", "model.json");
      assert.ok(chosen.reason.includes(expectedDarknet));
      assert.match(chosen.reason, /UNVERIFIED weights, NOT the method's encoder/);
    });

    it("names the missing weights file when there are no weights at all", function () {
      const empty = tempDir();
      const chosen = defaultBackboneForValidation({ weightsDir: empty, projectDir: bareProject });
      assert.equal(chosen.methodEncoder, false);
      assert.ok(chosen.reason.includes(path.join(empty, WEIGHTS_MANIFEST)));
    });
  });
});
