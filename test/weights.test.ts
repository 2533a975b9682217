// The .pth reader and the weights converter/loader, checked against what torch itself reads from the same files
// (fixtures made by scripts/reference/make_tiny_pth.py). Values are compared exactly: the reader copies stored bytes
// verbatim, and the fixtures hold each float32 as the double it converts to exactly, so any difference is a bug.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import AdmZip from "adm-zip";
import { projectRoot } from "../lib/paths";
import { isContiguous, parseTorchCheckpoint, readTorchCheckpoint } from "../lib/torchCheckpoint";
import {
  checkStateDict, convertWeights, IMAGENET_URL, isEncoderTensor, loadWeights, RESNET18_TENSORS,
  resolveWeightsSource, WEIGHTS_BIN, WEIGHTS_MANIFEST,
} from "../lib/weights";
import { FIXTURES, PROJECT_ROOT, requireFile, SEED0_WEIGHTS } from "./paths";

const WEIGHT_FIXTURES = path.join(FIXTURES, "weights");
const TINY = path.join(WEIGHT_FIXTURES, "tiny.pth");

interface ExpectedTensor { dtype: string; shape: number[]; values: (number | string)[] }
interface Seed0Sample { name: string; start: number; values: number[] }
interface Seed0Expected {
  architecture: { name: string; shape: number[]; dtype: string }[];
  seed0?: {
    file: string; sha256: string; tensor_count: number; kept_tensor_count: number; kept_float_count: number;
    samples: Record<string, Seed0Sample>;
  };
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "cellmorpho-weights-"));
}

/** tiny.pth with its first storage record cut short by `missing` bytes. */
function tinyWithTruncatedStorage(missing: number): { bytes: Buffer; entry: string; size: number } {
  const zip = new AdmZip(TINY);
  const record = zip.getEntries().find((e) => /\/data\/0$/.test(e.entryName))!;
  const data = record.getData();
  zip.updateFile(record.entryName, data.subarray(0, data.length - missing));
  return { bytes: zip.toBuffer(), entry: record.entryName, size: data.length };
}

describe("torchCheckpoint: reading torch.save zip files", () => {
  it("returns exactly what torch.load gives for tiny.pth: names in order, dtypes, shapes, values", () => {
    const expected = readJson<Record<string, ExpectedTensor>>(path.join(WEIGHT_FIXTURES, "tiny_expected.json"));
    const tensors = readTorchCheckpoint(TINY);
    assert.deepEqual([...tensors.keys()], Object.keys(expected));
    for (const [name, want] of Object.entries(expected)) {
      const got = tensors.get(name)!;
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      const values = Array.from(got.data as Iterable<number | bigint>, (v) => (typeof v === "bigint" ? v.toString() : v));
      assert.deepEqual(values, want.values, name);
    }
  });

  it("gives tensors that share one storage their own copies from their own offsets", () => {
    const tensors = readTorchCheckpoint(TINY);
    const zipStorages = new AdmZip(TINY).getEntries().filter((e) => /\/data\/\d+$/.test(e.entryName)).length;
    assert.equal(zipStorages, tensors.size - 1, "window and grid should share one stored storage");
    const window = tensors.get("window")!.data as Float32Array;
    const grid = tensors.get("grid")!.data as Float32Array;
    assert.notEqual(window.buffer, grid.buffer);
    window[1] = 99;
    assert.equal(grid[0], 0.75, "writing one tensor must not change another viewing the same storage");
  });

  it("refuses a non-contiguous tensor, naming the file and the tensor", () => {
    const file = path.join(WEIGHT_FIXTURES, "tiny_noncontiguous.pth");
    assert.throws(() => readTorchCheckpoint(file),
      (err: Error) => err.message.includes(file) && /transposed: non-contiguous tensor \(size \[3,2\], stride \[1,3\]\)/.test(err.message));
  });

  it("refuses a file that is not a zip", () => {
    const file = path.join(PROJECT_ROOT, "package.json");
    assert.throws(() => readTorchCheckpoint(file), (err: Error) => err.message.startsWith(`${file}: not a zip`));
  });

  it("refuses a zip without data.pkl", () => {
    const zip = new AdmZip();
    zip.addFile("archive/data/0", Buffer.alloc(8));
    assert.throws(() => parseTorchCheckpoint(zip.toBuffer(), "nopickle.pth"), /^Error: nopickle\.pth: no data\.pkl/);
  });

  it("refuses a truncated storage, saying how many bytes it expected and found", () => {
    const { bytes, size } = tinyWithTruncatedStorage(4);
    assert.throws(() => parseTorchCheckpoint(bytes, "cut.pth"),
      new RegExp(`^Error: cut\\.pth: truncated storage data/0: expected ${size} bytes, found ${size - 4}$`));
  });

  it("refuses a missing file by name", () => {
    assert.throws(() => readTorchCheckpoint("/nonexistent/x.pth"), /\/nonexistent\/x\.pth: no such file/);
  });

  it("isContiguous follows torch: row-major strides, any stride on size-1 dimensions, empty tensors", () => {
    assert.equal(isContiguous([2, 3, 4], [12, 4, 1]), true);
    assert.equal(isContiguous([3, 2], [1, 3]), false);
    assert.equal(isContiguous([2, 1, 4], [4, 99, 1]), true);
    assert.equal(isContiguous([], []), true);
    assert.equal(isContiguous([0, 3], [7, 2]), true);
  });
});

describe("weights: the ResNet18 state_dict specification", () => {
  const reference = readJson<Seed0Expected>(path.join(WEIGHT_FIXTURES, "seed0_expected.json")).architecture;

  it("RESNET18_TENSORS equals torchvision resnet18().state_dict(): 122 names, shapes and dtypes in order", () => {
    assert.equal(RESNET18_TENSORS.length, 122);
    assert.deepEqual(RESNET18_TENSORS.map((s) => ({ name: s.name, shape: [...s.shape], dtype: s.dtype })), reference);
  });

  it("checkStateDict names a wrong shape, a wrong dtype, a missing and an unexpected tensor", () => {
    const dict = new Map(RESNET18_TENSORS.map((s) => [s.name, { dtype: s.dtype as string, shape: [...s.shape] }]));
    assert.deepEqual(checkStateDict(dict), []);
    dict.set("layer1.0.conv1.weight", { dtype: "float32", shape: [64, 64, 1, 1] });
    dict.set("bn1.bias", { dtype: "float64", shape: [64] });
    dict.delete("fc.bias");
    dict.set("head.weight", { dtype: "float32", shape: [2, 512] });
    assert.deepEqual(checkStateDict(dict), [
      "bn1.bias: expected float32, found float64",
      "layer1.0.conv1.weight: expected [64,64,3,3], found [64,64,1,1]",
      "missing fc.bias [1000]",
      "unexpected head.weight [2,512]",
    ]);
  });

  it("convertWeights refuses a checkpoint that is not ResNet18, listing what is missing", () => {
    const outDir = tempDir();
    try {
      assert.throws(() => convertWeights({ source: TINY, outDir, unverified: true, log: () => undefined }),
        (err: Error) => err.message.includes(`${TINY}: not a torchvision ResNet18 state_dict: missing conv1.weight [64,3,7,7]`));
      assert.deepEqual(fs.readdirSync(outDir), [], "nothing is written for a refused file");
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  });
});

describe("weights: choosing the source file", () => {
  let dir: string;
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prefers --from, then CELLMORPHO_WEIGHTS, then the shared ImageNet file, else the official download", () => {
    const fromFile = path.join(dir, "given.pth");
    const envFile = path.join(dir, "env.pth");
    const sharedDir = path.join(dir, "shared");
    fs.mkdirSync(sharedDir);
    fs.writeFileSync(fromFile, "");
    fs.writeFileSync(envFile, "");
    const env = { CELLMORPHO_WEIGHTS: envFile };
    assert.deepEqual(resolveWeightsSource({ from: fromFile, env, sharedDir }), { path: fromFile, how: "from" });
    assert.deepEqual(resolveWeightsSource({ env, sharedDir }), { path: envFile, how: "env" });
    assert.deepEqual(resolveWeightsSource({ env: {}, sharedDir }), { path: IMAGENET_URL, how: "download" });
    const sharedFile = path.join(sharedDir, "resnet18-f37072fd.pth");
    fs.writeFileSync(sharedFile, "");
    assert.deepEqual(resolveWeightsSource({ env: {}, sharedDir }), { path: sharedFile, how: "shared" });
  });

  it("refuses an explicitly named file that does not exist instead of falling back", () => {
    const missing = path.join(dir, "missing.pth");
    assert.throws(() => resolveWeightsSource({ from: missing, env: {}, sharedDir: dir }), /--from .*missing\.pth: no such file/);
    assert.throws(() => resolveWeightsSource({ env: { CELLMORPHO_WEIGHTS: missing }, sharedDir: dir }),
      /CELLMORPHO_WEIGHTS=.*missing\.pth: no such file/);
  });

  it("projectRoot finds this package from the compiled tests and refuses outside it", () => {
    assert.equal(projectRoot(__dirname), PROJECT_ROOT);
    assert.equal(projectRoot(), PROJECT_ROOT);
    assert.throws(() => projectRoot(dir), /no cellmorphotem project root above/);
  });
});

describe("weights: converting and loading the shared seed0 ResNet18", function () {
  this.timeout(60_000); // reads a 47 MB .pth and writes a 45 MB .bin: about a second here
  const expected = readJson<Seed0Expected>(path.join(WEIGHT_FIXTURES, "seed0_expected.json")).seed0;
  let outDir: string;
  const logged: string[] = [];

  before(function () {
    requireFile(this, SEED0_WEIGHTS, "seed0 ResNet18 test weights");
    if (!expected) throw new Error("seed0_expected.json lacks seed0 values: rerun scripts/reference/make_tiny_pth.py");
    outDir = tempDir();
  });
  after(() => { if (outDir) fs.rmSync(outDir, { recursive: true, force: true }); });

  it("refuses the unverified file without `unverified`, quoting its sha256", () => {
    assert.throws(() => convertWeights({ source: SEED0_WEIGHTS, outDir, log: () => undefined }),
      (err: Error) => err.message.includes(expected!.sha256) && err.message.includes("--unverified"));
    assert.equal(fs.existsSync(path.join(outDir, WEIGHTS_MANIFEST)), false);
  });

  it("converts it with `unverified`, with a WARNING, keeping every float tensor but fc", () => {
    const info = convertWeights({ source: SEED0_WEIGHTS, outDir, unverified: true, log: (l) => logged.push(l) });
    assert.ok(logged.some((l) => l.startsWith("WARNING:") && l.includes(expected!.sha256)), logged.join("\n"));
    assert.equal(info.tensorCount, expected!.kept_tensor_count);
    assert.equal(info.floatCount, expected!.kept_float_count);
    assert.deepEqual(info.source, {
      file: expected!.file, sha256: expected!.sha256, verified: false, label: `${expected!.file} (UNVERIFIED)`,
    });
    assert.equal(fs.statSync(path.join(outDir, WEIGHTS_BIN)).size, expected!.kept_float_count * 4);
  });

  it("loadWeights gives torch's values as views on one buffer, with the unverified provenance", () => {
    const started = process.hrtime.bigint();
    const weights = loadWeights(outDir);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(`      loadWeights: ${ms.toFixed(1)} ms for ${weights.tensors.size} tensors`);

    assert.deepEqual([...weights.tensors.keys()], RESNET18_TENSORS.filter((s) => isEncoderTensor(s.name)).map((s) => s.name));
    assert.deepEqual(weights.tensors.get("conv1.weight")!.shape, [64, 3, 7, 7], "conv1 stays 3-channel in the file");
    for (const [what, sample] of Object.entries(expected!.samples)) {
      const data = weights.tensors.get(sample.name)!.data;
      assert.deepEqual(Array.from(data.subarray(sample.start, sample.start + sample.values.length)), sample.values, what);
    }
    const buffers = new Set([...weights.tensors.values()].map((t) => t.data.buffer));
    assert.equal(buffers.size, 1, "all tensors should view the one .bin buffer");
    assert.deepEqual(weights.provenance, { label: `${expected!.file} (UNVERIFIED)`, sha256: expected!.sha256, verified: false });
  });

  it("loadWeights refuses a .bin whose size does not match the manifest", () => {
    const copy = tempDir();
    try {
      fs.copyFileSync(path.join(outDir, WEIGHTS_MANIFEST), path.join(copy, WEIGHTS_MANIFEST));
      fs.writeFileSync(path.join(copy, WEIGHTS_BIN), fs.readFileSync(path.join(outDir, WEIGHTS_BIN)).subarray(0, 1024));
      assert.throws(() => loadWeights(copy),
        new RegExp(`resnet18\\.bin: 1024 bytes, but .*resnet18\\.json describes ${expected!.kept_float_count * 4}`));
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe("weights: loading when nothing was converted", () => {
  it("says to run `npx cellmorpho weights` first", () => {
    const dir = tempDir();
    try {
      assert.throws(() => loadWeights(dir), /resnet18\.json not found: run `npx cellmorpho weights` first/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
