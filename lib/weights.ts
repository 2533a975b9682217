// torchvision ResNet18 .pth -> the project's own weight files, and loading them back.
// The method depends on one exact file (torchvision IMAGENET1K_V1, sha256 f37072fd...), so conversion checks the
// hash and refuses anything else unless told otherwise, and the provenance travels with the converted weights to
// every score made from them. The converted form (one float32 .bin + a JSON manifest) loads with a single read,
// no pickle parsing, and gives the model builder plain Float32Array views.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { IncomingMessage } from "node:http";
import * as path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { writeFileAtomic, writeJsonAtomic } from "./atomic";
import type { WeightsProvenance } from "./encoder";
import { projectRoot } from "./paths";
import { parseTorchCheckpoint } from "./torchCheckpoint";
import { sha256File, sha256Hex } from "./hash";

export const IMAGENET_SHA256_PREFIX = "f37072fd";
export const IMAGENET_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth";
export const IMAGENET_LABEL = "torchvision ResNet18 IMAGENET1K_V1";
export const WEIGHTS_ENV = "CELLMORPHO_WEIGHTS";
export const WEIGHTS_FORMAT = "cellmorphotem-weights/1";
export const WEIGHTS_BIN = "resnet18.bin";
export const WEIGHTS_MANIFEST = "resnet18.json";

// ---------------------------------------------------------------------------------------------------------------
// The state_dict torchvision's resnet18 has, derived from its architecture.

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: "float32" | "int64";
}

function convSpec(name: string, outChannels: number, inChannels: number, kernel: number): TensorSpec {
  return { name: `${name}.weight`, shape: [outChannels, inChannels, kernel, kernel], dtype: "float32" };
}

function batchNormSpecs(name: string, channels: number): TensorSpec[] {
  const perChannel = ["weight", "bias", "running_mean", "running_var"].map(
    (field): TensorSpec => ({ name: `${name}.${field}`, shape: [channels], dtype: "float32" }));
  return [...perChannel, { name: `${name}.num_batches_tracked`, shape: [], dtype: "int64" }];
}

/** torchvision BasicBlock: two 3x3 convs; a 1x1 conv + BN shortcut when the stride or the width changes. */
function basicBlockSpecs(name: string, inChannels: number, outChannels: number, stride: number): TensorSpec[] {
  const specs = [
    convSpec(`${name}.conv1`, outChannels, inChannels, 3), ...batchNormSpecs(`${name}.bn1`, outChannels),
    convSpec(`${name}.conv2`, outChannels, outChannels, 3), ...batchNormSpecs(`${name}.bn2`, outChannels),
  ];
  if (stride !== 1 || inChannels !== outChannels) {
    specs.push(convSpec(`${name}.downsample.0`, outChannels, inChannels, 1),
      ...batchNormSpecs(`${name}.downsample.1`, outChannels));
  }
  return specs;
}

function resnetBasicSpecs(blocksPerStage: readonly number[], widths: readonly number[], classes: number): TensorSpec[] {
  const specs = [convSpec("conv1", widths[0], 3, 7), ...batchNormSpecs("bn1", widths[0])];
  let inChannels = widths[0];
  blocksPerStage.forEach((blocks, stage) => {
    for (let block = 0; block < blocks; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      specs.push(...basicBlockSpecs(`layer${stage + 1}.${block}`, inChannels, widths[stage], stride));
      inChannels = widths[stage];
    }
  });
  specs.push({ name: "fc.weight", shape: [classes, inChannels], dtype: "float32" },
    { name: "fc.bias", shape: [classes], dtype: "float32" });
  return specs;
}

/** torchvision resnet18().state_dict(), in order: 122 tensors. */
export const RESNET18_TENSORS: readonly TensorSpec[] = Object.freeze(resnetBasicSpecs([2, 2, 2, 2], [64, 128, 256, 512], 1000));

/** The tensors the encoder uses: the classifier head and BN's step counters are not. */
export function isEncoderTensor(name: string): boolean {
  return !name.startsWith("fc.") && !name.endsWith(".num_batches_tracked");
}

/** Every difference between a state_dict and the expected one, e.g. "layer1.0.conv1.weight: expected [64,64,3,3], found [64,64,1,1]". */
export function checkStateDict(
  tensors: ReadonlyMap<string, { readonly dtype: string; readonly shape: readonly number[] }>,
  expected: readonly TensorSpec[] = RESNET18_TENSORS,
): string[] {
  const problems: string[] = [];
  const expectedNames = new Set(expected.map((s) => s.name));
  for (const spec of expected) {
    const found = tensors.get(spec.name);
    if (!found) problems.push(`missing ${spec.name} [${spec.shape}]`);
    else if (!sameShape(found.shape, spec.shape)) problems.push(`${spec.name}: expected [${spec.shape}], found [${found.shape}]`);
    else if (found.dtype !== spec.dtype) problems.push(`${spec.name}: expected ${spec.dtype}, found ${found.dtype}`);
  }
  for (const [name, found] of tensors) {
    if (!expectedNames.has(name)) problems.push(`unexpected ${name} [${found.shape}]`);
  }
  return problems;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

// ---------------------------------------------------------------------------------------------------------------
// Where the .pth comes from.

export { sha256File, sha256Hex };

export type WeightsSourceKind = "from" | "env" | "shared" | "download";

export interface WeightsSource {
  /** A local file, or IMAGENET_URL when how === "download". */
  path: string;
  how: WeightsSourceKind;
}

export interface ResolveWeightsOptions {
  /** `--from FILE`. */
  from?: string;
  env?: NodeJS.ProcessEnv;
  /** Folder that may hold resnet18-f37072fd.pth; default <project>/../shared/weights. */
  sharedDir?: string;
}

/** First of: --from, $CELLMORPHO_WEIGHTS, the shared ImageNet file, else the official download. */
export function resolveWeightsSource(options: ResolveWeightsOptions = {}): WeightsSource {
  const { from, env = process.env } = options;
  if (from !== undefined) return { path: existingFile(from, `--from ${from}`), how: "from" };
  const fromEnv = env[WEIGHTS_ENV];
  if (fromEnv) return { path: existingFile(fromEnv, `${WEIGHTS_ENV}=${fromEnv}`), how: "env" };
  const sharedDir = options.sharedDir ?? path.join(projectRoot(), "..", "shared", "weights");
  const shared = path.join(sharedDir, path.basename(IMAGENET_URL));
  if (fs.existsSync(shared)) return { path: shared, how: "shared" };
  return { path: IMAGENET_URL, how: "download" };
}

// An explicitly named file that is absent is an error, not a reason to fall back to another source.
function existingFile(file: string, what: string): string {
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw new Error(`${what}: no such file`);
  return path.resolve(file);
}

/**
 * A local path for the source: itself, or for "download" the verified official file in `cacheDir`
 * (downloaded once; a cached copy is reused when its hash still matches).
 */
export async function localWeightsFile(
  source: WeightsSource,
  cacheDir: string = path.join(projectRoot(), ".cache"),
  log: (line: string) => void = console.log,
): Promise<string> {
  if (source.how !== "download") return source.path;
  const target = path.join(cacheDir, path.basename(new URL(source.path).pathname));
  if (fs.existsSync(target) && sha256File(target).startsWith(IMAGENET_SHA256_PREFIX)) return target;
  log(`downloading ${source.path} -> ${target}`);
  try {
    await downloadVerified(source.path, target, IMAGENET_SHA256_PREFIX);
  } catch (err) {
    throw new Error(`no ResNet18 weights available: no --from FILE, no ${WEIGHTS_ENV}, no ` +
      `${path.basename(IMAGENET_URL)} in ../shared/weights/, and downloading ${source.path} failed: ` +
      `${(err as Error).message}`);
  }
  return target;
}

/** Stream `url` to a temporary file beside `target`, hashing as it goes; rename only when the hash matches. */
async function downloadVerified(url: string, target: string, sha256Prefix: string): Promise<void> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.download.tmp`;
  try {
    const hash = crypto.createHash("sha256");
    const hashTap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(await httpsGet(url, 5), hashTap, fs.createWriteStream(tmp));
    const sha256 = hash.digest("hex");
    if (!sha256.startsWith(sha256Prefix)) {
      throw new Error(`downloaded file has sha256 ${sha256}, expected one starting ${sha256Prefix}`);
    }
    fs.renameSync(tmp, target);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function httpsGet(url: string, redirectsLeft: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location && redirectsLeft > 0) {
        response.resume();
        resolve(httpsGet(new URL(location, url).toString(), redirectsLeft - 1));
      } else if (status !== 200) {
        response.resume();
        reject(new Error(`HTTP ${status} from ${url}`));
      } else {
        resolve(response);
      }
    });
    request.setTimeout(60_000, () => request.destroy(new Error(`${url}: no data for 60 s`)));
    request.on("error", reject);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Conversion to the project's format.

/** resnet18.json. Tensor offsets and lengths count float32 elements in resnet18.bin (little-endian, packed in order). */
export interface WeightsManifest {
  format: typeof WEIGHTS_FORMAT;
  arch: "resnet18";
  dtype: "float32";
  source: { file: string; sha256: string; verified: boolean; label: string };
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

export interface ConvertOptions {
  /** A local .pth (see resolveWeightsSource / localWeightsFile). */
  source: string;
  /** Default <project>/weights. */
  outDir?: string;
  /** Convert a file that is not torchvision's ImageNet ResNet18; everything made from it will say so. */
  unverified?: boolean;
  log?: (line: string) => void;
}

export interface ConvertedWeightsInfo {
  binFile: string;
  manifestFile: string;
  source: WeightsManifest["source"];
  tensorCount: number;
  floatCount: number;
}

export function defaultWeightsDir(): string {
  return path.join(projectRoot(), "weights");
}

export function convertWeights(options: ConvertOptions): ConvertedWeightsInfo {
  const { source, outDir = defaultWeightsDir(), unverified = false, log = console.log } = options;
  if (!fs.existsSync(source)) throw new Error(`${source}: no such file`);
  const bytes = fs.readFileSync(source);
  const sha256 = sha256Hex(bytes);
  const verified = sha256.startsWith(IMAGENET_SHA256_PREFIX);
  if (!verified && !unverified) {
    throw new Error(`${source}: sha256 ${sha256} is not torchvision's ImageNet ResNet18 (sha256 ${IMAGENET_SHA256_PREFIX}...). ` +
      "Convert it anyway with --unverified; every score made with it will then carry a warning.");
  }
  const label = verified ? IMAGENET_LABEL : `${path.basename(source)} (UNVERIFIED)`;
  if (!verified) {
    log(`WARNING: ${path.basename(source)} (sha256 ${sha256}) is not torchvision's ImageNet ResNet18; converting it ` +
      "because --unverified was given. Scores made with these weights are not the method's results and will say so.");
  }

  const tensors = parseTorchCheckpoint(bytes, source);
  const problems = checkStateDict(tensors);
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).join("; ");
    const more = problems.length > 8 ? `; and ${problems.length - 8} more` : "";
    throw new Error(`${source}: not a torchvision ResNet18 state_dict: ${shown}${more}`);
  }

  const kept = RESNET18_TENSORS.filter((spec) => isEncoderTensor(spec.name));
  const entries: WeightsManifest["tensors"] = [];
  let offset = 0;
  for (const spec of kept) {
    const length = tensors.get(spec.name)!.data.length;
    entries.push({ name: spec.name, shape: [...spec.shape], offset, length });
    offset += length;
  }
  const packed = new Float32Array(offset);
  // checkStateDict has confirmed every kept tensor is float32.
  for (const entry of entries) packed.set(tensors.get(entry.name)!.data as Float32Array, entry.offset);

  const manifest: WeightsManifest = {
    format: WEIGHTS_FORMAT,
    arch: "resnet18",
    dtype: "float32",
    source: { file: path.basename(source), sha256, verified, label },
    tensors: entries,
  };
  const binFile = path.join(outDir, WEIGHTS_BIN);
  const manifestFile = path.join(outDir, WEIGHTS_MANIFEST);
  // The .bin first: a manifest on disk then always describes a complete .bin beside it.
  writeFileAtomic(binFile, new Uint8Array(packed.buffer));
  writeJsonAtomic(manifestFile, manifest);
  log(`wrote ${binFile} (${entries.length} tensors, ${packed.length} floats) and ${manifestFile}; weights: ${label}`);
  return { binFile, manifestFile, source: manifest.source, tensorCount: entries.length, floatCount: packed.length };
}

// ---------------------------------------------------------------------------------------------------------------
// Loading the converted weights.

export interface ResNetWeights {
  /** Views on one shared buffer, in state_dict order; conv1.weight is still 3-channel. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  provenance: WeightsProvenance;
}

export function loadWeights(dir: string = defaultWeightsDir()): ResNetWeights {
  const manifestFile = path.join(dir, WEIGHTS_MANIFEST);
  const binFile = path.join(dir, WEIGHTS_BIN);
  for (const file of [manifestFile, binFile]) {
    if (!fs.existsSync(file)) throw new Error(`${file} not found: run \`npx cellmorpho weights\` first`);
  }
  const manifest = readManifest(manifestFile);
  const bytes = fs.readFileSync(binFile);
  const floatCount = manifest.tensors.reduce((sum, t) => sum + t.length, 0);
  if (bytes.length !== floatCount * 4) {
    throw new Error(`${binFile}: ${bytes.length} bytes, but ${manifestFile} describes ${floatCount * 4}; ` +
      "run `npx cellmorpho weights` again");
  }
  const floats = float32View(bytes);
  const tensors = new Map(manifest.tensors.map((t) => [
    t.name, { shape: t.shape, data: floats.subarray(t.offset, t.offset + t.length) },
  ]));
  const { label, sha256, verified } = manifest.source;
  return { tensors, provenance: { label, sha256, verified } };
}

/** Parse and check a manifest: format tag, packed layout, and exactly the encoder's ResNet18 tensors. */
function readManifest(file: string): WeightsManifest {
  let manifest: WeightsManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, "utf8")) as WeightsManifest;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (manifest?.format !== WEIGHTS_FORMAT || !Array.isArray(manifest.tensors) || typeof manifest.source !== "object") {
    throw new Error(`${file}: not a ${WEIGHTS_FORMAT} manifest; run \`npx cellmorpho weights\` again`);
  }
  let offset = 0;
  for (const t of manifest.tensors) {
    const numel = Array.isArray(t.shape) ? t.shape.reduce((a, b) => a * b, 1) : NaN;
    if (t.offset !== offset || t.length !== numel) {
      throw new Error(`${file}: tensor ${t.name} has offset ${t.offset} and length ${t.length}, expected ${offset} and ${numel}`);
    }
    offset += t.length;
  }
  const described = new Map(manifest.tensors.map((t) => [t.name, { dtype: "float32", shape: t.shape }]));
  const problems = checkStateDict(described, RESNET18_TENSORS.filter((s) => isEncoderTensor(s.name)));
  if (problems.length > 0) throw new Error(`${file}: not the encoder's ResNet18 tensors: ${problems.slice(0, 8).join("; ")}`);
  return manifest;
}

// A view when the bytes are 4-byte aligned (large reads are), else one aligned copy.
function float32View(bytes: Buffer): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return new Float32Array(new Uint8Array(bytes).buffer);
}
