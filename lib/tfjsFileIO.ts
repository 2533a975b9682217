// Reads a TensorFlow.js model (model.json + binary weight shards) from the local file system.
//
// tfjs's own file:// loader lives in tfjs-node, which this project only has optionally; this handler works with
// plain @tensorflow/tfjs in Node. It only reads and checks bytes: decoding (float32, and quantized uint8/uint16
// with scale+min or float16) stays in tfjs's io.decodeWeights, which loadLayersModel/loadGraphModel call on the
// artifacts returned here. Everything that can be wrong with the files is reported here, naming the file, before
// tfjs would fail further down with a message that does not.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { io } from "@tensorflow/tfjs";

export type TfjsModelFormat = "layers" | "graph";

/** A model.json and its weights, read and checked. */
export interface TfjsModelFiles {
  /** Absolute path of model.json. */
  modelJsonPath: string;
  format: TfjsModelFormat;
  /** What tfjs's loaders take: topology, weight specs (manifest order) and all weight bytes in one buffer. */
  artifacts: io.ModelArtifacts;
  /** sha256 (hex) of model.json's bytes followed by the weight bytes in manifest order: identifies the model. */
  sha256: string;
}

/** Bytes per stored value; quantized weights are stored in their quantization dtype. */
const STORED_BYTES: Readonly<Record<string, number>> = {
  float32: 4, int32: 4, bool: 1, complex64: 8, float16: 2, uint16: 2, uint8: 1,
};
const QUANTIZATION_DTYPES = new Set(["uint8", "uint16", "float16"]);

/** An IOHandler for tf.loadLayersModel / tf.loadGraphModel that reads `modelJsonPath` and its shards. */
export function fileSystemHandler(modelJsonPath: string): io.IOHandler {
  return { load: async () => readTfjsModelFiles(modelJsonPath).artifacts };
}

/** Reads and checks model.json and every weight shard it lists; throws an Error naming the file on any problem. */
export function readTfjsModelFiles(modelJsonPath: string): TfjsModelFiles {
  const file = path.resolve(modelJsonPath);
  const jsonBytes = readBytes(file, "model.json");
  const modelJson = parseModelJson(jsonBytes, file);
  const format = detectFormat(modelJson, file);
  const manifest = modelJson.weightsManifest ?? [];
  const weightBytes = manifest.map((group, i) => readWeightGroup(group, i, file));
  const weightData = concatenate(weightBytes);
  const artifacts = io.getModelArtifactsForJSONSync(modelJson, io.getWeightSpecs(manifest), weightData);
  const sha256 = crypto.createHash("sha256").update(jsonBytes).update(new Uint8Array(weightData)).digest("hex");
  return { modelJsonPath: file, format, artifacts, sha256 };
}

/**
 * Bytes one manifest entry occupies in the shards. Throws for what cannot be sized statically or decoded by tfjs
 * (string weights, unknown dtypes), naming the weight.
 */
export function storedByteLength(entry: io.WeightsManifestEntry, file: string): number {
  const where = `${file}: weight "${entry.name}"`;
  if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${where} has an invalid shape ${JSON.stringify(entry.shape)}`);
  }
  const quantized = entry.quantization?.dtype;
  if (quantized !== undefined && !QUANTIZATION_DTYPES.has(quantized)) {
    throw new Error(`${where}: unsupported quantization dtype "${quantized}" (supported: uint8, uint16, float16)`);
  }
  const stored = quantized ?? entry.dtype;
  const bytes = STORED_BYTES[stored];
  if (bytes === undefined) {
    throw new Error(`${where}: unsupported dtype "${stored}" (string weights cannot be checked and are not supported)`);
  }
  return entry.shape.reduce((a, b) => a * b, 1) * bytes;
}

function readBytes(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : (err as Error).message;
    throw new Error(`cannot read ${what} ${file}: ${reason}`);
  }
}

function parseModelJson(bytes: Buffer, file: string): io.ModelJSON {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new Error(`${file} is not readable JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${file}: unsupported format, expected a TF.js model.json object`);
  }
  const json = parsed as Partial<io.ModelJSON>;
  if (json.modelTopology === undefined || json.modelTopology === null) {
    throw new Error(`${file}: unsupported format, no "modelTopology" (not a TF.js model.json; a weights-only manifest?)`);
  }
  if (json.weightsManifest !== undefined && !Array.isArray(json.weightsManifest)) {
    throw new Error(`${file}: unsupported format, "weightsManifest" is not a list of weight groups`);
  }
  return json as io.ModelJSON;
}

/** Layers models carry a Keras topology; graph models a TensorFlow GraphDef (a list of nodes). */
function detectFormat(json: io.ModelJSON, file: string): TfjsModelFormat {
  const topology = json.modelTopology as Record<string, unknown>;
  if (json.format === "graph-model" || Array.isArray(topology.node)) return "graph";
  if (json.format === "layers-model" || "model_config" in topology || "class_name" in topology) return "layers";
  throw new Error(`${file}: unsupported format "${json.format ?? "unknown"}": the topology is neither a Keras ` +
    `model (layers-model) nor a TensorFlow graph (graph-model)`);
}

/** One weight group's shards, concatenated in the order listed, checked against the group's manifest entries. */
function readWeightGroup(group: io.WeightsManifestConfig[number], index: number, file: string): Uint8Array {
  const label = `weight group ${index + 1}`;
  if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) {
    throw new Error(`${file}: unsupported format, ${label} needs "paths" and "weights" lists`);
  }
  const folder = path.dirname(file);
  const shards = group.paths.map((p) => {
    const shard = path.resolve(folder, p);
    if (!fs.existsSync(shard)) throw new Error(`${file}: missing weight shard ${shard} (${label})`);
    return readBytes(shard, "weight shard");
  });
  const bytes = Buffer.concat(shards);
  const expected = group.weights.reduce((sum, entry) => sum + storedByteLength(entry, file), 0);
  if (bytes.byteLength !== expected) {
    throw new Error(`${file}: ${label} (${group.paths.join(", ")}) holds ${bytes.byteLength} bytes but its ` +
      `${group.weights.length} manifest entries need ${expected}`);
  }
  return bytes;
}

/** One standalone ArrayBuffer (Buffers may be views into Node's shared pool, so copy rather than hand out .buffer). */
function concatenate(parts: readonly Uint8Array[]): ArrayBuffer {
  const total = parts.reduce((sum, p) => sum + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out.buffer;
}
